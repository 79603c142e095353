//! What the server holds: a key service, a shared discrete-log table and the
//! quantization settings. Nothing here can reach a master secret key or a
//! plaintext input.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptonn_fe::feip::{Ciphertext, Decryptor};
use cryptonn_fe::{Group, KeyId};

use crate::authority::KeyService;
use crate::quantize::{QuantizationConfig, Quantized};
use crate::{Error, Result};

/// The server's side of the protocol, shared by every secure layer and step.
///
/// Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct SecureContext<G: Group> {
    keys: Arc<dyn KeyService<G>>,
    decryptor: Decryptor<G>,
    quantization: QuantizationConfig,
    /// An error raised inside Burn's backward pass, which cannot return one.
    backward_error: Arc<Mutex<Option<Error>>>,
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
pub(crate) enum Phase {
    KeyDerivation,
    Decryption,
}

impl<G: Group> core::fmt::Debug for SecureContext<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureContext")
            .field("group", &G::ID)
            .field("quantization", &self.quantization)
            .finish_non_exhaustive()
    }
}

impl<G: Group> SecureContext<G> {
    /// A context asking `keys` for function keys and decrypting with `decryptor`.
    pub fn new(
        keys: Arc<dyn KeyService<G>>,
        decryptor: Decryptor<G>,
        quantization: QuantizationConfig,
    ) -> Self {
        Self {
            keys,
            decryptor,
            quantization,
            backward_error: Arc::default(),
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

    /// The quantization settings.
    pub fn quantization(&self) -> &QuantizationConfig {
        &self.quantization
    }

    /// Runs `f`, adding its wall time to `phase`.
    pub(crate) fn timed<T>(&self, phase: Phase, f: impl FnOnce() -> T) -> T {
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

    /// The one path from quantized key vectors to real values: keys for
    /// `weights` under `row_key`, decryption of every row ciphertext, and
    /// decoding. Returns `[rows, columns of weights]`, row-major.
    ///
    /// # Errors
    /// A key refusal, or an FE error from decryption (e.g. a result beyond
    /// the discrete-log bound).
    pub(crate) fn decrypt_columns(
        &self,
        row_key: KeyId,
        rows: &[Ciphertext<G>],
        weights: &Quantized,
        input_scale: f64,
    ) -> Result<Vec<f32>> {
        let keys = self.timed(Phase::KeyDerivation, || {
            self.keys.feip_keys(row_key, &weights.vectors)
        })?;
        let products = self.timed(Phase::Decryption, || {
            self.decryptor.decrypt_batch(&keys, rows)
        })?;
        let columns = weights.columns();
        Ok(products
            .chunks(keys.len().max(1))
            .flat_map(|row| (0..columns).map(move |j| weights.decode(row, j, input_scale) as f32))
            .collect())
    }

    /// The time spent so far in each phase.
    pub fn phase_times(&self) -> PhaseTimes {
        *self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn record_backward_error(&self, error: Error) {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    /// Call after `loss.backward()`: the first error a secure backward pass
    /// hit (its gradient was then zero, so the step must be discarded).
    ///
    /// # Errors
    /// That error.
    pub fn check_backward(&self) -> Result<()> {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.take().map_or(Ok(()), Err)
    }
}
