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
use burn::tensor::{Device, Tensor, TensorData};
use clap::Parser;
use cryptonn::authority::{Authority, IssueAll};
use cryptonn::fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn::nn::{Error, QuantizationConfig, Result, SecureContext, SecureConv2d};
use cryptonn_mnist::equivalence::{EquivalenceReport, Twins, encrypt_images};
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

/// The three measures of `cryptonn_mnist::equivalence`, for a convolution.
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
    let plain: Conv2d = Conv2dConfig::new([1, args.channels], [args.kernel; 2])
        .with_stride([args.stride; 2])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device);
    let secure = SecureConv2d::try_from(plain.clone())?;

    // Client: each image, and the whole batch, encrypted.
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let encrypted = encrypt_images(&authority, &secure, &pixels, [b, side], &mut rng)?;
    let [h_out, w_out] = encrypted.geometry().output();
    let quantization = QuantizationConfig::new()
        .with_weight_bits(args.weight_bits)
        .with_delta_bits(args.delta_bits)
        .with_limbs(args.limbs);
    let ctx = SecureContext::builder(authority)
        .table(table)
        .quantization(quantization)
        .build()?;

    let out = [b, args.channels, h_out, w_out];
    let target: Vec<f32> = (0..out.iter().product())
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let target = Tensor::<4>::from_data(TensorData::new(target, out), device);
    Twins {
        plain,
        secure,
        forward_plain: &|c: &Conv2d| c.forward(x.clone()),
        forward_secure: &|c: &SecureConv2d| c.forward(&encrypted, &ctx),
        weight_plain: |c| c.weight.val(),
        weight_secure: |c| c.weight.val(),
        backward: &|loss| ctx.backward(loss),
    }
    .measure(&target, 3)
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
