//! Constant-time fixed-base exponentiation mod p in the lanes: the Lim–Lee
//! comb of `group::modp::comb` with one base per lane and one secret
//! exponent per lane.
//!
//! Write the n-bit exponent (n = 64W, the packed width: every bit position
//! is visited, the exponent is never shortened) as `teeth` rows of
//! a = ⌈n/teeth⌉ bits, each cut into `blocks` blocks of b = ⌈a/blocks⌉ bits.
//! Block s's table holds, for each `teeth`-bit pattern u, Πᵢ x^(uᵢ·2^(i·a + s·b)),
//! lane-interleaved: entry e is one [`WideX8`] holding entry e of all eight
//! lanes' tables. x^k then costs b − 1 squarings and `blocks`·b products by
//! entries chosen per lane: every entry of the block is read and blended
//! under the mask of the lanes whose index it is, so no address, branch or
//! instruction depends on an exponent.

use core::arch::x86_64::*;

use super::wide::{WideModulus, WideX8};
use super::{Ifma, from_lanes, opaque, splat};

/// The default geometry, picked by `lanes_bench`
/// (`modp2048_lane_comb_pow_us_t*b*`): 5 rows of 410 bits in 6 blocks,
/// 68 squarings and 410 products per exponentiation, 6·32 entries (480 KiB
/// for 2048 bits). Each masked scan streams a whole block table, so
/// scans of 64 entries (6 rows) cost more than the products they save;
/// 8 blocks were as fast for 640 KiB, 2 blocks of 6 rows (320 KiB) ~15 %
/// slower.
pub const WIDE_COMB_TEETH: usize = 5;
/// Blocks per row of the default geometry.
pub const WIDE_COMB_BLOCKS: usize = 6;

/// Lim–Lee comb tables of eight bases mod p, one per lane (see the module
/// docs): `blocks`·2^`teeth` lane entries of 2560 bytes each for 2048 bits.
///
/// # Security
/// [`Ifma::wide_comb_pow`] is constant-time in the exponents; building the
/// tables is constant-time in the bases.
#[derive(Clone, Debug)]
pub struct WideCombX8<const N: usize> {
    modulus: WideModulus<N>,
    teeth: usize,
    blocks: usize,
    /// Bits of the exponents (64 × the packed form's words).
    bits: usize,
    entries: Vec<WideX8<N>>,
}

impl<const N: usize> WideCombX8<N> {
    /// (a, b): the row length a and block length b.
    fn geometry(&self) -> (usize, usize) {
        let spacing = self.bits.div_ceil(self.teeth);
        (spacing, spacing.div_ceil(self.blocks))
    }

    /// The modulus the tables are for.
    pub fn modulus(&self) -> &WideModulus<N> {
        &self.modulus
    }

    /// The tables of the lanes' bases (in the lanes' form, below 2p): n
    /// squarings and `blocks`·2^`teeth` products, lane-wise.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn new(m: &WideModulus<N>, x: &WideX8<N>, teeth: usize, blocks: usize) -> Self {
        let mut comb = WideCombX8 {
            modulus: m.clone(),
            teeth,
            blocks,
            bits: 64 * m.words(),
            entries: Vec::with_capacity(blocks << teeth),
        };
        let (spacing, block) = comb.geometry();
        // bases[i·blocks + s] = x^(2^(i·a + s·b)), positions ascending.
        let mut bases = Vec::with_capacity(teeth * blocks);
        let (mut cur, mut at) = (*x, 0);
        for i in 0..teeth {
            for s in 0..blocks {
                for _ in at..i * spacing + s * block {
                    cur = cur.square(m);
                }
                at = i * spacing + s * block;
                bases.push(cur);
            }
        }
        for s in 0..blocks {
            let start = comb.entries.len();
            comb.entries.push(WideX8::one(m));
            for u in 1usize..1 << teeth {
                // The entry of u is the entry of u without its lowest bit,
                // times the base of that bit.
                let rest = u & (u - 1);
                let base = &bases[u.trailing_zeros() as usize * blocks + s];
                let entry = if rest == 0 {
                    *base
                } else {
                    comb.entries[start + rest].mul(m, base)
                };
                comb.entries.push(entry);
            }
        }
        comb
    }

    /// Per lane l, entry `idx[l]` of `table`: every entry is read for every
    /// limb and blended under the mask of the lanes that chose it. Eight limbs
    /// at a time stay in registers while the entries stream past (512
    /// contiguous bytes of each).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn choose(table: &[WideX8<N>], idx: __m512i) -> WideX8<N> {
        let mut hits = [0 as __mmask8; 256];
        for (e, hit) in hits.iter_mut().enumerate().take(table.len()) {
            *hit = _mm512_cmpeq_epi64_mask(idx, splat(e as u64));
        }
        let mut out = WideX8([_mm512_setzero_si512(); N]);
        for start in (0..N).step_by(8) {
            let mut limbs = [_mm512_setzero_si512(); 8];
            let len = (N - start).min(8);
            for (entry, &hit) in table.iter().zip(&hits) {
                for (i, limb) in limbs.iter_mut().enumerate().take(len) {
                    let loaded = opaque(entry.0[start + i]);
                    *limb = _mm512_mask_blend_epi64(hit, *limb, loaded);
                }
            }
            out.0[start..start + len].copy_from_slice(&limbs[..len]);
        }
        out
    }

    /// The lanes' comb indices at column `col` of the rows: bit i of lane
    /// l's index is bit i·a + col of `exps[l]` (0 past the top). The
    /// positions are public; the bits only flow into the index vector.
    fn indices<const W: usize>(
        &self,
        exps: &[[u64; W]; 8],
        spacing: usize,
        col: usize,
    ) -> [u64; 8] {
        core::array::from_fn(|l| {
            (0..self.teeth).fold(0u64, |idx, i| {
                let pos = i * spacing + col;
                let word = exps[l].get(pos / 64).copied().unwrap_or(0);
                idx | ((word >> (pos % 64)) & 1) << i
            })
        })
    }

    /// xₗ^(`exps[l]`) in every lane l, constant-time in the exponents (any
    /// values below 2^(64W)); the result is in the lanes' form, below 2p.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn pow<const W: usize>(&self, exps: &[[u64; W]; 8]) -> WideX8<N> {
        let m = &self.modulus;
        let (spacing, block) = self.geometry();
        let mut acc: Option<WideX8<N>> = None;
        for j in (0..block).rev() {
            if let Some(a) = acc.as_mut() {
                *a = a.square(m);
            }
            for s in 0..self.blocks {
                let col = s * block + j;
                if col >= spacing {
                    continue; // public: the last block may be short
                }
                let idx = from_lanes(self.indices(exps, spacing, col));
                let table = &self.entries[s << self.teeth..(s + 1) << self.teeth];
                let entry = WideCombX8::choose(table, idx);
                // Public: only the first product is skipped (1 · entry).
                acc = Some(match acc {
                    Some(a) => a.mul(m, &entry),
                    None => entry,
                });
            }
        }
        acc.unwrap_or_else(|| WideX8::one(m))
    }
}

impl Ifma {
    /// The comb tables of the eight lanes' bases (lane l: the base of lane l,
    /// in the lanes' form) with the default geometry
    /// ([`WIDE_COMB_TEETH`], [`WIDE_COMB_BLOCKS`]).
    pub fn wide_comb<const N: usize>(self, m: &WideModulus<N>, bases: &WideX8<N>) -> WideCombX8<N> {
        self.wide_comb_with(m, bases, WIDE_COMB_TEETH, WIDE_COMB_BLOCKS)
    }

    /// The comb tables with `teeth` rows and `blocks` blocks per row
    /// (`blocks`·2^`teeth` entries), for measurements.
    ///
    /// # Panics
    /// If `teeth` is not in 1 ..= 8 or `blocks` is 0.
    pub fn wide_comb_with<const N: usize>(
        self,
        m: &WideModulus<N>,
        bases: &WideX8<N>,
        teeth: usize,
        blocks: usize,
    ) -> WideCombX8<N> {
        assert!((1..=8).contains(&teeth) && blocks > 0, "comb geometry");
        // SAFETY: `self` exists only if `detect` found the features `new` enables.
        unsafe { WideCombX8::new(m, bases, teeth, blocks) }
    }

    /// xₗ^(`exps[l]`) in lane l, xₗ the base of lane l of `comb`: constant-time
    /// in the exponents (secret), which may be any W-word values (the full
    /// 64W bits are always scanned). The result is in the lanes' form, in
    /// [0, 2p): [`Ifma::wide_unpack`] gives crypto-bigint's form.
    ///
    /// # Panics
    /// If W differs from the word count of the comb's modulus.
    pub fn wide_comb_pow<const N: usize, const W: usize>(
        self,
        comb: &WideCombX8<N>,
        exps: &[[u64; W]; 8],
    ) -> WideX8<N> {
        assert_eq!(W, comb.modulus.words(), "exponents of another width");
        // SAFETY: `self` exists only if `detect` found the features `pow` enables.
        unsafe { comb.pow(exps) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Prime2048;
    use crypto_bigint::modular::ConstMontyParams;
    use crypto_bigint::{U2048, Uint};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::super::wide_fixtures::{Fe, Words, ifma, modulus, random_words};

    fn p() -> U2048 {
        *Prime2048::PARAMS.modulus().as_ref()
    }

    /// q = (p − 1)/2 minus k.
    fn q_minus(k: u64) -> Words {
        *p().shr_vartime(1)
            .wrapping_sub(&U2048::from_u64(k))
            .as_words()
    }

    fn fe_pow(base: &Words, exp: &Words) -> Words {
        *Fe::from_montgomery(Uint::from_words(*base))
            .pow(&Uint::from_words(*exp))
            .to_montgomery()
            .as_words()
    }

    fn check(v: Ifma, comb: &WideCombX8<40>, bases: &[Words; 8], exps: &[Words; 8]) {
        let got: [Words; 8] = v.wide_unpack(comb.modulus(), &v.wide_comb_pow(comb, exps));
        for l in 0..8 {
            assert_eq!(got[l], fe_pow(&bases[l], &exps[l]), "lane {l}");
        }
    }

    /// Exponents 0, 1, q − 1, q − 2, sparse bits (one bit, the top bit of a
    /// row, every 341st bit), then random.
    fn edge_exponents(rng: &mut StdRng) -> Vec<[Words; 8]> {
        let mut one = [0u64; 32];
        one[0] = 1;
        let mut sparse = [[0u64; 32]; 8];
        for (l, e) in sparse.iter_mut().enumerate() {
            let step = [341, 342, 343, 171, 1000, 2046, 64, 1][l];
            for pos in (l..2047).step_by(step) {
                e[pos / 64] |= 1 << (pos % 64);
            }
        }
        vec![
            [[0; 32]; 8],
            [one; 8],
            [q_minus(1); 8],
            core::array::from_fn(|l| [[0; 32], one, q_minus(1), q_minus(2)][l % 4]),
            sparse,
            core::array::from_fn(|_| random_words(rng)),
        ]
    }

    #[test]
    fn comb_pow_matches_crypto_bigint_with_different_bases() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let mut rng = StdRng::seed_from_u64(11);
        let mut bases: [Words; 8] = core::array::from_fn(|_| random_words(&mut rng));
        // A base of 1 (Montgomery form R mod p) and of p − 1.
        bases[1] = *Fe::ONE.to_montgomery().as_words();
        bases[2] = *Fe::ONE.neg().to_montgomery().as_words();
        let comb = v.wide_comb(&m, &v.wide_pack(&m, &bases));
        for exps in edge_exponents(&mut rng) {
            check(v, &comb, &bases, &exps);
        }
    }

    #[test]
    fn comb_pow_matches_with_one_base_and_other_geometries() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let mut rng = StdRng::seed_from_u64(12);
        let bases = [random_words(&mut rng); 8];
        let packed = v.wide_pack(&m, &bases);
        for (teeth, blocks) in [(6, 2), (4, 4), (5, 3), (8, 1), (1, 1)] {
            let comb = v.wide_comb_with(&m, &packed, teeth, blocks);
            let exps: [Words; 8] = core::array::from_fn(|_| random_words(&mut rng));
            check(v, &comb, &bases, &exps);
            check(v, &comb, &bases, &[q_minus(1); 8]);
        }
    }
}
