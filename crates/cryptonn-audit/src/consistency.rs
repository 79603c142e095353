//! The exact consistency projection: the point of {x : Uᵀx = w, 0 ≤ x ≤ 255}
//! nearest a guess, per image.
//!
//! Any guess (a learned decoder's, a prior's) is moved to the closest image
//! that gives exactly what the server decrypted: never further from the
//! truth, which lies in the same convex set. Solved in the dual by a
//! semismooth Newton method: x(λ) = clip(x̂ + U·λ, 0, 255) and
//! Uᵀ·x(λ) = w, with Jacobian Uᵀ·D·U over the pixels strictly inside the box,
//! r×r for r orthonormal keys; a few iterations reach f64 precision.

use rayon::prelude::*;

use super::PEAK;
use super::affine::{Basis, dot};

/// Newton iterations at most; each identifies more of the active set, which
/// is exact once found.
const MAX_NEWTON: usize = 100;
/// Stop once ‖Uᵀx − w‖∞ is below this (grey levels): far below what moves a
/// pixel's rounding.
const TOLERANCE: f64 = 1e-7;

/// Projects each image of `guess` (`results[j][b]` = ⟨u_j, x_b⟩ for the
/// orthonormal keys of `basis`, `batch`×`n` row-major) onto the consistent
/// box. Images without keys are only clipped.
pub(crate) fn project_consistent(basis: &Basis, guess: &[f64], n: usize) -> Vec<f64> {
    guess
        .par_chunks(n.max(1))
        .enumerate()
        .flat_map_iter(|(b, image)| {
            let w: Vec<f64> = basis.results.iter().map(|r| r[b]).collect();
            project_one(&basis.vectors, &w, image)
        })
        .collect()
}

/// One image: Newton ascent on the concave dual q(λ) = ½‖x(λ) − x̂‖² +
/// λᵀ(w − Uᵀx(λ)), whose gradient is w − Uᵀx(λ), with Armijo backtracking.
fn project_one(u: &[Vec<f64>], w: &[f64], guess: &[f64]) -> Vec<f64> {
    let mut at = Dual::at(u, w, guess, vec![0.0; u.len()]);
    for _ in 0..MAX_NEWTON {
        if at.gradient.iter().all(|e| e.abs() <= TOLERANCE) {
            break;
        }
        let step = newton_step(u, &at.shifted, &at.gradient);
        let slope = dot(&at.gradient, &step);
        let mut t = 1.0;
        at = loop {
            let lambda = at.lambda.iter().zip(&step).map(|(l, s)| l + t * s);
            let trial = Dual::at(u, w, guess, lambda.collect());
            if trial.value >= at.value + 1e-4 * t * slope || t < 1e-10 {
                break trial;
            }
            t *= 0.5;
        };
    }
    at.x
}

/// The dual at one λ, each part computed once.
struct Dual {
    lambda: Vec<f64>,
    /// x̂ + U·λ.
    shifted: Vec<f64>,
    /// x(λ) = clip(x̂ + U·λ, 0, 255).
    x: Vec<f64>,
    /// ∇q = w − Uᵀx(λ).
    gradient: Vec<f64>,
    /// q(λ).
    value: f64,
}

impl Dual {
    fn at(u: &[Vec<f64>], w: &[f64], guess: &[f64], lambda: Vec<f64>) -> Self {
        let mut shifted = guess.to_vec();
        for (l, row) in lambda.iter().zip(u) {
            shifted.iter_mut().zip(row).for_each(|(t, v)| *t += l * v);
        }
        let x: Vec<f64> = shifted.iter().map(|t| t.clamp(0.0, PEAK)).collect();
        let gradient: Vec<f64> = u.iter().zip(w).map(|(row, w)| w - dot(row, &x)).collect();
        let distance: f64 = x.iter().zip(guess).map(|(a, b)| (a - b) * (a - b)).sum();
        let value = 0.5 * distance + dot(&lambda, &gradient);
        Self {
            lambda,
            shifted,
            x,
            gradient,
            value,
        }
    }
}

/// Solves (Uᵀ·D·U + εI)·s = g, D the pixels strictly inside the box at
/// `t` = x̂ + U·λ. With orthonormal keys UᵀU = I, so the sum runs over whichever
/// of the free and the clipped pixels are fewer.
fn newton_step(u: &[Vec<f64>], t: &[f64], g: &[f64]) -> Vec<f64> {
    let r = u.len();
    let n = t.len();
    let free: Vec<bool> = t.iter().map(|&v| v > 0.0 && v < PEAK).collect();
    let count = free.iter().filter(|&&f| f).count();
    let (sum_free, sign, base) = if count <= n / 2 {
        (true, 1.0, 0.0)
    } else {
        (false, -1.0, 1.0)
    };
    let pixels: Vec<usize> = (0..n).filter(|&i| free[i] == sum_free).collect();
    let mut jac = vec![0.0; r * r];
    for i in 0..r {
        jac[i * r + i] = base + 1e-9;
        for j in 0..=i {
            let s: f64 = pixels.iter().map(|&p| u[i][p] * u[j][p]).sum();
            jac[i * r + j] += sign * s;
        }
    }
    cholesky_solve(&mut jac, r, g)
}

/// Solves A·s = g for symmetric positive semi-definite A (lower triangle
/// given, overwritten by its factor); pivots below a floor are lifted, so a
/// singular A gives a least-norm-like step rather than NaN.
fn cholesky_solve(a: &mut [f64], r: usize, g: &[f64]) -> Vec<f64> {
    for j in 0..r {
        let mut d = a[j * r + j];
        for k in 0..j {
            d -= a[j * r + k] * a[j * r + k];
        }
        let d = d.max(1e-12).sqrt();
        a[j * r + j] = d;
        for i in j + 1..r {
            let mut s = a[i * r + j];
            for k in 0..j {
                s -= a[i * r + k] * a[j * r + k];
            }
            a[i * r + j] = s / d;
        }
    }
    let mut y = g.to_vec();
    for i in 0..r {
        for k in 0..i {
            y[i] -= a[i * r + k] * y[k];
        }
        y[i] /= a[i * r + i];
    }
    for i in (0..r).rev() {
        for k in i + 1..r {
            y[i] -= a[k * r + i] * y[k];
        }
        y[i] /= a[i * r + i];
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Equations;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn setup(seed: u64, n: usize, k: usize, batch: usize) -> (Basis, Vec<i64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let truth: Vec<i64> = (0..batch * n)
            .map(|_| {
                if rng.random::<f64>() < 0.7 {
                    0
                } else {
                    rng.random_range(0..=255)
                }
            })
            .collect();
        let forward = (0..k)
            .map(|_| {
                let y: Vec<i64> = (0..n).map(|_| rng.random_range(-127..=127)).collect();
                let z = truth
                    .chunks(n)
                    .map(|x| x.iter().zip(&y).map(|(a, b)| a * b).sum())
                    .collect();
                (y, z)
            })
            .collect();
        let eqs = Equations {
            forward,
            gradient: Vec::new(),
        };
        (Basis::new(&eqs.forward), truth)
    }

    #[test]
    fn the_projection_is_consistent_in_the_box_and_no_further_from_the_truth() {
        let (n, batch) = (64, 6);
        for (seed, k) in [(1, 4), (2, 16), (3, 40)] {
            let (basis, truth) = setup(seed, n, k, batch);
            let guess: Vec<f64> = (0..batch * n).map(|i| ((i * 7919) % 256) as f64).collect();
            let x = project_consistent(&basis, &guess, n);
            for b in 0..batch {
                let image = &x[b * n..(b + 1) * n];
                assert!(image.iter().all(|v| (0.0..=PEAK).contains(v)));
                for (u, w) in basis.vectors.iter().zip(&basis.results) {
                    assert!((dot(u, image) - w[b]).abs() < 1e-5, "seed {seed}, k {k}");
                }
                // The truth is in the set, so projecting cannot move away from it.
                let dist = |a: &[f64]| -> f64 {
                    a.iter()
                        .zip(&truth[b * n..])
                        .map(|(g, &t)| (g - t as f64).powi(2))
                        .sum()
                };
                assert!(dist(image) <= dist(&guess[b * n..(b + 1) * n]) + 1e-6);
            }
        }
    }

    #[test]
    fn a_consistent_guess_in_the_box_stays_where_it_is() {
        let (n, batch) = (32, 3);
        let (basis, truth) = setup(9, n, 8, batch);
        let guess: Vec<f64> = truth.iter().map(|&t| t as f64).collect();
        let x = project_consistent(&basis, &guess, n);
        for (a, b) in x.iter().zip(&guess) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn full_rank_keys_give_the_truth() {
        let (n, batch) = (16, 2);
        let (basis, truth) = setup(4, n, n, batch);
        let x = project_consistent(&basis, &vec![100.0; batch * n], n);
        for (a, &t) in x.iter().zip(&truth) {
            assert!((a - t as f64).abs() < 1e-4);
        }
    }
}
