//! Attack (a): a point of box ∩ affine by Douglas–Rachford, then certify and
//! peel.
//!
//! The batch lies in 𝒜 ∩ 𝒞 with 𝒜 = {X : X·A = Z, Dᵀ·X = Gᵀ} and
//! 𝒞 = [0, 255]^{B×n}. Douglas–Rachford iterates
//!
//! X = P_𝒜(W),  W ← W + P_𝒞(2X − W) − X,
//!
//! whose shadow X converges to a point of 𝒜 ∩ 𝒞 when there is one. When the
//! box pins the batch down (most MNIST pixels are 0 or 255), that point is
//! the batch; the rounding then restores the integers exactly.
//!
//! An image whose rounded pixels satisfy every one of its forward equations
//! exactly, in integer arithmetic, is *certified*. Certified images are known
//! terms of the gradient equations, Xᵀ·δ − X_cᵀ·δ_c = X_rᵀ·δ_r (c certified,
//! r the rest), so the rest solve a smaller, better-determined problem. The
//! rounds go on until one certifies nothing new. With both kinds of
//! equations a round also ends early, as soon as some image can be certified
//! (checked every 20 iterations): near the phase transition this turns
//! thousands of iterations into a few hundred.
//!
//! A certificate is consistency, not uniqueness: it proves the image is the
//! truth only when its equations and the box admit one integer image. A wrong
//! rounding meets each forward equation by chance with odds of about one in
//! the spread of ⟨x, y⟩ (≈ 10³ for 8-bit keys), so a handful of keys make a
//! false certificate negligible; one or two keys do not.

use burn::tensor::{Device, Tensor};

use super::affine::{Affine, Basis, frobenius, read, tensor};
use super::{Equations, Error, PEAK, Result, SolverConfig};

/// Douglas–Rachford looks for images it can already certify this often
/// (in iterations), when certifying one would sharpen the gradient equations.
const CHECK_EVERY: usize = 20;

/// An image whose pixels all lie this close to integers in [0, 255] is worth
/// the exact check; a continuous non-solution rarely is.
const NEAR_INTEGER: f32 = 0.25;

/// What [`recover`] found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recovery {
    /// The estimate of X, row-major: certified images exact, the others the
    /// last continuous solution clipped to [0, 255].
    #[serde(skip)]
    pub pixels: Vec<f64>,
    /// Per image, whether its rounded pixels satisfy its equations exactly.
    pub certified: Vec<bool>,
    /// Douglas–Rachford solves run (one per round of peeling).
    pub rounds: usize,
    /// Douglas–Rachford iterations over all rounds.
    pub iterations: usize,
}

/// The estimate of X (`batch`×`n`, row-major) by [`recover`] from the
/// all-black batch.
///
/// # Errors
/// [`Error::Shape`] if an equation does not fit the batch;
/// [`Error::Backend`] if the tensor backend fails.
pub fn feasibility(
    eqs: &Equations,
    batch: usize,
    n: usize,
    cfg: &SolverConfig,
) -> Result<Vec<f64>> {
    Ok(recover(eqs, batch, n, None, cfg)?.pixels)
}

/// The estimate of X by [`recover`] started from `start` (row-major, e.g. the
/// [`linear_mmse`](super::linear_mmse) guess): Douglas–Rachford then finds a
/// point of box ∩ affine near it.
///
/// # Errors
/// As [`feasibility`], and [`Error::Shape`] if `start` is not `batch`·`n` long.
pub fn feasibility_from(
    eqs: &Equations,
    batch: usize,
    n: usize,
    start: &[f64],
    cfg: &SolverConfig,
) -> Result<Vec<f64>> {
    Ok(recover(eqs, batch, n, Some(start), cfg)?.pixels)
}

/// Douglas–Rachford for X ∈ 𝒜 ∩ [0, 255]^{B×n}, then certify and peel (see
/// the module docs), from `start` (non-finite values read as 0) or the
/// all-black batch. Each solve stops at `cfg.tolerance`, at
/// `cfg.max_iterations`, or, with both kinds of equations, once an image can
/// be certified; every round certifies at least one image or is the last, so
/// there are at most `batch` rounds.
///
/// Without forward equations no single image can be checked: the whole batch
/// is certified if every gradient equation holds exactly, or none is.
///
/// # Errors
/// [`Error::Shape`] if an equation or `start` does not fit the batch;
/// [`Error::Backend`] if the tensor backend fails.
pub fn recover(
    eqs: &Equations,
    batch: usize,
    n: usize,
    start: Option<&[f64]>,
    cfg: &SolverConfig,
) -> Result<Recovery> {
    eqs.check(batch, n)?;
    if let Some(s) = start.filter(|s| s.len() != batch * n) {
        return Err(Error::Shape {
            what: "start".into(),
            expected: batch * n,
            got: s.len(),
        });
    }
    let eqs = &without_zero_keys(eqs);
    let device = Device::ndarray();
    let mut pixels = start_pixels(start, batch * n);
    // Douglas–Rachford's governing sequence W, carried over between rounds.
    let mut governing: Vec<f32> = pixels.iter().map(|&v| v as f32).collect();
    let mut exact: Vec<Option<Vec<i64>>> = vec![None; batch];
    let (mut rounds, mut iterations) = (0, 0);
    // Forward keys are the same in every round; only their images change.
    let forward = Basis::new(&eqs.forward);
    // Peeling early pays only if a certified image informs the others.
    let peel_early = !eqs.forward.is_empty() && !eqs.gradient.is_empty();
    loop {
        let open: Vec<usize> = (0..batch).filter(|&b| exact[b].is_none()).collect();
        if open.is_empty() || n == 0 {
            break;
        }
        let sub = restrict(eqs, &open, &exact, n);
        let affine = Affine::from_bases(
            &forward.select(&open),
            &Basis::new(&sub.gradient),
            open.len(),
            n,
            &device,
        );
        let w0 = open
            .iter()
            .flat_map(|&b| governing[b * n..(b + 1) * n].to_vec())
            .collect();
        let check = peel_early.then_some(&sub);
        let solve = douglas_rachford(&affine, check, open.len(), n, w0, cfg, &device)?;
        rounds += 1;
        iterations += solve.iterations;
        let rounded: Vec<i64> = solve.x.iter().map(|&v| round_pixel(v)).collect();
        let newly = certify(&sub, &rounded, open.len(), n);
        for (local, &b) in open.iter().enumerate() {
            let range = local * n..(local + 1) * n;
            governing[b * n..(b + 1) * n].copy_from_slice(&solve.w[range.clone()]);
            let row = &mut pixels[b * n..(b + 1) * n];
            if newly[local] {
                row.iter_mut()
                    .zip(&rounded[range.clone()])
                    .for_each(|(p, &r)| *p = r as f64);
                exact[b] = Some(rounded[range].to_vec());
            } else {
                row.iter_mut()
                    .zip(&solve.x[range])
                    .for_each(|(p, &x)| *p = f64::from(x).clamp(0.0, PEAK));
            }
        }
        if !newly.contains(&true) {
            break;
        }
    }
    Ok(Recovery {
        pixels,
        certified: exact.iter().map(Option::is_some).collect(),
        rounds,
        iterations,
    })
}

/// `eqs` without its zero forward keys: a zero key says nothing about an
/// image, and would certify any.
fn without_zero_keys(eqs: &Equations) -> Equations {
    Equations {
        forward: (eqs.forward.iter())
            .filter(|(y, _)| y.iter().any(|&v| v != 0))
            .cloned()
            .collect(),
        gradient: eqs.gradient.clone(),
    }
}

/// The first iterate: `start` in the box (a non-finite pixel as 0), or
/// `len` zeros.
fn start_pixels(start: Option<&[f64]>, len: usize) -> Vec<f64> {
    start.map_or(vec![0.0; len], |s| {
        s.iter()
            .map(|&v| {
                if v.is_finite() {
                    v.clamp(0.0, PEAK)
                } else {
                    0.0
                }
            })
            .collect()
    })
}

/// The equations of the images in `open`, with the certified ones moved to
/// the right-hand side of the gradient equations: Xᵀ·δ − X_cᵀ·δ_c = X_rᵀ·δ_r.
fn restrict(eqs: &Equations, open: &[usize], exact: &[Option<Vec<i64>>], n: usize) -> Equations {
    let forward = eqs
        .forward
        .iter()
        .map(|(y, z)| (y.clone(), open.iter().map(|&b| z[b]).collect()))
        .collect();
    let gradient = eqs
        .gradient
        .iter()
        .map(|(delta, g)| {
            let known = (0..n).map(|i| {
                let certified = exact
                    .iter()
                    .zip(delta)
                    .filter_map(|(x, &d)| Some((x.as_ref()?, d)));
                let sum: i128 = certified
                    .map(|(x, d)| i128::from(x[i]) * i128::from(d))
                    .sum();
                // Out of i64 only for hostile input, which no image fits anyway.
                i64::try_from(i128::from(g[i]) - sum).unwrap_or(i64::MAX)
            });
            (open.iter().map(|&b| delta[b]).collect(), known.collect())
        })
        .collect();
    Equations { forward, gradient }
}

/// The nearest pixel value in [0, 255].
fn round_pixel(v: f32) -> i64 {
    // Clamped first, so the cast is exact (NaN casts to 0).
    f64::from(v).clamp(0.0, PEAK).round() as i64
}

/// Which of the `rows` rounded images satisfy their equations exactly.
fn certify(eqs: &Equations, rounded: &[i64], rows: usize, n: usize) -> Vec<bool> {
    if eqs.forward.is_empty() {
        let all = !eqs.gradient.is_empty()
            && eqs.gradient.iter().all(|(delta, g)| {
                (0..n).all(|i| {
                    let sum: i128 = (0..rows)
                        .map(|b| i128::from(rounded[b * n + i]) * i128::from(delta[b]))
                        .sum();
                    sum == i128::from(g[i])
                })
            });
        return vec![all; rows];
    }
    (0..rows)
        .map(|b| fits_forward(eqs, &rounded[b * n..(b + 1) * n], b))
        .collect()
}

/// Whether image `b` of the batch, `x`, satisfies all its forward equations
/// exactly.
fn fits_forward(eqs: &Equations, x: &[i64], b: usize) -> bool {
    eqs.forward.iter().all(|(y, z)| {
        let sum: i128 = x
            .iter()
            .zip(y)
            .map(|(&p, &k)| i128::from(p) * i128::from(k))
            .sum();
        sum == i128::from(z[b])
    })
}

/// Whether some image of X, rounded, already satisfies its forward equations
/// exactly. Only images whose pixels are all near integers are checked.
fn any_certified(x: &Tensor<2>, eqs: &Equations, n: usize) -> Result<bool> {
    let off = (x.clone() - x.clone().round().clamp(0.0, PEAK))
        .abs()
        .max_dim(1);
    let near: Vec<usize> = read(off)?
        .iter()
        .enumerate()
        .filter(|&(_, &d)| d <= NEAR_INTEGER)
        .map(|(b, _)| b)
        .collect();
    if near.is_empty() {
        return Ok(false);
    }
    let pixels = read(x.clone())?;
    Ok(near.iter().any(|&b| {
        let image: Vec<i64> = pixels[b * n..(b + 1) * n]
            .iter()
            .map(|&v| round_pixel(v))
            .collect();
        fits_forward(eqs, &image, b)
    }))
}

/// One Douglas–Rachford solve: the shadow X, the governing W and the
/// iterations spent.
struct Solve {
    x: Vec<f32>,
    w: Vec<f32>,
    iterations: usize,
}

/// Douglas–Rachford on `affine` ∩ box from W = `w0` until
/// ‖P_𝒞(2X − W) − X‖_F ≤ tolerance·max(‖X‖_F, 1), the iteration cap, or, if
/// `peel` holds the equations, an image that can be certified.
fn douglas_rachford(
    affine: &Affine,
    peel: Option<&Equations>,
    batch: usize,
    n: usize,
    w0: Vec<f32>,
    cfg: &SolverConfig,
    device: &Device,
) -> Result<Solve> {
    let mut w = tensor(w0, [batch, n], device);
    let mut x = affine.project(w.clone());
    let mut iterations = 0;
    while iterations < cfg.max_iterations {
        iterations += 1;
        let reflected = (x.clone() * 2.0 - w.clone()).clamp(0.0, PEAK);
        let step = reflected - x.clone();
        let residual = frobenius(step.clone())?;
        let scale = frobenius(x.clone())?.max(1.0);
        w = w + step;
        x = affine.project(w.clone());
        if residual <= cfg.tolerance * scale {
            break;
        }
        if let Some(eqs) = peel.filter(|_| iterations % CHECK_EVERY == 0)
            && any_certified(&x, eqs, n)?
        {
            break;
        }
    }
    Ok(Solve {
        x: read(x)?,
        w: read(w)?,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restrict_moves_certified_images_to_the_right_hand_side() {
        // Two images of two pixels; image 0 certified as (3, 4).
        let x = [[3i64, 4], [5, 6]];
        let delta = vec![2, -1];
        let g = (0..2).map(|i| 2 * x[0][i] - x[1][i]).collect();
        let eqs = Equations {
            forward: vec![(vec![1, 1], vec![7, 11])],
            gradient: vec![(delta, g)],
        };
        let exact = vec![Some(vec![3, 4]), None];
        let sub = restrict(&eqs, &[1], &exact, 2);
        assert_eq!(sub.forward, vec![(vec![1, 1], vec![11])]);
        assert_eq!(sub.gradient, vec![(vec![-1], vec![-5, -6])]);
        assert_eq!(certify(&sub, &[5, 6], 1, 2), vec![true]);
        assert_eq!(certify(&sub, &[6, 5], 1, 2), vec![true]);
        assert_eq!(certify(&sub, &[5, 5], 1, 2), vec![false]);
    }

    #[test]
    fn zero_forward_keys_certify_nothing() {
        let eqs = Equations {
            forward: vec![(vec![0, 0], vec![0])],
            gradient: Vec::new(),
        };
        let r = recover(&eqs, 1, 2, Some(&[3.0, f64::NAN]), &SolverConfig::default()).unwrap();
        assert_eq!(r.certified, vec![false]);
        assert_eq!(r.pixels, vec![3.0, 0.0]);
    }

    #[test]
    fn rejects_a_start_of_the_wrong_length() {
        let err = recover(
            &Equations::default(),
            2,
            3,
            Some(&[0.0; 5]),
            &SolverConfig::default(),
        );
        assert!(matches!(
            err,
            Err(Error::Shape {
                expected: 6,
                got: 5,
                ..
            })
        ));
    }
}
