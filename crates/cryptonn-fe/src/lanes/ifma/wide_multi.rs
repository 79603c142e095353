//! Variable-time multi-products in the lanes: for eight ciphertexts (lane l
//! = ciphertext l) of n elements Pₗ,ᵢ and H public keys yⱼ of small signed
//! integers, every Πᵢ Pₗ,ᵢ^(yⱼ,ᵢ) mod p: FEIP decryption's inner products
//! over the MODP groups, by the four-Russians method of
//! [`crate::multiexp`].
//!
//! Offset-binary digits u = y + 2^(b−1) ∈ [0, 2^b) make every digit
//! non-negative, so no inversion is needed per output. The points are cut
//! into chunks of C; the table of all 2^C subset products of a chunk is
//! built once (one lane product per entry) and each key and bit plane then
//! multiplies in one entry per chunk, the same index in all lanes (it
//! depends on the key only: no gathers). Horner's rule over the planes
//! (squarings) gives Πᵢ Pᵢ^(uᵢ); the offset's share Πᵢ Pᵢ^(−2^(b−1)) is the
//! same for every key: one product of all points, b − 1 squarings and one
//! inversion per lane, then one product per output.
//!
//! # Security
//! Variable time in the keys (table indices, skipped products) and the
//! inversion: public keys and ciphertexts only.

use super::Ifma;
use super::wide::{WideModulus, WideX8};
use crate::multiexp::{offset_digits, plane_patterns};
use crate::{Error, Result};

/// Largest |yⱼ,ᵢ| the multi-product takes (exclusive): 32 bit planes.
pub const WIDE_MULTI_BOUND: u64 = 1 << 31;

/// The chunk width C ∈ 4 ..= 8 with the fewest lane products for `points`
/// points, `keys` keys and `planes` bit planes: the tables' 2^C − C − 1
/// products per chunk against one per key, plane and chunk.
pub fn wide_chunk_width(points: usize, keys: usize, planes: usize) -> usize {
    let cost = |c: usize| {
        let chunks = points.div_ceil(c);
        chunks * ((1 << c) - c - 1) + keys * planes * chunks
    };
    (4..=8).min_by_key(|&c| cost(c)).unwrap_or(8)
}

/// `slot · x` (x when the slot is still the identity).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn mul_into<const N: usize>(m: &WideModulus<N>, slot: &mut Option<WideX8<N>>, x: &WideX8<N>) {
    *slot = Some(match slot {
        Some(a) => a.mul(m, x),
        None => *x,
    });
}

/// All 2^len subset products of `chunk`, indexed by bit mask; entry 0 (the
/// empty product) is never read.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn subset_products<const N: usize>(m: &WideModulus<N>, chunk: &[WideX8<N>]) -> Vec<WideX8<N>> {
    let mut table = Vec::with_capacity(1 << chunk.len());
    table.push(WideX8::one(m));
    for mask in 1usize..1 << chunk.len() {
        let low = mask.trailing_zeros() as usize;
        let rest = mask & (mask - 1);
        let entry = if rest == 0 {
            chunk[low]
        } else {
            table[rest].mul(m, &chunk[low])
        };
        table.push(entry);
    }
    table
}

/// Πₚ planeₚ^(2^p), most significant first; `None` for the identity.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn horner<const N: usize>(
    m: &WideModulus<N>,
    per_plane: &[Option<WideX8<N>>],
) -> Option<WideX8<N>> {
    let mut acc: Option<WideX8<N>> = None;
    for plane in per_plane.iter().rev() {
        if let Some(a) = acc.as_mut() {
            *a = a.square(m);
        }
        if let Some(x) = plane {
            mul_into(m, &mut acc, x);
        }
    }
    acc
}

/// Πᵢ Pᵢ^(uᵢ) for every key's offset digits, planes unfolded: `acc[k·planes + p]`.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn plane_products<const N: usize>(
    m: &WideModulus<N>,
    points: &[WideX8<N>],
    digits: &[Vec<u64>],
    planes: usize,
    chunk: usize,
) -> (Vec<Option<WideX8<N>>>, Option<WideX8<N>>) {
    let mut acc: Vec<Option<WideX8<N>>> = vec![None; digits.len() * planes];
    let mut total = None;
    let mut index = vec![0usize; planes];
    for (c, part) in points.chunks(chunk).enumerate() {
        let table = subset_products(m, part);
        mul_into(m, &mut total, &table[table.len() - 1]);
        for (k, u) in digits.iter().enumerate() {
            plane_patterns(&mut index, &u[c * chunk..c * chunk + part.len()]);
            for (p, &idx) in index.iter().enumerate() {
                if idx != 0 {
                    mul_into(m, &mut acc[k * planes + p], &table[idx]);
                }
            }
        }
    }
    (acc, total)
}

/// Every key's Πᵢ Pᵢ^(yᵢ) from offset digits with `planes` planes (offset
/// 2^(planes−1)): the planes' products by Horner, times the shared
/// correction (Πᵢ Pᵢ)^(−2^(planes−1)). `None` if a lane's Πᵢ Pᵢ is 0 mod p.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn multiproduct<const N: usize, const W: usize>(
    m: &WideModulus<N>,
    points: &[WideX8<N>],
    digits: &[Vec<u64>],
    planes: usize,
    chunk: usize,
) -> Option<Vec<WideX8<N>>> {
    let (acc, total) = plane_products(m, points, digits, planes, chunk);
    let correction = match total {
        Some(mut t) => {
            for _ in 1..planes {
                t = t.square(m);
            }
            Some(t.vartime_invert::<W>(m)?)
        }
        None => None,
    };
    let one = WideX8::one(m);
    let out = acc.chunks(planes).map(|per_plane| {
        let r = horner(m, per_plane);
        match (r, &correction) {
            (Some(r), Some(c)) => r.mul(m, c),
            (Some(r), None) => r,
            (None, Some(c)) => *c,
            (None, None) => one,
        }
    });
    Some(out.collect())
}

impl Ifma {
    /// For every key yⱼ (in order) the eight lanes' Πᵢ pointsᵢ^(yⱼ,ᵢ) mod p,
    /// in the lanes' form in [0, 2p) (lane l of `points[i]` is element i of
    /// ciphertext l, packed by [`Ifma::wide_pack`]); the chunk width by
    /// [`wide_chunk_width`]. Variable time: public points and keys only.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if a key's length differs from the points';
    /// [`Error::InvalidParameter`] for an entry with |y| ≥
    /// [`WIDE_MULTI_BOUND`] or W not the width `m` was built with;
    /// [`Error::NonCanonical`] if a lane's points multiply to 0 mod p (not
    /// group elements).
    pub fn wide_vartime_multiproduct<const N: usize, const W: usize>(
        self,
        m: &WideModulus<N>,
        points: &[WideX8<N>],
        ys: &[&[i64]],
    ) -> Result<Vec<WideX8<N>>> {
        self.wide_vartime_multiproduct_with::<N, W>(m, points, ys, None)
    }

    /// [`Ifma::wide_vartime_multiproduct`] with chunk width `chunk` (clamped
    /// to 1 ..= 10), or the cost model's for `None`: for measurements.
    ///
    /// # Errors
    /// As [`Ifma::wide_vartime_multiproduct`].
    pub fn wide_vartime_multiproduct_with<const N: usize, const W: usize>(
        self,
        m: &WideModulus<N>,
        points: &[WideX8<N>],
        ys: &[&[i64]],
        chunk: Option<usize>,
    ) -> Result<Vec<WideX8<N>>> {
        if let Some(y) = ys.iter().find(|y| y.len() != points.len()) {
            return Err(Error::LengthMismatch {
                expected: points.len(),
                got: y.len(),
            });
        }
        let max = ys.iter().flat_map(|y| y.iter()).map(|v| v.unsigned_abs());
        let max = max.max().unwrap_or(0);
        if max >= WIDE_MULTI_BOUND || W != m.words() {
            return Err(Error::InvalidParameter(format!(
                "lane multi-product: entries below 2^31 and {}-word elements",
                m.words()
            )));
        }
        if max == 0 || points.is_empty() {
            return Ok(vec![self.wide_one(m); ys.len()]);
        }
        let planes = (65 - max.leading_zeros()) as usize;
        let digits = offset_digits(ys, 1i128 << (planes - 1));
        let chunk = chunk.map_or_else(
            || wide_chunk_width(points.len(), ys.len(), planes),
            |c| c.clamp(1, 10),
        );
        // SAFETY: `self` exists only if `detect` found the features `multiproduct` enables.
        unsafe { multiproduct::<N, W>(m, points, &digits, planes, chunk) }
            .ok_or(Error::NonCanonical("MODP lane points multiply to 0 mod p"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::Uint;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::super::wide_fixtures::{Fe, Words, fe, ifma, modulus, random_words};

    fn random_fe(rng: &mut StdRng) -> Fe {
        fe(&random_words(rng))
    }

    /// Πᵢ Pᵢ^(yᵢ) by square-and-multiply and an inversion per negative entry.
    fn naive(points: &[Fe], y: &[i64]) -> Fe {
        points.iter().zip(y).fold(Fe::ONE, |acc, (p, &k)| {
            let pow = p.pow(&Uint::<1>::from_u64(k.unsigned_abs()));
            let pow = if k < 0 {
                pow.invert_vartime().into_option().expect("unit")
            } else {
                pow
            };
            acc.mul(&pow)
        })
    }

    /// Ciphertexts cts[l][i] with 1 and p − 1 among random elements.
    fn ciphertexts(n: usize, rng: &mut StdRng) -> [Vec<Fe>; 8] {
        core::array::from_fn(|l| {
            (0..n)
                .map(|i| match (i + l) % 5 {
                    0 if l % 2 == 0 => Fe::ONE,
                    1 if l % 3 == 0 => Fe::ONE.neg(),
                    _ => random_fe(rng),
                })
                .collect()
        })
    }

    fn check(n: usize, ys: &[Vec<i64>], chunk: Option<usize>, seed: u64) {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let mut rng = StdRng::seed_from_u64(seed);
        let cts = ciphertexts(n, &mut rng);
        let points: Vec<WideX8<40>> = (0..n)
            .map(|i| {
                let words: [Words; 8] =
                    core::array::from_fn(|l| *cts[l][i].to_montgomery().as_words());
                v.wide_pack(&m, &words)
            })
            .collect();
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let out = v
            .wide_vartime_multiproduct_with::<40, 32>(&m, &points, &refs, chunk)
            .expect("valid input");
        assert_eq!(out.len(), ys.len());
        for (j, (y, r)) in ys.iter().zip(&out).enumerate() {
            let got: [Words; 8] = v.wide_unpack(&m, r);
            for l in 0..8 {
                let expect = naive(&cts[l], y);
                assert_eq!(
                    got[l],
                    *expect.to_montgomery().as_words(),
                    "key {j} lane {l} n {n}"
                );
            }
        }
    }

    /// Keys: all zero, ±bound, sparse, dense random in ±bound.
    fn keys(n: usize, count: usize, bound: i64, seed: u64) -> Vec<Vec<i64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count)
            .map(|k| {
                (0..n)
                    .map(|i| match (k, (i + k) % 7) {
                        (0, _) => 0,
                        (1, _) if i % 5 != 0 => 0,
                        (_, 0) => bound,
                        (_, 1) => -bound,
                        (_, 2) => 0,
                        _ => rng.random_range(-bound..=bound),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn multiproduct_matches_naive_products() {
        check(13, &keys(13, 6, 127, 1), None, 1);
        check(13, &keys(13, 6, 127, 2), Some(4), 2);
        check(20, &keys(20, 3, 128, 3), Some(7), 3);
        check(9, &keys(9, 4, (1 << 15) - 1, 4), Some(8), 4);
        check(5, &keys(5, 3, 1, 5), Some(3), 5);
        check(784, &keys(784, 3, 127, 6), None, 6);
    }

    #[test]
    fn multiproduct_single_key_negative_digits_and_zero_keys() {
        check(11, &[vec![-1; 11]], None, 6);
        check(
            11,
            &[vec![-128, 127, -3, 0, 0, 5, -7, 1, -1, 2, -2]],
            Some(4),
            7,
        );
        check(11, &[vec![0; 11], vec![0; 11]], None, 8);
        check(1, &[vec![-5], vec![3], vec![0]], None, 9);
        check(0, &[vec![], vec![]], None, 10);
        check(4, &[], None, 11);
    }

    #[test]
    fn multiproduct_rejects_bad_input() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let points = vec![v.wide_one(&m); 3];
        let short = [1i64, 2];
        let r = v.wide_vartime_multiproduct::<40, 32>(&m, &points, &[&short]);
        assert_eq!(
            r.err(),
            Some(Error::LengthMismatch {
                expected: 3,
                got: 2
            })
        );
        let big = [1i64 << 31, 0, 0];
        assert!(
            v.wide_vartime_multiproduct::<40, 32>(&m, &points, &[&big])
                .is_err()
        );
        let ok = [1i64, 0, -1];
        assert!(
            v.wide_vartime_multiproduct::<40, 31>(&m, &points, &[&ok])
                .is_err()
        );
        let zero = [WideX8([unsafe_zero(v); 40]); 3];
        assert!(
            v.wide_vartime_multiproduct::<40, 32>(&m, &zero, &[&ok])
                .is_err()
        );
    }

    fn unsafe_zero(_: Ifma) -> core::arch::x86_64::__m512i {
        // SAFETY: the `Ifma` argument proves the features `_mm512_setzero_si512` needs.
        unsafe { core::arch::x86_64::_mm512_setzero_si512() }
    }

    #[test]
    fn chunk_width_follows_the_cost() {
        assert_eq!(wide_chunk_width(784, 64, 8), 7);
        assert!(wide_chunk_width(784, 1, 8) <= 5);
        assert_eq!(wide_chunk_width(784, 100_000, 8), 8);
    }
}
