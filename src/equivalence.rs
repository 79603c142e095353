//! Checks a [`SecureLinear`] against Burn's [`Linear`] with the same weights
//! on the same data: forward, weight gradient, and weights after Adam steps.

use std::sync::Arc;

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_fe::feip::Decryptor;
use cryptonn_fe::{DlogTable, Group};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use cryptonn_authority::{Authority, IssueAll};
use cryptonn_burn::{Error, QuantizationConfig, Result, SecureContext, SecureLinear};
use cryptonn_client::{Client, Samples};

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

fn values(t: &Tensor<2>) -> Result<Vec<f32>> {
    t.to_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::TensorRead(format!("{e:?}")))
}

fn rel_err(secure: &Tensor<2>, plain: &Tensor<2>) -> Result<f64> {
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
fn loss(z: Tensor<2>, target: &Tensor<2>) -> Tensor<1> {
    let batch = z.dims()[0] as f64;
    (z - target.clone())
        .powi_scalar(2)
        .sum()
        .div_scalar(2.0 * batch)
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
            pixels.iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>(),
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
    let keys = authority.batch_keys(d_input, batch, &mut rng)?;
    let samples = Samples {
        inputs: &pixels,
        features: d_input,
        input_scale: 255.0,
        labels: None,
    };
    let encrypted = Client::new(&keys)?.encrypt(&samples, 1, &mut rng)?;
    let ctx = SecureContext::new(authority, Decryptor::new(table), quantization);

    let mut plain: Linear = LinearConfig::new(d_input, d_output).init(device);
    let mut secure = SecureLinear::from(plain.clone());
    let (mut plain_optim, mut secure_optim) = (AdamConfig::new().init(), AdamConfig::new().init());
    let mut report = EquivalenceReport {
        max_rel_err_forward: 0.0,
        max_rel_err_weight_grad: 0.0,
        max_rel_err_after_adam: 0.0,
    };
    for step in 0..=adam_steps {
        let z_plain = plain.forward(x.clone());
        let z_secure = secure.forward(&encrypted, &ctx)?;
        let plain_grads = loss(z_plain.clone(), &target).backward();
        let secure_grads = loss(z_secure.clone(), &target).backward();
        ctx.check_backward()?;
        if step == 0 {
            report.max_rel_err_forward = rel_err(&z_secure, &z_plain)?;
            let missing = || Error::TensorRead("no weight gradient".into());
            let g_plain = plain.weight.val().grad(&plain_grads).ok_or_else(missing)?;
            let g_secure = secure
                .weight
                .val()
                .grad(&secure_grads)
                .ok_or_else(missing)?;
            report.max_rel_err_weight_grad = rel_err(&g_secure, &g_plain)?;
        }
        if step == adam_steps {
            break;
        }
        let plain_grads = GradientsParams::from_grads(plain_grads, &plain);
        let secure_grads = GradientsParams::from_grads(secure_grads, &secure);
        plain = plain_optim.step(1e-2, plain, plain_grads);
        secure = secure_optim.step(1e-2, secure, secure_grads);
    }
    report.max_rel_err_after_adam = rel_err(&secure.weight.val(), &plain.weight.val())?;
    Ok(report)
}
