//! How weights and back-propagated errors become FE key vectors: the bit
//! widths, as a Burn [`Config`]. The quantization itself is
//! [`cryptonn_server::quantize`].
//!
//! Each column of W (and of δ) becomes one function-key vector, so each gets
//! its own scale: sⱼ = (2^(bits−1) − 1) / max|column j|. A decrypted inner
//! product n then decodes as n / (s_x · sⱼ), where s_x is the input scale of
//! the encrypted batch (255 for raw pixels in [0, 1]).
//!
//! # Error bound
//! Rounding moves each quantized entry by at most 1/(2sⱼ), so a decoded
//! pre-activation zⱼ = ⟨x, wⱼ⟩ is off by at most ‖x‖₁ / (2sⱼ) =
//! ‖x‖₁·max|wⱼ| / (2^bits − 2). With 12 bits and MNIST-sized inputs this is a
//! relative error of about 10⁻³ of the largest term; see
//! [`cryptonn_fe::FixedPoint::inner_product_error`] for the general formula.
//! The inputs themselves are exact: pixels are integers.

use burn::config::Config;

/// Bit widths of the quantized key vectors.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct QuantizationConfig {
    /// Signed bits per quantized weight digit (|digit| ≤ 2^(bits−1)). Default 12.
    #[config(default = 12)]
    pub weight_bits: u32,
    /// Signed bits per quantized back-propagated error digit. Default 12.
    #[config(default = 12)]
    pub delta_bits: u32,
    /// Digits per value: each column is split into this many key vectors of
    /// `bits`-bit digits in base 2^bits, for about `bits·limbs` bits of
    /// precision at `limbs` times the keys and decryptions. Default 1.
    #[config(default = 1)]
    pub limbs: u32,
    /// Back-propagated error vectors with fewer non-zero entries are not sent
    /// for keys (their gradient columns stay zero): a key for a sparse vector
    /// reveals individual samples, and a rank-budget authority refuses it.
    /// Default 8.
    #[config(default = 8)]
    pub min_key_support: usize,
    /// Units per 1.0 of the softmax output used with encrypted labels. Default 2¹⁶.
    #[config(default = 65536)]
    pub label_scale: i64,
}
