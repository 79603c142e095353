//! Checks a secure layer against its plain Burn twin with the same weights
//! on the same data: forward, weight gradient, and weights after Adam steps
//! ([`Twins`]); [`compare`] does it for [`SecureLinear`] and Burn's
//! [`Linear`], `examples/conv_gradient_check` for `SecureConv2d`.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use cryptonn_fe::{DlogTable, Group};
use rand::CryptoRng;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use cryptonn_authority::{Authority, IssueAll};
use cryptonn_burn::{
    EncryptedBatch, EncryptedImages, Error, QuantizationConfig, Result, SecureContext,
    SecureConv2d, SecureLinear,
};
use cryptonn_client::{Client, ImageClient, PIXEL_SCALE, Samples};

/// What to compare.
#[derive(Debug, Clone, Copy)]
pub struct EquivalenceConfig {
    /// Samples in the batch.
    pub batch: usize,
    /// Input features (pixel-like integers 0..255, scaled by 1/255).
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Adam steps after the first comparison.
    pub adam_steps: usize,
    /// Seeds the data, the weights and the keys.
    pub seed: u64,
    /// Bit widths of the quantized weights and errors.
    pub quantization: QuantizationConfig,
}

/// Relative errors max|secure − plain| / max|plain|.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EquivalenceReport {
    /// Of the pre-activations z = x·W + b.
    pub max_rel_err_forward: f64,
    /// Of the weight gradient ∂L/∂W.
    pub max_rel_err_weight_grad: f64,
    /// Of W after `adam_steps` Adam steps.
    pub max_rel_err_after_adam: f64,
}

fn values<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    t.to_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::TensorRead(format!("{e:?}")))
}

/// max|secure − plain| / max|plain| (the absolute difference when plain is 0).
///
/// # Errors
/// A tensor that cannot be read back.
pub fn rel_err<const D: usize>(secure: &Tensor<D>, plain: &Tensor<D>) -> Result<f64> {
    let (s, p) = (values(secure)?, values(plain)?);
    let max_diff = s
        .iter()
        .zip(&p)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let max_ref = p.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    Ok(if max_ref == 0.0 {
        max_diff
    } else {
        max_diff / max_ref
    })
}

/// The loss both layers are trained on: ½‖z − t‖² / batch for a fixed target t.
fn loss<const D: usize>(z: Tensor<D>, target: &Tensor<D>) -> Tensor<1> {
    let batch = z.dims()[0] as f64;
    (z - target.clone())
        .powi_scalar(2)
        .sum()
        .div_scalar(2.0 * batch)
}

/// A plain layer and its secure twin with the same weights, and how to run
/// each: the comparison every secure layer is held to.
pub struct Twins<'a, P, S, const D: usize, const W: usize> {
    /// The plain layer (e.g. Burn's `Linear`).
    pub plain: P,
    /// The secure layer (e.g. `SecureLinear`).
    pub secure: S,
    /// The plain layer's output on the batch.
    pub forward_plain: &'a dyn Fn(&P) -> Tensor<D>,
    /// The secure layer's output on the encrypted batch.
    pub forward_secure: &'a dyn Fn(&S) -> Result<Tensor<D>>,
    /// The plain layer's weight.
    pub weight_plain: fn(&P) -> Tensor<W>,
    /// The secure layer's weight, in the same layout.
    pub weight_secure: fn(&S) -> Tensor<W>,
    /// `loss.backward()` with the secure node checked (`SecureContext::backward`).
    pub backward: &'a dyn Fn(Tensor<1>) -> Result<Gradients>,
}

impl<P: Module, S: Module, const D: usize, const W: usize> Twins<'_, P, S, D, W> {
    /// Forward, weight gradient, and weights after `adam_steps` Adam steps
    /// on ½‖z − target‖² / batch, each as a relative error.
    ///
    /// # Errors
    /// Any error of the secure path.
    pub fn measure(self, target: &Tensor<D>, adam_steps: usize) -> Result<EquivalenceReport> {
        let (mut plain, mut secure) = (self.plain, self.secure);
        let (mut plain_optim, mut secure_optim) =
            (AdamConfig::new().init(), AdamConfig::new().init());
        let (mut forward, mut gradient) = (0.0, 0.0);
        for step in 0..=adam_steps {
            let z_plain = (self.forward_plain)(&plain);
            let z_secure = (self.forward_secure)(&secure)?;
            let plain_grads = loss(z_plain.clone(), target).backward();
            let secure_grads = (self.backward)(loss(z_secure.clone(), target))?;
            if step == 0 {
                forward = rel_err(&z_secure, &z_plain)?;
                let missing = || Error::TensorRead("no weight gradient".into());
                let g_plain = (self.weight_plain)(&plain)
                    .grad(&plain_grads)
                    .ok_or_else(missing)?;
                let g_secure = (self.weight_secure)(&secure)
                    .grad(&secure_grads)
                    .ok_or_else(missing)?;
                gradient = rel_err(&g_secure, &g_plain)?;
            }
            if step == adam_steps {
                break;
            }
            let plain_grads = GradientsParams::from_grads(plain_grads, &plain);
            let secure_grads = GradientsParams::from_grads(secure_grads, &secure);
            plain = plain_optim.step(1e-2, plain, plain_grads);
            secure = secure_optim.step(1e-2, secure, secure_grads);
        }
        Ok(EquivalenceReport {
            max_rel_err_forward: forward,
            max_rel_err_weight_grad: gradient,
            max_rel_err_after_adam: rel_err(
                &(self.weight_secure)(&secure),
                &(self.weight_plain)(&plain),
            )?,
        })
    }
}

/// The client's side of a secure linear layer, played in process: `pixels`
/// (row-major `[batch, features]`, 0..=255, no labels) encrypted row- and
/// column-wise under fresh batch keys from `authority`.
///
/// # Errors
/// Pixels that are not whole samples, and the FE errors of key setup and
/// encryption.
pub fn encrypt_batch<G: Group, R: CryptoRng + ?Sized>(
    authority: &Authority<G>,
    pixels: &[i64],
    features: usize,
    rng: &mut R,
) -> Result<EncryptedBatch<G>> {
    let keys = authority.batch_keys(features, pixels.len() / features.max(1), rng)?;
    let samples = Samples {
        inputs: pixels,
        features,
        input_scale: PIXEL_SCALE,
        labels: None,
    };
    Ok(Client::new(&keys)?.encrypt(&samples, 1, rng)?)
}

/// The client's side of a secure convolution, played in process:
/// `images` square single-channel images of side `side` (row-major
/// `pixels`, 0..=255), encrypted under fresh keys from `authority` as one
/// batch for `conv`.
///
/// # Errors
/// Shapes that do not fit `conv`, and the FE errors of key setup and encryption.
pub fn encrypt_images<G: Group, R: CryptoRng + ?Sized>(
    authority: &Authority<G>,
    conv: &SecureConv2d,
    pixels: &[i64],
    [images, side]: [usize; 2],
    rng: &mut R,
) -> Result<EncryptedImages<G>> {
    let geometry = conv.patch_geometry([1, side, side])?;
    let keys = authority.patch_keys(geometry, images, rng)?;
    Ok(ImageClient::new(&keys, geometry)?.encrypt(pixels, PIXEL_SCALE, rng)?)
}

/// Runs the comparison on `device` (an autodiff device) with keys from a
/// fresh [`Authority`] issuing every key, and decryption through `table`.
///
/// # Errors
/// Any error of the secure path.
pub fn compare<G: Group>(
    config: EquivalenceConfig,
    device: &Device,
    table: Arc<DlogTable<G>>,
) -> Result<EquivalenceReport> {
    let EquivalenceConfig {
        batch,
        d_input,
        d_output,
        adam_steps,
        seed,
        quantization,
    } = config;
    let mut rng = StdRng::seed_from_u64(seed);
    device.seed(seed);
    let pixels: Vec<i64> = (0..batch * d_input)
        .map(|_| rng.random_range(0..256))
        .collect();
    let x = Tensor::<2>::from_data(
        TensorData::new(
            pixels
                .iter()
                .map(|&p| (p as f64 / PIXEL_SCALE) as f32)
                .collect::<Vec<_>>(),
            [batch, d_input],
        ),
        device,
    );
    let target = Tensor::<2>::from_data(
        TensorData::new(
            (0..batch * d_output)
                .map(|_| rng.random_range(-1.0f32..1.0))
                .collect::<Vec<_>>(),
            [batch, d_output],
        ),
        device,
    );

    let authority = Arc::new(Authority::<G>::new(IssueAll));
    let encrypted = encrypt_batch(&authority, &pixels, d_input, &mut rng)?;
    let ctx = SecureContext::builder(authority)
        .table(table)
        .quantization(quantization)
        .build()?;

    let plain: Linear = LinearConfig::new(d_input, d_output).init(device);
    let secure = SecureLinear::from(plain.clone());
    Twins {
        plain,
        secure,
        forward_plain: &|l: &Linear| l.forward(x.clone()),
        forward_secure: &|l: &SecureLinear| l.forward(&encrypted, &ctx),
        weight_plain: |l| l.weight.val(),
        weight_secure: |l| l.weight.val(),
        backward: &|loss| ctx.backward(loss),
    }
    .measure(&target, adam_steps)
}
