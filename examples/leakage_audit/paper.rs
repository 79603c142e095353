//! The paper's mode: the real authority, the real encrypted batches, the keys
//! the main job's server asks for every epoch, and their decryptions.

use std::sync::Arc;

use cryptonn::authority::policy::IssueAllCounted;
use cryptonn::authority::{Authority, Caps, RankBudget, Requester};
use cryptonn::client::{Client, Samples};
use cryptonn::fe::feip::{Decryptor, FunctionKey};
use cryptonn::fe::{DlogTable, Ristretto255};
use cryptonn::protocol::{BatchPublicKeys, EncryptedBatch, Error, KeyPolicy, KeyService};
use cryptonn_audit::{self as attack, Equations};
use rand::rngs::StdRng;
use serde::Serialize;

use super::AuditResult;
use super::trace::StepKeys;

/// A key policy of the paper's mode.
#[derive(Debug, Clone, Copy)]
pub enum Policy {
    /// Every key issued, as in the paper.
    Off,
    /// The per-image budget with these caps.
    Caps(Caps),
}

impl Policy {
    /// The authority's policy; `min_support` as the main job's. Off issues
    /// every key, as `IssueAll` does, and still counts the rank, which
    /// master-key recovery needs.
    pub fn build(self, min_support: usize, rng: &mut StdRng) -> Box<dyn KeyPolicy> {
        match self {
            Policy::Off => Box::new(IssueAllCounted::new(rng)),
            Policy::Caps(caps) => Box::new(RankBudget::new(caps, min_support, 1.0, rng)),
        }
    }
}

/// What the server holds on one batch after each epoch it was served.
pub struct Served {
    /// Equations after each served epoch.
    pub after_epoch: Vec<Equations>,
    /// Why the trainer stopped before the requested epochs, if it did.
    pub stopped: Option<String>,
    /// Rank of the issued keys after each epoch: [row side, column side].
    pub ranks: Vec<[usize; 2]>,
    /// The row and column function keys, for master-key recovery.
    pub keys: [Vec<FunctionKey<Ristretto255>>; 2],
}

/// Encrypts `pixels` as the main job's client does (no labels).
pub fn encrypt(
    keys: &BatchPublicKeys<Ristretto255>,
    pixels: &[i64],
    features: usize,
    rng: &mut StdRng,
) -> AuditResult<EncryptedBatch<Ristretto255>> {
    let samples = Samples {
        inputs: pixels,
        features,
        input_scale: 255.0,
        labels: None,
    };
    Ok(Client::new(keys)?.encrypt(&samples, 1, rng)?)
}

/// Plays the server on one batch: before each epoch the trainer's meter
/// check (stop cleanly rather than be refused), then the keys of that
/// epoch's step, decrypted.
pub fn serve(
    server: &Requester<Ristretto255>,
    batch: &EncryptedBatch<Ristretto255>,
    trace: &[&StepKeys],
    decryptor: &Decryptor<Ristretto255>,
) -> AuditResult<Served> {
    let (b, n) = (batch.shape()[0], batch.shape()[1]);
    let mut eqs = Equations::default();
    let mut served = Served {
        after_epoch: Vec::new(),
        stopped: None,
        ranks: Vec::new(),
        keys: [Vec::new(), Vec::new()],
    };
    for (e, step) in trace.iter().enumerate() {
        let fits = |id, need: usize| server.budget(id).is_none_or(|bud| bud.can_serve(need));
        if !fits(batch.row_key(), step.weights.len()) || !fits(batch.col_key(), step.deltas.len()) {
            served.stopped = Some(format!(
                "budget spent before epoch {}: training stops",
                e + 1
            ));
            break;
        }
        let fkeys = server.feip_keys(batch.row_key(), &step.weights)?;
        let z = decryptor.decrypt_batch(&fkeys, batch.rows())?; // [sample][key]
        let k = fkeys.len();
        for (j, y) in step.weights.iter().enumerate() {
            eqs.forward
                .push((y.clone(), (0..b).map(|s| z[s * k + j]).collect()));
        }
        served.keys[0].extend(fkeys);
        let gkeys = server.feip_keys(batch.col_key(), &step.deltas)?;
        let g = decryptor.decrypt_batch(&gkeys, &batch.cols())?; // [feature][key]
        let k = gkeys.len();
        for (j, d) in step.deltas.iter().enumerate() {
            eqs.gradient
                .push((d.clone(), (0..n).map(|i| g[i * k + j]).collect()));
        }
        served.keys[1].extend(gkeys);
        let rank = |id| server.budget(id).map_or(0, |bud| bud.rank);
        served
            .ranks
            .push([rank(batch.row_key()), rank(batch.col_key())]);
        served.after_epoch.push(eqs.clone());
    }
    Ok(served)
}

/// Leak 1 on one master key: the epoch after which its keys gave the master
/// secret (checked against the public key), and the largest pixel error of
/// the images then decrypted in full.
#[derive(Debug, Default, Serialize)]
pub struct MasterKeyRecovery {
    /// The epoch, if it happened.
    pub after_epoch: Option<usize>,
    /// Largest pixel error of the decrypted batch.
    pub max_pixel_error: Option<f64>,
}

/// Tries master-key recovery after every epoch, on the row side (pixels in
/// rows) and the column side (pixels feature by feature).
pub fn recover_master_keys(
    served: &Served,
    keys: &BatchPublicKeys<Ristretto255>,
    batch: &EncryptedBatch<Ristretto255>,
    truth: &[i64],
    table: &Arc<DlogTable<Ristretto255>>,
) -> [MasterKeyRecovery; 2] {
    let [b, n] = batch.shape();
    let mut out = [MasterKeyRecovery::default(), MasterKeyRecovery::default()];
    for (side, (mpk, dim)) in [(&keys.rows, n), (&keys.cols, b)].into_iter().enumerate() {
        // The first epoch whose keys under this master key reach full rank.
        let Some(epoch) = served.ranks.iter().position(|r| r[side] == dim) else {
            continue;
        };
        let issued: usize = served.after_epoch[epoch].forward.len();
        let count = if side == 0 {
            issued
        } else {
            served.after_epoch[epoch].gradient.len()
        };
        let Some(s) = attack::recover_master_secret(&served.keys[side][..count], mpk) else {
            continue;
        };
        let x: Vec<f64> = if side == 0 {
            attack::decrypt_with_master(&s, batch.rows(), table)
                .into_iter()
                .map(|v| v.map_or(f64::NAN, |v| v as f64))
                .collect()
        } else {
            let cols = attack::decrypt_with_master(&s, &batch.cols(), table);
            (0..b * n)
                .map(|idx| cols[(idx % n) * b + idx / n].map_or(f64::NAN, |v| v as f64))
                .collect()
        };
        out[side] = MasterKeyRecovery {
            after_epoch: Some(epoch + 1),
            max_pixel_error: Some(attack::quality(&x, truth, n).max_pixel_error),
        };
    }
    out
}

/// Leak 2: a batch narrower than the layer, recovered from one weight
/// gradient. `Ok(Err(why))` if the authority refused the keys.
pub fn gradient_leak(
    policy: Box<dyn KeyPolicy>,
    truth: &[i64],
    features: usize,
    deltas: &[Vec<i64>],
    decryptor: &Decryptor<Ristretto255>,
    rng: &mut StdRng,
) -> AuditResult<Result<Option<f64>, String>> {
    let size = truth.len() / features;
    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let keys = authority.batch_keys(features, size, rng)?;
    let batch = encrypt(&keys, truth, features, rng)?;
    let fkeys = match authority
        .requester("curious-server")
        .feip_keys(batch.col_key(), deltas)
    {
        Err(Error::KeyRefused(why)) => return Ok(Err(why)),
        other => other?,
    };
    let grad = decryptor.decrypt_batch(&fkeys, &batch.cols())?; // [feature][key]
    let k = fkeys.len();
    // Σ_b δⱼ[b]·X[b, i] = grad[i][j]: one system, a right-hand side per pixel.
    let rows = deltas
        .iter()
        .enumerate()
        .map(|(j, d)| {
            d.iter()
                .copied()
                .chain((0..features).map(|i| grad[i * k + j]))
                .map(<Ristretto255 as cryptonn::fe::Group>::scalar_from_i64)
                .collect()
        })
        .collect();
    Ok(Ok(attack::solve_mod_q(rows, size).map(|solution| {
        let guess: Vec<f64> = solution
            .iter()
            .flatten()
            .map(|s| attack::small(s).map_or(f64::NAN, |v| v as f64))
            .collect();
        attack::quality(&guess, truth, features).max_pixel_error
    })))
}
