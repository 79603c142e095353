//! Quantization of weights and back-propagated errors into FE key vectors.
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
use cryptonn_fe::FixedPoint;

/// Bit widths of the quantized key vectors.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct QuantizationConfig {
    /// Signed bits per quantized weight (|w| ≤ 2^(bits−1) − 1). Default 12.
    #[config(default = 12)]
    pub weight_bits: u32,
    /// Signed bits per quantized back-propagated error δ. Default 12.
    #[config(default = 12)]
    pub delta_bits: u32,
    /// Units per 1.0 of the softmax output used with encrypted labels. Default 2¹⁶.
    #[config(default = 65536)]
    pub label_scale: i64,
}

/// The columns of a row-major `[rows, cols]` matrix, each quantized to
/// `bits` signed bits at its own scale.
///
/// # Errors
/// [`cryptonn_fe::Error::InvalidParameter`] for bit widths outside 2..=30 or
/// non-finite entries.
pub fn quantize_columns(
    data: &[f32],
    rows: usize,
    cols: usize,
    bits: u32,
) -> crate::Result<(Vec<Vec<i64>>, Vec<FixedPoint>)> {
    if !(2..=30).contains(&bits) {
        return Err(cryptonn_fe::Error::InvalidParameter(format!(
            "quantization needs 2..=30 bits, got {bits}"
        ))
        .into());
    }
    let max_int = (1i64 << (bits - 1)) - 1;
    let mut columns = Vec::with_capacity(cols);
    let mut scales = Vec::with_capacity(cols);
    for j in 0..cols {
        let column = || (0..rows).map(|i| f64::from(data[i * cols + j]));
        let max = column().fold(0.0f64, |m, v| m.max(v.abs()));
        let fixed = FixedPoint::fit(max, max_int)?;
        columns.push(fixed.encode_all(column())?);
        scales.push(fixed);
    }
    Ok((columns, scales))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_use_their_own_scale() {
        // [[1, -0.5], [0.5, 0.25]]
        let (cols, scales) = quantize_columns(&[1.0, -0.5, 0.5, 0.25], 2, 2, 8).unwrap();
        assert_eq!(cols, vec![vec![127, 64], vec![-127, 64]]);
        assert_eq!(scales[0].scale(), 127.0);
        assert_eq!(scales[1].scale(), 254.0);
    }

    #[test]
    fn zero_column_is_all_zero() {
        let (cols, _) = quantize_columns(&[0.0, 0.0], 2, 1, 8).unwrap();
        assert_eq!(cols, vec![vec![0, 0]]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(quantize_columns(&[f32::NAN], 1, 1, 8).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 1).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 40).is_err());
    }
}
