//! Attack (b): the linear minimum-mean-square-error estimate under a prior
//! fitted to public images.

use burn::tensor::Device;

use super::affine::{Basis, dot, read, tensor};
use super::{Equations, Error, PEAK, Result};

/// Mean μ and covariance Σ of public images (e.g. the MNIST test set, when
/// the victims are training images): the server's Gaussian model of an image.
#[derive(Debug, Clone)]
pub struct Prior {
    n: usize,
    mean: Vec<f64>,
    /// Σ, row-major n×n.
    covariance: Vec<f64>,
}

impl Prior {
    /// μ = (1/N)·Σ x_b and Σ = (1/N)·Σ (x_b − μ)(x_b − μ)ᵀ over the N images of
    /// `n` pixels in `pixels` (row-major). The product runs in f32 on the
    /// ndarray device: relative error ≈ 1e-6, ample for a prior.
    ///
    /// # Errors
    /// [`Error::EmptyPrior`] without a whole image; [`Error::Shape`] if
    /// `pixels` is not a whole number of images; [`Error::Backend`] if the
    /// tensor backend fails.
    pub fn from_images(pixels: &[i64], n: usize) -> Result<Self> {
        if n == 0 || pixels.len() < n {
            return Err(Error::EmptyPrior);
        }
        if !pixels.len().is_multiple_of(n) {
            return Err(Error::Shape {
                what: "prior images".into(),
                expected: pixels.len() / n * n,
                got: pixels.len(),
            });
        }
        let count = pixels.len() / n;
        let mut mean = vec![0.0; n];
        for image in pixels.chunks_exact(n) {
            mean.iter_mut()
                .zip(image)
                .for_each(|(m, &p)| *m += p as f64);
        }
        mean.iter_mut().for_each(|m| *m /= count as f64);
        let centered: Vec<f32> = pixels
            .chunks_exact(n)
            .flat_map(|image| image.iter().zip(&mean).map(|(&p, m)| (p as f64 - m) as f32))
            .collect();
        let device = Device::ndarray();
        let xc = tensor(centered, [count, n], &device);
        let gram = read(xc.clone().transpose().matmul(xc))?;
        let mut covariance = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                // Symmetrised, so the f32 products cannot break Σ = Σᵀ.
                let s = f64::from(gram[i * n + j]) + f64::from(gram[j * n + i]);
                covariance[i * n + j] = s / (2.0 * count as f64);
            }
        }
        Ok(Self {
            n,
            mean,
            covariance,
        })
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// μ.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Σ, row-major n×n.
    pub fn covariance(&self) -> &[f64] {
        &self.covariance
    }

    /// Σ·u.
    fn apply(&self, u: &[f64]) -> Vec<f64> {
        self.covariance
            .chunks_exact(self.n)
            .map(|row| dot(row, u))
            .collect()
    }

    /// The ridge ε added to Σ: 1e-6 of the mean pixel variance, plus 1e-6 for
    /// a degenerate prior. Σ + εI is positive definite, and the estimate is
    /// still exact when the keys span ℝⁿ.
    fn ridge(&self) -> f64 {
        let trace: f64 = (0..self.n).map(|i| self.covariance[i * self.n + i]).sum();
        1e-6 * trace / self.n as f64 + 1e-6
    }
}

/// Per image, the posterior mean of x ~ 𝒩(μ, Σ + εI) given the forward
/// equations Aᵀ·x = z:
///
/// x̂ = μ + Σ_ε·A·(Aᵀ·Σ_ε·A)⁻¹·(z − Aᵀ·μ),
///
/// clipped to [0, 255], computed with the keys made orthonormal (U, same
/// span, so the same x̂) and a Cholesky factor of Uᵀ·Σ_ε·U. When U spans ℝⁿ,
/// x̂ = μ + U·Uᵀ·(x − μ) = x. Gradient equations are not used (they couple
/// images). Without forward equations x̂ = μ. Returns `batch`×`n`, row-major.
///
/// # Errors
/// [`Error::Shape`] if an equation or the prior does not fit the batch;
/// [`Error::NotPositiveDefinite`] if the prior holds non-finite values.
pub fn linear_mmse(eqs: &Equations, batch: usize, n: usize, prior: &Prior) -> Result<Vec<f64>> {
    eqs.check(batch, n)?;
    if prior.n != n {
        return Err(Error::Shape {
            what: "prior".into(),
            expected: n,
            got: prior.n,
        });
    }
    let basis = Basis::new(&eqs.forward);
    let eps = prior.ridge();
    // Σ_ε·uⱼ for every basis vector, and M = Uᵀ·Σ_ε·U.
    let su: Vec<Vec<f64>> = basis
        .vectors
        .iter()
        .map(|u| {
            let mut s = prior.apply(u);
            s.iter_mut().zip(u).for_each(|(si, ui)| *si += eps * ui);
            s
        })
        .collect();
    let r = basis.rank();
    let mut m = vec![0.0; r * r];
    for (j, uj) in basis.vectors.iter().enumerate() {
        for (k, sk) in su.iter().enumerate() {
            m[j * r + k] = dot(uj, sk);
        }
    }
    let chol = cholesky(m, r, "the prior covariance on the keys' span")?;
    let u_mean: Vec<f64> = basis.vectors.iter().map(|u| dot(u, &prior.mean)).collect();
    let mut out = Vec::with_capacity(batch * n);
    for b in 0..batch {
        let innovation: Vec<f64> = (0..r).map(|j| basis.results[j][b] - u_mean[j]).collect();
        let c = cholesky_solve(&chol, r, innovation);
        let mut x = prior.mean.clone();
        for (cj, s) in c.iter().zip(&su) {
            x.iter_mut().zip(s).for_each(|(xi, si)| *xi += cj * si);
        }
        out.extend(x.into_iter().map(|v| v.clamp(0.0, PEAK)));
    }
    Ok(out)
}

/// The lower Cholesky factor L (row-major r×r) of a symmetric positive
/// definite M = L·Lᵀ; `what` names M in the error.
pub(crate) fn cholesky(mut m: Vec<f64>, r: usize, what: &'static str) -> Result<Vec<f64>> {
    for j in 0..r {
        let d = m[j * r + j] - (0..j).map(|k| m[j * r + k].powi(2)).sum::<f64>();
        if !(d > 0.0 && d.is_finite()) {
            return Err(Error::NotPositiveDefinite(what));
        }
        let d = d.sqrt();
        m[j * r + j] = d;
        for i in j + 1..r {
            let s = m[i * r + j] - (0..j).map(|k| m[i * r + k] * m[j * r + k]).sum::<f64>();
            m[i * r + j] = s / d;
        }
        for k in j + 1..r {
            m[j * r + k] = 0.0;
        }
    }
    Ok(m)
}

/// Solves L·Lᵀ·c = rhs by forward then back substitution.
pub(crate) fn cholesky_solve(l: &[f64], r: usize, mut c: Vec<f64>) -> Vec<f64> {
    for i in 0..r {
        let s: f64 = (0..i).map(|k| l[i * r + k] * c[k]).sum();
        c[i] = (c[i] - s) / l[i * r + i];
    }
    for i in (0..r).rev() {
        let s: f64 = (i + 1..r).map(|k| l[k * r + i] * c[k]).sum();
        c[i] = (c[i] - s) / l[i * r + i];
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        let m = vec![4.0, 2.0, 2.0, 3.0];
        let l = cholesky(m, 2, "m").unwrap();
        let c = cholesky_solve(&l, 2, vec![6.0, 5.0]);
        assert!((c[0] - 1.0).abs() < 1e-12 && (c[1] - 1.0).abs() < 1e-12);
        assert!(cholesky(vec![1.0, 2.0, 2.0, 1.0], 2, "m").is_err());
    }

    #[test]
    fn prior_of_two_images() {
        let p = Prior::from_images(&[0, 10, 2, 20], 2).unwrap();
        assert_eq!(p.mean(), &[1.0, 15.0]);
        let c = p.covariance();
        assert!(
            (c[0] - 1.0).abs() < 1e-4 && (c[1] - 5.0).abs() < 1e-4 && (c[3] - 25.0).abs() < 1e-3
        );
        assert!(matches!(
            Prior::from_images(&[1, 2, 3], 2),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(Prior::from_images(&[], 2), Err(Error::EmptyPrior)));
    }
}
