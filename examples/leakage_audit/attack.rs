//! What a curious server can compute from what it holds: exact linear
//! algebra modulo q on function keys, and box-constrained least squares on
//! decrypted inner products.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use burn::tensor::{Device, Tensor, TensorData};
use cryptonn::fe::feip::{Ciphertext, FunctionKey, MasterPublicKey};
use cryptonn::fe::{DlogTable, Group, Ristretto255};
use rayon::prelude::*;

type Scalar = <Ristretto255 as Group>::Scalar;

/// Solves `rows · u = rhs` over ℤ_q, where every row holds `n` coefficients
/// followed by its right-hand sides. `None` unless the rows have rank `n`.
pub fn solve_mod_q(mut rows: Vec<Vec<Scalar>>, n: usize) -> Option<Vec<Vec<Scalar>>> {
    let zero = Ristretto255::scalar_from_i64(0);
    let width = rows.first()?.len();
    for col in 0..n {
        let pivot = (col..rows.len()).find(|&r| rows[r][col] != zero)?;
        rows.swap(col, pivot);
        let inv = Ristretto255::scalar_invert(&rows[col][col])?;
        let pivot_row: Vec<Scalar> = rows[col]
            .iter()
            .map(|v| Ristretto255::scalar_mul(v, &inv))
            .collect();
        rows[col] = pivot_row.clone();
        rows.par_iter_mut().enumerate().for_each(|(r, row)| {
            if r == col || row[col] == zero {
                return;
            }
            let f = Ristretto255::scalar_neg(&row[col]);
            for k in col..width {
                row[k] =
                    Ristretto255::scalar_add(&row[k], &Ristretto255::scalar_mul(&f, &pivot_row[k]));
            }
        });
        // Rows below n that reduced to zero carry no information any more.
        rows.retain(|row| row.iter().any(|v| *v != zero));
    }
    Some(
        rows.into_iter()
            .take(n)
            .map(|row| row[n..].to_vec())
            .collect(),
    )
}

/// The small non-negative integer a scalar encodes, if it is one.
pub fn small(s: &Scalar) -> Option<i64> {
    let bytes = Ristretto255::scalar_to_bytes(s);
    bytes[8..]
        .iter()
        .all(|&b| b == 0)
        .then(|| i64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()))
        .filter(|v| *v >= 0)
}

/// Leak 1: the master secret s from keys of full rank, solving
/// ⟨s, yₖ⟩ = sk_{yₖ} mod q, checked against the public key hᵢ = sᵢ·g.
pub fn recover_master_secret(
    keys: &[FunctionKey<Ristretto255>],
    mpk: &MasterPublicKey<Ristretto255>,
) -> Option<Vec<Scalar>> {
    let n = mpk.dim();
    let rows = keys
        .iter()
        .map(|k| {
            k.y()
                .iter()
                .map(|&v| Ristretto255::scalar_from_i64(v))
                .chain(std::iter::once(k.sk().clone()))
                .collect()
        })
        .collect();
    let s: Vec<Scalar> = solve_mod_q(rows, n)?
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    let verified = s
        .par_iter()
        .zip(mpk.elements())
        .all(|(si, hi)| Ristretto255::mul_base(si) == *hi);
    verified.then_some(s)
}

/// Decrypts whole vectors with a recovered master secret: xᵢ = dlog(ctᵢ − sᵢ·ct₀).
pub fn decrypt_with_master(
    s: &[Scalar],
    cts: &[Ciphertext<Ristretto255>],
    table: &DlogTable<Ristretto255>,
) -> Vec<Option<i64>> {
    cts.par_iter()
        .flat_map_iter(|ct| {
            let base = Ristretto255::fixed_base(ct.commitment());
            let targets: Vec<_> = ct
                .elements()
                .iter()
                .zip(s)
                .map(|(c, si)| Ristretto255::sub(c, &Ristretto255::mul_fixed(&base, si)))
                .collect();
            table
                .solve_batch(&targets)
                .into_iter()
                .map(Result::ok)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The server's linear knowledge of one batch X ∈ [0, 255]^{B×n}.
#[derive(Default, Clone)]
pub struct Equations {
    /// Row-wise keys y (length n) and, per sample, ⟨x_b, y⟩: X·y.
    pub forward: Vec<(Vec<i64>, Vec<i64>)>,
    /// Column-wise keys δ (length B) and, per feature, Xᵀ·δ.
    pub gradient: Vec<(Vec<i64>, Vec<i64>)>,
}

/// Each key vector as a unit column, its results scaled alike:
/// (`[len, k]` keys, `[other, k]` results).
fn normalized(
    eqs: &[(Vec<i64>, Vec<i64>)],
    len: usize,
    other: usize,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let k = eqs.len();
    let mut keys = vec![0f32; len * k];
    let mut results = vec![0f32; other * k];
    for (j, (y, r)) in eqs.iter().enumerate() {
        let norm = y
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1.0);
        for (i, &v) in y.iter().enumerate() {
            keys[i * k + j] = (v as f64 / norm) as f32;
        }
        for (i, &v) in r.iter().enumerate() {
            results[i * k + j] = (v as f64 / norm) as f32;
        }
    }
    (
        Tensor::from_data(TensorData::new(keys, [len, k]), device),
        Tensor::from_data(TensorData::new(results, [other, k]), device),
    )
}

/// Largest eigenvalue of a symmetric positive semi-definite matrix, by power iteration.
fn largest_eigenvalue(m: &Tensor<2>, device: &Device) -> f32 {
    let n = m.dims()[0];
    let mut v = Tensor::<2>::ones([n, 1], device);
    let mut lambda = 0.0;
    for _ in 0..40 {
        let w = m.clone().matmul(v);
        lambda = w.clone().powf_scalar(2.0).sum().into_scalar::<f32>().sqrt();
        v = w / lambda.max(f32::MIN_POSITIVE);
    }
    lambda
}

/// Box-constrained least squares (FISTA, projected onto [0, 255]) for X from
/// every equation at once, starting from the all-black image. Returns X row-major.
pub fn reconstruct(eqs: &Equations, batch: usize, n: usize, iterations: usize) -> Vec<f32> {
    let device = Device::ndarray();
    // ∇ ½‖XA − Z‖² = X·AAᵀ − Z·Aᵀ and ∇ ½‖XᵀD − G‖² = DDᵀ·X − D·Gᵀ.
    let mut m_rows = Tensor::<2>::zeros([n, n], &device);
    let mut m_cols = Tensor::<2>::zeros([batch, batch], &device);
    let mut linear = Tensor::<2>::zeros([batch, n], &device);
    if !eqs.forward.is_empty() {
        let (a, z) = normalized(&eqs.forward, n, batch, &device);
        m_rows = a.clone().matmul(a.clone().transpose());
        linear = linear + z.matmul(a.transpose());
    }
    if !eqs.gradient.is_empty() {
        let (d, g) = normalized(&eqs.gradient, batch, n, &device);
        m_cols = d.clone().matmul(d.clone().transpose());
        linear = linear + d.matmul(g.transpose());
    }
    let lipschitz = largest_eigenvalue(&m_rows, &device) + largest_eigenvalue(&m_cols, &device);
    let step = 1.0 / lipschitz.max(f32::MIN_POSITIVE);
    let mut x = Tensor::<2>::zeros([batch, n], &device);
    let mut y = x.clone();
    let mut t = 1.0f32;
    for _ in 0..iterations {
        let grad =
            y.clone().matmul(m_rows.clone()) + m_cols.clone().matmul(y.clone()) - linear.clone();
        let next = (y - grad * step).clamp(0.0, 255.0);
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        y = next.clone() + (next.clone() - x) * ((t - 1.0) / t_next);
        x = next;
        t = t_next;
    }
    x.into_data().to_vec::<f32>().unwrap_or_default()
}

/// How close a reconstruction is to the truth.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Quality {
    /// Mean over images of the PSNR in dB (peak 255; capped at 99 for exact images).
    pub mean_psnr_db: f64,
    /// Share of pixels within ±16 of the truth.
    pub within_16: f64,
    /// Largest pixel error.
    pub max_pixel_error: f64,
}

/// Compares `guess` with the true pixels `truth`, image by image of `n` pixels.
pub fn quality(guess: &[f64], truth: &[i64], n: usize) -> Quality {
    let mut psnr = 0.0;
    let mut close = 0usize;
    let mut max_err = 0.0f64;
    let images = truth.len() / n;
    for (g, t) in guess.chunks(n).zip(truth.chunks(n)) {
        let mut se = 0.0;
        for (&gv, &tv) in g.iter().zip(t) {
            let e = (gv - tv as f64).abs();
            se += e * e;
            close += usize::from(e <= 16.0);
            max_err = max_err.max(e);
        }
        let mse = se / n as f64;
        psnr += if mse == 0.0 {
            99.0
        } else {
            (10.0 * (255.0f64 * 255.0 / mse).log10()).min(99.0)
        };
    }
    Quality {
        mean_psnr_db: psnr / images.max(1) as f64,
        within_16: close as f64 / truth.len().max(1) as f64,
        max_pixel_error: max_err,
    }
}
