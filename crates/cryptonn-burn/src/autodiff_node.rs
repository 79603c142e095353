//! The custom autodiff node of the secure first layer.
#![allow(deprecated)] // burn's NdArray backend is deprecated in favour of Flex; both are served.

use std::fmt::Debug;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, NdArray, TensorMetadata, backend_extension};
use burn::tensor::{TensorData, try_read_sync};

/// Computes the weight gradient Xᵀ·δ from δ alone (the secure path decrypts
/// it from column-wise ciphertexts).
pub(crate) trait WeightGradient: Send + Sync + Debug {
    /// Xᵀ·δ as `[d_in, d_out]`. It cannot fail: on error it records the
    /// error where the trainer will find it and returns zeros.
    fn weight_gradient(&self, delta: crate::Result<TensorData>) -> TensorData;
}

/// The backward state: how to get the weight gradient.
#[derive(Clone, Debug)]
pub(crate) struct SecureGrad(pub(crate) Arc<dyn WeightGradient>);

/// The secure first-layer operation as a Burn backend extension.
///
/// `secure_linear(W, z, grad)` returns z (the decrypted pre-activation) and,
/// on an autodiff device, records a node whose only parent is W: its
/// backward receives δ = ∂L/∂z and registers `grad`'s Xᵀ·δ as W's gradient.
/// Later layers and the optimizer are ordinary Burn. Registered for Burn's
/// CPU backends, Flex (`Device::default()`) and NdArray, and with the `wgpu`
/// or `cuda` feature for the CubeCL backend (the later layers then run on
/// the GPU; decryption stays on the CPU), each with autodiff.
#[backend_extension(Flex, NdArray, Cube: cfg(any(feature = "wgpu", feature = "cuda")), Autodiff)]
pub(crate) trait SecureBackend: Backend {
    /// Returns `decrypted`, with `weight` as its autodiff parent.
    fn secure_linear(
        weight: FloatTensor<Self>,
        decrypted: FloatTensor<Self>,
        grad: SecureGrad,
    ) -> FloatTensor<Self>;
}

/// Without autodiff the op is the identity on the decrypted values, on
/// every backend.
macro_rules! identity_without_autodiff {
    ($($backend:ty),*) => {$(
        impl SecureBackend for $backend {
            fn secure_linear(
                _weight: FloatTensor<Self>,
                decrypted: FloatTensor<Self>,
                _grad: SecureGrad,
            ) -> FloatTensor<Self> {
                decrypted
            }
        }
    )*};
}

identity_without_autodiff!(Flex, NdArray);
#[cfg(any(feature = "wgpu", feature = "cuda"))]
identity_without_autodiff!(burn::backend::Cube);

#[derive(Debug)]
struct SecureBackward;

impl<B: Backend> Backward<B, 1> for SecureBackward {
    type State = SecureGrad;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let state = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |delta| {
            let device = delta.device();
            let data = try_read_sync(B::float_into_data(delta))
                .ok_or_else(|| {
                    crate::Error::TensorRead("blocking reads are unsupported here".into())
                })
                .and_then(|r| r.map_err(|e| crate::Error::TensorRead(format!("{e:?}"))));
            B::float_from_data(state.0.weight_gradient(data), &device)
        });
    }
}

impl<B: Backend + SecureBackend, C: CheckpointStrategy> SecureBackend for Autodiff<B, C> {
    fn secure_linear(
        weight: FloatTensor<Self>,
        decrypted: FloatTensor<Self>,
        grad: SecureGrad,
    ) -> FloatTensor<Self> {
        let out = decrypted.into_primitive();
        match SecureBackward
            .prepare::<C>([weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(grad, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Dispatch;
    use burn::tensor::{Device, Distribution, Tensor};

    #[derive(Debug)]
    struct Plain(Vec<f32>, usize, usize); // x row-major [b, n]

    impl WeightGradient for Plain {
        fn weight_gradient(&self, delta: crate::Result<TensorData>) -> TensorData {
            let d = delta.unwrap().try_to_vec::<f32>().unwrap();
            let h = d.len() / self.1;
            let mut g = vec![0f32; self.2 * h];
            for b in 0..self.1 {
                for i in 0..self.2 {
                    for j in 0..h {
                        g[i * h + j] += self.0[b * self.2 + i] * d[b * h + j];
                    }
                }
            }
            TensorData::new(g, [self.2, h])
        }
    }

    #[test]
    fn backward_registers_the_weight_gradient_exactly_on_every_cpu_backend() {
        for device in [Device::default(), Device::flex(), Device::ndarray()] {
            backward_registers_the_weight_gradient_exactly(device.autodiff());
        }
    }

    fn backward_registers_the_weight_gradient_exactly(device: Device) {
        let x = Tensor::<2>::random([3, 4], Distribution::Default, &device);
        let w = Tensor::<2>::random([4, 2], Distribution::Default, &device).require_grad();
        let plain = x.clone().matmul(w.clone());
        let g_ref = w.grad(&plain.powf_scalar(2.0).sum().backward()).unwrap();

        let xs = x.to_data().try_to_vec::<f32>().unwrap();
        let dec = x.clone().matmul(w.clone().detach());
        let grad = SecureGrad(Arc::new(Plain(xs, 3, 4)));
        let z = Tensor::<2>::from_dispatch(<Dispatch as SecureBackend>::secure_linear(
            w.clone().into_dispatch(),
            dec.into_dispatch(),
            grad,
        ));
        let g = w.grad(&z.powf_scalar(2.0).sum().backward()).unwrap();
        g.to_data()
            .assert_approx_eq::<f32>(&g_ref.to_data(), burn::tensor::Tolerance::default());
    }
}
