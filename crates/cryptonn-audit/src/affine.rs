//! The affine set the equations describe, in orthonormal coordinates, and the
//! f32 tensors the solvers iterate on.
//!
//! Keys are made orthonormal by Gram–Schmidt with their results transformed
//! alongside: if y = Σ cⱼ·uⱼ + ρ·u then X·u = (X·y − Σ cⱼ·X·uⱼ)/ρ, so the
//! equations keep their meaning, and a key (nearly) dependent on the earlier
//! ones is dropped rather than divided by a tiny ρ.

use burn::tensor::{Device, Tensor, TensorData};

use super::{Equations, Error, Result};

/// A key whose part orthogonal to the earlier keys is shorter than this
/// fraction of it adds nothing but rounding noise: dropped. Integer keys that
/// are exactly dependent leave ≈ 1e-14; independent 8-bit keys of length ≤ 784
/// leave far more than 1e-8.
const DEPENDENT: f64 = 1e-8;

/// One side's equations with orthonormal keys: ⟨`vectors[j]`, ·⟩ applied to X
/// gives `results[j]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Basis {
    /// Orthonormal key vectors.
    pub vectors: Vec<Vec<f64>>,
    /// What X gives for each of them.
    pub results: Vec<Vec<f64>>,
}

impl Basis {
    /// Orthonormalises `eqs` (key, result) by Gram–Schmidt, run twice per
    /// key so that orthogonality holds to f64 precision ("twice is enough").
    pub fn new(eqs: &[(Vec<i64>, Vec<i64>)]) -> Self {
        let mut basis = Self::default();
        for (key, result) in eqs {
            let mut v: Vec<f64> = key.iter().map(|&k| k as f64).collect();
            let mut w: Vec<f64> = result.iter().map(|&r| r as f64).collect();
            let original = norm(&v);
            for _ in 0..2 {
                for (u, z) in basis.vectors.iter().zip(&basis.results) {
                    let c = dot(u, &v);
                    axpy(-c, u, &mut v);
                    axpy(-c, z, &mut w);
                }
            }
            let rest = norm(&v);
            if original == 0.0 || rest <= DEPENDENT * original {
                continue;
            }
            v.iter_mut().for_each(|e| *e /= rest);
            w.iter_mut().for_each(|e| *e /= rest);
            basis.vectors.push(v);
            basis.results.push(w);
        }
        basis
    }

    /// Number of independent keys kept.
    pub fn rank(&self) -> usize {
        self.vectors.len()
    }

    /// The same keys with only the results at `keep`: for forward keys, the
    /// equations of a subset of the images (orthonormalising commutes with
    /// choosing images, since each result is transformed on its own).
    pub fn select(&self, keep: &[usize]) -> Self {
        Self {
            vectors: self.vectors.clone(),
            results: self
                .results
                .iter()
                .map(|r| {
                    keep.iter()
                        .map(|&b| r.get(b).copied().unwrap_or(0.0))
                        .collect()
                })
                .collect(),
        }
    }
}

/// The affine set {X : X·U = Z_U, Vᵀ·X = G_V} ⊂ ℝ^{B×n}, where U (n×r) and V
/// (B×r') have orthonormal columns. `None` for a side without equations.
pub(crate) struct Affine {
    /// U `[n, r]` and Z_U = X·U `[B, r]`.
    forward: Option<(Tensor<2>, Tensor<2>)>,
    /// V `[B, r']` and G_V = Vᵀ·X `[r', n]`.
    gradient: Option<(Tensor<2>, Tensor<2>)>,
    /// A point of the set `[B, n]`.
    particular: Tensor<2>,
}

impl Affine {
    /// The set described by `eqs` for `batch` images of `n` pixels (shapes
    /// already checked).
    pub fn new(eqs: &Equations, batch: usize, n: usize, device: &Device) -> Self {
        let forward = Basis::new(&eqs.forward);
        let gradient = Basis::new(&eqs.gradient);
        Self::from_bases(&forward, &gradient, batch, n, device)
    }

    /// The set {X : X·U = Z_U, Vᵀ·X = G_V} of orthonormal `forward` keys U
    /// (length n, results length `batch`) and `gradient` keys V (length
    /// `batch`, results length n).
    pub fn from_bases(
        forward: &Basis,
        gradient: &Basis,
        batch: usize,
        n: usize,
        device: &Device,
    ) -> Self {
        let forward = Some(forward).filter(|b| b.rank() > 0).map(|b| {
            (
                columns(&b.vectors, n, device),
                columns(&b.results, batch, device),
            )
        });
        let gradient = Some(gradient).filter(|b| b.rank() > 0).map(|b| {
            (
                columns(&b.vectors, batch, device),
                rows(&b.results, n, device),
            )
        });
        let particular = particular(&forward, &gradient, batch, n, device);
        Self {
            forward,
            gradient,
            particular,
        }
    }

    /// Sides with at least one equation: the Lipschitz constant of
    /// [`Self::gradient`], since each side's term has Hessian norm 1.
    pub fn sides(&self) -> usize {
        usize::from(self.forward.is_some()) + usize::from(self.gradient.is_some())
    }

    /// Orthogonal projection onto the set:
    /// P(X) = X₀ + (I − VVᵀ)(X − X₀)(I − UUᵀ), with E = X − X₀ expanded as
    /// E − [(I − VVᵀ)·E·U]·Uᵀ − V·(Vᵀ·E), so no n×n or B×B matrix is formed.
    pub fn project(&self, x: Tensor<2>) -> Tensor<2> {
        let e = x - self.particular.clone();
        let mut out = self.particular.clone() + e.clone();
        let eu = self
            .forward
            .as_ref()
            .map(|(u, _)| e.clone().matmul(u.clone()));
        if let Some((v, _)) = &self.gradient {
            out = out - v.clone().matmul(v.clone().transpose().matmul(e));
        }
        if let (Some(mut eu), Some((u, _))) = (eu, &self.forward) {
            if let Some((v, _)) = &self.gradient {
                eu = eu.clone() - v.clone().matmul(v.clone().transpose().matmul(eu));
            }
            out = out - eu.matmul(u.clone().transpose());
        }
        out
    }

    /// ∇ of ½‖X·U − Z_U‖² + ½‖Vᵀ·X − G_V‖²: (X·U − Z_U)·Uᵀ + V·(Vᵀ·X − G_V).
    pub fn gradient(&self, x: &Tensor<2>) -> Tensor<2> {
        let mut g = x.zeros_like();
        if let Some((u, zu)) = &self.forward {
            g = g + (x.clone().matmul(u.clone()) - zu.clone()).matmul(u.clone().transpose());
        }
        if let Some((v, gv)) = &self.gradient {
            g = g + v
                .clone()
                .matmul(v.clone().transpose().matmul(x.clone()) - gv.clone());
        }
        g
    }
}

/// X₀ = Z_U·Uᵀ + V·G_V·(I − UUᵀ): X₀·U = Z_U, and Vᵀ·X₀ = G_V because the
/// data are consistent (Vᵀ·Z_U = G_V·U, both being Vᵀ·X·U).
fn particular(
    forward: &Option<(Tensor<2>, Tensor<2>)>,
    gradient: &Option<(Tensor<2>, Tensor<2>)>,
    batch: usize,
    n: usize,
    device: &Device,
) -> Tensor<2> {
    let mut x0 = Tensor::<2>::zeros([batch, n], device);
    if let Some((u, zu)) = forward {
        x0 = x0 + zu.clone().matmul(u.clone().transpose());
    }
    if let Some((v, gv)) = gradient {
        let mut free = gv.clone();
        if let Some((u, _)) = forward {
            free = free.clone() - free.matmul(u.clone()).matmul(u.clone().transpose());
        }
        x0 = x0 + v.clone().matmul(free);
    }
    x0
}

/// `vectors` as the columns of a `[len, k]` tensor.
fn columns(vectors: &[Vec<f64>], len: usize, device: &Device) -> Tensor<2> {
    let k = vectors.len();
    let mut data = vec![0f32; len * k];
    for (j, v) in vectors.iter().enumerate() {
        for (i, &e) in v.iter().enumerate().take(len) {
            data[i * k + j] = e as f32;
        }
    }
    Tensor::from_data(TensorData::new(data, [len, k]), device)
}

/// `vectors` as the rows of a `[k, len]` tensor.
fn rows(vectors: &[Vec<f64>], len: usize, device: &Device) -> Tensor<2> {
    let data: Vec<f32> = vectors
        .iter()
        .flat_map(|v| (0..len).map(|i| v.get(i).copied().unwrap_or(0.0) as f32))
        .collect();
    Tensor::from_data(TensorData::new(data, [vectors.len(), len]), device)
}

/// A `[rows, cols]` tensor from row-major values.
pub(crate) fn tensor(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// The values of a tensor, row-major.
pub(crate) fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| Error::Backend(format!("{e:?}")))?
        .into_vec::<f32>()
        .map_err(|e| Error::Backend(format!("{e:?}")))
}

/// Frobenius norm ‖t‖_F.
pub(crate) fn frobenius(t: Tensor<2>) -> Result<f64> {
    let sq = (t.clone() * t)
        .sum()
        .try_into_scalar::<f32>()
        .map_err(|e| Error::Backend(format!("{e:?}")))?;
    Ok(f64::from(sq).sqrt())
}

/// ⟨a, b⟩.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ‖a‖₂.
pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y ← y + α·x.
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(yi, xi)| *yi += alpha * xi);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_drops_dependent_keys_and_keeps_the_equations() {
        // x = (1, 2, 3); the third key is the sum of the first two.
        let x = [1.0, 2.0, 3.0];
        let eqs = vec![
            (vec![1, 1, 0], vec![3]),
            (vec![0, 1, 1], vec![5]),
            (vec![1, 2, 1], vec![8]),
            (vec![0, 0, 0], vec![0]),
        ];
        let b = Basis::new(&eqs);
        assert_eq!(b.rank(), 2);
        for (u, z) in b.vectors.iter().zip(&b.results) {
            assert!((norm(u) - 1.0).abs() < 1e-12);
            assert!((dot(u, &x) - z[0]).abs() < 1e-12);
        }
        assert!(dot(&b.vectors[0], &b.vectors[1]).abs() < 1e-12);
    }

    #[test]
    fn projection_lands_on_the_set_and_fixes_its_points() {
        let device = Device::ndarray();
        let (batch, n) = (3, 5);
        let truth: Vec<i64> = (0..(batch * n) as i64).map(|v| (v * 37) % 256).collect();
        let forward = (0..2)
            .map(|k| {
                let y: Vec<i64> = (0..n as i64).map(|i| (i * 3 + k * 5) % 7 - 3).collect();
                let z = (0..batch)
                    .map(|b| (0..n).map(|i| truth[b * n + i] * y[i]).sum())
                    .collect();
                (y, z)
            })
            .collect();
        let delta = vec![1, -2, 3];
        let g = (0..n)
            .map(|i| (0..batch).map(|b| delta[b] * truth[b * n + i]).sum())
            .collect();
        let eqs = Equations {
            forward,
            gradient: vec![(delta, g)],
        };
        let affine = Affine::new(&eqs, batch, n, &device);
        let t: Vec<f32> = truth.iter().map(|&v| v as f32).collect();
        let fixed = read(affine.project(tensor(t.clone(), [batch, n], &device))).unwrap();
        for (a, b) in fixed.iter().zip(&t) {
            assert!((a - b).abs() < 1e-2, "{a} vs {b}");
        }
        // Any point projects onto the set, where the gradient of the
        // residual vanishes.
        let p = affine.project(Tensor::<2>::zeros([batch, n], &device));
        let g = read(affine.gradient(&p)).unwrap();
        assert!(g.iter().all(|v| v.abs() < 1e-2), "{g:?}");
    }
}
