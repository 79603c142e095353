//! Fixed-base exponentiation tables for the MODP groups.
//!
//! [`Comb`] is the Lim–Lee comb (C. H. Lim and P. J. Lee, *More Flexible
//! Exponentiation with Precomputation*, CRYPTO 1994): write the n-bit
//! exponent as `TEETH` rows of a = ⌈n/`TEETH`⌉ bits and cut each row into
//! `BLOCKS` blocks of b = ⌈a/`BLOCKS`⌉ bits. For each block s the table
//! holds, for every `TEETH`-bit pattern u, Πᵢ x^(uᵢ·2^(i·a + s·b)). Then
//! x^k costs b − 1 squarings and `BLOCKS`·b multiplications, each by one
//! table entry chosen in constant time (every entry is read; the index only
//! picks a mask). For n = 2048: 170 squarings and 342 multiplications
//! instead of about 2,560 for a 4-bit window, and 2·2⁶ entries (32 KiB).
//!
//! [`SmallTable`] holds g^(±d·16^i) for d < 16, i < 4, for g^k with
//! |k| < 2¹⁶: four constant-time lookups and multiplications.

use core::marker::PhantomData;

use crypto_bigint::modular::ConstMontyParams;
use crypto_bigint::{Choice, Uint, Word};

use super::arith::Fe;

/// Rows of the comb: the table has 2^`TEETH` entries per block.
const TEETH: usize = 6;
/// Blocks per row: one table each; halves the squarings.
const BLOCKS: usize = 2;
/// Radix-16 digits of a small exponent.
const SMALL_DIGITS: usize = 4;

/// A Lim–Lee comb table of one element (see the module docs), entries in
/// Montgomery form.
pub struct Comb<M, const L: usize> {
    entries: Vec<Uint<L>>,
    modulus: PhantomData<M>,
}

/// g^(±d·16^i) for d < 16, i < 4, in Montgomery form: row i holds the 16
/// positive then the 16 negative powers.
pub struct SmallTable<M, const L: usize> {
    entries: Vec<Uint<L>>,
    modulus: PhantomData<M>,
}

/// The entry `idx` of `entries`, reading every entry: constant-time in idx.
fn lookup<const L: usize>(entries: &[Uint<L>], idx: u32) -> Uint<L> {
    let mut out = [0 as Word; L];
    for (i, entry) in (0u32..).zip(entries) {
        let mask = Word::from(Choice::from_u32_eq(i, idx).to_u8()).wrapping_neg();
        for (o, w) in out.iter_mut().zip(entry.as_words()) {
            *o |= w & mask;
        }
    }
    Uint::from_words(out)
}

/// Bit `pos` of k (0 past the top). pos is public; k's bits only flow into
/// arithmetic.
fn bit<const L: usize>(k: &Uint<L>, pos: usize) -> u32 {
    let w = Word::BITS as usize;
    k.as_words()
        .get(pos / w)
        .map_or(0, |word| ((word >> (pos % w)) & 1) as u32)
}

/// (a, b): the row length a and block length b for `L` limbs.
fn geometry<const L: usize>() -> (usize, usize) {
    let spacing = (Uint::<L>::BITS as usize).div_ceil(TEETH);
    (spacing, spacing.div_ceil(BLOCKS))
}

impl<M: ConstMontyParams<L>, const L: usize> Comb<M, L> {
    /// Builds the table of x: about n squarings and 2·2⁶ multiplications,
    /// a little less than one exponentiation.
    pub fn new(x: &Fe<M, L>) -> Self {
        let (spacing, block) = geometry::<L>();
        // bases[i·BLOCKS + s] = x^(2^(i·a + s·b)), positions ascending.
        let mut bases = Vec::with_capacity(TEETH * BLOCKS);
        let (mut cur, mut at) = (*x, 0);
        for i in 0..TEETH {
            for s in 0..BLOCKS {
                for _ in at..i * spacing + s * block {
                    cur = cur.square();
                }
                at = i * spacing + s * block;
                bases.push(cur);
            }
        }
        let mut entries = Vec::with_capacity(BLOCKS << TEETH);
        for s in 0..BLOCKS {
            let start = entries.len();
            entries.push(Fe::<M, L>::ONE.to_montgomery());
            for u in 1usize..1 << TEETH {
                // The entry of u = the entry of u without its lowest bit,
                // times the base of that bit.
                let rest = u & (u - 1);
                let base = bases[u.trailing_zeros() as usize * BLOCKS + s];
                let entry = if rest == 0 {
                    base
                } else {
                    Fe::<M, L>::from_montgomery(entries[start + rest]).mul(&base)
                };
                entries.push(entry.to_montgomery());
            }
        }
        Self {
            entries,
            modulus: PhantomData,
        }
    }

    /// x^k, constant-time in k (full width: every bit position is visited).
    pub fn pow(&self, k: &Uint<L>) -> Fe<M, L> {
        let (spacing, block) = geometry::<L>();
        let mut acc = Fe::<M, L>::ONE;
        for j in (0..block).rev() {
            if j + 1 != block {
                acc = acc.square();
            }
            for s in 0..BLOCKS {
                let col = s * block + j;
                if col >= spacing {
                    continue; // public: the last block may be short
                }
                let idx = (0..TEETH).fold(0u32, |idx, i| idx | bit(k, i * spacing + col) << i);
                let entries = &self.entries[s << TEETH..(s + 1) << TEETH];
                acc = acc.mul(&Fe::<M, L>::from_montgomery(lookup(entries, idx)));
            }
        }
        acc
    }
}

impl<M: ConstMontyParams<L>, const L: usize> SmallTable<M, L> {
    /// Builds the table of g: 128 multiplications and one inversion.
    pub fn new(g: &Fe<M, L>) -> Self {
        let ginv = g.invert_vartime().unwrap_or(Fe::<M, L>::ONE);
        let mut bases = [*g, ginv];
        let mut entries = Vec::with_capacity(SMALL_DIGITS * 32);
        for _ in 0..SMALL_DIGITS {
            for base in &mut bases {
                let mut power = Fe::<M, L>::ONE;
                for _ in 0..16 {
                    entries.push(power.to_montgomery());
                    power = power.mul(base);
                }
                // base^16: the next digit's base.
                *base = power;
            }
        }
        Self {
            entries,
            modulus: PhantomData,
        }
    }

    /// g^k for |k| < 2¹⁶ (higher bits of |k| are ignored), constant-time
    /// in k.
    pub fn pow(&self, k: i64) -> Fe<M, L> {
        let mag = k.unsigned_abs();
        let sign = ((k as u64) >> 63) as u32;
        let mut acc = Fe::<M, L>::ONE;
        for (i, row) in self.entries.chunks(32).enumerate() {
            let digit = ((mag >> (4 * i)) & 15) as u32;
            acc = acc.mul(&Fe::<M, L>::from_montgomery(lookup(
                row,
                (sign << 4) | digit,
            )));
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reads_the_chosen_entry() {
        let entries: Vec<Uint<4>> = (0..64u64).map(|i| Uint::from_u64(i * 7 + 1)).collect();
        for idx in 0..64u32 {
            assert_eq!(
                lookup(&entries, idx),
                Uint::from_u64(u64::from(idx) * 7 + 1)
            );
        }
    }

    #[test]
    fn bit_reads_each_position_and_zero_past_the_top() {
        let k = Uint::<2>::from_words([0b1010, 1 << 63]);
        let bits: Vec<u32> = (0..4).map(|p| bit(&k, p)).collect();
        assert_eq!(bits, [0, 1, 0, 1]);
        assert_eq!(bit(&k, 127), 1);
        assert_eq!(bit(&k, 128), 0);
    }

    #[test]
    fn geometry_covers_every_bit_once() {
        let (a, b) = geometry::<32>();
        assert!(TEETH * a >= 2048 && b * BLOCKS >= a && b * (BLOCKS - 1) < a);
        let (a, b) = geometry::<48>();
        assert!(TEETH * a >= 3072 && b * BLOCKS >= a && b * (BLOCKS - 1) < a);
    }
}
