//! `SecureLinear`: a linear layer whose input arrives encrypted.

use std::sync::Arc;

use burn::backend::Dispatch;
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_fe::{Group, KeyId, feip};

use cryptonn_protocol::EncryptedBatch;

use crate::Error;
use cryptonn_server::quantize_columns;

use crate::autodiff_node::{SecureBackend, SecureGrad, WeightGradient};
use crate::context::SecureContext;

pub(crate) fn read_f32(data: TensorData) -> crate::Result<Vec<f32>> {
    data.try_to_vec::<f32>()
        .map_err(|e| Error::TensorRead(format!("{e:?}")))
}

/// Configuration of a [`SecureLinear`] layer, as [`LinearConfig`].
#[derive(Config, Debug)]
pub struct SecureLinearConfig {
    /// Input features (pixels per image for MNIST: 784).
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Whether to add a bias. Default `true`.
    #[config(default = true)]
    pub bias: bool,
    /// Weight initializer. Default: Burn's `Linear` default, Kaiming uniform with gain 1/√3.
    #[config(
        default = "Initializer::KaimingUniform { gain: 0.577_350_269_189_625_8, fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

impl SecureLinearConfig {
    /// Initializes the layer on `device`, exactly as the same [`LinearConfig`] would.
    pub fn init(&self, device: &Device) -> SecureLinear {
        LinearConfig::new(self.d_input, self.d_output)
            .with_bias(self.bias)
            .with_initializer(self.initializer.clone())
            .init(device)
            .into()
    }
}

/// A linear layer `z = x·W + b` whose input x is an [`EncryptedBatch`].
///
/// The weights are stored as Burn's [`Linear`] stores them (`W: [d_in,
/// d_out]`), so they move both ways without transposes (`From<Linear>`,
/// [`SecureLinear::into_linear`]).
///
/// - **Forward**: each column wⱼ of W is quantized to an integer key vector;
///   the authority issues FEIP keys for them under the batch's row-wise master
///   key; the server decrypts zᵦⱼ = ⟨xᵦ, wⱼ⟩ for every sample b.
/// - **Backward** (on an autodiff device): a custom autodiff node with W as
///   its only parent receives δ = ∂L/∂z, quantizes its columns, obtains keys
///   under the column-wise master key and decrypts (Xᵀδ)ᵢⱼ = ⟨Xᵀᵢ, δⱼ⟩. That
///   is W's gradient; any Burn optimizer then updates W.
///
/// The bias and everything after this layer are ordinary Burn operations.
#[derive(Module, Debug)]
pub struct SecureLinear {
    /// `[d_in, d_out]`, as in [`Linear`].
    pub weight: Param<Tensor<2>>,
    /// `[d_out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl From<Linear> for SecureLinear {
    fn from(linear: Linear) -> Self {
        Self {
            weight: linear.weight,
            bias: linear.bias,
        }
    }
}

impl SecureLinear {
    /// The same weights as a plain [`Linear`].
    pub fn into_linear(self) -> Linear {
        Linear {
            weight: self.weight,
            bias: self.bias,
        }
    }

    /// `[d_in, d_out]`.
    pub fn dims(&self) -> [usize; 2] {
        self.weight.shape().dims()
    }

    /// The layer on plaintext input, for evaluating trained weights.
    ///
    /// # Shapes
    /// `[batch, d_in] -> [batch, d_out]`
    pub fn forward_plain(&self, input: Tensor<2>) -> Tensor<2> {
        linear(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
        )
    }

    /// The layer on an encrypted batch.
    ///
    /// # Shapes
    /// `EncryptedBatch [batch, d_in] -> [batch, d_out]`
    ///
    /// # Errors
    /// [`Error::Shape`] if the batch has the wrong number of features; a key
    /// refusal from the authority; [`cryptonn_fe::Error::OutOfBound`] if a
    /// pre-activation exceeds the discrete-log bound. Errors of the backward
    /// pass surface through [`SecureContext::backward`].
    pub fn forward<G: Group>(
        &self,
        batch: &EncryptedBatch<G>,
        ctx: &SecureContext<G>,
    ) -> crate::Result<Tensor<2>> {
        let z = secure_matmul(self.weight.val(), batch.into(), ctx)?;
        Ok(match &self.bias {
            Some(bias) => z + bias.val().unsqueeze_dim(0),
            None => z,
        })
    }
}

/// The encrypted operand X of a secure product X·W: ciphertexts that give
/// its rows against key vectors for W's columns, and ciphertexts that give
/// the rows of Xᵀ against key vectors for δ's columns. Under a
/// convolution's master keys each vector answers `fan` keys (positions for
/// the rows, taps for the columns), which multiply the rows out.
pub(crate) struct Operand<'a, G: Group> {
    pub(crate) row_key: KeyId,
    pub(crate) rows: &'a [feip::Ciphertext<G>],
    pub(crate) row_fan: usize,
    pub(crate) col_key: KeyId,
    pub(crate) cols: Arc<[feip::Ciphertext<G>]>,
    pub(crate) col_fan: usize,
    pub(crate) input_scale: f64,
}

impl<G: Group> Operand<'_, G> {
    /// `[rows, features]` of X: what z's rows and W's rows are.
    fn shape(&self) -> [usize; 2] {
        [
            self.rows.len() * self.row_fan,
            self.cols.len() * self.col_fan,
        ]
    }
}

impl<'a, G: Group> From<&'a EncryptedBatch<G>> for Operand<'a, G> {
    fn from(batch: &'a EncryptedBatch<G>) -> Self {
        Self {
            row_key: batch.row_key(),
            rows: batch.rows(),
            row_fan: 1,
            col_key: batch.col_key(),
            cols: batch.cols(),
            col_fan: 1,
            input_scale: batch.input_scale(),
        }
    }
}

/// z = X·W for the encrypted X, as a tensor whose autodiff parent is W:
/// the forward decrypts X's rows against keys for W's columns, the backward
/// Xᵀ·δ from X's columns against keys for δ's columns. Shared by the
/// secure layers.
///
/// # Shapes
/// `X [rows, d_in], W [d_in, d_out] -> [rows, d_out]`
///
/// # Errors
/// As [`SecureLinear::forward`].
pub(crate) fn secure_matmul<G: Group>(
    weight: Tensor<2>,
    x: Operand<'_, G>,
    ctx: &SecureContext<G>,
) -> crate::Result<Tensor<2>> {
    // A failed backward pass nobody checked must not be trained past.
    ctx.take_backward_error()?;
    let [d_in, d_out] = weight.dims();
    let [rows, features] = x.shape();
    if d_out == 0 {
        return Err(Error::Shape {
            what: "secure layer with no outputs",
            expected: vec![d_in, 1],
            got: vec![d_in, 0],
        });
    }
    if features != d_in {
        return Err(Error::Shape {
            what: "encrypted batch",
            expected: vec![rows, d_in],
            got: vec![rows, features],
        });
    }
    let w = read_f32(weight.to_data())?;
    let q = ctx.quantization();
    let weights = quantize_columns(&w, d_in, d_out, q.weight_bits, q.limbs)?;
    let z =
        ctx.server()
            .decrypt_expanded(x.row_key, x.rows, &weights, x.row_fan, x.input_scale, 1)?;
    let decrypted = Tensor::<2>::from_data(TensorData::new(z, [rows, d_out]), &weight.device());
    let grad = SecureGrad(Arc::new(EncryptedWeightGradient {
        cols: x.cols,
        col_key: x.col_key,
        col_fan: x.col_fan,
        input_scale: x.input_scale,
        shape: [d_in, d_out],
        delta_rows: rows,
        ctx: ctx.clone(),
    }));
    Ok(Tensor::<2>::from_dispatch(
        <Dispatch as SecureBackend>::secure_linear(
            weight.into_dispatch(),
            decrypted.into_dispatch(),
            grad,
        ),
    ))
}

/// Xᵀ·δ from X's column ciphertexts, for the autodiff node.
struct EncryptedWeightGradient<G: Group> {
    cols: Arc<[feip::Ciphertext<G>]>,
    col_key: KeyId,
    col_fan: usize,
    input_scale: f64,
    shape: [usize; 2],
    delta_rows: usize,
    ctx: SecureContext<G>,
}

impl<G: Group> core::fmt::Debug for EncryptedWeightGradient<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EncryptedWeightGradient")
            .field("col_key", &self.col_key)
            .field("shape", &self.shape)
            .finish()
    }
}

impl<G: Group> EncryptedWeightGradient<G> {
    fn compute(&self, delta: TensorData) -> crate::Result<Vec<f32>> {
        let [_, d_out] = self.shape;
        let delta = read_f32(delta)?;
        if delta.len() != self.delta_rows * d_out {
            return Err(Error::Shape {
                what: "back-propagated error",
                expected: vec![self.delta_rows, d_out],
                got: vec![delta.len()],
            });
        }
        let q = self.ctx.quantization();
        let deltas = quantize_columns(&delta, self.delta_rows, d_out, q.delta_bits, q.limbs)?;
        // Sparse error vectors get no key (see `min_key_support`): their
        // gradient columns stay zero.
        Ok(self.ctx.server().decrypt_expanded(
            self.col_key,
            &self.cols,
            &deltas,
            self.col_fan,
            self.input_scale,
            q.min_key_support,
        )?)
    }
}

impl<G: Group> WeightGradient for EncryptedWeightGradient<G> {
    fn weight_gradient(&self, delta: crate::Result<TensorData>) -> TensorData {
        let grad = delta.and_then(|d| self.compute(d)).unwrap_or_else(|e| {
            self.ctx.record_backward_error(e);
            vec![0f32; self.shape[0] * self.shape[1]]
        });
        TensorData::new(grad, self.shape)
    }
}
