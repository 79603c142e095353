//! The convolution twin of [`FirstLayer`](crate::FirstLayer): a first
//! convolution that is either plain or secure, swapped in one line.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use cryptonn_fe::Group;
use cryptonn_protocol::EncryptedImages;

use crate::context::SecureContext;
use crate::secure_conv2d::SecureConv2d;
use crate::{Error, Result};

/// The first convolution of a model: `Plain(Conv2d)` for plaintext
/// training, `Secure(SecureConv2d)` for training on encrypted images. Both
/// hold the same weights in the same layout.
#[derive(Module, Debug)]
pub enum FirstConv {
    /// Burn's convolution on plaintext images.
    Plain(Conv2d),
    /// The convolution on encrypted images.
    Secure(SecureConv2d),
}

impl FirstConv {
    /// `conv` as a secure layer if `secure` and it can be one (see
    /// [`SecureConv2d`]'s `TryFrom<Conv2d>`), else as it is.
    ///
    /// # Errors
    /// A convolution the secure layer cannot compute (dilation, groups).
    pub fn new(conv: Conv2d, secure: bool) -> Result<Self> {
        Ok(if secure {
            Self::Secure(SecureConv2d::try_from(conv)?)
        } else {
            Self::Plain(conv)
        })
    }

    /// The convolution on plaintext images; for `Secure` this evaluates its
    /// weights in the clear.
    ///
    /// # Shapes
    /// `[batch, C_in, H, W] -> [batch, C_out, H_out, W_out]`
    pub fn forward_plain(&self, input: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Plain(conv) => conv.forward(input),
            Self::Secure(conv) => conv.forward_plain(input),
        }
    }

    /// The convolution on encrypted images.
    ///
    /// # Shapes
    /// `EncryptedImages [batch, C_in, H, W] -> [batch, C_out, H_out, W_out]`
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a `Plain` layer (it cannot read
    /// ciphertexts); otherwise as [`SecureConv2d::forward`].
    pub fn forward_encrypted<G: Group>(
        &self,
        images: &EncryptedImages<G>,
        ctx: &SecureContext<G>,
    ) -> Result<Tensor<4>> {
        match self {
            Self::Plain(_) => Err(Error::InvalidConfig(
                "a plain first convolution cannot read ciphertexts".into(),
            )),
            Self::Secure(conv) => conv.forward(images, ctx),
        }
    }

    /// The secure layer, if this is one (a client needs its geometry).
    pub fn secure(&self) -> Option<&SecureConv2d> {
        match self {
            Self::Plain(_) => None,
            Self::Secure(conv) => Some(conv),
        }
    }

    /// The weights as a plain [`Conv2d`].
    pub fn into_conv2d(self) -> Conv2d {
        match self {
            Self::Plain(conv) => conv,
            Self::Secure(conv) => conv.into_conv2d(),
        }
    }
}
