//! SecureLinear against Burn's `Linear`: forward, weight gradient and
//! weights after Adam steps, in both groups.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::Arc;

use burn::tensor::Device;
use cryptonn_burn::QuantizationConfig;
use cryptonn_fe::{DlogConfig, DlogTable, Group, Modp2048, Ristretto255};
use cryptonn_mnist::equivalence::{EquivalenceConfig, EquivalenceReport, compare};

fn table<G: Group>() -> Arc<DlogTable<G>> {
    Arc::new(DlogTable::new(DlogConfig::new(1 << 14, 1 << 31)).unwrap())
}

fn check(report: EquivalenceReport) {
    assert!(report.max_rel_err_forward <= 1e-2, "{report:?}");
    assert!(report.max_rel_err_weight_grad <= 1e-2, "{report:?}");
    assert!(report.max_rel_err_after_adam <= 1e-2, "{report:?}");
}

#[test]
fn secure_gradient_matches_linear_ristretto() {
    let config = EquivalenceConfig {
        batch: 8,
        d_input: 20,
        d_output: 5,
        adam_steps: 3,
        seed: 1,
        quantization: QuantizationConfig::new().with_min_key_support(1),
    };
    check(
        compare(
            config,
            &Device::ndarray().autodiff(),
            table::<Ristretto255>(),
        )
        .unwrap(),
    );
}

#[test]
fn secure_gradient_matches_linear_modp() {
    let config = EquivalenceConfig {
        batch: 3,
        d_input: 4,
        d_output: 2,
        adam_steps: 1,
        seed: 2,
        // Error vectors of a batch of 3 are sparser than the default key support.
        quantization: QuantizationConfig::new().with_min_key_support(1),
    };
    check(compare::<Modp2048>(config, &Device::ndarray().autodiff(), table()).unwrap());
}

/// The main job's MLP with its inputs centred on a public mean: the secure
/// model (which subtracts Wμ from the decrypted Wx) gives the plain centred
/// model's logits and first-layer gradient (X − 1μᵀ)ᵀδ.
#[test]
fn centred_secure_mlp_matches_the_centred_plain_one() {
    use burn::module::Param;
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::tensor::{Int, Tensor, TensorData};
    use cryptonn::authority::{Authority, IssueAll};
    use cryptonn::nn::{FirstLayer, SecureContext};
    use cryptonn_mnist::config::TrainingConfig;
    use cryptonn_mnist::equivalence::encrypt_batch;
    use cryptonn_mnist::mlp::MlpConfig;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    let (batch, n) = (8, 16);
    let mut rng = StdRng::seed_from_u64(5);
    let pixels: Vec<i64> = (0..batch * n).map(|_| rng.random_range(0..256)).collect();
    let mean: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
    let config = MlpConfig::new()
        .with_d_input(n)
        .with_hidden(vec![6])
        .with_classes(3);
    let plain = config
        .init(&TrainingConfig::new().with_seed(3).device(), false)
        .centred(&mean);
    let secure = cryptonn_mnist::mlp::Mlp {
        first: FirstLayer::Secure(plain.first.clone().into_secure()),
        ..plain.clone()
    };

    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let encrypted = encrypt_batch(&authority, &pixels, n, &mut rng).unwrap();
    let quantization = QuantizationConfig::new()
        .with_limbs(2)
        .with_min_key_support(1);
    let ctx = SecureContext::builder(authority)
        .table(table())
        .quantization(quantization)
        .build()
        .unwrap();

    let d = TrainingConfig::new().with_seed(3).device();
    let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [batch, n]), &d);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(vec![0i64, 1, 2, 0, 1, 2, 0, 1], [batch]),
        &d,
    );
    let loss = |logits: Tensor<2>| {
        CrossEntropyLossConfig::new()
            .init(&d)
            .forward(logits, targets.clone())
    };
    let weight = |m: &cryptonn_mnist::mlp::Mlp| -> Param<Tensor<2>> {
        match &m.first {
            FirstLayer::Plain(l) => l.weight.clone(),
            FirstLayer::Secure(s) => s.weight.clone(),
        }
    };
    let plain_logits = plain.forward_plain(x);
    let plain_grads = loss(plain_logits.clone()).backward();
    let secure_logits = secure.forward_encrypted(&encrypted, &ctx).unwrap();
    let Ok(secure_grads) = ctx.backward(loss(secure_logits.clone())) else {
        panic!("the secure backward pass failed");
    };

    let rel = |a: Tensor<2>, b: Tensor<2>| cryptonn_mnist::equivalence::rel_err(&a, &b).unwrap();
    let fwd = rel(secure_logits.detach(), plain_logits.detach());
    assert!(fwd <= 1e-4);
    let g_plain = weight(&plain).grad(&plain_grads).unwrap();
    let g_secure = weight(&secure).grad(&secure_grads).unwrap();
    assert!(rel(g_secure, g_plain) <= 1e-3);
}
