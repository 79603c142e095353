//! SecureConv2d against Burn's Conv2d: the pixel-space key vectors on
//! plaintext, the secure forward, the kernel gradient and the weights after
//! Adam steps (the three measures of `cryptonn::equivalence`), inference
//! without autodiff, and the geometries it rejects.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::{Arc, OnceLock};

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData, Tolerance};
use cryptonn_authority::{Authority, IssueAll};
use cryptonn_burn::{
    EncryptedImages, Error, QuantizationConfig, SecureContext, SecureConv2d, SecureConv2dConfig,
};
use cryptonn_client::ImageClient;
use cryptonn_fe::{DlogConfig, DlogTable, Ristretto255};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const IMAGES: usize = 2;
const SIDE: usize = 8;
const KERNEL: usize = 3;
const CHANNELS: usize = 4;

fn table() -> Arc<DlogTable<Ristretto255>> {
    static T: OnceLock<Arc<DlogTable<Ristretto255>>> = OnceLock::new();
    T.get_or_init(|| Arc::new(DlogTable::new(DlogConfig::new(1 << 14, 1 << 31)).unwrap()))
        .clone()
}

fn pixels(seed: u64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..IMAGES * SIDE * SIDE)
        .map(|_| rng.random_range(0..256))
        .collect()
}

fn plain_images(pixels: &[i64], device: &Device) -> Tensor<4> {
    let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Tensor::from_data(TensorData::new(x, [IMAGES, 1, SIDE, SIDE]), device)
}

fn conv(stride: usize, padding: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([1, CHANNELS], [KERNEL, KERNEL])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .init(device)
}

/// The encrypted images of `pixels` for `layer`, and a context whose
/// authority issues every key.
struct Setup {
    images: EncryptedImages<Ristretto255>,
    ctx: SecureContext<Ristretto255>,
}

fn setup(layer: &SecureConv2d, pixels: &[i64], table: Arc<DlogTable<Ristretto255>>) -> Setup {
    let mut rng = StdRng::seed_from_u64(11);
    let geometry = layer.patch_geometry([1, SIDE, SIDE]).unwrap();
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let keys = authority.patch_keys(geometry, IMAGES, &mut rng).unwrap();
    let images = ImageClient::new(&keys, geometry)
        .unwrap()
        .encrypt(pixels, 255.0, &mut rng)
        .unwrap();
    let ctx = SecureContext::builder(authority)
        .table(table)
        // Compare with plaintext exactly: ask keys even for sparse error vectors.
        .quantization(QuantizationConfig::new().with_min_key_support(1))
        .build()
        .unwrap();
    Setup { images, ctx }
}

fn rel_err<const D: usize>(secure: &Tensor<D>, plain: &Tensor<D>) -> f64 {
    let s = secure.to_data().to_vec::<f32>().unwrap();
    let p = plain.to_data().to_vec::<f32>().unwrap();
    assert_eq!(s.len(), p.len());
    let diff = s
        .iter()
        .zip(&p)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let max = p.iter().map(|v| f64::from(v.abs())).fold(0.0, f64::max);
    diff / max
}

/// ½‖z − t‖² / images for a fixed target t.
fn loss(z: Tensor<4>, target: &Tensor<4>) -> Tensor<1> {
    (z - target.clone())
        .powi_scalar(2)
        .sum()
        .div_scalar(2.0 * IMAGES as f64)
}

/// Relative errors of the forward, the kernel gradient and the kernel after
/// 3 Adam steps, secure against plain, from the same initial weights.
fn equivalence(stride: usize, padding: usize) -> [f64; 3] {
    let device = Device::ndarray().autodiff();
    device.seed(5);
    let pixels = pixels(stride as u64 * 10 + padding as u64);
    let mut plain = conv(stride, padding, &device);
    let mut secure = SecureConv2d::try_from(plain.clone()).unwrap();
    let s = setup(&secure, &pixels, table());
    let x = plain_images(&pixels, &device);
    let out = plain.forward(x.clone()).dims();
    let mut rng = StdRng::seed_from_u64(12);
    let target: Vec<f32> = (0..out.iter().product())
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let target = Tensor::<4>::from_data(TensorData::new(target, out), &device);
    let (mut plain_optim, mut secure_optim) = (AdamConfig::new().init(), AdamConfig::new().init());
    let mut errors = [0.0; 3];
    for step in 0..=3 {
        let z_plain = plain.forward(x.clone());
        let z_secure = secure.forward(&s.images, &s.ctx).unwrap();
        assert_eq!(z_secure.dims(), out);
        let plain_grads = loss(z_plain.clone(), &target).backward();
        let secure_grads = s.ctx.backward(loss(z_secure.clone(), &target)).unwrap();
        if step == 0 {
            errors[0] = rel_err(&z_secure, &z_plain);
            let g_plain = plain.weight.val().grad(&plain_grads).unwrap();
            let g_secure = secure.weight.val().grad(&secure_grads).unwrap();
            errors[1] = rel_err(&g_secure, &g_plain);
        }
        if step == 3 {
            break;
        }
        let plain_grads = GradientsParams::from_grads(plain_grads, &plain);
        let secure_grads = GradientsParams::from_grads(secure_grads, &secure);
        plain = plain_optim.step(1e-2, plain, plain_grads);
        secure = secure_optim.step(1e-2, secure, secure_grads);
    }
    errors[2] = rel_err(&secure.weight.val(), &plain.weight.val());
    errors
}

fn assert_equivalent(stride: usize, padding: usize) {
    let [forward, gradient, adam] = equivalence(stride, padding);
    eprintln!(
        "stride {stride} padding {padding}: forward {forward:.2e}, kernel gradient {gradient:.2e}, after Adam {adam:.2e}"
    );
    assert!(forward <= 1e-2, "forward {forward}");
    assert!(gradient <= 1e-2, "kernel gradient {gradient}");
    assert!(adam <= 1e-2, "after 3 Adam steps {adam}");
}

#[test]
fn matches_conv2d_stride_1_padding_0() {
    assert_equivalent(1, 0);
}

#[test]
fn matches_conv2d_stride_1_padding_1() {
    assert_equivalent(1, 1);
}

#[test]
fn matches_conv2d_stride_2_padding_0() {
    assert_equivalent(2, 0);
}

#[test]
fn matches_conv2d_stride_2_padding_1() {
    assert_equivalent(2, 1);
}

#[test]
fn pixel_space_keys_times_images_are_burn_conv2d() {
    let device = Device::ndarray();
    let pixels = pixels(1);
    let x = plain_images(&pixels, &device);
    let same = SecureConv2dConfig::new([1, CHANNELS], [KERNEL, KERNEL])
        .with_padding(PaddingConfig2d::Same)
        .init(&device);
    let layers = [
        conv(1, 0, &device).try_into().unwrap(),
        conv(2, 1, &device).try_into().unwrap(),
        same,
    ];
    for layer in layers {
        let layer: SecureConv2d = layer;
        let geometry = layer.patch_geometry([1, SIDE, SIDE]).unwrap();
        let taps = geometry.patch_len();
        let kernels = layer.weight.val().to_data().to_vec::<f32>().unwrap();
        let bias = layer.bias.as_ref().unwrap().val().to_data();
        let bias = bias.to_vec::<f32>().unwrap();
        // ⟨x_b, E_p·W_c⟩: the pixel each tap reads at p, from E_p·e_tap.
        let mut z = Vec::new();
        for image in pixels.chunks(SIDE * SIDE) {
            for (c, kernel) in kernels.chunks(taps).enumerate() {
                for p in 0..geometry.positions() {
                    let mut sum = bias[c];
                    for (tap, &w) in kernel.iter().enumerate() {
                        let mut e = vec![0; taps];
                        e[tap] = 1;
                        let v = geometry.pixel_vector(&e, p);
                        if let Some(pixel) = v.iter().position(|&a| a == 1) {
                            sum += w * image[pixel] as f32 / 255.0;
                        }
                    }
                    z.push(sum);
                }
            }
        }
        let [h_out, w_out] = geometry.output();
        let z = TensorData::new(z, [IMAGES, CHANNELS, h_out, w_out]);
        let expected = layer.clone().into_conv2d().forward(x.clone());
        z.assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-5));
        layer
            .forward_plain(x.clone())
            .to_data()
            .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-6));
    }
}

#[test]
fn inference_without_autodiff() {
    let device = Device::ndarray();
    let layer = SecureConv2dConfig::new([1, CHANNELS], [KERNEL, KERNEL])
        .with_stride([2, 2])
        .with_bias(false)
        .init(&device);
    let pixels = pixels(2);
    let s = setup(&layer, &pixels, table());
    let secure = layer.forward(&s.images, &s.ctx).unwrap();
    let plain = layer.forward_plain(plain_images(&pixels, &device));
    assert!(rel_err(&secure, &plain) <= 1e-2);
}

#[test]
fn init_and_swap_keep_conv2d_weights() {
    let device = Device::ndarray();
    // Burn initializes parameters lazily, at the first read: read each
    // kernel right after seeding.
    device.seed(3);
    let plain = Conv2dConfig::new([2, 3], [3, 3]).init(&device);
    let plain_weight = plain.weight.val().to_data();
    device.seed(3);
    let secure = SecureConv2dConfig::new([2, 3], [3, 3]).init(&device);
    secure.weight.val().to_data().assert_eq(&plain_weight, true);
    let back = SecureConv2d::try_from(plain.clone()).unwrap().into_conv2d();
    back.weight
        .val()
        .to_data()
        .assert_eq(&plain.weight.val().to_data(), true);
    assert_eq!(
        (back.stride, back.dilation, back.groups),
        ([1, 1], [1, 1], 1)
    );
    assert_eq!(secure.channels(), [2, 3]);
}

fn rejected(layer: &SecureConv2d, s: &Setup) -> bool {
    matches!(layer.forward(&s.images, &s.ctx), Err(Error::Shape { .. }))
}

#[test]
fn rejects_images_of_another_geometry() {
    let device = Device::ndarray();
    let layer: SecureConv2d = conv(1, 0, &device).try_into().unwrap();
    let s = setup(&layer, &pixels(3), table());
    assert!(layer.forward(&s.images, &s.ctx).is_ok());
    // Another stride, padding, kernel or number of input channels.
    let strided: SecureConv2d = conv(2, 0, &device).try_into().unwrap();
    let padded: SecureConv2d = conv(1, 1, &device).try_into().unwrap();
    let small = SecureConv2dConfig::new([1, CHANNELS], [2, 2]).init(&device);
    let wide = SecureConv2dConfig::new([2, CHANNELS], [KERNEL, KERNEL]).init(&device);
    for other in [strided, padded, small, wide] {
        assert!(rejected(&other, &s));
    }
    // `Same` with an even kernel pads asymmetrically: no geometry at all.
    let even_same = SecureConv2dConfig::new([1, CHANNELS], [2, 2])
        .with_padding(PaddingConfig2d::Same)
        .init(&device);
    assert!(rejected(&even_same, &s));
}

#[test]
fn rejects_values_beyond_the_dlog_bound() {
    let device = Device::ndarray();
    let layer: SecureConv2d = conv(2, 0, &device).try_into().unwrap();
    // Forward values reach 255 · 2047 · 9 ≫ 2¹².
    let small = Arc::new(DlogTable::new(DlogConfig::new(1 << 6, 1 << 12)).unwrap());
    let s = setup(&layer, &pixels(6), small);
    let err = layer.forward(&s.images, &s.ctx).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(cryptonn_protocol::Error::Fe(
                cryptonn_fe::Error::OutOfBound { .. }
            ))
        ),
        "{err}"
    );
}
