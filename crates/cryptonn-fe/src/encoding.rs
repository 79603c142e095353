//! Fixed-point encoding of real numbers as the small integers FE works on.
//!
//! A [`FixedPoint`] maps v ↦ round(v·scale), rounding half away from zero, so
//! the encoding error is at most 1/(2·scale). The integer must lie in
//! [−max_abs, max_abs]; a value that does not fit is an error, never clamped.
//!
//! An inner product of encodings at scales sₓ and s_y decodes at sₓ·s_y; its
//! error is bounded by [`FixedPoint::inner_product_error`].

use crate::{Error, Result};

/// Encodes reals as integers in [−max_abs, max_abs] at a fixed scale.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedPoint {
    scale: f64,
    max_abs: i64,
}

impl FixedPoint {
    /// Integer units per 1.0 and the largest allowed |integer|.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless scale is finite and positive and
    /// 0 < max_abs < 2⁵³ (so every integer is exact in f64).
    pub fn new(scale: f64, max_abs: i64) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) || max_abs <= 0 || max_abs >= 1 << 53 {
            return Err(Error::InvalidParameter(format!(
                "fixed point needs a finite scale > 0 and 0 < max_abs < 2^53, got scale {scale}, max_abs {max_abs}"
            )));
        }
        Ok(Self { scale, max_abs })
    }

    /// The encoding whose range [−max_abs, max_abs] covers exactly
    /// [−max_value, max_value]. A zero `max_value` (an all-zero tensor) gets
    /// scale 1.
    ///
    /// # Errors
    /// As for [`FixedPoint::new`], and for a negative or non-finite `max_value`.
    pub fn fit(max_value: f64, max_abs: i64) -> Result<Self> {
        if !(max_value.is_finite() && max_value >= 0.0) {
            return Err(Error::InvalidParameter(format!(
                "cannot fit a range of {max_value}"
            )));
        }
        let scale = if max_value == 0.0 {
            1.0
        } else {
            max_abs as f64 / max_value
        };
        Self::new(scale, max_abs)
    }

    /// Integer units per 1.0.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The largest allowed |integer|.
    pub fn max_abs(&self) -> i64 {
        self.max_abs
    }

    /// round(v·scale).
    ///
    /// # Errors
    /// [`Error::FixedPointOverflow`] if the result exceeds max_abs or v is not finite.
    pub fn encode(&self, v: f64) -> Result<i64> {
        let n = (v * self.scale).round();
        if n.is_finite() && n.abs() <= self.max_abs as f64 {
            Ok(n as i64)
        } else {
            Err(Error::FixedPointOverflow {
                value: v,
                scale: self.scale,
                bound: self.max_abs,
            })
        }
    }

    /// Encodes every value.
    ///
    /// # Errors
    /// The first overflow, as for [`FixedPoint::encode`].
    pub fn encode_all(&self, vs: impl IntoIterator<Item = f64>) -> Result<Vec<i64>> {
        vs.into_iter().map(|v| self.encode(v)).collect()
    }

    /// n / scale.
    pub fn decode(&self, n: i64) -> f64 {
        n as f64 / self.scale
    }

    /// Decodes an inner product of an encoding at `self` with one at `other`.
    pub fn decode_product(&self, other: &FixedPoint, n: i64) -> f64 {
        n as f64 / (self.scale * other.scale)
    }

    /// Worst-case error of a decoded inner product ⟨x, y⟩ of length `dim`,
    /// with |xᵢ| ≤ x_max encoded at `self` and |yᵢ| ≤ y_max at `other`:
    /// Σ |xᵢ·εᵧ + yᵢ·εₓ + εₓ·εᵧ| ≤ dim·(x_max/(2s_y) + y_max/(2sₓ) + 1/(4sₓs_y)).
    pub fn inner_product_error(
        &self,
        other: &FixedPoint,
        dim: usize,
        x_max: f64,
        y_max: f64,
    ) -> f64 {
        let (ex, ey) = (0.5 / self.scale, 0.5 / other.scale);
        dim as f64 * (x_max * ey + y_max * ex + ex * ey)
    }
}

/// The worst-case |⟨x, y⟩| for vectors of length `dim` with |xᵢ| ≤ x_max and
/// |yᵢ| ≤ y_max: dim·x_max·y_max. Size the discrete-log bound with it.
///
/// # Errors
/// [`Error::InvalidParameter`] if the product overflows u64.
pub fn inner_product_bound(dim: usize, x_max: u64, y_max: u64) -> Result<u64> {
    (dim as u64)
        .checked_mul(x_max)
        .and_then(|v| v.checked_mul(y_max))
        .ok_or_else(|| {
            Error::InvalidParameter(format!(
                "inner-product bound {dim}·{x_max}·{y_max} overflows u64"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounds_half_away_from_zero() {
        let f = FixedPoint::new(2.0, 100).unwrap();
        assert_eq!(f.encode(0.25), Ok(1));
        assert_eq!(f.encode(-0.25), Ok(-1));
        assert_eq!(f.encode(0.2), Ok(0));
    }

    #[test]
    fn overflow_is_an_error() {
        let f = FixedPoint::fit(1.0, 127).unwrap();
        assert_eq!(f.encode(1.0), Ok(127));
        assert!(matches!(
            f.encode(1.01),
            Err(Error::FixedPointOverflow { .. })
        ));
        assert!(f.encode(f64::NAN).is_err());
        assert!(f.encode(f64::INFINITY).is_err());
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(FixedPoint::new(0.0, 10).is_err());
        assert!(FixedPoint::new(f64::NAN, 10).is_err());
        assert!(FixedPoint::new(1.0, 0).is_err());
        assert!(FixedPoint::fit(-1.0, 10).is_err());
        assert!(inner_product_bound(usize::MAX, u64::MAX, 2).is_err());
        assert_eq!(inner_product_bound(784, 255, 2047), Ok(784 * 255 * 2047));
    }

    proptest! {
        #[test]
        fn decoded_inner_product_within_error(xs in prop::collection::vec(-1.0f64..1.0, 1..64), seed in 0u64..1000) {
            let ys: Vec<f64> = xs.iter().enumerate().map(|(i, _)| ((i as u64 * 7919 + seed) % 2001) as f64 / 1000.0 - 1.0).collect();
            let fx = FixedPoint::fit(1.0, 255).unwrap();
            let fy = FixedPoint::fit(1.0, 2047).unwrap();
            let ex = fx.encode_all(xs.iter().copied()).unwrap();
            let ey = fy.encode_all(ys.iter().copied()).unwrap();
            let n: i64 = ex.iter().zip(&ey).map(|(a, b)| a * b).sum();
            let exact: f64 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
            prop_assert!((fx.decode_product(&fy, n) - exact).abs() <= fx.inner_product_error(&fy, xs.len(), 1.0, 1.0) + 1e-12);
        }
    }
}
