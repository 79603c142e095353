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

use cryptonn_fe::FixedPoint;

/// The columns of a matrix as FE key vectors: `limbs` digit vectors per
/// column (column j, digit l at index j·limbs + l), and each column's scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// The key vectors.
    pub vectors: Vec<Vec<i64>>,
    /// The scale of each column.
    pub scales: Vec<FixedPoint>,
    limbs: usize,
    bits: u32,
}

impl Quantized {
    /// The real inner product of column j, from the decrypted inner products
    /// of its digit vectors (`products[j·limbs + l]`), divided by `input_scale`.
    pub fn decode(&self, products: &[i64], j: usize, input_scale: f64) -> f64 {
        let value = products[j * self.limbs..(j + 1) * self.limbs]
            .iter()
            .rev()
            .fold(0i128, |acc, &r| (acc << self.bits) + i128::from(r));
        value as f64 / (input_scale * self.scales[j].scale())
    }

    /// Key vectors per column.
    pub fn limbs(&self) -> usize {
        self.limbs
    }

    /// Columns of the quantized matrix.
    pub fn columns(&self) -> usize {
        self.scales.len()
    }
}

/// The columns of a row-major `[rows, cols]` matrix, each quantized at its
/// own scale to `limbs` balanced digits of `bits` signed bits.
///
/// # Errors
/// [`cryptonn_fe::Error::InvalidParameter`] for bit widths outside 2..=30,
/// `bits·limbs` above 62, or non-finite entries.
pub fn quantize_columns(
    data: &[f32],
    rows: usize,
    cols: usize,
    bits: u32,
    limbs: u32,
) -> cryptonn_protocol::Result<Quantized> {
    if !(2..=30).contains(&bits) || limbs == 0 || bits * limbs > 62 {
        return Err(cryptonn_fe::Error::InvalidParameter(format!(
            "quantization needs 2..=30 bits per digit and at most 62 bits in all, got {limbs} × {bits}"
        ))
        .into());
    }
    let max_int = (1i64 << (bits * limbs - 1)) - 1;
    let base = 1i64 << bits;
    let mut vectors = Vec::with_capacity(cols * limbs as usize);
    let mut scales = Vec::with_capacity(cols);
    for j in 0..cols {
        let column = || (0..rows).map(|i| f64::from(data[i * cols + j]));
        let max = column().fold(0.0f64, |m, v| m.max(v.abs()));
        let fixed = FixedPoint::fit(max, max_int)?;
        let mut rest = fixed.encode_all(column())?;
        for l in 0..limbs {
            let digits: Vec<i64> = if l + 1 == limbs {
                rest.clone()
            } else {
                rest.iter()
                    .map(|&v| (v + base / 2).rem_euclid(base) - base / 2)
                    .collect()
            };
            for (r, d) in rest.iter_mut().zip(&digits) {
                *r = (*r - d) >> bits;
            }
            vectors.push(digits);
        }
        scales.push(fixed);
    }
    Ok(Quantized {
        vectors,
        scales,
        limbs: limbs as usize,
        bits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_use_their_own_scale() {
        // [[1, -0.5], [0.5, 0.25]]
        let q = quantize_columns(&[1.0, -0.5, 0.5, 0.25], 2, 2, 8, 1).unwrap();
        assert_eq!(q.vectors, vec![vec![127, 64], vec![-127, 64]]);
        assert_eq!(q.scales[0].scale(), 127.0);
        assert_eq!(q.scales[1].scale(), 254.0);
    }

    #[test]
    fn digits_recombine_exactly() {
        let data = [0.123_456_7f32, -0.987_654_3, 0.5, -1.0];
        let q = quantize_columns(&data, 4, 1, 8, 3).unwrap();
        assert_eq!(q.limbs(), 3);
        assert!(q.vectors.iter().flatten().all(|d| d.abs() <= 128));
        // ⟨e_i, column⟩ for each row i recovers the value at 23-bit precision.
        for (i, &v) in data.iter().enumerate() {
            let products: Vec<i64> = q.vectors.iter().map(|digits| digits[i]).collect();
            let decoded = q.decode(&products, 0, 1.0);
            assert!(
                (decoded - f64::from(v)).abs() <= 0.5 / q.scales[0].scale(),
                "{decoded} vs {v}"
            );
        }
    }

    #[test]
    fn zero_column_is_all_zero() {
        let q = quantize_columns(&[0.0, 0.0], 2, 1, 8, 1).unwrap();
        assert_eq!(q.vectors, vec![vec![0, 0]]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(quantize_columns(&[f32::NAN], 1, 1, 8, 1).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 1, 1).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 40, 1).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 30, 3).is_err());
        assert!(quantize_columns(&[1.0], 1, 1, 8, 0).is_err());
    }
}
