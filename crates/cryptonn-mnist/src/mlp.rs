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

/// `first → ReLU → (hidden → ReLU)* → output`, on inputs centred on a
/// public mean image μ when one is set: z₁ = W(x − μ) + b.
///
/// # Centring on encrypted inputs
/// The server never sees x, but it needs no more than it already has:
/// W(x − μ) = Wx − Wμ, where Wx is what the secure layer decrypts and Wμ is
/// public; and autodiff through the subtraction turns the decrypted weight
/// gradient Xᵀδ into (X − 1μᵀ)ᵀδ, the centred one, with 1ᵀδ, which the
/// server holds. No key, ciphertext or equation is added. Centring keeps
/// the ReLUs of dense images alive under Adam; without it most die in the
/// first steps, and the secure run, which gets no weight gradient for a
/// unit active on fewer than `min_key_support` images of a batch, cannot
/// revive them.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The public mean image μ, `[1, d_input]` in [0, 1], if inputs are centred.
    pub input_mean: Option<Tensor<2>>,
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
            input_mean: None,
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
    /// The model with inputs centred on `mean` (`d_input` values in [0, 1],
    /// the mean of public images).
    ///
    /// # Panics
    /// If `mean` does not have `d_input` values.
    #[must_use]
    pub fn centred(mut self, mean: &[f32]) -> Self {
        let device = self.first.weight().device();
        let d_input = self.first.weight().dims()[0];
        assert_eq!(mean.len(), d_input, "a mean image of d_input pixels");
        self.input_mean = Some(Tensor::from_data(
            burn::tensor::TensorData::new(mean.to_vec(), [1, d_input]),
            &device,
        ));
        self
    }

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
        let x = match &self.input_mean {
            Some(mean) => x - mean.clone(),
            None => x,
        };
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
        let z = self.first.forward_encrypted(batch, ctx)?;
        Ok(self.head(match &self.input_mean {
            // Wμ is public; autodiff carries −μ·(1ᵀδ) into W's gradient.
            Some(mean) => z - mean.clone().matmul(self.first.weight()),
            None => z,
        }))
    }
}
