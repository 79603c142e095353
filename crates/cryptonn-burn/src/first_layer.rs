//! A first layer that is either plain or secure: swapping is one line.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use cryptonn_fe::Group;

use cryptonn_protocol::EncryptedBatch;

use crate::{Error, Result};

use crate::context::SecureContext;
use crate::secure_linear::SecureLinear;

/// The first layer of a model: `Plain(Linear)` for plaintext training,
/// `Secure(SecureLinear)` for training on encrypted inputs. Both hold the
/// same weights in the same layout.
#[derive(Module, Debug)]
pub enum FirstLayer {
    /// An ordinary Burn linear layer on plaintext input.
    Plain(Linear),
    /// A layer on encrypted input.
    Secure(SecureLinear),
}

impl FirstLayer {
    /// The layer on plaintext input; for `Secure` this evaluates its weights in the clear.
    ///
    /// # Shapes
    /// `[batch, d_in] -> [batch, d_out]`
    pub fn forward_plain(&self, input: Tensor<2>) -> Tensor<2> {
        match self {
            FirstLayer::Plain(linear) => linear.forward(input),
            FirstLayer::Secure(secure) => secure.forward_plain(input),
        }
    }

    /// The layer on an encrypted batch.
    ///
    /// # Shapes
    /// `EncryptedBatch [batch, d_in] -> [batch, d_out]`
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for a `Plain` layer (it cannot read
    /// ciphertexts); otherwise as [`SecureLinear::forward`].
    pub fn forward_encrypted<G: Group>(
        &self,
        batch: &EncryptedBatch<G>,
        ctx: &SecureContext<G>,
    ) -> Result<Tensor<2>> {
        match self {
            FirstLayer::Plain(_) => Err(Error::InvalidConfig(
                "a plain first layer cannot read ciphertexts".into(),
            )),
            FirstLayer::Secure(secure) => secure.forward(batch, ctx),
        }
    }

    /// The weight `[d_in, d_out]`, in the autodiff graph.
    pub fn weight(&self) -> Tensor<2> {
        match self {
            FirstLayer::Plain(linear) => linear.weight.val(),
            FirstLayer::Secure(secure) => secure.weight.val(),
        }
    }

    /// The weights as a plain [`Linear`].
    pub fn into_linear(self) -> Linear {
        match self {
            FirstLayer::Plain(linear) => linear,
            FirstLayer::Secure(secure) => secure.into_linear(),
        }
    }

    /// The same weights as a secure layer.
    pub fn into_secure(self) -> SecureLinear {
        match self {
            FirstLayer::Plain(linear) => linear.into(),
            FirstLayer::Secure(secure) => secure,
        }
    }
}
