//! What the server holds: a key service, a shared discrete-log table and
//! the time spent in each phase. Nothing here can reach a master secret key
//! or a plaintext input.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptonn_fe::feip::{Ciphertext, Decryptor};
use cryptonn_fe::{Group, KeyId};
use cryptonn_protocol::{Error, KeyService, Result};

use crate::quantize::Quantized;

/// The server's side of the protocol: function keys from a [`KeyService`],
/// decryption with a shared discrete-log table, and decoding.
///
/// Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct Server<G: Group> {
    keys: Arc<dyn KeyService<G>>,
    decryptor: Decryptor<G>,
    times: Arc<Mutex<PhaseTimes>>,
}

/// Wall time spent in each secure phase, summed over every call.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PhaseTimes {
    /// Waiting for the key service (quantization included).
    pub key_derivation: Duration,
    /// FE decryption, discrete logs included.
    pub decryption: Duration,
}

/// Which [`PhaseTimes`] counter a measured call adds to.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Waiting for the key service.
    KeyDerivation,
    /// Decrypting.
    Decryption,
}

impl<G: Group> core::fmt::Debug for Server<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("group", &G::ID)
            .finish_non_exhaustive()
    }
}

impl<G: Group> Server<G> {
    /// A server asking `keys` for function keys and decrypting with `decryptor`.
    pub fn new(keys: Arc<dyn KeyService<G>>, decryptor: Decryptor<G>) -> Self {
        Self {
            keys,
            decryptor,
            times: Arc::default(),
        }
    }

    /// The key service (the authority, seen from the server).
    pub fn keys(&self) -> &dyn KeyService<G> {
        self.keys.as_ref()
    }

    /// The decryptor with its shared discrete-log table.
    pub fn decryptor(&self) -> &Decryptor<G> {
        &self.decryptor
    }

    /// Runs `f`, adding its wall time to `phase`.
    pub fn timed<T>(&self, phase: Phase, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        let elapsed = start.elapsed();
        let mut times = self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match phase {
            Phase::KeyDerivation => times.key_derivation += elapsed,
            Phase::Decryption => times.decryption += elapsed,
        }
        out
    }

    /// The one path from quantized key vectors to real values: keys for the
    /// vectors of `columns` under `key`, decryption of every ciphertext in
    /// `cts`, and decoding. Vectors with fewer than `min_support` non-zero
    /// entries (and all-zero ones) are not sent for keys: their products
    /// count as zero. Returns `[cts, columns]`, row-major.
    ///
    /// # Errors
    /// A key refusal, or an FE error from decryption (e.g. a result beyond
    /// the discrete-log bound).
    pub fn decrypt_columns(
        &self,
        key: KeyId,
        cts: &[Ciphertext<G>],
        columns: &Quantized,
        input_scale: f64,
        min_support: usize,
    ) -> Result<Vec<f32>> {
        self.decrypt_expanded(key, cts, columns, 1, input_scale, min_support)
    }

    /// [`Server::decrypt_columns`] under a master key that answers `fan`
    /// keys per vector (a convolution's: one per position for a kernel, one
    /// per tap for an error vector, in that order). Returns
    /// `[cts·fan, columns]`, row-major, row `i·fan + f` from ciphertext i
    /// and the f-th key of each vector.
    ///
    /// # Errors
    /// As [`Server::decrypt_columns`], and [`Error::InvalidBatch`] for a
    /// `fan` of 0 or if the authority answers another number of keys.
    pub fn decrypt_expanded(
        &self,
        key: KeyId,
        cts: &[Ciphertext<G>],
        columns: &Quantized,
        fan: usize,
        input_scale: f64,
        min_support: usize,
    ) -> Result<Vec<f32>> {
        if fan == 0 {
            return Err(Error::InvalidBatch(
                "a master key answers at least one key per vector".into(),
            ));
        }
        let width = columns.columns();
        let supported = |v: &Vec<i64>| v.iter().filter(|&&d| d != 0).count() >= min_support.max(1);
        let active: Vec<usize> = (0..columns.vectors.len())
            .filter(|&v| supported(&columns.vectors[v]))
            .collect();
        if active.is_empty() {
            return Ok(vec![0.0; cts.len() * fan * width]);
        }
        let ys: Vec<Vec<i64>> = active.iter().map(|&v| columns.vectors[v].clone()).collect();
        let keys = self.timed(Phase::KeyDerivation, || self.keys.feip_keys(key, &ys))?;
        if keys.len() != active.len() * fan {
            return Err(Error::InvalidBatch(format!(
                "the authority answered {} keys for {} vectors, {fan} each expected",
                keys.len(),
                active.len()
            )));
        }
        let products = self.timed(Phase::Decryption, || {
            self.decryptor.decrypt_batch(&keys, cts)
        })?;
        let mut full = vec![0i64; columns.vectors.len()];
        let mut out = Vec::with_capacity(cts.len() * fan * width);
        for row in products.chunks(keys.len()) {
            for f in 0..fan {
                for (a, &v) in active.iter().enumerate() {
                    full[v] = row[a * fan + f];
                }
                out.extend((0..width).map(|j| columns.decode(&full, j, input_scale) as f32));
            }
        }
        Ok(out)
    }

    /// The time spent so far in each phase.
    pub fn phase_times(&self) -> PhaseTimes {
        *self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
