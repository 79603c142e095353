//! The secure layer on every CPU backend Burn offers: one secure MLP step on
//! Flex (`Device::default()`) and on NdArray, from the same weights and the
//! same ciphertexts, gives the same logits and gradients.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: NdArray is compared against Flex.

use std::sync::Arc;

use burn::module::Param;
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_authority::{Authority, IssueAll};
use cryptonn_burn::{FirstLayer, QuantizationConfig, SecureContext, SecureLinear};
use cryptonn_client::{Client, Samples};
use cryptonn_fe::feip::Decryptor;
use cryptonn_fe::{DlogConfig, DlogTable, Ristretto255};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const BATCH: usize = 4;
const FEATURES: usize = 12;
const HIDDEN: usize = 5;
const CLASSES: usize = 3;

fn linear(rng: &mut StdRng, d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut values =
        |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-0.5..0.5)).collect() };
    let weight = TensorData::new(values(d_in * d_out), [d_in, d_out]);
    let bias = TensorData::new(values(d_out), [d_out]);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(weight, device)),
        bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
    }
}

/// Logits, the first layer's weight gradient and the output layer's, read back.
fn step(
    device: &Device,
    batch: &cryptonn_burn::EncryptedBatch<Ristretto255>,
    ctx: &SecureContext<Ristretto255>,
) -> [Vec<f32>; 3] {
    let mut rng = StdRng::seed_from_u64(7); // the same weights on every backend
    let first = SecureLinear::from(linear(&mut rng, FEATURES, HIDDEN, device));
    let output = linear(&mut rng, HIDDEN, CLASSES, device);
    let first = FirstLayer::Secure(first);
    let hidden = Relu::new().forward(first.forward_encrypted(batch, ctx).unwrap());
    let logits = output.forward(hidden);
    let grads = logits.clone().powi_scalar(2).sum().backward();
    ctx.check_backward().unwrap();
    let read = |t: Tensor<2>| t.into_data().to_vec::<f32>().unwrap();
    [
        read(logits),
        read(first.weight().grad(&grads).unwrap()),
        read(output.weight.val().grad(&grads).unwrap()),
    ]
}

#[test]
fn a_secure_mlp_step_is_the_same_on_flex_and_ndarray() {
    let mut rng = StdRng::seed_from_u64(3);
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let keys = authority.batch_keys(FEATURES, BATCH, &mut rng).unwrap();
    let pixels: Vec<i64> = (0..BATCH * FEATURES)
        .map(|_| rng.random_range(0..256))
        .collect();
    let samples = Samples {
        inputs: &pixels,
        features: FEATURES,
        input_scale: 255.0,
        labels: None,
    };
    let batch = Client::new(&keys)
        .unwrap()
        .encrypt(&samples, 1, &mut rng)
        .unwrap();
    let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 12, 1 << 28)).unwrap());
    let ctx = SecureContext::new(authority, Decryptor::new(table), QuantizationConfig::new());

    let flex = step(&Device::default().autodiff(), &batch, &ctx);
    let ndarray = step(&Device::ndarray().autodiff(), &batch, &ctx);
    assert_eq!(flex, step(&Device::flex().autodiff(), &batch, &ctx));
    for (what, (a, b)) in ["logits", "first weight gradient", "output weight gradient"]
        .iter()
        .zip(flex.iter().zip(&ndarray))
    {
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{what}: Flex and NdArray differ by {worst}");
    }
}
