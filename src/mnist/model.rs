//! The MLP trained by the main job: a secure (or plain) first layer, then plain Burn.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use cryptonn_burn::{EncryptedBatch, FirstLayer, SecureContext, SecureLinear};
use cryptonn_fe::Group;

/// Layer sizes.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input features. Default 784 (28×28 pixels).
    #[config(default = 784)]
    pub d_input: usize,
    /// Hidden widths; the first hidden layer is the secure one. Default `[64]`.
    #[config(default = "vec![64]")]
    pub hidden: Vec<usize>,
    /// Output classes. Default 10.
    #[config(default = 10)]
    pub classes: usize,
}

/// `first → ReLU → (hidden → ReLU)* → output`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The first layer: secure or plain.
    pub first: FirstLayer,
    /// Later hidden layers.
    pub hidden: Vec<Linear>,
    /// The activation after every hidden layer.
    pub activation: Relu,
    /// The output layer (logits).
    pub output: Linear,
}

impl MlpConfig {
    /// A model whose first layer is secure or plain; the same device seed gives
    /// the same weights either way.
    pub fn init(&self, device: &Device, secure: bool) -> Mlp {
        let widths: Vec<usize> = std::iter::once(self.d_input)
            .chain(self.hidden.iter().copied())
            .collect();
        let first: Linear = LinearConfig::new(widths[0], widths[1]).init(device);
        let hidden = widths[1..]
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let last = widths[widths.len() - 1];
        Mlp {
            first: if secure {
                FirstLayer::Secure(SecureLinear::from(first))
            } else {
                FirstLayer::Plain(first)
            },
            hidden,
            activation: Relu::new(),
            output: LinearConfig::new(last, self.classes).init(device),
        }
    }
}

impl Mlp {
    /// Logits from the first layer's pre-activation z₁: everything after the secure layer.
    ///
    /// # Shapes
    /// `[batch, hidden[0]] -> [batch, classes]`
    pub fn head(&self, z1: Tensor<2>) -> Tensor<2> {
        let x = self
            .hidden
            .iter()
            .fold(self.activation.forward(z1), |x, layer| {
                self.activation.forward(layer.forward(x))
            });
        self.output.forward(x)
    }

    /// Logits for plaintext input (for a secure first layer: its weights in the clear).
    ///
    /// # Shapes
    /// `[batch, d_input] -> [batch, classes]`
    pub fn forward_plain(&self, x: Tensor<2>) -> Tensor<2> {
        self.head(self.first.forward_plain(x))
    }

    /// Logits for an encrypted batch.
    ///
    /// # Shapes
    /// `EncryptedBatch [batch, d_input] -> [batch, classes]`
    ///
    /// # Errors
    /// As [`FirstLayer::forward_encrypted`].
    pub fn forward_encrypted<G: Group>(
        &self,
        batch: &EncryptedBatch<G>,
        ctx: &SecureContext<G>,
    ) -> cryptonn_burn::Result<Tensor<2>> {
        Ok(self.head(self.first.forward_encrypted(batch, ctx)?))
    }
}
