//! The curious server of the leakage audit: what it can compute from what it
//! learns in CryptoNN.
//!
//! For one batch X ∈ {0, …, 255}^{B×n} (B images of n pixels, row-major) the
//! server holds [`Equations`]:
//! - **forward**: integer keys y ∈ ℤⁿ and, per image b, ⟨x_b, y⟩, i.e. X·y ∈ ℤᴮ;
//! - **gradient**: integer keys δ ∈ ℤᴮ and, per pixel i, Σ_b δ_b·X[b, i], i.e. Xᵀ·δ ∈ ℤⁿ.
//!
//! From them it can try:
//! - [`master_key`]: keys of full rank give the master secret modulo q, and
//!   with it every ciphertext (exact);
//! - [`feasibility`]: a point of {X : X·A = Z, Dᵀ·X = Gᵀ} ∩ [0, 255]^{B×n} by
//!   Douglas–Rachford, rounded; images that then satisfy their equations
//!   exactly are *certified* and substituted into the gradient equations,
//!   which pins the rest further (certify and peel);
//! - [`linear_mmse`]: the Gaussian posterior mean under a [`Prior`] fitted to
//!   public images, and [`feasibility_from`] started there;
//! - [`least_squares`]: box-constrained least squares (FISTA);
//! - [`solve_convolution`]: a secure convolution's forward pass, solved
//!   per image by least squares (more equations than pixels);
//! - [`Decoder`]: a learned prior, a network trained with Burn on public
//!   images and warped copies of them ([`augmented`]), its guess moved to
//!   the nearest image consistent with the equations (exact projection).
//!
//! [`quality`] scores any guess against the truth, and
//! [`identification_rate`] asks whether the equations single an image out
//! of a pool of candidates.
//!
//! The heavy products run on Burn's ndarray device in f32; the small
//! factorizations in f64. Certification is exact integer arithmetic, so f32
//! iterates are enough once they have converged.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

mod affine;
mod augment;
mod consistency;
mod convolution;
mod decoder;
mod feasibility;
mod identification;
mod least_squares;
mod lmmse;
pub mod master_key;
mod quality;

pub use augment::{Warp, augmented};
pub use convolution::solve_convolution;
pub use decoder::{Decoder, DecoderConfig};
pub use feasibility::{Recovery, feasibility, feasibility_from, recover};
pub use identification::identification_rate;
pub use least_squares::least_squares;
pub use lmmse::{Prior, linear_mmse};
pub use master_key::{decrypt_with_master, recover_master_secret, small, solve_mod_q};
pub use quality::{Quality, quality};

/// Largest pixel value: the box is [0, `PEAK`].
pub const PEAK: f64 = 255.0;

/// The server's linear knowledge of one batch X ∈ [0, 255]^{B×n}.
#[derive(Debug, Default, Clone)]
pub struct Equations {
    /// Row-wise keys y (length n) and, per image, ⟨x_b, y⟩: X·y (length B).
    pub forward: Vec<(Vec<i64>, Vec<i64>)>,
    /// Column-wise keys δ (length B) and, per pixel, Xᵀ·δ (length n).
    pub gradient: Vec<(Vec<i64>, Vec<i64>)>,
}

impl Equations {
    /// Checks every key and result length against a batch of `batch` images
    /// of `n` pixels.
    ///
    /// # Errors
    /// [`Error::Shape`] for the first vector of the wrong length.
    pub fn check(&self, batch: usize, n: usize) -> Result<()> {
        let sides = [
            ("forward", &self.forward, n, batch),
            ("gradient", &self.gradient, batch, n),
        ];
        for (side, eqs, key_len, result_len) in sides {
            for (index, (key, result)) in eqs.iter().enumerate() {
                for (what, got, expected) in [
                    ("key", key.len(), key_len),
                    ("result", result.len(), result_len),
                ] {
                    if got != expected {
                        return Err(Error::Shape {
                            what: format!("{side} equation {index}: {what}"),
                            expected,
                            got,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// When an iterative solver stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverConfig {
    /// Iterations of one solve at most. Default: 20,000.
    pub max_iterations: usize,
    /// Stop once ‖step‖_F ≤ tolerance · max(‖X‖_F, 1): the Douglas–Rachford
    /// residual, or FISTA's change of iterate. Default: 1e-5, above the f32
    /// noise floor (≈ 1e-7) and, for MNIST-like images, about 10⁻³ of a grey
    /// level per pixel (RMS).
    pub tolerance: f64,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            max_iterations: 20_000,
            tolerance: 1e-5,
        }
    }
}

/// Why an attack could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector of the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    Shape {
        /// Which vector.
        what: String,
        /// The length the batch implies.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// No images to fit a prior to.
    #[error("a prior needs at least one image of at least one pixel")]
    EmptyPrior,
    /// A matrix that should be positive definite is not (non-finite input).
    #[error("{0} is not positive definite")]
    NotPositiveDefinite(&'static str),
    /// The tensor backend failed to return data.
    #[error("tensor backend: {0}")]
    Backend(String),
}

/// Results of this module.
pub type Result<T> = std::result::Result<T, Error>;
