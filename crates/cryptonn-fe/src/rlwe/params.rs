//! Parameters of the Ring-LWE scheme, derived from its correctness and
//! flooding bounds (the derivation, formula by formula, is in `docs/RLWE.md`).
//!
//! With κ = 128, vectors of length l, |xᵢ| ≤ Bₓ and |yᵢ| ≤ B_y:
//! - K = 2·l·Bₓ·B_y + 1 (odd, so ±l·Bₓ·B_y do not collide mod K);
//! - σ₁ = 2·√l·Bₓ (msk sᵢ and public-key noise eᵢ);
//! - σ₂ = √(2(l+2))·n·σ₁·√κ (encryption randomness r and f₀, flooding);
//! - σ₃ = √2·σ₂ (noise fᵢ of each ciphertext row);
//! - q ≥ 2K·l·B_y·(2nκσ₁σ₂ + √κσ₃) (GoFE's `NewRingLWE`, tails at √κ·σ).
//!
//! q is fixed: the product of the two 62-bit primes of [`super::ntt`], just
//! under 2¹²⁴. Security is checked against the HomomorphicEncryption.org
//! standard's lattice-estimator table for 128-bit post-quantum security.

use super::ntt::{MAX_DEGREE, Rns};
use super::sampler::TAIL;
use crate::{Error, Result};

/// The security parameter κ of the bounds.
pub const KAPPA: f64 = 128.0;

/// Largest log₂ q for 128-bit post-quantum security at each ring degree
/// (HomomorphicEncryption.org security standard, Albrecht et al. 2018,
/// Table 1, error σ ≈ 3.2, "quantum 128"; our errors are wider, which only
/// makes the problem harder).
pub const PQ128_MAX_LOG_Q: [(usize, f64); 6] = [
    (1024, 25.0),
    (2048, 51.0),
    (4096, 101.0),
    (8192, 202.0),
    (16384, 411.0),
    (32768, 827.0),
];

/// The largest vector length l and bounds Bₓ, B_y accepted.
pub const MAX_DIM: usize = 1 << 16;
/// The largest Bₓ and B_y accepted.
pub const MAX_BOUND: u64 = 1 << 20;

/// One parameter set: ring degree n, vector length l, bounds, and the
/// Gaussian widths and modulus that follow from them.
#[derive(Clone, Debug)]
pub struct Params {
    degree: usize,
    dim: usize,
    x_bound: u64,
    y_bound: u64,
    secure: bool,
    sigma: [f64; 3],
    k: u64,
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        // The σs and K are functions of these.
        let key = |p: &Self| (p.degree, p.dim, p.x_bound, p.y_bound, p.secure);
        key(self) == key(other)
    }
}

impl Eq for Params {}

impl Params {
    /// Parameters for 128-bit classical and post-quantum security: n = 8192
    /// or more, vectors of length `dim` with |xᵢ| ≤ `x_bound` and
    /// |yᵢ| ≤ `y_bound`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if q = p₀p₁ is too small for correct
    /// decryption at these bounds, if log₂ q exceeds the security table at
    /// this degree, or for bounds out of range.
    pub fn new(degree: usize, dim: usize, x_bound: u64, y_bound: u64) -> Result<Self> {
        let p = Self::build(degree, dim, x_bound, y_bound, true)?;
        let max = PQ128_MAX_LOG_Q
            .iter()
            .find(|(n, _)| *n == degree)
            .map(|(_, m)| *m)
            .unwrap_or(0.0);
        if p.log2_q() > max {
            return Err(Error::InvalidParameter(format!(
                "log2 q = {:.1} exceeds the 128-bit post-quantum bound {max} at n = {degree}",
                p.log2_q()
            )));
        }
        Ok(p)
    }

    /// Correct but **insecure** parameters at any power-of-two degree ≥ 16,
    /// for tests and examples only.
    ///
    /// # Security
    /// No security check is made: at small n the ring is trivially broken.
    ///
    /// # Errors
    /// As [`Params::new`], except the security table.
    pub fn insecure_for_tests(
        degree: usize,
        dim: usize,
        x_bound: u64,
        y_bound: u64,
    ) -> Result<Self> {
        Self::build(degree, dim, x_bound, y_bound, false)
    }

    /// The main job's forward shape: n = 8192, l = 785 (784 pixels and a
    /// bias), 8-bit pixels, 8-bit signed keys.
    ///
    /// # Errors
    /// Never in practice (the shape is tested); as [`Params::new`].
    pub fn forward_mnist() -> Result<Self> {
        Self::new(8192, 785, 255, 128)
    }

    /// The main job's backward shape at batch `batch`: vectors of one
    /// pixel over the batch, keys of 8-bit error terms.
    ///
    /// # Errors
    /// As [`Params::new`].
    pub fn backward_mnist(batch: usize) -> Result<Self> {
        Self::new(8192, batch, 255, 128)
    }

    fn build(degree: usize, dim: usize, x_bound: u64, y_bound: u64, secure: bool) -> Result<Self> {
        let bad = |what: String| Err(Error::InvalidParameter(what));
        if !degree.is_power_of_two() || !(16..=MAX_DEGREE).contains(&degree) {
            return bad(format!(
                "ring degree must be a power of two in 16..={MAX_DEGREE}, got {degree}"
            ));
        }
        if !(1..=MAX_DIM).contains(&dim) {
            return bad(format!("vector length must be in 1..={MAX_DIM}, got {dim}"));
        }
        if !(1..=MAX_BOUND).contains(&x_bound) || !(1..=MAX_BOUND).contains(&y_bound) {
            return bad(format!(
                "bounds must be in 1..={MAX_BOUND}, got {x_bound}, {y_bound}"
            ));
        }
        // Decryption sums y·c in 31-bit halves in u64 lanes.
        if dim as u64 * y_bound >= 1 << 32 {
            return bad(format!("l·B_y must stay below 2^32, got {dim}·{y_bound}"));
        }
        let (l, n) = (dim as f64, degree as f64);
        let s1 = 2.0 * l.sqrt() * x_bound as f64;
        let s2 = (2.0 * (l + 2.0)).sqrt() * n * s1 * KAPPA.sqrt();
        let s3 = 2f64.sqrt() * s2;
        let p = Self {
            degree,
            dim,
            x_bound,
            y_bound,
            secure,
            sigma: [s1, s2, s3],
            k: 2 * dim as u64 * x_bound * y_bound + 1,
        };
        if p.log2_q_required() > p.log2_q() {
            return bad(format!(
                "q = 2^{:.1} is too small: these bounds need 2^{:.1}",
                p.log2_q(),
                p.log2_q_required()
            ));
        }
        // Keys are derived in f64 (exact below 2⁵³); the sampler takes σ ≤ 2⁴⁶.
        if p.key_coefficient_bound() >= 2f64.powi(52) || s3 > 2f64.powi(46) {
            return bad("bounds too large for exact key derivation and sampling".into());
        }
        Ok(p)
    }

    /// The ring degree n (slots per ciphertext).
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The vector length l.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bₓ: |xᵢ| ≤ Bₓ.
    pub fn x_bound(&self) -> u64 {
        self.x_bound
    }

    /// B_y: |yᵢ| ≤ B_y.
    pub fn y_bound(&self) -> u64 {
        self.y_bound
    }

    /// Whether [`Params::new`] checked these for 128-bit security.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// (σ₁, σ₂, σ₃), standard deviations.
    pub fn sigmas(&self) -> [f64; 3] {
        self.sigma
    }

    /// The plaintext modulus K = 2·l·Bₓ·B_y + 1.
    pub fn plaintext_modulus(&self) -> u64 {
        self.k
    }

    /// The largest |⟨x, y⟩|: l·Bₓ·B_y.
    pub fn result_bound(&self) -> u64 {
        self.k / 2
    }

    /// Δ = ⌊q/K⌋, the scale of plaintexts.
    pub fn delta(&self) -> u128 {
        Rns::modulus() / u128::from(self.k)
    }

    /// log₂ q.
    pub fn log2_q(&self) -> f64 {
        (Rns::modulus() as f64).log2()
    }

    /// log₂ of GoFE's bound 2K·l·B_y·(2nκσ₁σ₂ + √κσ₃).
    pub fn log2_q_required(&self) -> f64 {
        let [s1, s2, s3] = self.sigma;
        let (l, n) = (self.dim as f64, self.degree as f64);
        let noise = 2.0 * n * KAPPA * s1 * s2 + KAPPA.sqrt() * s3;
        (2.0 * self.k as f64 * l * self.y_bound as f64 * noise).log2()
    }

    /// The deterministic bound on |sk_y| coefficients, l·B_y·⌈TAIL·σ₁⌉.
    pub(crate) fn key_coefficient_bound(&self) -> f64 {
        self.dim as f64 * self.y_bound as f64 * (TAIL * self.sigma[0]).ceil()
    }

    /// The deterministic bound on decryption noise given the samplers' hard
    /// tail cut S = ⌈TAIL·σ⌉: l·B_y·(2n·S₁·S₂ + S₃). Always below Δ/2 (the
    /// √κ > TAIL bound of [`Params::log2_q_required`] implies it).
    pub fn noise_bound(&self) -> u128 {
        let [s1, s2, s3] = self.sigma.map(|s| (TAIL * s).ceil());
        let (l, n) = (self.dim as f64, self.degree as f64);
        (l * self.y_bound as f64 * (2.0 * n * s1 * s2 + s3)).ceil() as u128
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_job_shapes_are_secure_and_correct() {
        for p in [
            Params::forward_mnist().unwrap(),
            Params::backward_mnist(256).unwrap(),
            Params::backward_mnist(4096).unwrap(),
        ] {
            assert!(p.is_secure());
            assert!(p.noise_bound() < p.delta() / 2, "{p:?}");
        }
        let f = Params::forward_mnist().unwrap();
        // The study's numbers (shared/research/rlwe/params.py): 113.6 bits.
        assert!(
            (f.log2_q_required() - 113.6).abs() < 0.1,
            "{}",
            f.log2_q_required()
        );
        assert!((f.sigmas()[0] - 1.43e4).abs() < 100.0);
    }

    #[test]
    fn rejects_insecure_degree() {
        assert!(Params::new(4096, 256, 255, 128).is_err());
        assert!(Params::insecure_for_tests(4096, 256, 255, 128).is_ok());
    }

    #[test]
    fn rejects_bounds_q_cannot_hold() {
        assert!(Params::new(8192, 1 << 16, 1 << 20, 1 << 20).is_err());
        assert!(Params::new(8192, 0, 255, 128).is_err());
        assert!(Params::new(8192, 785, 0, 128).is_err());
        assert!(Params::new(8000, 785, 255, 128).is_err());
    }
}
