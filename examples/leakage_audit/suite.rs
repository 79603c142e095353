//! Every reconstruction attack the audit knows, run on what the server holds
//! for each audited batch, and summed up over the batches.

use std::time::Instant;

use cryptonn_audit::{
    self as attack, Decoder, DecoderConfig, Equations, Prior, Quality, SolverConfig,
};
use serde::Serialize;

use super::AuditResult;

/// The attacks that need no training, strongest idea first.
pub const ATTACKS: [&str; 4] = [
    "feasibility + certify/peel",
    "linear MMSE (public prior)",
    "prior, then feasibility",
    "box least squares (FISTA)",
];

/// The learned-prior attacks, run where [`Learned`] is given.
pub const LEARNED: [&str; 2] = [
    "learned prior + projection",
    "learned prior, then feasibility",
];

/// What the learned prior trains on.
pub struct Learned<'a> {
    /// Public images and warped copies, f32 in [0, 255], row-major.
    pub public: &'a [f32],
    /// The decoder and its training.
    pub config: &'a DecoderConfig,
}

/// One attack over every audited batch.
#[derive(Debug, Clone, Serialize)]
pub struct AttackResult {
    /// Its name (one of [`ATTACKS`] or [`LEARNED`]).
    pub attack: &'static str,
    /// Mean PSNR over every audited image, in dB (99 for an exact image).
    pub mean_psnr_db: f64,
    /// Share of audited pixels recovered exactly.
    pub exact_pixels: f64,
    /// Share of audited images recovered exactly.
    pub exact_images: f64,
    /// Mean seconds per batch.
    pub seconds_per_batch: f64,
}

/// One batch: its equations and true pixels.
pub struct Target<'a> {
    /// What the server holds.
    pub equations: Equations,
    /// The truth, row-major.
    pub truth: &'a [i64],
}

/// Runs every attack (with `learned`, the learned prior's too, one decoder
/// per distinct key set) on every target; returns the per-attack results
/// and, for the first target, the best attack's pixels (for the PNG).
pub fn run(
    targets: &[Target<'_>],
    n: usize,
    prior: &Prior,
    solver: &SolverConfig,
    learned: Option<&Learned<'_>>,
) -> AuditResult<(Vec<AttackResult>, Vec<f64>)> {
    let zero = Quality {
        mean_psnr_db: 0.0,
        exact_pixels: 0.0,
        exact_images: 0.0,
        within_16: 0.0,
        max_pixel_error: 0.0,
    };
    let names: Vec<&'static str> = ATTACKS
        .iter()
        .chain(learned.map_or(&[][..], |_| &LEARNED[..]))
        .copied()
        .collect();
    let mut sums = vec![(zero, 0.0); names.len()];
    let mut first = vec![Vec::new(); names.len()];
    let mut decoder: Option<Decoder> = None;
    for (t, target) in targets.iter().enumerate() {
        let b = target.truth.len() / n;
        let eqs = &target.equations;
        let (mut guide, mut guide_seconds) = (Vec::new(), 0.0);
        for (a, sum) in sums.iter_mut().enumerate() {
            let start = Instant::now();
            let guess = match a {
                0 => attack::feasibility(eqs, b, n, solver)?,
                1 => {
                    guide = attack::linear_mmse(eqs, b, n, prior)?;
                    guide.clone()
                }
                2 => attack::feasibility_from(eqs, b, n, &guide, solver)?,
                3 => attack::least_squares(eqs, b, n, solver)?,
                4 => {
                    let learned = learned.ok_or("no learned prior")?;
                    let net = decoder_for(&mut decoder, eqs, learned, n)?;
                    guide = net.reconstruct(eqs, b, n)?;
                    guide.clone()
                }
                _ => attack::feasibility_from(eqs, b, n, &guide, solver)?,
            };
            // A two-stage attack counts its guide's time too; the learned
            // prior's includes its decoder's training, averaged over the
            // batches it serves.
            let mut seconds = start.elapsed().as_secs_f64();
            match a {
                1 | 4 => guide_seconds = seconds,
                2 | 5 => seconds += guide_seconds,
                _ => {}
            }
            let q = attack::quality(&guess, target.truth, n);
            sum.0 = add(sum.0, q);
            sum.1 += seconds;
            if t == 0 {
                first[a] = guess;
            }
        }
    }
    let count = targets.len().max(1) as f64;
    let results: Vec<AttackResult> = sums
        .iter()
        .zip(names)
        .map(|((q, s), name)| AttackResult {
            attack: name,
            mean_psnr_db: q.mean_psnr_db / count,
            exact_pixels: q.exact_pixels / count,
            exact_images: q.exact_images / count,
            seconds_per_batch: s / count,
        })
        .collect();
    let best = best(&results);
    let pixels = first.swap_remove(best);
    Ok((results, pixels))
}

/// A decoder for the forward keys of `eqs`: `cache`'s if it serves them
/// (projection mode's batches share their keys), else a new one.
fn decoder_for<'c>(
    cache: &'c mut Option<Decoder>,
    eqs: &Equations,
    learned: &Learned<'_>,
    n: usize,
) -> AuditResult<&'c Decoder> {
    if !cache.as_ref().is_some_and(|d| d.serves(eqs)) {
        let start = Instant::now();
        eprintln!("    training a decoder for {} keys…", eqs.forward.len());
        *cache = Some(Decoder::train(eqs, learned.public, n, learned.config)?);
        eprintln!("    trained in {:.0} s", start.elapsed().as_secs_f64());
    }
    Ok(cache.as_ref().ok_or("no decoder")?)
}

fn add(a: Quality, b: Quality) -> Quality {
    Quality {
        mean_psnr_db: a.mean_psnr_db + b.mean_psnr_db,
        exact_pixels: a.exact_pixels + b.exact_pixels,
        exact_images: a.exact_images + b.exact_images,
        within_16: a.within_16 + b.within_16,
        max_pixel_error: a.max_pixel_error.max(b.max_pixel_error),
    }
}

/// Index of the attack with the highest mean PSNR.
pub fn best(results: &[AttackResult]) -> usize {
    (0..results.len())
        .max_by(|&a, &b| results[a].mean_psnr_db.total_cmp(&results[b].mean_psnr_db))
        .unwrap_or(0)
}
