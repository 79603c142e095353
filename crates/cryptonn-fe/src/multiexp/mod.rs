//! Multi-scalar multiplication Σ kᵢ·Pᵢ for small signed public kᵢ.
//!
//! This is the inner loop of FEIP decryption (∏ ctᵢ^{yᵢ}). The exponents are
//! quantized weights of a few bits, so a bucket method (Pippenger) with one
//! or two windows beats both separate double-and-add and a generic 256-bit
//! multi-scalar multiplication by a wide margin. Many keys over the same
//! points share tables ([`vartime_multiscalar_mul_shared_with`]): the
//! four-Russians engine, the signed-digit one, and on AVX-512 IFMA the same
//! signed method eight ciphertexts at a time in SIMD lanes ([`Engine`]);
//! [`Method::plan`] and [`Method::lanes_win`] pick by cost.

use crate::group::Group;
use crate::{Error, Result};

pub(crate) mod lanes;
mod signed;

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
    let nonzero = scalars.iter().filter(|&&k| k != 0).count();
    let window = window_bits(nonzero, bits);
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

/// The dense method of [`vartime_multiscalar_mul_shared_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Engine {
    /// Tables of all subset sums of 8 points and offset-binary bit planes:
    /// the engine before issue #21, kept for comparison.
    FourRussians,
    /// ±1 digit planes over tables of signed combinations, half of them by
    /// negation, chunk width by cost ([`signed`](self) module); on groups
    /// without cheap negation, four-Russians. Results are doubled.
    Signed,
    /// The signed method over eight ciphertexts at a time in SIMD lanes,
    /// read from their encodings ([`Group::vartime_doubled_decryptions`]),
    /// where the group and CPU have it (Ristretto255 on AVX-512 IFMA);
    /// elsewhere the signed method.
    #[default]
    Lanes,
}

/// The results of a shared multi-exponentiation, each times `scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaledSums<E> {
    /// scale·Σᵢ yᵢ·Pᵢ for each y, in order.
    pub sums: Vec<E>,
    /// 1, or 2 where the signed engine ran (halving would cost a scalar
    /// multiplication; the discrete log halves the integer instead).
    pub scale: u32,
}

/// Σᵢ yᵢ·Pᵢ for many vectors y sharing the same points P, by the "four
/// Russians" method ([`Engine::FourRussians`]) or the per-vector methods
/// where those are cheaper. See [`vartime_multiscalar_mul_shared_with`].
///
/// # Errors
/// [`Error::LengthMismatch`] if a vector's length differs from the points'.
pub fn vartime_multiscalar_mul_shared<G: Group>(
    points: &[G::Element],
    ys: &[&[i64]],
) -> Result<Vec<G::Element>> {
    vartime_multiscalar_mul_shared_with::<G>(points, ys, Engine::FourRussians).map(|s| s.sums)
}

/// Σᵢ yᵢ·Pᵢ for many vectors y sharing the same points P, times a scale.
///
/// Dense vectors share tables built from the points. Four-Russians: the
/// points are cut into chunks of 8, every subset sum of each chunk
/// is tabulated once (one addition per entry), and each y then costs one
/// table lookup and addition per chunk and bit plane of its offset-binary
/// digits: about n·2^CHUNK/(CHUNK·H) + b·n/CHUNK additions per vector for
/// H vectors of b bits over n points, instead of about 2n for a bucket
/// method. Signed: ±1 digits, so a table of the same size covers one more
/// point per lookup, and the sums come out doubled.
///
/// Few vectors, or vectors sparse enough that one addition per non-zero
/// beats the shared tables, take a per-vector method (scale 1).
///
/// # Errors
/// [`Error::LengthMismatch`] if a vector's length differs from the points'.
pub fn vartime_multiscalar_mul_shared_with<G: Group>(
    points: &[G::Element],
    ys: &[&[i64]],
    engine: Engine,
) -> Result<ScaledSums<G::Element>> {
    if let Some(y) = ys.iter().find(|y| y.len() != points.len()) {
        return Err(Error::LengthMismatch {
            expected: points.len(),
            got: y.len(),
        });
    }
    let max = max_magnitude(ys);
    let exact = |sums| ScaledSums { sums, scale: 1 };
    Ok(match Method::plan::<G>(points.len(), ys, engine) {
        Method::Sparse => exact(vartime_multiscalar_mul_sparse::<G>(points, ys, max)),
        Method::Bucket => exact(
            ys.iter()
                .map(|y| vartime_multiscalar_mul_small::<G>(points, y))
                .collect::<Result<_>>()?,
        ),
        Method::Signed => ScaledSums {
            sums: signed::doubled_sums::<G>(points, ys, max),
            scale: 2,
        },
        Method::FourRussians => exact(four_russians::<G>(points, ys, max)),
    })
}

/// The largest |yᵢ| over all vectors.
fn max_magnitude(ys: &[&[i64]]) -> u64 {
    ys.iter()
        .flat_map(|y| y.iter())
        .map(|k| k.unsigned_abs())
        .max()
        .unwrap_or(0)
}

/// The method [`vartime_multiscalar_mul_shared_with`] runs for a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One bucket multiplication per vector.
    Bucket,
    /// Straus over a table of small multiples of the used points.
    Sparse,
    /// Shared subset-sum tables, offset-binary planes.
    FourRussians,
    /// Shared signed-combination tables, ±1 planes (doubled results).
    Signed,
}

/// How many times cheaper an addition in the lane engine is than one
/// through dalek, counted conservatively (measured 6–8× per addition,
/// conversions included: `lanes_bench`).
pub const LANE_SPEEDUP: usize = 6;

impl Method {
    /// Whether the lane engine beats every per-vector method for `ys` over
    /// `points` points: its signed tables and lookups at
    /// 1/[`LANE_SPEEDUP`] of their cost against the bucket and sparse
    /// methods at theirs.
    pub fn lanes_win(points: usize, ys: &[&[i64]]) -> bool {
        let max = max_magnitude(ys);
        if ys.is_empty() || points == 0 || max >= 1 << 61 {
            return false;
        }
        let lanes = signed::best_chunk(points, ys.len(), signed::planes(max)).1 / LANE_SPEEDUP;
        let nonzero = nonzero_entries(ys);
        let per_vector = per_vector_cost(nonzero, ys.len(), max);
        lanes < per_vector.min(sparse_cost(points, nonzero, ys.len(), max))
    }

    /// The cheapest method for `ys` over `points` points with `engine` as
    /// the dense method (the lane engine counts as signed).
    pub fn plan<G: Group>(points: usize, ys: &[&[i64]], engine: Engine) -> Method {
        let max = max_magnitude(ys);
        let signed = engine != Engine::FourRussians && G::CHEAP_NEG && max < 1 << 61;
        let dense = if signed {
            signed::best_chunk(points, ys.len(), signed::planes(max)).1
        } else {
            shared_cost(points, ys.len(), max)
        };
        let nonzero = nonzero_entries(ys);
        let per_vector = per_vector_cost(nonzero, ys.len(), max);
        let sparse = sparse_cost(points, nonzero, ys.len(), max);
        if ys.len() < SHARED_MIN_KEYS
            || points == 0
            || max >= 1 << 61
            || per_vector.min(sparse) < dense
        {
            if sparse < per_vector && ys.len() >= SHARED_MIN_KEYS {
                return Method::Sparse;
            }
            return Method::Bucket;
        }
        if signed {
            Method::Signed
        } else {
            Method::FourRussians
        }
    }
}

/// The four-Russians sums (see [`vartime_multiscalar_mul_shared_with`]).
fn four_russians<G: Group>(points: &[G::Element], ys: &[&[i64]], max: u64) -> Vec<G::Element> {
    // Offset binary: u = y + 2^(bits−1) ∈ [0, 2^bits).
    let bits = 65 - max.leading_zeros();
    let offset = 1i128 << (bits - 1);
    let planes = bits as usize;
    let digits = offset_digits(ys, offset);
    // acc[k·planes + p]: Σ over chunks of the subset sum selected by bit plane p of vector k.
    // Chunk-major order keeps one small table hot in cache for all vectors.
    let mut acc: Vec<Option<G::Element>> = vec![None; ys.len() * planes];
    let mut total = G::identity();
    let mut index = vec![0usize; planes];
    for (c, chunk) in points.chunks(CHUNK).enumerate() {
        let table = subset_sums::<G>(chunk);
        total = G::add(&total, &table[table.len() - 1]);
        for (k, u) in digits.iter().enumerate() {
            plane_patterns(&mut index, &u[c * CHUNK..c * CHUNK + chunk.len()]);
            for (p, &idx) in index.iter().enumerate() {
                if idx != 0 {
                    accumulate::<G>(&mut acc[k * planes + p], &table[idx]);
                }
            }
        }
    }
    combine_planes::<G>(&acc, planes, total)
}

/// Each vector's result from its bit planes' sums (`planes` per vector in
/// `acc`), undoing the offset binary: Σ_p 2^p·plane_p − 2^(planes−1)·ΣP,
/// with `total` = ΣP.
fn combine_planes<G: Group>(
    acc: &[Option<G::Element>],
    planes: usize,
    total: G::Element,
) -> Vec<G::Element> {
    // −2^(planes−1)·ΣP, added to every result; one negation per call.
    let correction = G::sub(
        &G::identity(),
        &(1..planes).fold(total, |acc, _| G::double(&acc)),
    );
    acc.chunks(planes)
        .map(|per_plane| G::add(&horner::<G>(per_plane), &correction))
        .collect()
}

/// Σₚ 2^p·planeₚ, most significant first (an empty plane adds nothing).
fn horner<G: Group>(per_plane: &[Option<G::Element>]) -> G::Element {
    per_plane.iter().rev().fold(G::identity(), |a, plane| {
        let doubled = G::double(&a);
        plane
            .as_ref()
            .map_or(doubled.clone(), |p| G::add(&doubled, p))
    })
}

/// Offset-binary digits u = y + `offset` of every vector.
pub(crate) fn offset_digits(ys: &[&[i64]], offset: i128) -> Vec<Vec<u64>> {
    ys.iter()
        .map(|y| y.iter().map(|&v| (i128::from(v) + offset) as u64).collect())
        .collect()
}

/// `index[p]` = the pattern of bit p over `digits` (bit i from digit i).
pub(crate) fn plane_patterns(index: &mut [usize], digits: &[u64]) {
    index.fill(0);
    for (bit, d) in digits.iter().enumerate() {
        for (p, idx) in index.iter_mut().enumerate() {
            *idx |= (((d >> p) & 1) as usize) << bit;
        }
    }
}

/// Additions of the bucket method over `vectors` vectors holding `nonzero`
/// non-zero entries in all: one per entry, and about 4·2^bits to reduce the
/// positive and negative buckets of each vector.
fn per_vector_cost(nonzero: usize, vectors: usize, max: u64) -> usize {
    let bits = (64 - max.leading_zeros()).min(12);
    nonzero + vectors * (4 << bits)
}

/// Non-zero entries over all of `ys`: what the bucket and sparse methods pay for.
fn nonzero_entries(ys: &[&[i64]]) -> usize {
    ys.iter()
        .map(|y| y.iter().filter(|&&v| v != 0).count())
        .sum()
}

/// Σᵢ yᵢ·Pᵢ for many sparse vectors y sharing the points P (a
/// convolution's kernels placed on every window, 25 non-zeros of 784): a
/// table of the first 2^[`SPARSE_WINDOW`] − 1 multiples of each point is built
/// once, then each vector costs one addition per non-zero entry and window,
/// and the window's doublings (Straus' interleaved method). Positive and
/// negative entries go to separate sums, subtracted once per vector.
fn vartime_multiscalar_mul_sparse<G: Group>(
    points: &[G::Element],
    ys: &[&[i64]],
    max: u64,
) -> Vec<G::Element> {
    let bits = 64 - max.leading_zeros();
    if bits == 0 {
        return vec![G::identity(); ys.len()];
    }
    let window = SPARSE_WINDOW.min(bits);
    let (windows, mask) = (bits.div_ceil(window), (1u64 << window) - 1);
    let mut used = vec![false; points.len()];
    for y in ys {
        for (u, &k) in used.iter_mut().zip(y.iter()) {
            *u |= k != 0;
        }
    }
    // multiples[i][d − 1] = d·Pᵢ for the points some vector uses.
    let multiples: Vec<Vec<G::Element>> = points
        .iter()
        .zip(&used)
        .map(|(p, &u)| {
            let mut row: Vec<G::Element> = Vec::new();
            if u {
                row.push(p.clone());
                for d in 1..mask as usize {
                    row.push(G::add(&row[d - 1], p));
                }
            }
            row
        })
        .collect();
    ys.iter()
        .map(|y| {
            let terms: Vec<(usize, u64, bool)> = y
                .iter()
                .enumerate()
                .filter(|&(_, &k)| k != 0)
                .map(|(i, &k)| (i, k.unsigned_abs(), k > 0))
                .collect();
            let mut pos: Option<G::Element> = None;
            let mut neg: Option<G::Element> = None;
            for w in (0..windows).rev() {
                for acc in [&mut pos, &mut neg] {
                    if let Some(a) = acc.as_mut() {
                        for _ in 0..window {
                            *a = G::double(a);
                        }
                    }
                }
                for &(i, k, positive) in &terms {
                    let digit = ((k >> (w * window)) & mask) as usize;
                    if digit != 0 {
                        let acc = if positive { &mut pos } else { &mut neg };
                        accumulate::<G>(acc, &multiples[i][digit - 1]);
                    }
                }
            }
            match (pos, neg) {
                (Some(p), Some(n)) => G::sub(&p, &n),
                (Some(p), None) => p,
                (None, Some(n)) => G::sub(&G::identity(), &n),
                (None, None) => G::identity(),
            }
        })
        .collect()
}

/// Additions of the sparse method: the multiples of every point, then one
/// per non-zero entry and window of each vector, and its doublings (twice,
/// for the two signs).
fn sparse_cost(points: usize, nonzero: usize, vectors: usize, max: u64) -> usize {
    let bits = (64 - max.leading_zeros()).max(1);
    let window = SPARSE_WINDOW.min(bits);
    let windows = bits.div_ceil(window) as usize;
    points * ((1 << window) - 2) + windows * nonzero + vectors * 2 * bits as usize
}

/// Additions of the shared method: 2^CHUNK per chunk of points for the
/// tables, then one per chunk and bit plane of every vector.
fn shared_cost(points: usize, vectors: usize, max: u64) -> usize {
    let planes = (65 - max.leading_zeros()) as usize;
    let chunks = points.div_ceil(CHUNK);
    chunks * (1 << CHUNK) + vectors * planes * chunks
}

/// Points per chunk of the four-Russians tables (2^CHUNK entries each).
const CHUNK: usize = 8;
/// Below this many vectors, per-vector bucket multiplication is cheaper.
const SHARED_MIN_KEYS: usize = 8;
/// Window of the sparse method: 15 multiples per point.
const SPARSE_WINDOW: u32 = 4;

/// All 2^len subset sums of `points`, indexed by bit mask.
fn subset_sums<G: Group>(points: &[G::Element]) -> Vec<G::Element> {
    let mut table = Vec::with_capacity(1 << points.len());
    table.push(G::identity());
    for mask in 1usize..1 << points.len() {
        let low = mask.trailing_zeros() as usize;
        let rest = &table[mask & (mask - 1)];
        table.push(if mask & (mask - 1) == 0 {
            points[low].clone()
        } else {
            G::add(rest, &points[low])
        });
    }
    table
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
pub(crate) mod tests {
    use super::*;
    use crate::group::{Modp2048, Ristretto255};

    pub(crate) fn naive<G: Group>(points: &[G::Element], ks: &[i64]) -> G::Element {
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

    /// Kernel-like vectors: `support` signed entries up to `bound` among `n`.
    fn check_sparse<G: Group>(n: usize, keys: usize, support: usize, bound: i64) {
        let g = G::generator();
        let points: Vec<_> = (0..n as i64)
            .map(|i| G::vartime_mul_small(&g, 11 * i + 3))
            .collect();
        let ys: Vec<Vec<i64>> = (0..keys)
            .map(|k| {
                let mut y = vec![0i64; n];
                for t in 0..support {
                    let v = ((k * 7919 + t * 104_729) as i64) % (2 * bound + 1) - bound;
                    y[(k * 13 + t * 29) % n] = if t == 0 {
                        bound
                    } else if t == 1 {
                        -bound
                    } else {
                        v
                    };
                }
                y
            })
            .collect();
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let max = bound.unsigned_abs();
        let sparse = vartime_multiscalar_mul_sparse::<G>(&points, &refs, max);
        let dispatched = vartime_multiscalar_mul_shared::<G>(&points, &refs).unwrap();
        for ((y, a), b) in ys.iter().zip(sparse).zip(dispatched) {
            let expected = naive::<G>(&points, y);
            assert_eq!(a, expected);
            assert_eq!(b, expected);
        }
    }

    #[test]
    fn sparse_matches_naive() {
        check_sparse::<Ristretto255>(784, 24, 25, 2047);
        check_sparse::<Ristretto255>(50, 9, 3, 1);
        check_sparse::<Ristretto255>(64, 8, 5, (1 << 20) - 1);
        check_sparse::<Modp2048>(40, 8, 4, 127);
        // A convolution's forward keys take the sparse path; dense MLP
        // keys stay shared.
        let kernel: Vec<i64> = (0..784)
            .map(|i| if i % 31 == 0 { 2047 } else { 0 })
            .collect();
        let kernels = vec![kernel.as_slice(); 3456];
        let nonzero = nonzero_entries(&kernels);
        let sparse = sparse_cost(784, nonzero, kernels.len(), 2047);
        assert!(sparse < per_vector_cost(nonzero, kernels.len(), 2047));
        assert!(sparse < shared_cost(784, 3456, 2047));
        let dense = vec![100i64; 784];
        let dense = [dense.as_slice(); 64];
        assert!(sparse_cost(784, nonzero_entries(&dense), 64, 127) > shared_cost(784, 64, 127));
    }

    fn check_shared<G: Group>(n: usize, keys: usize, bound: i64) {
        let g = G::generator();
        let points: Vec<_> = (0..n as i64)
            .map(|i| G::vartime_mul_small(&g, 5 * i + 2))
            .collect();
        let ys: Vec<Vec<i64>> = (0..keys as i64)
            .map(|k| {
                (0..n as i64)
                    .map(|i| (k * 7919 + i * 104_729) % (2 * bound + 1) - bound)
                    .collect()
            })
            .collect();
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let shared = vartime_multiscalar_mul_shared::<G>(&points, &refs).unwrap();
        for (y, r) in ys.iter().zip(shared) {
            assert_eq!(r, naive::<G>(&points, y));
        }
    }

    #[test]
    fn shared_matches_naive() {
        check_shared::<Ristretto255>(1, 9, 3);
        check_shared::<Ristretto255>(21, 12, 2047);
        check_shared::<Ristretto255>(17, 3, 100);
        check_shared::<Modp2048>(10, 8, 255);
        let g = Ristretto255::generator();
        let zeros = vec![0i64; 9];
        let r = vartime_multiscalar_mul_shared::<Ristretto255>(&[g; 9], &[zeros.as_slice(); 8])
            .unwrap();
        assert!(r.iter().all(Ristretto255::is_identity));
        assert!(vartime_multiscalar_mul_shared::<Ristretto255>(&[g; 2], &[&[1]]).is_err());
        // Extreme coefficients take the bucket path and stay exact.
        let wide = vec![i64::MIN + 1, i64::MAX];
        let r =
            vartime_multiscalar_mul_shared::<Ristretto255>(&[g; 2], &[wide.as_slice(); 8]).unwrap();
        assert!(r.iter().all(Ristretto255::is_identity));
    }

    #[test]
    fn sparse_ternary_vectors_match_naive_on_either_path() {
        let g = Ristretto255::generator();
        let points: Vec<_> = (0..100i64)
            .map(|i| Ristretto255::vartime_mul_small(&g, 3 * i + 7))
            .collect();
        for every in [2, 3, 10] {
            // Entries −1, 0, 1 with one non-zero in `every`.
            let ys: Vec<Vec<i64>> = (0..16i64)
                .map(|k| {
                    (0..100i64)
                        .map(|i| match (k * 31 + i * 17) % (2 * every) {
                            0 => 1,
                            1 => -1,
                            _ => 0,
                        })
                        .collect()
                })
                .collect();
            let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
            let sums = vartime_multiscalar_mul_shared::<Ristretto255>(&points, &refs).unwrap();
            for (y, r) in ys.iter().zip(sums) {
                assert_eq!(r, naive::<Ristretto255>(&points, y));
            }
        }
        // Sparse ternary vectors cost less one by one; dense 8-bit ones shared.
        let ternary = [&[1i64, 0, 0, -1, 0, 0][..]; 16];
        assert!(per_vector_cost(nonzero_entries(&ternary), 16, 1) < shared_cost(6, 16, 1));
        let dense = vec![100i64; 784];
        let dense = [dense.as_slice(); 64];
        assert!(per_vector_cost(nonzero_entries(&dense), 64, 127) > shared_cost(784, 64, 127));
    }

    /// Keys with every boundary the engines treat specially: ±bound, zero
    /// keys and entries, −bound − 1 is not reachable (|y| ≤ bound).
    pub(crate) fn boundary_keys(n: usize, keys: usize, bound: i64, seed: u64) -> Vec<Vec<i64>> {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..keys)
            .map(|k| {
                (0..n)
                    .map(|i| match (k + i) % 7 {
                        _ if k == 0 => 0,
                        0 => bound,
                        1 => -bound,
                        2 => 0,
                        _ => rng.random_range(-bound..=bound),
                    })
                    .collect()
            })
            .collect()
    }

    fn check_engine<G: Group>(n: usize, keys: usize, bound: i64, engine: Engine, seed: u64) -> u32 {
        let g = G::generator();
        let mut points: Vec<_> = (0..n as i64)
            .map(|i| G::vartime_mul_small(&g, 7 * i + seed as i64 % 1000 + 2))
            .collect();
        if n > 2 {
            points[1] = G::identity();
        }
        let ys = boundary_keys(n, keys, bound, seed);
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let out = vartime_multiscalar_mul_shared_with::<G>(&points, &refs, engine).unwrap();
        assert_eq!(out.sums.len(), keys);
        for (y, r) in ys.iter().zip(&out.sums) {
            let expected = G::vartime_mul_small(&naive::<G>(&points, y), i64::from(out.scale));
            assert_eq!(*r, expected, "n {n} keys {keys} bound {bound} {engine:?}");
        }
        out.scale
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn engines_match_naive(
            n in 1usize..48,
            keys in 1usize..24,
            bound in proptest::sample::select(vec![1i64, 2, 3, 127, 128, 255, 2047, 1 << 20]),
            seed: u64,
        ) {
            for engine in [Engine::FourRussians, Engine::Signed] {
                check_engine::<Ristretto255>(n, keys, bound, engine, seed);
            }
        }
    }

    #[test]
    fn signed_engine_runs_on_dense_keys_only_where_negation_is_cheap() {
        // The main job's forward shape in miniature: dense 8-bit keys.
        assert_eq!(
            check_engine::<Ristretto255>(100, 16, 127, Engine::Signed, 3),
            2
        );
        assert_eq!(
            check_engine::<Ristretto255>(100, 16, 127, Engine::FourRussians, 3),
            1
        );
        assert_eq!(check_engine::<Modp2048>(12, 8, 127, Engine::Signed, 3), 1);
        // 42 planes; a single key takes the bucket path, exact.
        assert_eq!(
            check_engine::<Ristretto255>(5, 9, 1 << 40, Engine::Signed, 4),
            2
        );
        assert_eq!(
            check_engine::<Ristretto255>(30, 1, 127, Engine::Signed, 5),
            1
        );
        let g = Ristretto255::generator();
        let wide = vec![i64::MIN + 1, i64::MAX];
        let r = vartime_multiscalar_mul_shared_with::<Ristretto255>(
            &[g; 2],
            &[wide.as_slice(); 8],
            Engine::Signed,
        )
        .unwrap();
        assert!(r.sums.iter().all(Ristretto255::is_identity));
    }

    #[test]
    fn lanes_take_dense_and_ternary_keys_not_kernels() {
        let dense = vec![100i64; 784];
        assert!(Method::lanes_win(784, &[dense.as_slice(); 64]));
        let ternary: Vec<i64> = (0..784).map(|i| [1, 0, -1][i % 3]).collect();
        assert!(Method::lanes_win(784, &[ternary.as_slice(); 64]));
        let kernel: Vec<i64> = (0..784)
            .map(|i| if i % 31 == 0 { 2047 } else { 0 })
            .collect();
        assert!(!Method::lanes_win(784, &vec![kernel.as_slice(); 3456]));
        assert!(!Method::lanes_win(784, &[]));
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
