//! The signed-digit shared engine: 2·Σᵢ yᵢ·Pᵢ for many y over the same P.
//!
//! With u = y + 2^(L−1) ∈ [0, 2^L) (offset binary, as in the four-Russians
//! engine) and sₚ = 2·bitₚ(u) − 1 ∈ {−1, +1}, Σₚ 2^p·sₚ = 2y + 1. Every
//! digit is ±1, so a chunk of c points needs the 2^c signed combinations
//! Σ ±Pᵢ, and half of those are the negations of the other half: a table of
//! 2^(c−1) entries serves c digits per lookup, where the four-Russians
//! table of 2^c subset sums serves c. For the same table cost a lookup
//! covers one more point, which is about 1/c fewer additions.
//!
//! The result is 2·Σ yᵢ·Pᵢ = Σₚ 2^p·(Σᵢ sₚᵢ·Pᵢ) − ΣP; halving it would cost a
//! scalar multiplication, so the caller takes the doubled value (the
//! discrete log then searches for 2·⟨x, y⟩ and halves the integer).
//! Negation must be cheap ([`Group::CHEAP_NEG`]).

use crate::group::Group;

use super::{accumulate, horner, offset_digits, plane_patterns};

/// Widest chunk considered: 2^(MAX_CHUNK−1) table entries.
const MAX_CHUNK: usize = 12;

/// Planes L for keys of magnitude up to `max`: |2y + 1| ≤ 2^L − 1.
pub(super) fn planes(max: u64) -> usize {
    (64 - (2 * max + 1).leading_zeros()) as usize
}

/// The chunk width minimizing additions for `points` points, `vectors`
/// vectors and `planes` planes, with that cost: per chunk, the table
/// (2^(c−1) entries, c doublings and c additions) and one lookup per vector
/// and plane; per vector, the Horner combination of its planes.
pub(super) fn best_chunk(points: usize, vectors: usize, planes: usize) -> (usize, usize) {
    (1..=MAX_CHUNK.min(points.max(1)))
        .map(|c| {
            let per_chunk = (1 << (c - 1)) + 2 * c + vectors * planes;
            (c, points.div_ceil(c) * per_chunk + vectors * 2 * planes)
        })
        .min_by_key(|&(_, cost)| cost)
        .unwrap_or((1, usize::MAX))
}

/// 2·Σᵢ yᵢ·Pᵢ for every y in `ys` (all of `points`' length, entries of
/// magnitude ≤ `max` < 2⁶¹).
pub(super) fn doubled_sums<G: Group>(
    points: &[G::Element],
    ys: &[&[i64]],
    max: u64,
) -> Vec<G::Element> {
    let planes = planes(max);
    let (chunk, _) = best_chunk(points.len(), ys.len(), planes);
    let offset = 1i128 << (planes - 1);
    let digits = offset_digits(ys, offset);
    // acc[k·planes + p]: Σ over chunks of the signed combination selected by plane p of vector k.
    let mut acc: Vec<Option<G::Element>> = vec![None; ys.len() * planes];
    let mut total: Option<G::Element> = None;
    let mut index = vec![0usize; planes];
    for (c, part) in points.chunks(chunk).enumerate() {
        let table = SignedTable::<G>::new(part);
        accumulate::<G>(&mut total, table.all_positive());
        for (k, u) in digits.iter().enumerate() {
            plane_patterns(&mut index, &u[c * chunk..c * chunk + part.len()]);
            for (p, &idx) in index.iter().enumerate() {
                table.accumulate(&mut acc[k * planes + p], idx);
            }
        }
    }
    let total = total.unwrap_or_else(G::identity);
    acc.chunks(planes)
        .map(|per_plane| G::sub(&horner::<G>(per_plane), &total))
        .collect()
}

/// Σᵢ sᵢ·Pᵢ for every sign pattern s of a chunk, stored for the patterns
/// whose top sign is + (the rest are their negations).
struct SignedTable<G: Group> {
    /// entries[m − half] for m ∈ [half, 2·half): bit i of m set ⇔ sᵢ = +1.
    entries: Vec<G::Element>,
    half: usize,
}

impl<G: Group> SignedTable<G> {
    /// One addition per entry, after c − 1 doublings: from the all-positive
    /// sum, clearing bit i of a pattern subtracts 2·Pᵢ.
    fn new(points: &[G::Element]) -> Self {
        let width = points.len();
        let half = 1usize << (width - 1);
        let twice: Vec<G::Element> = points[..width - 1].iter().map(G::double).collect();
        let all = points[1..]
            .iter()
            .fold(points[0].clone(), |acc, p| G::add(&acc, p));
        let mut entries = vec![G::identity(); half];
        entries[half - 1] = all;
        for m in (half..2 * half - 1).rev() {
            // The lowest clear bit of m is below the top bit, and m with it
            // set is larger, so its entry is already filled.
            let low = m.trailing_ones() as usize;
            entries[m - half] = G::sub(&entries[(m | 1 << low) - half], &twice[low]);
        }
        Self { entries, half }
    }

    /// Σ Pᵢ, the pattern with every sign +.
    fn all_positive(&self) -> &G::Element {
        &self.entries[self.half - 1]
    }

    /// slot += the combination with sign pattern `pattern`.
    fn accumulate(&self, slot: &mut Option<G::Element>, pattern: usize) {
        if pattern >= self.half {
            accumulate::<G>(slot, &self.entries[pattern - self.half]);
            return;
        }
        // The complement has the top bit set: its entry negated.
        let entry = &self.entries[(2 * self.half - 1 - pattern) - self.half];
        *slot = Some(match slot.take() {
            Some(a) => G::sub(&a, entry),
            None => G::neg(entry),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Ristretto255;

    type G = Ristretto255;

    fn points(n: usize, seed: i64) -> Vec<<G as Group>::Element> {
        let g = G::generator();
        (0..n as i64)
            .map(|i| G::vartime_mul_small(&g, seed * i + 1))
            .collect()
    }

    #[test]
    fn table_holds_every_sign_pattern() {
        for width in 1..=5 {
            let ps = points(width, 7);
            let table = SignedTable::<G>::new(&ps);
            for pattern in 0..1usize << width {
                let expected = ps.iter().enumerate().fold(G::identity(), |acc, (i, p)| {
                    if pattern >> i & 1 == 1 {
                        G::add(&acc, p)
                    } else {
                        G::sub(&acc, p)
                    }
                });
                let mut slot = None;
                table.accumulate(&mut slot, pattern);
                assert_eq!(slot, Some(expected), "width {width} pattern {pattern}");
            }
        }
    }

    #[test]
    fn planes_cover_the_doubled_range() {
        assert_eq!(planes(0), 1);
        assert_eq!(planes(127), 8);
        assert_eq!(planes(128), 9);
        assert_eq!(planes(2047), 12);
        for max in [0u64, 1, 2, 127, 128, 1000, (1 << 60) + 3] {
            let l = planes(max);
            assert!(2 * max < 1 << l);
            assert!(l == 1 || 2 * max + 1 >= 1 << (l - 1));
        }
    }

    #[test]
    fn best_chunk_grows_with_the_vectors() {
        let (few, _) = best_chunk(784, 8, 8);
        let (many, _) = best_chunk(784, 512, 8);
        assert!(few < many, "{few} {many}");
        assert_eq!(best_chunk(1, 64, 8).0, 1);
    }
}
