//! Compares `SecureConv2d` with Burn's `Conv2d` on the same weights and
//! images (by default MNIST-sized: batch 8, 1×28×28, 6 channels, kernel 5,
//! stride 1, no padding, pixel-like inputs, Ristretto255): forward, kernel
//! gradient, and kernel after 3 Adam steps. Prints one JSON object.
//!
//! `cargo run --release --example conv_gradient_check`

#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Parser;
use cryptonn::authority::{Authority, IssueAll};
use cryptonn::client::{Client, Samples, im2col};
use cryptonn::equivalence::EquivalenceReport;
use cryptonn::fe::feip::Decryptor;
use cryptonn::fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn::nn::{Error, QuantizationConfig, Result, SecureContext, SecureConv2d};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Checks that the secure convolution matches plaintext Burn.
#[derive(Debug, Clone, Parser)]
struct Args {
    /// Images in the batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Side of the square single-channel images.
    #[arg(long, default_value_t = 28)]
    side: usize,
    /// Output channels.
    #[arg(long, default_value_t = 6)]
    channels: usize,
    /// Side of the square kernel.
    #[arg(long, default_value_t = 5)]
    kernel: usize,
    /// Stride, both axes.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Zero padding on every side.
    #[arg(long, default_value_t = 0)]
    padding: usize,
    /// Seed of the images, weights, target and keys.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Signed bits of each quantized weight digit.
    #[arg(long, default_value_t = 12)]
    weight_bits: u32,
    /// Signed bits of each quantized back-propagated error digit.
    #[arg(long, default_value_t = 12)]
    delta_bits: u32,
    /// Digits per quantized value (each adds `bits` of precision and as many keys).
    #[arg(long, default_value_t = 2)]
    limbs: u32,
}

fn values<const D: usize>(t: &Tensor<D>) -> Result<Vec<f32>> {
    t.to_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::TensorRead(format!("{e:?}")))
}

/// max|secure − plain| / max|plain|.
fn rel_err<const D: usize>(secure: &Tensor<D>, plain: &Tensor<D>) -> Result<f64> {
    let (s, p) = (values(secure)?, values(plain)?);
    let diff = s
        .iter()
        .zip(&p)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let max = p.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    Ok(if max == 0.0 { diff } else { diff / max })
}

/// ½‖z − t‖² / batch for a fixed target t.
fn loss(z: Tensor<4>, target: &Tensor<4>) -> Tensor<1> {
    let batch = z.dims()[0] as f64;
    (z - target.clone())
        .powi_scalar(2)
        .sum()
        .div_scalar(2.0 * batch)
}

/// The three measures of `cryptonn::equivalence`, for a convolution.
fn compare(
    args: &Args,
    device: &Device,
    table: Arc<DlogTable<Ristretto255>>,
) -> Result<EquivalenceReport> {
    let (b, side) = (args.batch, args.side);
    let mut rng = StdRng::seed_from_u64(args.seed);
    device.seed(args.seed);
    let pixels: Vec<i64> = (0..b * side * side)
        .map(|_| rng.random_range(0..256))
        .collect();
    let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, [b, 1, side, side]), device);
    let p = args.padding;
    let mut plain: Conv2d = Conv2dConfig::new([1, args.channels], [args.kernel; 2])
        .with_stride([args.stride; 2])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device);
    let mut secure = SecureConv2d::try_from(plain.clone())?;

    // Client: the patches of the batch, one encrypted sample each.
    let padding = secure.padding_for([side, side])?;
    let (patches, [h_out, w_out]) = im2col(
        &pixels,
        [1, side, side],
        secure.kernel_size,
        secure.stride,
        padding,
        b,
    )?;
    let features = secure.patch_features();
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let keys = authority.batch_keys(features, b * h_out * w_out, &mut rng)?;
    let samples = Samples {
        inputs: &patches,
        features,
        input_scale: 255.0,
        labels: None,
    };
    let encrypted = Client::new(&keys)?.encrypt(&samples, 1, &mut rng)?;
    let quantization = QuantizationConfig::new()
        .with_weight_bits(args.weight_bits)
        .with_delta_bits(args.delta_bits)
        .with_limbs(args.limbs);
    let ctx = SecureContext::new(authority, Decryptor::new(table), quantization);

    let out = [b, args.channels, h_out, w_out];
    let target: Vec<f32> = (0..out.iter().product())
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let target = Tensor::<4>::from_data(TensorData::new(target, out), device);
    let (mut plain_optim, mut secure_optim) = (AdamConfig::new().init(), AdamConfig::new().init());
    let mut report = EquivalenceReport {
        max_rel_err_forward: 0.0,
        max_rel_err_weight_grad: 0.0,
        max_rel_err_after_adam: 0.0,
    };
    let adam_steps = 3;
    for step in 0..=adam_steps {
        let z_plain = plain.forward(x.clone());
        let z_secure = secure.forward(&encrypted, [b, 1, side, side], &ctx)?;
        let plain_grads = loss(z_plain.clone(), &target).backward();
        let secure_grads = loss(z_secure.clone(), &target).backward();
        ctx.check_backward()?;
        if step == 0 {
            report.max_rel_err_forward = rel_err(&z_secure, &z_plain)?;
            let missing = || Error::TensorRead("no kernel gradient".into());
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

fn main() -> ExitCode {
    let args = Args::parse();
    let start = Instant::now();
    let result = DlogTable::<Ristretto255>::new(DlogConfig::default())
        .map_err(Error::from)
        .and_then(|table| compare(&args, &Device::ndarray().autodiff(), Arc::new(table)));
    match result {
        Ok(report) => {
            let mut json = serde_json::json!(report);
            json["config"] = serde_json::json!({
                "batch": args.batch, "side": args.side, "channels": args.channels,
                "kernel": args.kernel, "stride": args.stride, "padding": args.padding,
                "weight_bits": args.weight_bits, "delta_bits": args.delta_bits, "limbs": args.limbs,
            });
            json["seconds"] = serde_json::json!(start.elapsed().as_secs_f64());
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
