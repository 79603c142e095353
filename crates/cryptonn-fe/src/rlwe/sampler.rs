//! A constant-time sampler of the rounded Gaussian of standard deviation σ,
//! standing in for the discrete Gaussian D_{ℤ,σ} of the scheme.
//!
//! Box–Muller on 128 fresh bits from the caller's CSPRNG: u₁ = w/2⁶⁴ with
//! w odd (so u₁ ∈ [2⁻⁶⁴, 1)), θ = 2π·v/2⁶⁴, and the pair
//! round(σ·√(−2 ln u₁)·(cos θ, sin θ)). ln, sin and cos are fixed
//! polynomials (no libm), reductions use integer masks, rounding truncates
//! after adding ±½: no branch and no memory index depends on a sample.
//!
//! Distance from D_{ℤ,σ} (argued in `docs/RLWE.md`):
//! - tail: |z| ≤ √(128 ln 2) < [`TAIL`] always (u₁ ≥ 2⁻⁶⁴); the cut mass is
//!   2Φ(−9.418) ≈ 2⁻⁶⁷ per sample. Samples are also clamped to ⌈TAIL·σ⌉,
//!   which makes the correctness bound of [`super::params`] deterministic;
//! - rounding a continuous Gaussian instead of sampling D_{ℤ,σ}: relative
//!   error of each probability ≤ (TAIL² + 1)/(24σ²), at most 2⁻²⁴ for
//!   σ ≥ 2⁹ (all our σ₁ at the main job's shapes) and 2⁻⁶⁶ for σ₂, σ₃;
//! - polynomial error ≤ 2⁻⁵⁰ relative (tested against libm).
//!
//! # Security
//! Constant time holds for the integer and f64 add/mul code; `sqrtsd` and
//! `divsd` are fixed-latency on current x86-64 cores but not guaranteed to
//! be on every CPU.
//!
//! There is no sampler state to seed: every call draws from the
//! `CryptoRng` it is given (the authors' C code left two sampler states
//! uninitialised; this API cannot express that).

use rand_core::CryptoRng;

use crate::{Error, Result};

/// The hard tail cut in units of σ: above √(−2 ln 2⁻⁶⁴) = 9.4187….
pub const TAIL: f64 = 9.42;

const LN2: f64 = core::f64::consts::LN_2;
const SQRT2: f64 = core::f64::consts::SQRT_2;
const FRAC_1_SQRT2: f64 = core::f64::consts::FRAC_1_SQRT_2;

/// Samples of a rounded Gaussian N(0, σ²), clamped to ±⌈TAIL·σ⌉.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gaussian {
    sigma: f64,
    max_abs: i64,
}

impl Gaussian {
    /// The sampler of standard deviation σ.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] unless 1 ≤ σ ≤ 2⁴⁶ (every sample then
    /// fits f64 exactly).
    pub fn new(sigma: f64) -> Result<Self> {
        if !(1.0..=2f64.powi(46)).contains(&sigma) {
            return Err(Error::InvalidParameter(format!(
                "Gaussian sigma must be in [1, 2^46], got {sigma}"
            )));
        }
        Ok(Self {
            sigma,
            max_abs: (TAIL * sigma).ceil() as i64,
        })
    }

    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The largest |sample|, ⌈TAIL·σ⌉.
    pub fn max_abs(&self) -> i64 {
        self.max_abs
    }

    /// Two independent samples.
    pub fn sample_pair<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> (i64, i64) {
        let (w, v) = (rng.next_u64(), rng.next_u64());
        let radius = self.sigma * (-2.0 * ln_unit(w)).max(0.0).sqrt();
        let (c, s) = cos_sin_turn(v);
        (self.round(radius * c), self.round(radius * s))
    }

    /// Fills `out` with independent samples.
    pub fn fill<R: CryptoRng + ?Sized>(&self, out: &mut [i64], rng: &mut R) {
        let mut pairs = out.chunks_exact_mut(2);
        for pair in &mut pairs {
            (pair[0], pair[1]) = self.sample_pair(rng);
        }
        if let [last] = pairs.into_remainder() {
            *last = self.sample_pair(rng).0;
        }
    }

    /// round(v) half away from zero, clamped; branch-free.
    #[inline(always)]
    fn round(&self, v: f64) -> i64 {
        let half = f64::from_bits(0.5f64.to_bits() | (v.to_bits() & (1 << 63)));
        ((v + half) as i64).clamp(-self.max_abs, self.max_abs)
    }
}

/// ln(w/2⁶⁴) for the odd value w | 1, without branches.
#[inline(always)]
pub(crate) fn ln_unit(w: u64) -> f64 {
    let w = w | 1;
    let lz = w.leading_zeros();
    // w/2⁶⁴ = m·2^(−1−lz) with m ∈ [1, 2) holding w's top 53 bits.
    let m = ((w << lz) >> 11) as f64 * 2f64.powi(-52);
    // Reduce m to [1/√2, √2): halve it (and count one more 2) if m > √2.
    let big = u64::from(m > SQRT2);
    let m = f64::from_bits(m.to_bits() - (big << 52));
    let exp = big as f64 - 1.0 - f64::from(lz);
    ln_near_one(m) + exp * LN2
}

/// ln m for m ∈ [1/√2, √2): 2·atanh(s), s = (m − 1)/(m + 1), |s| < 0.1716,
/// series to s²¹ (remainder < 2⁻⁵⁸).
#[inline(always)]
fn ln_near_one(m: f64) -> f64 {
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut acc = 1.0 / 21.0;
    for k in (0..10).rev() {
        acc = acc * s2 + 1.0 / f64::from(2 * k + 1);
    }
    2.0 * s * acc
}

/// (cos θ, sin θ) for θ = 2π·v/2⁶⁴, without branches: the top two bits
/// pick the quadrant, the rest φ ∈ [0, π/2) is written φ = π/4 + d.
#[inline(always)]
pub(crate) fn cos_sin_turn(v: u64) -> (f64, f64) {
    let quadrant = v >> 62;
    let frac = ((v << 2) >> 11) as f64 * 2f64.powi(-53);
    let d = (frac - 0.5) * core::f64::consts::FRAC_PI_2;
    let (sd, cd) = sin_cos_small(d);
    let (c, s) = ((cd - sd) * FRAC_1_SQRT2, (cd + sd) * FRAC_1_SQRT2);
    // Rotate by quadrant·π/2: swap on odd quadrants, then fix the signs.
    let (cb, sb) = (c.to_bits(), s.to_bits());
    let swap = 0u64.wrapping_sub(quadrant & 1) & (cb ^ sb);
    let (x, y) = (cb ^ swap, sb ^ swap);
    let x = x ^ (((quadrant ^ (quadrant >> 1)) & 1) << 63);
    let y = y ^ ((quadrant >> 1) << 63);
    (f64::from_bits(x), f64::from_bits(y))
}

/// (−1)ᵏ/(2k+1)! and (−1)ᵏ/(2k)! for k < 10, the Taylor coefficients of
/// sin and cos.
const SIN_COS_COEFFS: ([f64; 10], [f64; 10]) = {
    let (mut s, mut c) = ([0.0; 10], [0.0; 10]);
    let mut fact = 1.0; // (2k)!
    let mut k = 0;
    while k < 10 {
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        c[k] = sign / fact;
        fact *= (2 * k + 1) as f64;
        s[k] = sign / fact;
        fact *= (2 * k + 2) as f64;
        k += 1;
    }
    (s, c)
};

/// (sin d, cos d) for |d| ≤ π/4: Taylor series to d¹⁹ and d¹⁸ (remainder
/// < 2⁻⁵⁸).
#[inline(always)]
fn sin_cos_small(d: f64) -> (f64, f64) {
    let d2 = d * d;
    let (sc, cc) = SIN_COS_COEFFS;
    let (mut s, mut c) = (0.0, 0.0);
    for k in (0..10).rev() {
        s = s * d2 + sc[k];
        c = c * d2 + cc[k];
    }
    (s * d, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_core::Rng;

    #[test]
    fn polynomials_match_libm() {
        let mut rng = StdRng::seed_from_u64(1);
        for i in 0..200_000u64 {
            let w = if i < 64 {
                1u64 << i | 1
            } else {
                rng.next_u64()
            };
            let exact = ((w | 1) as f64 / 2f64.powi(64)).ln();
            // w keeps its top 53 bits: 2⁻⁵³ of u₁ is input rounding, not error.
            assert!(
                (ln_unit(w) - exact).abs() <= 2.3e-16 + 4e-16 * exact.abs(),
                "{w}"
            );
            let v = rng.next_u64();
            let theta = v as f64 / 2f64.powi(64) * core::f64::consts::TAU;
            let (c, s) = cos_sin_turn(v);
            assert!(
                (c - theta.cos()).abs() < 1e-15 && (s - theta.sin()).abs() < 1e-15,
                "{v}"
            );
        }
    }

    #[test]
    fn moments_and_tail_cut() {
        for sigma in [1.0, 3.2, 1.43e4, 7.5e10] {
            let g = Gaussian::new(sigma).unwrap();
            let mut rng = StdRng::seed_from_u64(sigma as u64);
            let mut xs = vec![0i64; 100_000];
            g.fill(&mut xs, &mut rng);
            let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            // Rounding adds 1/12 to the variance.
            let expected = sigma * sigma + 1.0 / 12.0;
            assert!(mean.abs() < 0.02 * sigma + 0.02, "σ {sigma}: mean {mean}");
            assert!((var / expected - 1.0).abs() < 0.02, "σ {sigma}: var {var}");
            assert!(xs.iter().all(|x| x.abs() <= g.max_abs()));
        }
    }

    #[test]
    fn small_sigma_frequencies_match_the_gaussian() {
        let g = Gaussian::new(2.0).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut xs = vec![0i64; 400_000];
        g.fill(&mut xs, &mut rng);
        for k in -6i64..=6 {
            let got = xs.iter().filter(|&&x| x == k).count() as f64 / xs.len() as f64;
            // P(round(N(0, 4)) = k) = Φ((k+½)/2) − Φ((k−½)/2), by a fine midpoint sum.
            let expected: f64 = (0..1000)
                .map(|i| {
                    let t = k as f64 - 0.5 + (i as f64 + 0.5) / 1000.0;
                    (-t * t / 8.0).exp() / (8.0 * core::f64::consts::PI).sqrt() / 1000.0
                })
                .sum();
            assert!(
                (got - expected).abs() < 4.0 * (expected / xs.len() as f64).sqrt() + 1e-4,
                "{k}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn every_sample_comes_from_the_given_rng() {
        let g = Gaussian::new(1.43e4).unwrap();
        let draw = |seed| {
            let mut out = vec![0i64; 33];
            g.fill(&mut out, &mut StdRng::seed_from_u64(seed));
            out
        };
        assert_eq!(draw(5), draw(5));
        let (a, b) = (draw(5), draw(6));
        assert!(
            a.iter().zip(&b).all(|(x, y)| x != y)
                || a.iter().zip(&b).filter(|(x, y)| x == y).count() < 2
        );
    }

    #[test]
    fn rejects_bad_sigma() {
        assert!(Gaussian::new(0.5).is_err());
        assert!(Gaussian::new(f64::NAN).is_err());
        assert!(Gaussian::new(2f64.powi(47)).is_err());
    }
}
