//! SecureLinear inside Burn: the plain/secure swap,
//! inference without autodiff, serde, bad shapes, and a short training run.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::{Arc, OnceLock};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use cryptonn_authority::{Authority, IssueAll};
use cryptonn_burn::encrypted_loss::cross_entropy_encrypted;
use cryptonn_burn::{
    EncryptedBatch, Error, FirstLayer, QuantizationConfig, SecureContext, SecureLinear,
    SecureLinearConfig,
};
use cryptonn_client::{Client, Samples};
use cryptonn_fe::{DlogConfig, DlogTable, Group, Modp2048, Ristretto255};
use cryptonn_protocol::KeyService;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn table<G: Group>() -> Arc<DlogTable<G>> {
    Arc::new(DlogTable::new(DlogConfig::new(1 << 14, 1 << 31)).unwrap())
}

fn ristretto_table() -> Arc<DlogTable<Ristretto255>> {
    static T: OnceLock<Arc<DlogTable<Ristretto255>>> = OnceLock::new();
    T.get_or_init(table).clone()
}

#[test]
fn swap_round_trip_keeps_weights() {
    let device = Device::ndarray();
    let linear: Linear = LinearConfig::new(6, 3).init(&device);
    let before = linear.weight.val().to_data();
    let back = FirstLayer::Secure(SecureLinear::from(linear)).into_linear();
    back.weight.val().to_data().assert_eq(&before, true);
    let secure = SecureLinearConfig::new(6, 3).with_bias(false).init(&device);
    assert!(secure.bias.is_none());
    assert_eq!(secure.dims(), [6, 3]);
}

struct Setup {
    pixels: Vec<i64>,
    batch: EncryptedBatch<Ristretto255>,
    ctx: SecureContext<Ristretto255>,
    authority: Arc<Authority<Ristretto255>>,
}

fn setup(batch: usize, features: usize, labels: Option<(&[usize], usize)>, seed: u64) -> Setup {
    let mut rng = StdRng::seed_from_u64(seed);
    let pixels: Vec<i64> = (0..batch * features)
        .map(|_| rng.random_range(0..256))
        .collect();
    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let keys = authority.batch_keys(features, batch, &mut rng).unwrap();
    let samples = Samples {
        inputs: &pixels,
        features,
        input_scale: 255.0,
        labels,
    };
    let encrypted = Client::new(&keys)
        .unwrap()
        .encrypt(&samples, 1 << 16, &mut rng)
        .unwrap();
    let ctx = SecureContext::builder(authority.clone())
        .table(ristretto_table())
        // Compare with plaintext exactly: ask keys even for sparse error vectors.
        .quantization(QuantizationConfig::new().with_min_key_support(1))
        .build()
        .unwrap();
    Setup {
        pixels,
        batch: encrypted,
        ctx,
        authority,
    }
}

fn plain_input(pixels: &[i64], batch: usize, features: usize, device: &Device) -> Tensor<2> {
    let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Tensor::from_data(TensorData::new(x, [batch, features]), device)
}

#[test]
fn inference_without_autodiff() {
    let device = Device::ndarray();
    let s = setup(4, 10, None, 3);
    let layer = SecureLinearConfig::new(10, 3).init(&device);
    let secure = layer.forward(&s.batch, &s.ctx).unwrap();
    let plain = layer.forward_plain(plain_input(&s.pixels, 4, 10, &device));
    secure
        .to_data()
        .assert_approx_eq::<f32>(&plain.to_data(), burn::tensor::Tolerance::absolute(1e-2));
}

#[test]
fn encrypted_batch_serde_round_trip() {
    let labels = [0usize, 2, 1];
    let s = setup(3, 5, Some((&labels, 3)), 4);
    let text = serde_json::to_string(&s.batch).unwrap();
    let back: EncryptedBatch<Ristretto255> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s.batch);
    assert_eq!(back.shape(), [3, 5]);
    // A batch whose rows and columns disagree in size is refused.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["batch"] = serde_json::json!(4);
    assert!(serde_json::from_value::<EncryptedBatch<Ristretto255>>(value).is_err());
    // And one whose label scale would overflow the loss arithmetic.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["labels"]["scale"] = serde_json::json!(1i64 << 40);
    assert!(serde_json::from_value::<EncryptedBatch<Ristretto255>>(value).is_err());
    // So is one from another group.
    assert!(serde_json::from_str::<EncryptedBatch<Modp2048>>(&text).is_err());
}

#[test]
fn wrong_shapes_are_errors() {
    let device = Device::ndarray().autodiff();
    let s = setup(4, 10, None, 5);
    let layer = SecureLinearConfig::new(11, 3).init(&device);
    assert!(matches!(
        layer.forward(&s.batch, &s.ctx),
        Err(Error::Shape { .. })
    ));
    // A key vector of the wrong length.
    let err = s
        .authority
        .feip_keys(s.batch.row_key(), &[vec![1; 9]])
        .unwrap_err();
    assert!(matches!(
        err,
        cryptonn_protocol::Error::Fe(cryptonn_fe::Error::LengthMismatch {
            expected: 10,
            got: 9
        })
    ));
    // A plain first layer cannot read ciphertexts.
    let plain = FirstLayer::Plain(LinearConfig::new(10, 3).init(&device));
    assert!(plain.forward_encrypted(&s.batch, &s.ctx).is_err());
    // Logits that do not match the labels.
    let labels = [0usize, 1, 1, 0];
    let with_labels = setup(4, 10, Some((&labels, 2)), 6);
    let logits = Tensor::<2>::zeros([4, 3], &device);
    assert!(
        cross_entropy_encrypted(
            logits,
            with_labels.batch.labels().unwrap(),
            &with_labels.ctx
        )
        .is_err()
    );
}

#[derive(Module, Debug)]
struct Mlp {
    first: FirstLayer,
    activation: Relu,
    output: Linear,
}

#[test]
fn tiny_mlp_follows_the_plain_loss_curve() {
    let device = Device::ndarray().autodiff();
    device.seed(7);
    let (batch, features, classes) = (32, 16, 3);
    let mut rng = StdRng::seed_from_u64(8);
    let labels: Vec<usize> = (0..batch).map(|_| rng.random_range(0..classes)).collect();
    let s = setup(batch, features, Some((&labels, classes)), 9);
    let first: Linear = LinearConfig::new(features, 8).init(&device);
    let output: Linear = LinearConfig::new(8, classes).init(&device);
    let mut plain = Mlp {
        first: FirstLayer::Plain(first.clone()),
        activation: Relu::new(),
        output: output.clone(),
    };
    let mut secure = Mlp {
        first: FirstLayer::Secure(first.into()),
        activation: Relu::new(),
        output,
    };
    let x = plain_input(&s.pixels, batch, features, &device);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect(), [batch]),
        &device,
    );
    let ce = CrossEntropyLossConfig::new().init(&device);
    let (mut plain_optim, mut secure_optim) = (AdamConfig::new().init(), AdamConfig::new().init());
    let mut curves = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let logits = plain.output.forward(
            plain
                .activation
                .forward(plain.first.forward_plain(x.clone())),
        );
        let loss = ce.forward(logits, targets.clone());
        curves.0.push(f64::from(loss.clone().into_scalar::<f32>()));
        let grads = GradientsParams::from_grads(loss.backward(), &plain);
        plain = plain_optim.step(5e-2, plain, grads);

        let hidden = secure
            .activation
            .forward(secure.first.forward_encrypted(&s.batch, &s.ctx).unwrap());
        let out = cross_entropy_encrypted(
            secure.output.forward(hidden),
            s.batch.labels().unwrap(),
            &s.ctx,
        )
        .unwrap();
        curves.1.push(out.loss);
        let grads = s.ctx.backward(out.surrogate).unwrap();
        let grads = GradientsParams::from_grads(grads, &secure);
        secure = secure_optim.step(5e-2, secure, grads);
    }
    for (p, q) in curves.0.iter().zip(&curves.1) {
        assert!(
            (p - q).abs() <= 1e-2 * p.abs() + 1e-3,
            "plain {:?} secure {:?}",
            curves.0,
            curves.1
        );
    }
    assert!(
        curves.1[4] < curves.1[0],
        "secure loss did not decrease: {:?}",
        curves.1
    );
}
