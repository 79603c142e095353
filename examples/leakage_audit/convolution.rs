//! LeNet-5's secure first convolution (`mnist_secure --model lenet`): the
//! real authority, the client's encrypted images, the server's keys for the
//! quantized kernels at every position and their decryptions (one forward
//! pass), then the images solved for by least squares. And what the rank
//! budget answers.

use std::sync::Arc;
use std::time::Instant;

use cryptonn::authority::policy::IssueAllCounted;
use cryptonn::authority::{Authority, Caps, RankBudget};
use cryptonn::fe::Ristretto255;
use cryptonn::fe::feip::Decryptor;
use cryptonn::nn::SecureConv2d;
use cryptonn::protocol::{KeyService, PatchGeometry};
use cryptonn::server::quantize_columns;
use cryptonn_audit::{self as attack, Quality};
use cryptonn_mnist::config::TrainingConfig;
use cryptonn_mnist::equivalence::encrypt_images;
use cryptonn_mnist::lenet::LeNetConfig;
use rand::rngs::StdRng;
use serde::Serialize;

use super::AuditResult;

/// One forward pass of LeNet-5's conv1 on encrypted images.
#[derive(Debug, Serialize)]
pub struct ConvolutionCase {
    /// Images encrypted and attacked.
    pub images: usize,
    /// Kernels (output channels), each one key vector.
    pub kernels: usize,
    /// Inner products the server decrypts per image.
    pub equations_per_image: usize,
    /// Their rank in pixel space, as the authority's budget counts it.
    pub rank_per_image: usize,
    /// Pixels per image.
    pub pixels: usize,
    /// Least squares on the decrypted products, rounded.
    pub least_squares: Quality,
    /// Seconds of the solve for all images.
    pub solve_seconds: f64,
    /// What a rank budget of the default row cap answers conv1's keys.
    pub default_cap_answer: String,
    /// What a rank budget one below full rank answers them.
    pub cap_below_full_answer: String,
}

/// Runs the case on `truth` (whole images, row-major) with the main job's
/// quantization and seed.
pub fn case(
    config: &TrainingConfig,
    truth: &[i64],
    decryptor: &Decryptor<Ristretto255>,
    rng: &mut StdRng,
) -> AuditResult<ConvolutionCase> {
    let lenet = LeNetConfig::new();
    let n = lenet.side * lenet.side;
    let images = truth.len() / n;
    let Some(conv) = lenet.init(&config.device(), true).conv1.secure().cloned() else {
        return Err("LeNet-5's conv1 is not secure".into());
    };
    let geometry = conv.patch_geometry([1, lenet.side, lenet.side])?;
    let kernels = quantized_kernels(&conv, config)?;
    // The paper's policy (every key), counting rank.
    let positions = geometry.positions();
    let min_support = config.quantization.min_key_support;
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAllCounted::new(rng)));
    let batch = encrypt_images(&authority, &conv, truth, [images, lenet.side], rng)?;
    let server = authority.requester("curious-server");
    let keys = server.feip_keys(batch.row_key(), &kernels)?;
    let products = decryptor.decrypt_batch(&keys, batch.rows())?;
    let rank_per_image = server.budget(batch.row_key()).map_or(0, |b| b.rank);
    let start = Instant::now();
    let guess = attack::solve_convolution(&geometry, &kernels, &products)?;
    let solve_seconds = start.elapsed().as_secs_f64();
    let mut answer = |cap| refusal(geometry, cap, min_support, &kernels, rng);
    Ok(ConvolutionCase {
        images,
        kernels: kernels.len(),
        equations_per_image: kernels.len() * positions,
        rank_per_image,
        pixels: n,
        least_squares: attack::quality(&guess, truth, n),
        solve_seconds,
        default_cap_answer: answer(config.row_cap),
        cap_below_full_answer: answer(n - 1),
    })
}

/// conv1's kernels as the secure layer quantizes them: one key vector each.
fn quantized_kernels(conv: &SecureConv2d, config: &TrainingConfig) -> AuditResult<Vec<Vec<i64>>> {
    let [c_in, c_out] = conv.channels();
    let features = c_in * conv.kernel_size[0] * conv.kernel_size[1];
    let w = conv
        .weight
        .val()
        .reshape([c_out, features])
        .transpose()
        .to_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let q = config.quantization;
    Ok(quantize_columns(&w, features, c_out, q.weight_bits, q.limbs)?.vectors)
}

/// The answer of a rank budget with row cap `cap` to conv1's keys on fresh
/// convolution keys for one image.
fn refusal(
    geometry: PatchGeometry,
    cap: usize,
    min_support: usize,
    kernels: &[Vec<i64>],
    rng: &mut StdRng,
) -> String {
    let caps = Caps { rows: cap, cols: 0 };
    let authority = Authority::<Ristretto255>::new(RankBudget::new(caps, min_support, 1.0, rng));
    let answer = authority
        .patch_keys(geometry, 1, rng)
        .and_then(|keys| authority.feip_keys(keys.rows.id(), kernels));
    match answer {
        Ok(_) => format!("row cap {cap}: ISSUED"),
        Err(e) => format!("row cap {cap}: {e}"),
    }
}
