//! `SecureConv2d`: a 2-D convolution whose input arrives encrypted, as
//! whole images.
//!
//! A convolution is a linear layer over patches. Patch `(b, p)` of image b at
//! output position `p = oh·W_out + ow` is the `C_in × kh × kw` input window
//! under p, flattened as Burn flattens its weight `[C_out, C_in, kh, kw]` per
//! output channel; then
//!
//! `z[b, c, oh, ow] = ⟨patch(b, p), W_c⟩ + bias_c = ⟨x_b, E_p·W_c⟩ + bias_c`.
//!
//! The client encrypts each image once per side ([`EncryptedImages`],
//! `cryptonn_client::ImageClient`); the authority answers a request for a
//! kernel with one key per position, and one for an error vector with one
//! key per kernel tap ([`PatchGeometry`]). The layer runs
//! [`SecureLinear`](crate::SecureLinear)'s path with the kernel reshaped to
//! `[C_in·kh·kw, C_out]`, the patches never materialized on either side.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use cryptonn_fe::Group;

use cryptonn_protocol::{EncryptedImages, PatchGeometry};

use crate::Error;

use crate::context::SecureContext;
use crate::secure_linear::{Operand, secure_matmul};

/// Configuration of a [`SecureConv2d`] layer, as [`Conv2dConfig`] with
/// dilation 1 and groups 1.
#[derive(Config, Debug)]
pub struct SecureConv2dConfig {
    /// Input and output channels, `[C_in, C_out]`.
    pub channels: [usize; 2],
    /// Kernel size `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// Stride. Default `[1, 1]`.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Padding, as Burn's; it must be symmetric, since the client pads each
    /// side alike. Default [`PaddingConfig2d::Valid`].
    #[config(default = "PaddingConfig2d::Valid")]
    pub padding: PaddingConfig2d,
    /// Whether to add a bias. Default `true`.
    #[config(default = true)]
    pub bias: bool,
    /// Weight initializer. Default: Burn's `Conv2d` default, Kaiming uniform
    /// with gain 1/√3.
    #[config(
        default = "Initializer::KaimingUniform { gain: 0.577_350_269_189_625_8, fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

impl SecureConv2dConfig {
    /// Initializes the layer on `device`, exactly as the same [`Conv2dConfig`] would.
    pub fn init(&self, device: &Device) -> SecureConv2d {
        let conv = Conv2dConfig::new(self.channels, self.kernel_size)
            .with_stride(self.stride)
            .with_padding(self.padding.clone())
            .with_bias(self.bias)
            .with_initializer(self.initializer.clone())
            .init(device);
        SecureConv2d {
            weight: conv.weight,
            bias: conv.bias,
            stride: conv.stride,
            kernel_size: conv.kernel_size,
            padding: conv.padding,
        }
    }
}

/// A 2-D convolution (dilation 1, groups 1) whose input is a batch of
/// [`EncryptedImages`].
///
/// The weights are stored as Burn's [`Conv2d`] stores them (`W: [C_out, C_in,
/// kh, kw]`), so they move both ways unchanged (`TryFrom<Conv2d>`,
/// [`SecureConv2d::into_conv2d`]).
///
/// - **Forward**: the kernel of each output channel c, flattened, is
///   quantized to an integer key vector; the authority issues a FEIP key for
///   `E_p·W_c` at every position p under the row-wise master key; the server
///   decrypts ⟨x_b, E_p·W_c⟩ = ⟨patch(b, p), W_c⟩ for every image b,
///   position p and channel c.
/// - **Backward** (on an autodiff device): the custom autodiff node of
///   [`SecureLinear`](crate::SecureLinear) receives δ = ∂L/∂z as
///   `[B·P, C_out]`, obtains a key for `G_j·δ_c` at every kernel tap j under
///   the column-wise master key and decrypts the kernel gradient
///   Σ_b Σ_p δ_b,p,c · patch(b, p)_j from the batch's one ciphertext.
///   Burn's reshape and transpose carry it back to the kernel; any Burn
///   optimizer then updates it.
///
/// The bias and everything after this layer are ordinary Burn operations.
///
/// # Discrete-log bound
/// Every decrypted value must lie within the decryptor's discrete-log bound:
/// with pixels up to 255 and b-bit key digits, a forward value is at most
/// `255 · (2^(b−1) − 1) · C_in·kh·kw` (1.3·10⁷ for LeNet-5's 5×5 kernel at
/// 12 bits), and a kernel-gradient value at most `255 · (2^(b−1) − 1) · B·P`,
/// which can pass 2³¹ for large batches when δ keeps one sign. A value
/// outside the bound is [`cryptonn_fe::Error::OutOfBound`], never a wrong
/// number: in the forward pass as the error of [`SecureConv2d::forward`], in
/// the backward pass through [`SecureContext::backward`].
///
/// # Security
/// The forward pass alone gives the server `C_out · H_out · W_out` inner
/// products per image: for a stride-1 convolution that is more equations
/// than pixels (6 × 24 × 24 = 3,456 on 784 for LeNet-5, of rank 784): the
/// leakage audit solves every image exactly from one forward pass. The keys
/// are pixel-space vectors (`Authority::patch_keys`), so a rank budget
/// counts each kernel as its positions' equations and refuses the pass
/// under any cap below full rank; only an authority issuing every key
/// (`IssueAll`) serves it.
#[derive(Module, Debug)]
pub struct SecureConv2d {
    /// `[C_out, C_in, kh, kw]`, as in [`Conv2d`].
    pub weight: Param<Tensor<4>>,
    /// `[C_out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Kernel size `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// Padding, as in [`Conv2d`].
    #[module(skip)]
    pub padding: PaddingConfig2d,
}

impl TryFrom<Conv2d> for SecureConv2d {
    type Error = Error;

    /// The same weights as a secure layer.
    ///
    /// # Errors
    /// [`Error::Shape`] if the convolution is dilated or grouped: its patches
    /// would not be a plain im2col.
    fn try_from(conv: Conv2d) -> crate::Result<Self> {
        if conv.dilation != [1, 1] || conv.groups != 1 {
            return Err(Error::Shape {
                what: "conv2d [dilation, groups] (a secure convolution has no dilation or groups)",
                expected: vec![1, 1, 1],
                got: vec![conv.dilation[0], conv.dilation[1], conv.groups],
            });
        }
        Ok(Self {
            weight: conv.weight,
            bias: conv.bias,
            stride: conv.stride,
            kernel_size: conv.kernel_size,
            padding: conv.padding,
        })
    }
}

impl SecureConv2d {
    /// The same weights as a plain [`Conv2d`].
    pub fn into_conv2d(self) -> Conv2d {
        Conv2d {
            weight: self.weight,
            bias: self.bias,
            stride: self.stride,
            kernel_size: self.kernel_size,
            dilation: [1, 1],
            groups: 1,
            padding: self.padding,
        }
    }

    /// `[C_in, C_out]`.
    pub fn channels(&self) -> [usize; 2] {
        let [c_out, c_in, _, _] = self.weight.shape().dims();
        [c_in, c_out]
    }

    /// The geometry of this layer on `[C_in, H, W]` images: what the
    /// authority's keys (`Authority::patch_keys`) and the client's
    /// ciphertexts (`cryptonn_client::ImageClient`) are made for.
    ///
    /// # Errors
    /// [`Error::Shape`] if the padding is not the same on both sides of an
    /// axis (an explicit asymmetric padding, or `Same` with an even kernel),
    /// the stride is zero, or the kernel is larger than the padded input.
    pub fn patch_geometry(
        &self,
        [channels, height, width]: [usize; 3],
    ) -> crate::Result<PatchGeometry> {
        let ((top, bottom), (left, right)) = self.padding_pairs([height, width])?;
        if top != bottom || left != right {
            return Err(Error::Shape {
                what: "conv2d padding [top, bottom, left, right] (must be symmetric)",
                expected: vec![top, top, left, left],
                got: vec![top, bottom, left, right],
            });
        }
        Ok(PatchGeometry::new(
            [channels, height, width],
            self.kernel_size,
            self.stride,
            [top, left],
        )?)
    }

    /// Padding as ((top, bottom), (left, right)), as Burn's `Conv2d` resolves it.
    fn padding_pairs(
        &self,
        [height, width]: [usize; 2],
    ) -> crate::Result<((usize, usize), (usize, usize))> {
        if self.stride.contains(&0) {
            return Err(Error::Shape {
                what: "conv2d stride (at least 1)",
                expected: vec![1, 1],
                got: self.stride.to_vec(),
            });
        }
        // Burn's `calculate_same_padding` (private to burn-nn): the extra
        // pixel of an odd total goes to the end.
        let same = |kernel: usize, stride: usize, size: usize| {
            let total = match size.div_ceil(stride) {
                0 => 0,
                out => {
                    ((out - 1).saturating_mul(stride).saturating_add(kernel)).saturating_sub(size)
                }
            };
            (total / 2, total - total / 2)
        };
        Ok(match self.padding {
            PaddingConfig2d::Valid => ((0, 0), (0, 0)),
            PaddingConfig2d::Same => (
                same(self.kernel_size[0], self.stride[0], height),
                same(self.kernel_size[1], self.stride[1], width),
            ),
            PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        })
    }

    /// The layer on plaintext input, for evaluating trained weights: Burn's
    /// `conv2d` with this layer's stride and padding.
    ///
    /// # Shapes
    /// `[batch, C_in, H, W] -> [batch, C_out, H_out, W_out]`
    ///
    /// # Panics
    /// As Burn's [`Conv2d::forward`]: for a zero stride, or an input whose
    /// channels or size do not fit the kernel.
    pub fn forward_plain(&self, input: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = input.dims();
        // A zero stride is the only error of `padding_pairs`; Burn panics on it below.
        let padding = self
            .padding_pairs([height, width])
            .unwrap_or(((0, 0), (0, 0)));
        let options = ConvOptions::new_with_padding(self.stride, [padding.0, padding.1], [1, 1], 1);
        conv2d(
            input,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        )
    }

    /// The layer on encrypted images: `[images, C_in, H, W]` as
    /// [`EncryptedImages::geometry`] says, which must be this layer's
    /// [`SecureConv2d::patch_geometry`] of that image shape.
    ///
    /// # Shapes
    /// `EncryptedImages [batch, C_in, H, W] -> [batch, C_out, H_out, W_out]`
    ///
    /// # Errors
    /// [`Error::Shape`] if the images' geometry is not this layer's (channels,
    /// kernel, stride, padding); a key refusal from the authority;
    /// [`cryptonn_fe::Error::OutOfBound`] if an output exceeds the
    /// discrete-log bound. Errors of the backward pass surface through
    /// [`SecureContext::backward`].
    pub fn forward<G: Group>(
        &self,
        images: &EncryptedImages<G>,
        ctx: &SecureContext<G>,
    ) -> crate::Result<Tensor<4>> {
        let geometry = *images.geometry();
        let c_in = geometry.image()[0];
        let [c_out, weight_c_in, kh, kw] = self.weight.shape().dims();
        let ours = (c_in == weight_c_in)
            .then(|| self.patch_geometry(geometry.image()))
            .transpose()?;
        if ours != Some(geometry) {
            return Err(Error::Shape {
                what: "encrypted images' [C_in, kh, kw, sh, sw] (this layer's)",
                expected: vec![weight_c_in, kh, kw, self.stride[0], self.stride[1]],
                got: [&[c_in][..], &geometry.kernel(), &geometry.stride()].concat(),
            });
        }
        let [h_out, w_out] = geometry.output();
        let x = Operand {
            row_key: images.row_key(),
            rows: images.rows(),
            row_fan: geometry.positions(),
            col_key: images.col_key(),
            cols: images.batch(),
            col_fan: geometry.patch_len(),
            input_scale: images.input_scale(),
        };
        // [C_out, C_in, kh, kw] → [C_in·kh·kw, C_out] with Burn ops, so that
        // autodiff carries the kernel gradient back to the 4-D parameter.
        let weight = self
            .weight
            .val()
            .reshape([c_out, geometry.patch_len()])
            .transpose();
        let z = secure_matmul(weight, x, ctx)?
            .reshape([images.images(), h_out, w_out, c_out])
            .permute([0, 3, 1, 2]);
        Ok(match &self.bias {
            Some(bias) => z + bias.val().reshape([1, c_out, 1, 1]),
            None => z,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
    #![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

    use super::*;

    fn layer(kernel: usize, stride: usize, padding: PaddingConfig2d) -> SecureConv2d {
        SecureConv2dConfig::new([1, 2], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(padding)
            .init(&Device::ndarray())
    }

    #[test]
    fn output_size_matches_burn() {
        let device = Device::ndarray();
        for (kernel, stride, padding) in [
            (3, 1, PaddingConfig2d::Valid),
            (3, 2, PaddingConfig2d::Explicit(1, 1, 1, 1)),
            (5, 1, PaddingConfig2d::Same),
            (3, 2, PaddingConfig2d::Explicit(2, 0, 2, 0)),
        ] {
            let secure = layer(kernel, stride, padding);
            let [h_out, w_out] = secure.patch_geometry([1, 9, 7]).unwrap().output();
            let plain = secure.clone().into_conv2d();
            let z = plain.forward(Tensor::zeros([1, 1, 9, 7], &device));
            assert_eq!(z.dims(), [1, 2, h_out, w_out]);
            assert_eq!(
                secure
                    .forward_plain(Tensor::zeros([1, 1, 9, 7], &device))
                    .dims(),
                z.dims()
            );
        }
    }

    #[test]
    fn rejects_asymmetric_padding() {
        // `Same` with an even kernel pads one more pixel at the end.
        let secure = layer(4, 1, PaddingConfig2d::Same);
        assert!(matches!(
            secure.patch_geometry([1, 8, 8]),
            Err(Error::Shape { .. })
        ));
        let secure = layer(3, 1, PaddingConfig2d::Explicit(1, 0, 0, 0));
        assert!(matches!(
            secure.patch_geometry([1, 8, 8]),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn rejects_dilated_or_grouped_conv2d() {
        let device = Device::ndarray();
        let dilated = Conv2dConfig::new([2, 2], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        assert!(SecureConv2d::try_from(dilated).is_err());
        let grouped = Conv2dConfig::new([2, 2], [3, 3])
            .with_groups(2)
            .init(&device);
        assert!(SecureConv2d::try_from(grouped).is_err());
        let plain = Conv2dConfig::new([2, 2], [3, 3]).init(&device);
        assert!(SecureConv2d::try_from(plain).is_ok());
    }
}
