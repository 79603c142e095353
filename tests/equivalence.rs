//! SecureLinear against Burn's `Linear`: forward, weight gradient and
//! weights after Adam steps, in both groups.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::Arc;

use burn::tensor::Device;
use cryptonn::equivalence::{EquivalenceConfig, EquivalenceReport, compare};
use cryptonn_burn::QuantizationConfig;
use cryptonn_fe::{DlogConfig, DlogTable, Group, Modp2048, Ristretto255};

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
