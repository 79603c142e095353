//! Compares `SecureLinear` with Burn's `Linear` on the same weights and data
//! (batch 32, 784 → 64, pixel-like inputs, Ristretto255): forward, weight
//! gradient, and weights after 3 Adam steps.
//!
//! `cargo run --release --example gradient_check -- --json`

#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::process::ExitCode;
use std::sync::Arc;

use burn::tensor::Device;
use clap::Parser;
use cryptonn::fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn::nn::QuantizationConfig;
use cryptonn_mnist::equivalence::{EquivalenceConfig, compare};

/// Checks that the secure first layer matches plaintext Burn.
#[derive(Debug, Parser)]
struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Samples in the batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Output features of the layer (its input is 784 pixels).
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Seed of the data, weights and keys.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Signed bits of each quantized weight.
    #[arg(long, default_value_t = 12)]
    weight_bits: u32,
    /// Signed bits of each quantized back-propagated error.
    #[arg(long, default_value_t = 12)]
    delta_bits: u32,
    /// Digits per quantized value (each adds `bits` of precision and as many keys).
    #[arg(long, default_value_t = 2)]
    limbs: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = EquivalenceConfig {
        batch: args.batch,
        d_input: 784,
        d_output: args.hidden,
        adam_steps: 3,
        seed: args.seed,
        quantization: QuantizationConfig::new()
            .with_weight_bits(args.weight_bits)
            .with_delta_bits(args.delta_bits)
            .with_limbs(args.limbs),
    };
    let result = DlogTable::<Ristretto255>::new(DlogConfig::default())
        .map_err(cryptonn::nn::Error::from)
        .and_then(|table| compare(config, &Device::ndarray().autodiff(), Arc::new(table)));
    match result {
        Ok(report) if args.json => {
            let mut json = serde_json::json!(report);
            json["quantization"] = serde_json::json!({ "weight_bits": args.weight_bits, "delta_bits": args.delta_bits, "limbs": args.limbs });
            println!("{json}");
        }
        Ok(report) => {
            println!(
                "max_rel_err_forward      {:.3e}",
                report.max_rel_err_forward
            );
            println!(
                "max_rel_err_weight_grad  {:.3e}",
                report.max_rel_err_weight_grad
            );
            println!(
                "max_rel_err_after_adam   {:.3e}",
                report.max_rel_err_after_adam
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
