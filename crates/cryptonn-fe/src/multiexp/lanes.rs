//! The signed engine ([`super::signed`]) over eight point vectors at once,
//! one per AVX-512 IFMA lane ([`crate::lanes::ifma`]).
//!
//! The table indices depend on the keys only, so eight ciphertexts decrypted
//! under the same keys walk exactly the same path: each lane holds its own
//! ciphertext's tables and accumulators, and every lookup is a plain load.
//! The points are decoded from their encodings in the lanes too (about a
//! ninth of dalek's decompression), and the results leave as encodings.
//!
//! Variable time in public values only (ciphertext points and key vectors).

use crate::{Error, Result};

/// Encodings of 2·Σᵢ yᵢ·Pᵢ for every vector and every y: `vectors[v]` holds
/// n canonical 32-byte Ristretto255 encodings back to back, every y has n
/// entries of magnitude below 2⁶¹; the result's row v has one encoding per y.
/// `None` when the CPU lacks AVX-512 IFMA. The engine without the
/// commitment term, for the tests against the naive sums.
///
/// # Errors
/// [`Error::LengthMismatch`] for a vector or y of another length;
/// [`Error::InvalidEncoding`] for a point that does not decode.
#[cfg(test)]
pub fn doubled_sums_encoded(
    vectors: &[&[u8]],
    ys: &[&[i64]],
) -> Option<Result<Vec<Vec<[u8; 32]>>>> {
    #[cfg(target_arch = "x86_64")]
    {
        let ifma = crate::lanes::ifma::Ifma::detect()?;
        Some(imp::doubled_sums_encoded(ifma, vectors, ys))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (vectors, ys);
        None
    }
}

/// For every vector v and every y (index k): the encodings of
/// D = 2·Σᵢ yᵢ·Pᵢ + sₖ·Cᵥ and of 2·D back to back (64 bytes), where Cᵥ is
/// `commitments[v]` and sₖ the scalar with radix-16 digits `digits[k]`
/// ([`crate::lanes::radix16`]); the multiplication by sₖ is
/// constant-time in the digits. For FEIP, sₖ = −2·sk and D = 2·⟨x, y⟩·g;
/// 2·D's encoding is the discrete-log fingerprint's source. `None` when the
/// CPU lacks AVX-512 IFMA.
///
/// # Errors
/// As [`doubled_sums_encoded`], and [`Error::LengthMismatch`] unless there
/// is one commitment per vector and one digit string per y.
pub fn decryption_encodings(
    vectors: &[&[u8]],
    commitments: &[[u8; 32]],
    ys: &[&[i64]],
    digits: &[[i8; 64]],
) -> Option<Result<Vec<Vec<[u8; 64]>>>> {
    #[cfg(target_arch = "x86_64")]
    {
        let ifma = crate::lanes::ifma::Ifma::detect()?;
        Some(imp::decryption_encodings(
            ifma,
            vectors,
            commitments,
            ys,
            digits,
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (vectors, commitments, ys, digits);
        None
    }
}

/// Checks that `bytes` holds whole valid 32-byte encodings, eight at a time
/// in the lanes; `None` when the CPU lacks AVX-512 IFMA.
///
/// # Errors
/// [`Error::InvalidEncoding`] for a wrong length or a point that does not
/// decode.
pub fn validate_encodings(bytes: &[u8]) -> Option<Result<()>> {
    #[cfg(target_arch = "x86_64")]
    {
        use rayon::prelude::*;
        let ifma = crate::lanes::ifma::Ifma::detect()?;
        if !bytes.len().is_multiple_of(32) {
            return Some(Err(Error::InvalidEncoding(
                "ristretto255: not whole 32-byte elements",
            )));
        }
        Some(bytes.par_chunks(8 * 256).try_for_each(|part| {
            part.chunks(8 * 32).try_for_each(|eight| {
                let mut lanes = [[0u8; 32]; 8];
                for (lane, b) in lanes.iter_mut().zip(eight.chunks_exact(32)) {
                    lane.copy_from_slice(b);
                }
                ifma.vartime_decode(&lanes).map(drop)
            })
        }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = bytes;
        None
    }
}

/// The shape every input must have: n points per vector, n entries per y.
fn check_shape(vectors: &[&[u8]], ys: &[&[i64]]) -> Result<usize> {
    let n = ys.first().map_or(0, |y| y.len());
    if let Some(y) = ys.iter().find(|y| y.len() != n) {
        return Err(Error::LengthMismatch {
            expected: n,
            got: y.len(),
        });
    }
    if let Some(v) = vectors.iter().find(|v| v.len() != 32 * n) {
        return Err(Error::LengthMismatch {
            expected: 32 * n,
            got: v.len(),
        });
    }
    if ys
        .iter()
        .flat_map(|y| y.iter())
        .any(|k| k.unsigned_abs() >= 1 << 61)
    {
        return Err(Error::InvalidParameter(
            "lane engine: key entries must be below 2^61 in magnitude".into(),
        ));
    }
    Ok(n)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use rayon::prelude::*;

    use super::check_shape;
    use crate::lanes::edwards::Extended;
    use crate::lanes::ifma::{CachedX8, ExtendedX8, Ifma};
    use crate::multiexp::signed::{best_chunk, planes};
    use crate::multiexp::{max_magnitude, offset_digits, plane_patterns};
    use crate::{Error, Result};

    /// Widest chunk: 2^8 cached entries of 1,280 bytes stay in L2 beside
    /// the accumulators.
    const MAX_CHUNK: usize = 8;

    /// The keys' plane patterns, which every lane shares: `index[c]` holds
    /// the pattern of plane p of key k over chunk c at k·planes + p.
    struct Plan {
        n: usize,
        chunk: usize,
        planes: usize,
        index: Vec<Vec<u32>>,
    }

    impl Plan {
        fn new(n: usize, ys: &[&[i64]]) -> Plan {
            let planes = planes(max_magnitude(ys));
            let chunk = best_chunk(n, ys.len(), planes).0.clamp(1, MAX_CHUNK);
            let digits = offset_digits(ys, 1i128 << (planes - 1));
            let mut patterns = vec![0usize; planes];
            let index = (0..n.div_ceil(chunk))
                .map(|c| {
                    let range = c * chunk..(c * chunk + chunk).min(n);
                    let mut idx = Vec::with_capacity(ys.len() * planes);
                    for u in &digits {
                        plane_patterns(&mut patterns, &u[range.clone()]);
                        idx.extend(patterns.iter().map(|&m| m as u32));
                    }
                    idx
                })
                .collect();
            Plan {
                n,
                chunk,
                planes,
                index,
            }
        }
    }

    #[cfg(test)]
    pub(super) fn doubled_sums_encoded(
        ifma: Ifma,
        vectors: &[&[u8]],
        ys: &[&[i64]],
    ) -> Result<Vec<Vec<[u8; 32]>>> {
        let n = check_shape(vectors, ys)?;
        if ys.is_empty() || vectors.is_empty() {
            return Ok(vec![Vec::new(); vectors.len()]);
        }
        let plan = Plan::new(n, ys);
        let groups = vectors
            .par_chunks(8)
            .map(|group| {
                let sums = eight(ifma, &plan, group, ys.len())?;
                Ok(spread(
                    group.len(),
                    sums.iter().map(|s| ifma.vartime_encode(s)),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    pub(super) fn decryption_encodings(
        ifma: Ifma,
        vectors: &[&[u8]],
        commitments: &[[u8; 32]],
        ys: &[&[i64]],
        digits: &[[i8; 64]],
    ) -> Result<Vec<Vec<[u8; 64]>>> {
        let n = check_shape(vectors, ys)?;
        if commitments.len() != vectors.len() || digits.len() != ys.len() {
            return Err(Error::LengthMismatch {
                expected: vectors.len(),
                got: commitments.len(),
            });
        }
        if ys.is_empty() || vectors.is_empty() {
            return Ok(vec![Vec::new(); vectors.len()]);
        }
        let plan = Plan::new(n, ys);
        let groups = vectors
            .par_chunks(8)
            .zip(commitments.par_chunks(8))
            .map(|(group, commitments)| {
                let sums = eight(ifma, &plan, group, ys.len())?;
                let mut lanes = [[0u8; 32]; 8];
                lanes[..commitments.len()].copy_from_slice(commitments);
                let comb = ifma.comb(&ifma.vartime_decode(&lanes)?);
                let points = sums.iter().zip(digits).map(|(sum, d)| {
                    let point = ifma.add(sum, &ifma.to_cached(&ifma.comb_mul(&comb, d)));
                    let (once, twice) = (
                        ifma.vartime_encode(&point),
                        ifma.vartime_encode(&ifma.double(&point)),
                    );
                    core::array::from_fn::<[u8; 64], 8, _>(|l| {
                        let mut both = [0u8; 64];
                        both[..32].copy_from_slice(&once[l]);
                        both[32..].copy_from_slice(&twice[l]);
                        both
                    })
                });
                Ok(spread(group.len(), points))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(groups.into_iter().flatten().collect())
    }

    /// Per-key lane values to per-vector rows, for the `used` lanes.
    fn spread<T: Copy>(used: usize, per_key: impl Iterator<Item = [T; 8]>) -> Vec<Vec<T>> {
        let mut out: Vec<Vec<T>> = vec![Vec::new(); used];
        for lanes in per_key {
            for (row, value) in out.iter_mut().zip(lanes) {
                row.push(value);
            }
        }
        out
    }

    /// 2·Σᵢ yᵢ·Pᵢ for each key, one lane per vector of the group (missing
    /// lanes hold the identity).
    fn eight(ifma: Ifma, plan: &Plan, group: &[&[u8]], keys: usize) -> Result<Vec<ExtendedX8>> {
        let identity = ifma.pack_extended(&[Extended::IDENTITY; 8]);
        let mut acc = vec![identity; keys * plan.planes];
        let mut total = identity;
        for (c, idx) in plan.index.iter().enumerate() {
            let start = c * plan.chunk;
            let points = (start..(start + plan.chunk).min(plan.n))
                .map(|i| decode(ifma, group, i))
                .collect::<Result<Vec<_>>>()?;
            let table = signed_table(ifma, &points);
            total = ifma.add(&total, &table[table.len() - 1]);
            ifma.accumulate_lanewise(&mut acc, &table, idx);
        }
        let minus_total = ifma.neg_cached(&ifma.to_cached(&total));
        Ok(acc
            .chunks(plan.planes)
            .map(|per_key| {
                // Horner over the planes, most significant first.
                let mut sum = per_key[plan.planes - 1];
                for plane in per_key[..plan.planes - 1].iter().rev() {
                    sum = ifma.add(&ifma.double(&sum), &ifma.to_cached(plane));
                }
                ifma.add(&sum, &minus_total)
            })
            .collect())
    }

    /// Point i of every vector in the group, decoded in the lanes.
    fn decode(ifma: Ifma, group: &[&[u8]], i: usize) -> Result<ExtendedX8> {
        let mut bytes = [[0u8; 32]; 8];
        for (lane, v) in bytes.iter_mut().zip(group) {
            lane.copy_from_slice(&v[32 * i..32 * i + 32]);
        }
        ifma.vartime_decode(&bytes)
    }

    /// Every signed combination Σ ±Pᵢ of the chunk, indexed by its pattern
    /// (bit i set ⇔ +Pᵢ), in cached form: the half with the top sign + by one
    /// addition each from the all-positive sum (as [`super::super::signed`]),
    /// the other half their negations.
    fn signed_table(ifma: Ifma, points: &[ExtendedX8]) -> Vec<CachedX8> {
        let width = points.len();
        let half = 1usize << (width - 1);
        let minus_twice: Vec<CachedX8> = points[..width - 1]
            .iter()
            .map(|p| ifma.neg_cached(&ifma.to_cached(&ifma.double(p))))
            .collect();
        let all = points[1..]
            .iter()
            .fold(points[0], |acc, p| ifma.add(&acc, &ifma.to_cached(p)));
        let mut upper = vec![all; half];
        for m in (half..2 * half - 1).rev() {
            let low = m.trailing_ones() as usize;
            upper[m - half] = ifma.add(&upper[(m | 1 << low) - half], &minus_twice[low]);
        }
        let upper: Vec<CachedX8> = upper.iter().map(|p| ifma.to_cached(p)).collect();
        (0..2 * half)
            .map(|m| {
                if m >= half {
                    upper[m - half]
                } else {
                    ifma.neg_cached(&upper[2 * half - 1 - m - half])
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Group, Ristretto255};
    use crate::multiexp::tests::{boundary_keys, naive};

    type G = Ristretto255;

    /// `vectors` vectors of n points, the identity among them.
    fn encoded(
        vectors: usize,
        n: usize,
        seed: i64,
    ) -> (Vec<Vec<<G as Group>::Element>>, Vec<Vec<u8>>) {
        let g = G::generator();
        let points: Vec<Vec<_>> = (0..vectors as i64)
            .map(|v| {
                (0..n as i64)
                    .map(|i| {
                        if (v + i) % 11 == 3 {
                            G::identity()
                        } else {
                            G::vartime_mul_small(&g, seed * (v * 1009 + i) + 5)
                        }
                    })
                    .collect()
            })
            .collect();
        let bytes = points
            .iter()
            .map(|ps| ps.iter().flat_map(G::element_to_bytes).collect())
            .collect();
        (points, bytes)
    }

    fn check(vectors: usize, n: usize, keys: usize, bound: i64, seed: u64) {
        let (points, bytes) = encoded(vectors, n, seed as i64 % 997 + 1);
        let ys = boundary_keys(n, keys, bound, seed);
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let vecs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let Some(out) = doubled_sums_encoded(&vecs, &refs) else {
            eprintln!("no AVX-512 IFMA on this CPU: the lane engine is not exercised");
            return;
        };
        let out = out.unwrap();
        assert_eq!(out.len(), vectors);
        for (ps, row) in points.iter().zip(&out) {
            assert_eq!(row.len(), keys);
            for (y, e) in ys.iter().zip(row) {
                let expected = G::double(&naive::<G>(ps, y));
                assert_eq!(
                    e.to_vec(),
                    G::element_to_bytes(&expected),
                    "n {n} bound {bound}"
                );
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        #[test]
        fn lanes_match_naive(
            vectors in 1usize..19,
            n in 1usize..40,
            keys in 1usize..12,
            bound in proptest::sample::select(vec![1i64, 2, 127, 128, 2047, 1 << 30]),
            seed: u64,
        ) {
            check(vectors, n, keys, bound, seed);
        }
    }

    #[test]
    fn main_shapes_match_naive() {
        check(9, 100, 16, 127, 1);
        check(8, 256, 8, 127, 2);
    }

    #[test]
    fn rejects_bad_lengths_and_points() {
        let (_, bytes) = encoded(3, 4, 7);
        let y = [1i64, -2, 3, 0];
        let vecs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let Some(ok) = doubled_sums_encoded(&vecs, &[&y]) else {
            return;
        };
        assert!(ok.is_ok());
        let short = [&bytes[0][..96]];
        assert!(matches!(
            doubled_sums_encoded(&short, &[&y]),
            Some(Err(Error::LengthMismatch { .. }))
        ));
        let mut bad = bytes[1].clone();
        bad[31] |= 0x80; // top bit: never canonical
        assert!(matches!(
            doubled_sums_encoded(&[&bad], &[&y]),
            Some(Err(Error::InvalidEncoding(_)))
        ));
        let wide = [1i64 << 62, 0, 0, 0];
        assert!(matches!(
            doubled_sums_encoded(&vecs, &[&wide]),
            Some(Err(Error::InvalidParameter(_)))
        ));
    }
}
