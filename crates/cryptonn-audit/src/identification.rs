//! Identification: given a pool of candidate images that holds the target,
//! does what the server decrypted single it out?
//!
//! The server scores each candidate c by its misfit Σⱼ (⟨u_j, c⟩ − w_j)² on
//! the batch's orthonormal forward keys: the Gaussian log-likelihood up to
//! a constant, and an exact-match test, since the target's misfit is 0 (up
//! to rounding) and a different image fits only if it differs from the
//! target in the keys' null space alone.

use super::affine::{Basis, dot};
use super::{Equations, Result};

/// A decoy fits as well as the target unless its misfit exceeds the
/// target's by this much (squared grey levels): rounding of the f64 keys
/// must not break a true tie in the target's favour.
const TIE: f64 = 1e-6;

/// Share of the batch's images (`truth`, `n` pixels each) whose own misfit
/// is below that of every image of `decoys` by more than rounding (a pool
/// of 1 + decoys candidates each; the decoys should not contain the
/// targets). Without forward keys every candidate fits and nothing is
/// identified.
///
/// # Errors
/// [`super::Error::Shape`] if `eqs` does not fit the batch or `decoys` is
/// not a positive whole number of images.
pub fn identification_rate(
    eqs: &Equations,
    truth: &[i64],
    n: usize,
    decoys: &[i64],
) -> Result<f64> {
    let batch = truth.len() / n.max(1);
    eqs.check(batch, n)?;
    if decoys.is_empty() || !decoys.len().is_multiple_of(n.max(1)) {
        return Err(super::Error::Shape {
            what: "identification decoys (whole images, at least one)".into(),
            expected: n,
            got: decoys.len(),
        });
    }
    let basis = Basis::new(&eqs.forward);
    if basis.rank() == 0 || batch == 0 {
        return Ok(0.0);
    }
    let project = |image: &[i64]| -> Vec<f64> {
        let x: Vec<f64> = image.iter().map(|&p| p as f64).collect();
        basis.vectors.iter().map(|u| dot(u, &x)).collect()
    };
    let pool: Vec<Vec<f64>> = decoys.chunks_exact(n).map(project).collect();
    let misfit = |fit: &[f64], b: usize| -> f64 {
        fit.iter()
            .zip(&basis.results)
            .map(|(f, w)| (f - w[b]) * (f - w[b]))
            .sum()
    };
    let identified = truth
        .chunks_exact(n)
        .enumerate()
        .filter(|(b, image)| {
            let own = misfit(&project(image), *b);
            pool.iter().all(|c| misfit(c, *b) > own + TIE)
        })
        .count();
    Ok(identified as f64 / batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_equations_identify_and_no_equations_do_not() {
        let n = 4;
        let truth = vec![1, 2, 3, 4, 9, 9, 0, 0];
        let decoys = vec![1, 2, 3, 5, 0, 0, 9, 9, 4, 3, 2, 1];
        let key = vec![1, 10, 100, 1000];
        let z = truth
            .chunks(n)
            .map(|x: &[i64]| x.iter().zip(&key).map(|(a, b)| a * b).sum())
            .collect();
        let eqs = Equations {
            forward: vec![(key, z)],
            gradient: Vec::new(),
        };
        assert_eq!(identification_rate(&eqs, &truth, n, &decoys).unwrap(), 1.0);
        assert_eq!(
            identification_rate(&Equations::default(), &truth, n, &decoys).unwrap(),
            0.0
        );
    }

    #[test]
    fn a_key_blind_to_the_difference_cannot_tell_the_images_apart() {
        let n = 2;
        let truth = vec![3, 5];
        let decoys = vec![5, 3]; // same sum: ⟨(1, 1), ·⟩ cannot tell them apart
        let eqs = Equations {
            forward: vec![(vec![1, 1], vec![8])],
            gradient: Vec::new(),
        };
        assert_eq!(identification_rate(&eqs, &truth, n, &decoys).unwrap(), 0.0);
    }
}
