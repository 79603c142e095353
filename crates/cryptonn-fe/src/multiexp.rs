//! Multi-scalar multiplication Σ kᵢ·Pᵢ for small signed public kᵢ.
//!
//! This is the inner loop of FEIP decryption (∏ ctᵢ^{yᵢ}). The exponents are
//! quantized weights of a few bits, so a bucket method (Pippenger) with one
//! or two windows beats both separate double-and-add and a generic 256-bit
//! multi-scalar multiplication by a wide margin.

use crate::group::Group;
use crate::{Error, Result};

/// Σ kᵢ·Pᵢ, variable-time in the (public) kᵢ.
///
/// Points with positive and negative k go into separate bucket sets and the
/// two sums are subtracted once at the end, so negation (an inversion in
/// MODP) happens once per call.
///
/// # Errors
/// [`Error::LengthMismatch`] when the slices differ in length.
pub fn vartime_multiscalar_mul_small<G: Group>(
    points: &[G::Element],
    scalars: &[i64],
) -> Result<G::Element> {
    if points.len() != scalars.len() {
        return Err(Error::LengthMismatch {
            expected: points.len(),
            got: scalars.len(),
        });
    }
    let max = scalars.iter().map(|k| k.unsigned_abs()).max().unwrap_or(0);
    if max == 0 {
        return Ok(G::identity());
    }
    let bits = 64 - max.leading_zeros();
    let window = window_bits(points.len(), bits);
    let windows = bits.div_ceil(window);
    let mask = (1u64 << window) - 1;

    let mut pos: Option<G::Element> = None;
    let mut neg: Option<G::Element> = None;
    let mut buckets_pos: Vec<Option<G::Element>> = vec![None; 1 << window];
    let mut buckets_neg: Vec<Option<G::Element>> = vec![None; 1 << window];
    for w in (0..windows).rev() {
        for acc in [&mut pos, &mut neg] {
            if let Some(a) = acc.as_mut() {
                for _ in 0..window {
                    *a = G::double(a);
                }
            }
        }
        let shift = w * window;
        for (p, &k) in points.iter().zip(scalars) {
            let digit = ((k.unsigned_abs() >> shift) & mask) as usize;
            if digit == 0 {
                continue;
            }
            let buckets = if k > 0 {
                &mut buckets_pos
            } else {
                &mut buckets_neg
            };
            accumulate::<G>(&mut buckets[digit], p);
        }
        for (buckets, acc) in [(&mut buckets_pos, &mut pos), (&mut buckets_neg, &mut neg)] {
            if let Some(sum) = reduce_buckets::<G>(buckets) {
                accumulate::<G>(acc, &sum);
            }
        }
    }
    Ok(match (pos, neg) {
        (Some(p), Some(n)) => G::sub(&p, &n),
        (Some(p), None) => p,
        (None, Some(n)) => G::sub(&G::identity(), &n),
        (None, None) => G::identity(),
    })
}

fn accumulate<G: Group>(slot: &mut Option<G::Element>, p: &G::Element) {
    *slot = Some(match slot.take() {
        Some(a) => G::add(&a, p),
        None => p.clone(),
    });
}

/// Σ j·bucket[j] by the running-sum trick, emptying the buckets.
fn reduce_buckets<G: Group>(buckets: &mut [Option<G::Element>]) -> Option<G::Element> {
    let mut running: Option<G::Element> = None;
    let mut total: Option<G::Element> = None;
    for bucket in buckets.iter_mut().skip(1).rev() {
        if let Some(b) = bucket.take() {
            accumulate::<G>(&mut running, &b);
        }
        if let Some(r) = &running {
            accumulate::<G>(&mut total, r);
        }
    }
    total
}

/// The window width minimizing additions: per window, one addition per point
/// plus about 4·2^c for the two bucket reductions.
fn window_bits(n: usize, bits: u32) -> u32 {
    let cost = |c: u32| u64::from(bits.div_ceil(c)) * (n as u64 + (4u64 << c)) + u64::from(bits);
    (1..=bits.min(16)).min_by_key(|&c| cost(c)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Modp2048, Ristretto255};

    fn naive<G: Group>(points: &[G::Element], ks: &[i64]) -> G::Element {
        points.iter().zip(ks).fold(G::identity(), |acc, (p, &k)| {
            G::add(&acc, &G::vartime_mul_small(p, k))
        })
    }

    fn check<G: Group>(ks: &[i64]) {
        let g = G::generator();
        let points: Vec<_> = (0..ks.len() as i64)
            .map(|i| G::vartime_mul_small(&g, 3 * i + 1))
            .collect();
        assert_eq!(
            vartime_multiscalar_mul_small::<G>(&points, ks).unwrap(),
            naive::<G>(&points, ks)
        );
    }

    #[test]
    fn matches_naive_ristretto() {
        check::<Ristretto255>(&[]);
        check::<Ristretto255>(&[0, 0]);
        check::<Ristretto255>(&[5, -3, 0, 4095, -4096, 1, -1]);
        let ks: Vec<i64> = (0..300).map(|i| (i * 7919 % 2001) - 1000).collect();
        check::<Ristretto255>(&ks);
    }

    #[test]
    fn matches_naive_modp() {
        check::<Modp2048>(&[5, -3, 0, 255, -256]);
        check::<Modp2048>(&[-7]);
    }

    #[test]
    fn rejects_length_mismatch() {
        let g = Ristretto255::generator();
        let r = vartime_multiscalar_mul_small::<Ristretto255>(&[g], &[1, 2]);
        assert_eq!(
            r,
            Err(Error::LengthMismatch {
                expected: 1,
                got: 2
            })
        );
    }
}
