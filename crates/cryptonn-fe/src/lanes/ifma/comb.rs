//! Constant-time multiplication by secret scalars in the lanes: a radix-16
//! comb of one base point per lane, each entry chosen by masked blends over
//! its whole window, so no address, branch or instruction depends on a
//! digit. Used for encryption, where the scalar (the randomness r) and the
//! small multiples (the pixels) are secret.

use core::arch::x86_64::*;

use super::{CachedX8, ExtendedX8, F51x8, from_lanes, opaque, splat};
use crate::lanes::field::Fe;

/// d·16ʲ·Pₗ for d = 1 … 8 and j = 0 … 63, lane l holding its own base Pₗ:
/// 512 cached entries (640 KiB).
#[derive(Clone, Debug)]
pub struct CombX8 {
    entries: Vec<CachedX8>,
}

/// Multiples 1 … 15 of 16ʷ·B for w < 4, the same base B in every lane: k·B
/// for |k| < 2¹⁶ with a different k per lane.
#[derive(Clone, Debug)]
pub struct SmallCombX8 {
    entries: Vec<CachedX8>,
}

impl CachedX8 {
    /// The identity in every lane: (1, 1, 1, 0).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn identity() -> CachedX8 {
        let one = F51x8::splat(&Fe::ONE);
        CachedX8 {
            y_plus_x: one,
            y_minus_x: one,
            z: one,
            t2d: F51x8::splat(&Fe::ZERO),
        }
    }

    /// Per lane, `window[|dₗ| − 1]` (the identity for 0) negated when dₗ < 0:
    /// every entry is read and blended in every lane, limb vector by limb
    /// vector so that the running choice stays in a register.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn choose(window: &[CachedX8], digits: __m512i) -> CachedX8 {
        let negative = _mm512_cmplt_epi64_mask(digits, _mm512_setzero_si512());
        let magnitude = _mm512_abs_epi64(digits);
        let mut hits = [0 as __mmask8; 16];
        for (k, hit) in hits.iter_mut().enumerate().take(window.len()) {
            *hit = _mm512_cmpeq_epi64_mask(magnitude, splat(k as u64 + 1));
        }
        let mut out = CachedX8::identity();
        for l in 0..5 {
            for (entry, &hit) in window.iter().zip(&hits) {
                out.y_plus_x.0[l] =
                    _mm512_mask_blend_epi64(hit, out.y_plus_x.0[l], opaque(entry.y_plus_x.0[l]));
                out.y_minus_x.0[l] =
                    _mm512_mask_blend_epi64(hit, out.y_minus_x.0[l], opaque(entry.y_minus_x.0[l]));
                out.z.0[l] = _mm512_mask_blend_epi64(hit, out.z.0[l], opaque(entry.z.0[l]));
                out.t2d.0[l] = _mm512_mask_blend_epi64(hit, out.t2d.0[l], opaque(entry.t2d.0[l]));
            }
        }
        // −P swaps Y + X and Y − X and negates 2d·T.
        CachedX8 {
            y_plus_x: F51x8::select(negative, &out.y_minus_x, &out.y_plus_x),
            y_minus_x: F51x8::select(negative, &out.y_plus_x, &out.y_minus_x),
            z: out.z,
            t2d: F51x8::select(negative, &out.t2d.neg(), &out.t2d),
        }
    }
}

impl ExtendedX8 {
    /// The identity in every lane: (0 : 1 : 1 : 0).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn identity() -> ExtendedX8 {
        let (zero, one) = (F51x8::splat(&Fe::ZERO), F51x8::splat(&Fe::ONE));
        ExtendedX8 {
            x: zero,
            y: one,
            z: one,
            t: zero,
        }
    }
}

/// d·16ʲ·B for d = 1 … `per_window` and j < `count`, window by window, in
/// cached form; `per_window` ≥ 8, so 16·b is one doubling of 8·b.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn windows(base: &ExtendedX8, count: usize, per_window: usize) -> Vec<CachedX8> {
    let mut entries = Vec::with_capacity(count * per_window);
    let mut b = *base;
    for _ in 0..count {
        let cached = b.to_cached();
        let mut multiple = b;
        let mut eight = b;
        entries.push(cached);
        for d in 2..=per_window {
            multiple = multiple.add(&cached);
            if d == 8 {
                eight = multiple;
            }
            entries.push(multiple.to_cached());
        }
        b = eight.double();
    }
    entries
}

impl CombX8 {
    /// The comb of the eight bases.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn new(base: &ExtendedX8) -> CombX8 {
        CombX8 {
            entries: windows(base, 64, 8),
        }
    }

    /// Σⱼ dⱼ·16ʲ·Pₗ in every lane l, the same digits in all lanes: 64
    /// additions, each after a masked scan of its window.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn mul(&self, digits: &[i8; 64]) -> ExtendedX8 {
        let mut acc = ExtendedX8::identity();
        for (window, &d) in self.entries.chunks_exact(8).zip(digits) {
            acc = acc.add(&CachedX8::choose(window, splat(d as i64 as u64)));
        }
        acc
    }
}

impl SmallCombX8 {
    /// The small comb of `base` (the same in every lane).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn new(base: &ExtendedX8) -> SmallCombX8 {
        SmallCombX8 {
            entries: windows(base, 4, 15),
        }
    }

    /// kₗ·B in lane l for |kₗ| < 2¹⁶ (the caller checks the range): four
    /// masked scans of 15 entries and four additions, the sign applied by a
    /// masked blend.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn mul(&self, ks: &[i64; 8]) -> ExtendedX8 {
        let k = from_lanes(ks.map(|k| k as u64));
        let negative = _mm512_cmplt_epi64_mask(k, _mm512_setzero_si512());
        let magnitude = _mm512_abs_epi64(k);
        let mut acc = ExtendedX8::identity();
        for (w, window) in self.entries.chunks_exact(15).enumerate() {
            let nibble =
                _mm512_and_si512(_mm512_srlv_epi64(magnitude, splat(4 * w as u64)), splat(15));
            acc = acc.add(&CachedX8::choose(window, nibble));
        }
        let negated = acc.neg();
        ExtendedX8 {
            x: F51x8::select(negative, &negated.x, &acc.x),
            y: acc.y,
            z: acc.z,
            t: F51x8::select(negative, &negated.t, &acc.t),
        }
    }
}
