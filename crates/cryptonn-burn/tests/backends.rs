//! The secure layers on every CPU backend Burn offers: one secure MLP step
//! and one secure convolutional (LeNet-style) step on Flex
//! (`Device::default()`) and on NdArray, from the same weights and the same
//! ciphertexts, give the same logits and gradients. And a step cannot train
//! past a failed secure backward pass.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: NdArray is compared against Flex.

use std::sync::Arc;

use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{Linear, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_authority::{Authority, IssueAll, RankBudget};
use cryptonn_burn::{
    EncryptedImages, Error, FirstConv, FirstLayer, QuantizationConfig, SecureContext, SecureLinear,
};
use cryptonn_client::{Client, ImageClient, Samples};
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

/// A batch of random pixels encrypted under fresh keys from `authority`.
fn encrypted_batch(
    authority: &Authority<Ristretto255>,
    rng: &mut StdRng,
) -> cryptonn_burn::EncryptedBatch<Ristretto255> {
    let keys = authority.batch_keys(FEATURES, BATCH, rng).unwrap();
    let pixels: Vec<i64> = (0..BATCH * FEATURES)
        .map(|_| rng.random_range(0..256))
        .collect();
    let samples = Samples {
        inputs: &pixels,
        features: FEATURES,
        input_scale: 255.0,
        labels: None,
    };
    Client::new(&keys)
        .unwrap()
        .encrypt(&samples, 1, rng)
        .unwrap()
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
    let grads = ctx.backward(logits.clone().powi_scalar(2).sum()).unwrap();
    let read = |t: Tensor<2>| t.into_data().to_vec::<f32>().unwrap();
    [
        read(logits),
        read(first.weight().grad(&grads).unwrap()),
        read(output.weight.val().grad(&grads).unwrap()),
    ]
}

/// The largest absolute difference of each pair, per output named in `what`.
fn assert_close(what: &[&str], a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (what, (a, b)) in what.iter().zip(a.iter().zip(b)) {
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{what}: Flex and NdArray differ by {worst}");
    }
}

#[test]
fn a_secure_mlp_step_is_the_same_on_flex_and_ndarray() {
    let mut rng = StdRng::seed_from_u64(3);
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let batch = encrypted_batch(&authority, &mut rng);
    let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 12, 1 << 28)).unwrap());
    let ctx = SecureContext::builder(authority)
        .table(table)
        .build()
        .unwrap();

    let flex = step(&Device::default().autodiff(), &batch, &ctx);
    let ndarray = step(&Device::ndarray().autodiff(), &batch, &ctx);
    assert_eq!(flex, step(&Device::flex().autodiff(), &batch, &ctx));
    let what = ["logits", "first weight gradient", "output weight gradient"];
    assert_close(&what, &flex, &ndarray);
}

const SIDE: usize = 6;
const KERNEL: usize = 3;
const CHANNELS: usize = 2;

/// LeNet's shape in small: a secure first convolution, ReLU, flatten, a
/// linear layer. Logits, the kernel's gradient and the linear layer's.
fn conv_step(
    device: &Device,
    images: &EncryptedImages<Ristretto255>,
    ctx: &SecureContext<Ristretto255>,
) -> [Vec<f32>; 3] {
    device.seed(9); // the same kernel on every backend
    let conv = Conv2dConfig::new([1, CHANNELS], [KERNEL, KERNEL]).init(device);
    let first = FirstConv::new(conv, true).unwrap();
    let side = SIDE - KERNEL + 1;
    let mut rng = StdRng::seed_from_u64(8);
    let output = linear(&mut rng, CHANNELS * side * side, CLASSES, device);
    let z: Tensor<4> = first.forward_encrypted(images, ctx).unwrap();
    let logits = output.forward(Relu::new().forward(z).flatten::<2>(1, 3));
    let grads = ctx.backward(logits.clone().powi_scalar(2).sum()).unwrap();
    let kernel = first.secure().unwrap().weight.val();
    let read = |t: Tensor<2>| t.into_data().to_vec::<f32>().unwrap();
    [
        read(logits),
        kernel
            .grad(&grads)
            .unwrap()
            .into_data()
            .to_vec::<f32>()
            .unwrap(),
        read(output.weight.val().grad(&grads).unwrap()),
    ]
}

#[test]
fn a_secure_convolution_step_is_the_same_on_flex_and_ndarray() {
    let mut rng = StdRng::seed_from_u64(4);
    let layer = FirstConv::new(
        Conv2dConfig::new([1, CHANNELS], [KERNEL, KERNEL]).init(&Device::default()),
        true,
    )
    .unwrap();
    let geometry = layer
        .secure()
        .unwrap()
        .patch_geometry([1, SIDE, SIDE])
        .unwrap();
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let keys = authority.patch_keys(geometry, BATCH, &mut rng).unwrap();
    let pixels: Vec<i64> = (0..BATCH * SIDE * SIDE)
        .map(|_| rng.random_range(0..256))
        .collect();
    let images = ImageClient::new(&keys, geometry)
        .unwrap()
        .encrypt(&pixels, 255.0, &mut rng)
        .unwrap();
    let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 12, 1 << 28)).unwrap());
    let ctx = SecureContext::builder(authority)
        .table(table)
        .build()
        .unwrap();

    let flex = conv_step(&Device::default().autodiff(), &images, &ctx);
    let ndarray = conv_step(&Device::ndarray().autodiff(), &images, &ctx);
    let what = ["logits", "kernel gradient", "output weight gradient"];
    assert_close(&what, &flex, &ndarray);
}

#[test]
fn a_failed_secure_backward_pass_cannot_be_trained_past() {
    let mut rng = StdRng::seed_from_u64(5);
    // Row keys up to the hidden width, never a column (gradient) key.
    let policy = RankBudget::projection(HIDDEN, 1, &mut rng);
    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let batch = encrypted_batch(&authority, &mut rng);
    let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 12, 1 << 28)).unwrap());
    let ctx = SecureContext::builder(authority)
        .table(table)
        // Ask for a key for every error vector, however sparse.
        .quantization(QuantizationConfig::new().with_min_key_support(1))
        .build()
        .unwrap();
    let device = Device::default().autodiff();
    let first = SecureLinear::from(linear(&mut rng, FEATURES, HIDDEN, &device));
    let loss = |first: &SecureLinear| first.forward(&batch, &ctx).unwrap().sum();

    // Checked: the refusal of the gradient key is the step's error.
    let Err(err) = ctx.backward(loss(&first)) else {
        panic!("a refused gradient key must fail the step");
    };
    assert!(matches!(err, Error::Backward(_)), "{err}");
    assert!(err.refusal().is_some(), "a refused key: {err}");

    // Unchecked: loss.backward() directly; the next secure forward refuses.
    let _void = loss(&first).backward();
    let err = first.forward(&batch, &ctx).unwrap_err();
    assert!(matches!(err, Error::Backward(_)), "{err}");
}
