//! LeNet-5 as the paper trains it, with its first convolution secure
//! (`--model lenet`).
//!
//! `conv1 (1→6, 5×5) → ReLU → max-pool 2 → conv2 (6→16, 5×5) → ReLU →
//! max-pool 2 → fc 120 → ReLU → fc 84 → ReLU → fc 10`.
//!
//! The paper feeds 32×32 images to conv1; MNIST's are 28×28, and conv1 here
//! has no padding ("valid"), so it gives 6×24×24 and the rest 6×12×12,
//! 16×8×8, 16×4×4 = 256 features for fc1. Valid rather than padding 2 (which
//! would keep the paper's 6×28×28): each image is 576 patches instead of 784,
//! so 27% less to encrypt and decrypt, and it is the 3,456 equations per
//! image the threat model counts.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use cryptonn_burn::{EncryptedImages, FirstConv, SecureContext};
use cryptonn_fe::Group;
use cryptonn_protocol::PatchGeometry;

/// Layer sizes of LeNet-5 on square single-channel images.
#[derive(Config, Debug)]
pub struct LeNetConfig {
    /// Side of the square input images. Default 28 (MNIST).
    #[config(default = 28)]
    pub side: usize,
    /// Output classes. Default 10.
    #[config(default = 10)]
    pub classes: usize,
}

/// LeNet-5 with a secure or plain first convolution.
#[derive(Module, Debug)]
pub struct LeNet {
    /// 1→6 channels, 5×5, stride 1, no padding.
    pub conv1: FirstConv,
    /// 6→16 channels, 5×5, stride 1, no padding.
    pub conv2: Conv2d,
    /// 2×2 max-pooling, stride 2, after each convolution.
    pub pool: MaxPool2d,
    /// `16·s·s → 120`, where s = ((side − 4) / 2 − 4) / 2.
    pub fc1: Linear,
    /// `120 → 84`.
    pub fc2: Linear,
    /// `84 → classes` (logits).
    pub fc3: Linear,
    /// The activation after every layer but the last.
    pub activation: Relu,
}

/// Output channels of conv1.
pub const CONV1_CHANNELS: usize = 6;
/// Kernel side of both convolutions.
const KERNEL: usize = 5;

impl LeNetConfig {
    /// Side of conv1's output (no padding): `side − 4`.
    pub fn conv1_side(&self) -> usize {
        self.side.saturating_sub(KERNEL - 1)
    }

    /// Inner products the server decrypts per image in one forward pass of
    /// conv1: `6 · (side − 4)²`, 3,456 for MNIST — more than its 784 pixels.
    pub fn equations_per_image(&self) -> usize {
        CONV1_CHANNELS * self.conv1_side() * self.conv1_side()
    }

    /// conv1's geometry on this config's images: one channel, the 5×5
    /// kernel, stride 1, no padding (what the client encrypts for).
    ///
    /// # Errors
    /// Images too small for the kernel.
    pub fn conv1_geometry(&self) -> cryptonn_burn::Result<PatchGeometry> {
        Ok(PatchGeometry::new(
            [1, self.side, self.side],
            [KERNEL, KERNEL],
            [1, 1],
            [0, 0],
        )?)
    }

    /// Equations on the whole batch one step's conv1 kernel gradient gives:
    /// one per channel and kernel tap.
    pub fn gradient_equations_per_step(&self) -> usize {
        CONV1_CHANNELS * KERNEL * KERNEL
    }

    /// A model whose first convolution is secure or plain; the same device
    /// seed gives the same weights either way.
    ///
    /// # Panics
    /// Never for `side ≥ 16`; for smaller images fc1 would have no input.
    pub fn init(&self, device: &Device, secure: bool) -> LeNet {
        let conv =
            |channels| eager_conv(Conv2dConfig::new(channels, [KERNEL, KERNEL]).init(device));
        let linear = |d_in, d_out| eager_linear(LinearConfig::new(d_in, d_out).init(device));
        let conv1 = conv([1, CONV1_CHANNELS]);
        let conv2 = conv([CONV1_CHANNELS, 16]);
        let s = (self.conv1_side() / 2).saturating_sub(KERNEL - 1) / 2;
        LeNet {
            // Stride 1, no dilation, no groups: the conversion cannot fail.
            conv1: FirstConv::new(conv1.clone(), secure).unwrap_or(FirstConv::Plain(conv1)),
            conv2,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: linear(16 * s * s, 120),
            fc2: linear(120, 84),
            fc3: linear(84, self.classes),
            activation: Relu::new(),
        }
    }
}

/// Draws a lazily initialised convolution's weights now, so that the same
/// device seed gives the same weights whatever touches them first.
fn eager_conv(conv: Conv2d) -> Conv2d {
    let _ = (conv.weight.val(), conv.bias.as_ref().map(|b| b.val()));
    conv
}

/// As [`eager_conv`], for a linear layer.
fn eager_linear(linear: Linear) -> Linear {
    let _ = (linear.weight.val(), linear.bias.as_ref().map(|b| b.val()));
    linear
}

impl LeNet {
    /// Logits from conv1's pre-activation: everything after the secure layer.
    ///
    /// # Shapes
    /// `[batch, 6, side − 4, side − 4] -> [batch, classes]`
    pub fn head(&self, z1: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.activation.forward(z1));
        let x = self
            .pool
            .forward(self.activation.forward(self.conv2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.activation.forward(self.fc1.forward(x));
        let x = self.activation.forward(self.fc2.forward(x));
        self.fc3.forward(x)
    }

    /// Logits for plaintext images (for a secure conv1: its weights in the clear).
    ///
    /// # Shapes
    /// `[batch, 1, side, side] -> [batch, classes]`
    pub fn forward_plain(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.conv1.forward_plain(x))
    }

    /// Logits for encrypted `[batch, 1, side, side]` images.
    ///
    /// # Shapes
    /// `EncryptedImages [batch, 1, side, side] -> [batch, classes]`
    ///
    /// # Errors
    /// As [`FirstConv::forward_encrypted`].
    pub fn forward_encrypted<G: Group>(
        &self,
        images: &EncryptedImages<G>,
        ctx: &SecureContext<G>,
    ) -> cryptonn_burn::Result<Tensor<2>> {
        Ok(self.head(self.conv1.forward_encrypted(images, ctx)?))
    }
}
