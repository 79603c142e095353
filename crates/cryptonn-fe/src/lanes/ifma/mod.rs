//! GF(2²⁵⁵ − 19), Edwards points and Ristretto255 decoding over 8 independent
//! lanes of AVX-512 IFMA (`vpmadd52luq` / `vpmadd52huq`).
//!
//! Lane `l` of every `__m512i` belongs to the `l`-th of eight unrelated values;
//! nothing crosses lanes except packing and unpacking. Limbs are radix 2⁵¹ as in
//! [`super::field`], and the invariant is the same: a reduced [`F51x8`] has every
//! limb below 2⁵², which is what the 52-bit multiplier inputs require.
//!
//! All arithmetic lives in `#[target_feature]` functions; the only way in from
//! ordinary code is the [`Ifma`] token, which exists only after runtime detection.
//!
//! # Security
//! Variable time (see the parent module), public values only, except the
//! combs ([`CombX8`], [`SmallCombX8`], [`WideCombX8`]) and the MODP lane
//! arithmetic ([`WideX8`]; not its `wide_vartime_*` inversion and
//! multi-product), constant-time in their secret inputs.
#![allow(unsafe_code)] // Reason: calling `#[target_feature]` code after runtime detection; see `Ifma`.

use core::arch::x86_64::*;

use super::edwards::{Cached, Extended};
use super::field::{Fe, MASK51};

mod comb;
mod wide;
mod wide_comb;
#[cfg(test)]
mod wide_fixtures;
mod wide_multi;
pub use comb::{CombX8, SmallCombX8};
pub use wide::{WideModulus, WideX8};
pub use wide_comb::{WIDE_COMB_BLOCKS, WIDE_COMB_TEETH, WideCombX8};
pub use wide_multi::{WIDE_MULTI_BOUND, wide_chunk_width};

/// Eight field elements, one per lane, as five limb vectors.
#[derive(Clone, Copy, Debug)]
pub struct F51x8([__m512i; 5]);

/// Eight extended Edwards points, one per lane.
#[derive(Clone, Copy, Debug)]
pub struct ExtendedX8 {
    x: F51x8,
    y: F51x8,
    z: F51x8,
    t: F51x8,
}

/// Eight cached points (Y + X, Y − X, Z, 2d·T), one per lane.
#[derive(Clone, Copy, Debug)]
pub struct CachedX8 {
    y_plus_x: F51x8,
    y_minus_x: F51x8,
    z: F51x8,
    t2d: F51x8,
}

#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn splat(x: u64) -> __m512i {
    _mm512_set1_epi64(x as i64)
}

#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn add64(a: __m512i, b: __m512i) -> __m512i {
    _mm512_add_epi64(a, b)
}

#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn lanes_of(v: __m512i) -> [u64; 8] {
    let lo = _mm512_extracti64x4_epi64::<0>(v);
    let hi = _mm512_extracti64x4_epi64::<1>(v);
    [
        _mm256_extract_epi64::<0>(lo) as u64,
        _mm256_extract_epi64::<1>(lo) as u64,
        _mm256_extract_epi64::<2>(lo) as u64,
        _mm256_extract_epi64::<3>(lo) as u64,
        _mm256_extract_epi64::<0>(hi) as u64,
        _mm256_extract_epi64::<1>(hi) as u64,
        _mm256_extract_epi64::<2>(hi) as u64,
        _mm256_extract_epi64::<3>(hi) as u64,
    ]
}

#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn from_lanes(l: [u64; 8]) -> __m512i {
    let l = l.map(|x| x as i64);
    _mm512_setr_epi64(l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7])
}

impl F51x8 {
    /// The same element in every lane.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn splat(fe: &Fe) -> F51x8 {
        let l = fe.0;
        F51x8([
            splat(l[0]),
            splat(l[1]),
            splat(l[2]),
            splat(l[3]),
            splat(l[4]),
        ])
    }

    /// Lane `l` takes `fes[l]`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn pack(fes: &[Fe; 8]) -> F51x8 {
        let mut out = [_mm512_setzero_si512(); 5];
        for (i, limb) in out.iter_mut().enumerate() {
            *limb = from_lanes([
                fes[0].0[i],
                fes[1].0[i],
                fes[2].0[i],
                fes[3].0[i],
                fes[4].0[i],
                fes[5].0[i],
                fes[6].0[i],
                fes[7].0[i],
            ]);
        }
        F51x8(out)
    }

    /// The eight lanes as scalar elements.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn unpack(&self) -> [Fe; 8] {
        let limbs = [
            lanes_of(self.0[0]),
            lanes_of(self.0[1]),
            lanes_of(self.0[2]),
            lanes_of(self.0[3]),
            lanes_of(self.0[4]),
        ];
        let mut out = [Fe::ZERO; 8];
        for (l, fe) in out.iter_mut().enumerate() {
            *fe = Fe([
                limbs[0][l],
                limbs[1][l],
                limbs[2][l],
                limbs[3][l],
                limbs[4][l],
            ]);
        }
        out
    }

    /// Parallel carry of limbs below 2⁶⁴; the result is reduced (limbs < 2⁵¹ + 2¹⁸).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn carry(z: [__m512i; 5]) -> F51x8 {
        let mask = splat(MASK51);
        let c0 = _mm512_srli_epi64::<51>(z[0]);
        let c1 = _mm512_srli_epi64::<51>(z[1]);
        let c2 = _mm512_srli_epi64::<51>(z[2]);
        let c3 = _mm512_srli_epi64::<51>(z[3]);
        let c4 = _mm512_srli_epi64::<51>(z[4]);
        // c4 < 2^13, so 19·c4 is exact in the low half of the 52-bit product.
        let r0 = _mm512_madd52lo_epu64(_mm512_and_si512(z[0], mask), c4, splat(19));
        F51x8([
            r0,
            add64(_mm512_and_si512(z[1], mask), c0),
            add64(_mm512_and_si512(z[2], mask), c1),
            add64(_mm512_and_si512(z[3], mask), c2),
            add64(_mm512_and_si512(z[4], mask), c3),
        ])
    }

    /// `self + rhs`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn add(&self, rhs: &F51x8) -> F51x8 {
        let (a, b) = (&self.0, &rhs.0);
        F51x8::carry([
            add64(a[0], b[0]),
            add64(a[1], b[1]),
            add64(a[2], b[2]),
            add64(a[3], b[3]),
            add64(a[4], b[4]),
        ])
    }

    /// `self − rhs` (adds 16·p first so that no limb underflows).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn sub(&self, rhs: &F51x8) -> F51x8 {
        let (a, b) = (&self.0, &rhs.0);
        let p0 = splat(16 * (MASK51 - 18));
        let pi = splat(16 * MASK51);
        F51x8::carry([
            _mm512_sub_epi64(add64(a[0], p0), b[0]),
            _mm512_sub_epi64(add64(a[1], pi), b[1]),
            _mm512_sub_epi64(add64(a[2], pi), b[2]),
            _mm512_sub_epi64(add64(a[3], pi), b[3]),
            _mm512_sub_epi64(add64(a[4], pi), b[4]),
        ])
    }

    /// `−self`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn neg(&self) -> F51x8 {
        F51x8([_mm512_setzero_si512(); 5]).sub(self)
    }

    /// Lane-wise select: lanes whose bit is set in `mask` take `if_set`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn select(mask: __mmask8, if_set: &F51x8, otherwise: &F51x8) -> F51x8 {
        let mut out = otherwise.0;
        for (o, s) in out.iter_mut().zip(if_set.0) {
            *o = _mm512_mask_blend_epi64(mask, *o, s);
        }
        F51x8(out)
    }
}

/// Column sums of a 5×5 limb product: `lo[k]` holds the low 52-bit halves of the
/// products at weight 2^(51k), `hi[k]` the high halves (worth 2·2^(51(k+1))).
/// Folds 2²⁵⁵ ≡ 19 and carries. Each column is below 2⁵⁶, so 20× that fits.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn finish(lo: [__m512i; 10], hi: [__m512i; 10]) -> F51x8 {
    let mut z = lo;
    for k in 1..10 {
        z[k] = add64(z[k], _mm512_slli_epi64::<1>(hi[k - 1]));
    }
    let mut r = [_mm512_setzero_si512(); 5];
    for (k, rk) in r.iter_mut().enumerate() {
        let u = z[k + 5];
        let u19 = add64(
            add64(u, _mm512_slli_epi64::<1>(u)),
            _mm512_slli_epi64::<4>(u),
        );
        *rk = add64(z[k], u19);
    }
    F51x8::carry(r)
}

impl F51x8 {
    /// `self · rhs`: 50 `vpmadd52` per eight products.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn mul(&self, rhs: &F51x8) -> F51x8 {
        let (a, b) = (&self.0, &rhs.0);
        let mut lo = [_mm512_setzero_si512(); 10];
        let mut hi = [_mm512_setzero_si512(); 10];
        for (i, ai) in a.iter().enumerate() {
            for (j, bj) in b.iter().enumerate() {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], *ai, *bj);
                hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], *ai, *bj);
            }
        }
        finish(lo, hi)
    }

    /// `self²`: cross products once, doubled, then the diagonal (30 `vpmadd52`).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn square(&self) -> F51x8 {
        let a = &self.0;
        let mut lo = [_mm512_setzero_si512(); 10];
        let mut hi = [_mm512_setzero_si512(); 10];
        for i in 0..5 {
            for j in i + 1..5 {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a[i], a[j]);
                hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a[i], a[j]);
            }
        }
        for k in 1..9 {
            lo[k] = add64(lo[k], lo[k]);
            hi[k] = add64(hi[k], hi[k]);
        }
        for (i, ai) in a.iter().enumerate() {
            lo[2 * i] = _mm512_madd52lo_epu64(lo[2 * i], *ai, *ai);
            hi[2 * i] = _mm512_madd52hi_epu64(hi[2 * i], *ai, *ai);
        }
        finish(lo, hi)
    }

    /// `self^(2^k)`, k ≥ 1.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(crate) fn pow2k(&self, k: u32) -> F51x8 {
        let mut x = self.square();
        for _ in 1..k {
            x = x.square();
        }
        x
    }

    /// `self^(2^252 − 3)` (same addition chain as [`Fe::pow_p58`]).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(crate) fn pow_p58(&self) -> F51x8 {
        let t0 = self.square();
        let t2 = self.mul(&t0.pow2k(2));
        let t3 = t0.mul(&t2);
        let t5 = t2.mul(&t3.square());
        let t7 = t5.pow2k(5).mul(&t5);
        let t9 = t7.pow2k(10).mul(&t7);
        let t11 = t9.pow2k(20).mul(&t9);
        let t13 = t11.pow2k(10).mul(&t7);
        let t15 = t13.pow2k(50).mul(&t13);
        let t17 = t15.pow2k(100).mul(&t15);
        let t19 = t17.pow2k(50).mul(&t13);
        self.mul(&t19.pow2k(2))
    }

    /// Canonical limbs (each below 2⁵¹, value below p).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn canonical(&self) -> [__m512i; 5] {
        let mut l = F51x8::carry(self.0).0;
        let (mask, nineteen) = (splat(MASK51), splat(19));
        let mut q = _mm512_srli_epi64::<51>(add64(l[0], nineteen));
        for limb in &l[1..] {
            q = _mm512_srli_epi64::<51>(add64(*limb, q));
        }
        l[0] = _mm512_madd52lo_epu64(l[0], q, nineteen);
        for i in 0..4 {
            l[i + 1] = add64(l[i + 1], _mm512_srli_epi64::<51>(l[i]));
            l[i] = _mm512_and_si512(l[i], mask);
        }
        l[4] = _mm512_and_si512(l[4], mask);
        l
    }

    /// Lanes whose element is negative (odd canonical encoding), RFC 9496 `IS_NEGATIVE`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn is_negative(&self) -> __mmask8 {
        _mm512_test_epi64_mask(self.canonical()[0], splat(1))
    }

    /// Lanes whose element is zero.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn is_zero(&self) -> __mmask8 {
        let c = self.canonical();
        let any = _mm512_or_si512(
            _mm512_or_si512(c[0], c[1]),
            _mm512_or_si512(_mm512_or_si512(c[2], c[3]), c[4]),
        );
        _mm512_testn_epi64_mask(any, any)
    }

    /// Lanes where `self == rhs` mod p.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn eq(&self, rhs: &F51x8) -> __mmask8 {
        self.sub(rhs).is_zero()
    }

    /// RFC 9496 `CT_ABS`, lane-wise.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(crate) fn abs(&self) -> F51x8 {
        F51x8::select(self.is_negative(), &self.neg(), self)
    }

    /// RFC 9496 `SQRT_RATIO_M1(u, v)` lane-wise: (lanes where u/v was square, root).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(crate) fn sqrt_ratio_i(u: &F51x8, v: &F51x8) -> (__mmask8, F51x8) {
        let sqrt_m1 = F51x8::splat(&Fe::SQRT_M1);
        let v3 = v.square().mul(v);
        let v7 = v3.square().mul(v);
        let r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
        let check = v.mul(&r.square());
        let neg_u = u.neg();
        let correct = check.eq(u);
        let flipped = check.eq(&neg_u);
        let flipped_i = check.eq(&neg_u.mul(&sqrt_m1));
        let r = F51x8::select(flipped | flipped_i, &r.mul(&sqrt_m1), &r);
        (correct | flipped, r.abs())
    }
}

impl ExtendedX8 {
    /// Lane `l` takes `points[l]`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn pack(points: &[Extended; 8]) -> ExtendedX8 {
        ExtendedX8 {
            x: F51x8::pack(&points.map(|p| p.x)),
            y: F51x8::pack(&points.map(|p| p.y)),
            z: F51x8::pack(&points.map(|p| p.z)),
            t: F51x8::pack(&points.map(|p| p.t)),
        }
    }

    /// The eight lanes as scalar points.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn unpack(&self) -> [Extended; 8] {
        let (x, y, z, t) = (
            self.x.unpack(),
            self.y.unpack(),
            self.z.unpack(),
            self.t.unpack(),
        );
        let mut out = [Extended::IDENTITY; 8];
        for (l, p) in out.iter_mut().enumerate() {
            *p = Extended {
                x: x[l],
                y: y[l],
                z: z[l],
                t: t[l],
            };
        }
        out
    }

    /// Completed coordinates to extended (4 lane multiplications).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn from_completed(x: F51x8, y: F51x8, z: F51x8, t: F51x8) -> ExtendedX8 {
        ExtendedX8 {
            x: x.mul(&t),
            y: y.mul(&z),
            z: z.mul(&t),
            t: x.mul(&y),
        }
    }

    /// Lane-wise `self + q` (the formulas of [`Extended::add`]).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn add(&self, q: &CachedX8) -> ExtendedX8 {
        let pp = self.y.add(&self.x).mul(&q.y_plus_x);
        let mm = self.y.sub(&self.x).mul(&q.y_minus_x);
        let tt2d = self.t.mul(&q.t2d);
        let zz = self.z.mul(&q.z);
        let zz2 = zz.add(&zz);
        ExtendedX8::from_completed(pp.sub(&mm), pp.add(&mm), zz2.add(&tt2d), zz2.sub(&tt2d))
    }

    /// Lane-wise `2·self` (the formulas of [`Extended::double`]).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn double(&self) -> ExtendedX8 {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz);
        let xpy2 = self.x.add(&self.y).square();
        let yy_plus_xx = yy.add(&xx);
        let yy_minus_xx = yy.sub(&xx);
        ExtendedX8::from_completed(
            xpy2.sub(&yy_plus_xx),
            yy_plus_xx,
            yy_minus_xx,
            zz2.sub(&yy_minus_xx),
        )
    }

    /// Lane-wise `−self`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn neg(&self) -> ExtendedX8 {
        ExtendedX8 {
            x: self.x.neg(),
            y: self.y,
            z: self.z,
            t: self.t.neg(),
        }
    }

    /// Lane-wise cached form.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn to_cached(self) -> CachedX8 {
        CachedX8 {
            y_plus_x: self.y.add(&self.x),
            y_minus_x: self.y.sub(&self.x),
            z: self.z,
            t2d: self.t.mul(&F51x8::splat(&Fe::D2)),
        }
    }

    /// RFC 9496 decoding in the lanes. Returns the points and the mask of lanes
    /// that decoded; an invalid lane holds an unspecified point.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn decode(bytes: &[[u8; 32]; 8]) -> (ExtendedX8, u8) {
        let mut ok = 0u8;
        let mut s = [Fe::ZERO; 8];
        for (l, b) in bytes.iter().enumerate() {
            let fe = Fe::from_bytes(b);
            // Canonical (re-encodes to the input) and non-negative (even).
            if fe.to_bytes() == *b && b[0] & 1 == 0 {
                ok |= 1 << l;
                s[l] = fe;
            }
        }
        let s = F51x8::pack(&s);
        let one = F51x8::splat(&Fe::ONE);
        let ss = s.square();
        let u1 = one.sub(&ss);
        let u2 = one.add(&ss);
        let u2_sqr = u2.square();
        let v = F51x8::splat(&Fe::D).mul(&u1.square()).neg().sub(&u2_sqr);
        let (was_square, invsqrt) = F51x8::sqrt_ratio_i(&one, &v.mul(&u2_sqr));
        let den_x = invsqrt.mul(&u2);
        let den_y = invsqrt.mul(&den_x).mul(&v);
        let x = s.add(&s).mul(&den_x).abs();
        let y = u1.mul(&den_y);
        let t = x.mul(&y);
        let bad = !was_square | t.is_negative() | y.is_zero();
        (ExtendedX8 { x, y, z: one, t }, ok & !bad)
    }
    /// RFC 9496 encoding in the lanes (the formulas of
    /// [`super::ristretto::vartime_encode`]); the final bytes come from the
    /// scalar canonical packing, lane by lane.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn encode(&self) -> [[u8; 32]; 8] {
        let one = F51x8::splat(&Fe::ONE);
        let sqrt_m1 = F51x8::splat(&Fe::SQRT_M1);
        let u1 = self.z.add(&self.y).mul(&self.z.sub(&self.y));
        let u2 = self.x.mul(&self.y);
        let (_, invsqrt) = F51x8::sqrt_ratio_i(&one, &u1.mul(&u2.square()));
        let den1 = invsqrt.mul(&u1);
        let den2 = invsqrt.mul(&u2);
        let z_inv = den1.mul(&den2).mul(&self.t);
        let rotate = self.t.mul(&z_inv).is_negative();
        let x = F51x8::select(rotate, &self.y.mul(&sqrt_m1), &self.x);
        let y = F51x8::select(rotate, &self.x.mul(&sqrt_m1), &self.y);
        let enchanted = den1.mul(&F51x8::splat(&Fe::INVSQRT_A_MINUS_D));
        let den_inv = F51x8::select(rotate, &enchanted, &den2);
        let y = F51x8::select(x.mul(&z_inv).is_negative(), &y.neg(), &y);
        let s = den_inv.mul(&self.z.sub(&y)).abs();
        s.unpack().map(|fe| fe.to_bytes())
    }
}

impl CachedX8 {
    /// Lane `l` takes `points[l]`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn pack(points: &[Cached; 8]) -> CachedX8 {
        CachedX8 {
            y_plus_x: F51x8::pack(&points.map(|p| p.y_plus_x)),
            y_minus_x: F51x8::pack(&points.map(|p| p.y_minus_x)),
            z: F51x8::pack(&points.map(|p| p.z)),
            t2d: F51x8::pack(&points.map(|p| p.t2d)),
        }
    }

    /// Lane-wise cached form of `−P`.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    fn neg(&self) -> CachedX8 {
        CachedX8 {
            y_plus_x: self.y_minus_x,
            y_minus_x: self.y_plus_x,
            z: self.z,
            t2d: self.t2d.neg(),
        }
    }
}

/// `accs[g] += table[idx[g][l]]` in lane l, for every group g.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn accumulate(accs: &mut [ExtendedX8], table: &[Cached], idx: &[[u32; 8]]) {
    for (acc, ix) in accs.iter_mut().zip(idx) {
        let q = CachedX8::pack(&ix.map(|i| table[i as usize]));
        *acc = acc.add(&q);
    }
}

/// `accs[g] += table[idx[g]]`, one index for all lanes: `table` holds eight
/// independent tables side by side (lane l = table l, e.g. one per sample of a
/// batch), so no gather is needed.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn accumulate_lanewise(accs: &mut [ExtendedX8], table: &[CachedX8], idx: &[u32]) {
    for (acc, &i) in accs.iter_mut().zip(idx) {
        *acc = acc.add(&table[i as usize]);
    }
}

/// `n` dependent lane additions `p ← p + q` (a throughput probe without call overhead).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn add_chain(p: &ExtendedX8, q: &CachedX8, n: usize) -> ExtendedX8 {
    let mut acc = *p;
    for _ in 0..n {
        acc = acc.add(q);
    }
    acc
}

/// `v`, hidden from the optimizer in a register, so that a blend under a
/// secret mask stays a register blend: folded into memory it would become a
/// masked load or store, which may skip the memory of masked-off lanes (a
/// comb entry no lane chose might then not be read at all).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn opaque(mut v: __m512i) -> __m512i {
    // SAFETY: an empty template with one register operand: no memory access,
    // no side effect, the value unchanged.
    unsafe {
        core::arch::asm!("/* {0} */", inout(zmm_reg) v, options(pure, nomem, nostack, preserves_flags));
    }
    v
}

/// Proof that this CPU has AVX-512 F, VL and IFMA: the only way to run the lane code.
///
/// Each method below is a safe wrapper whose `unsafe` block is justified by the
/// token's existence: [`Ifma::detect`] is its only constructor.
#[derive(Clone, Copy, Debug)]
pub struct Ifma(());

impl Ifma {
    /// `Some` when the running CPU supports `avx512ifma`, `avx512vl` and `avx512f`.
    pub fn detect() -> Option<Ifma> {
        let ok = is_x86_feature_detected!("avx512ifma")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512f");
        ok.then_some(Ifma(()))
    }

    /// Packs eight scalar field elements into lanes.
    pub fn pack_fe(self, fes: &[Fe; 8]) -> F51x8 {
        // SAFETY: `self` exists only if `detect` found the features `pack` enables.
        unsafe { F51x8::pack(fes) }
    }

    /// Unpacks lanes into eight scalar field elements.
    pub fn unpack_fe(self, v: &F51x8) -> [Fe; 8] {
        // SAFETY: `self` exists only if `detect` found the features `unpack` enables.
        unsafe { v.unpack() }
    }

    /// Lane-wise field operation `op` ∈ {add, sub, mul, square, neg, abs}, for tests and benches.
    pub fn field_op(self, op: FieldOp, a: &F51x8, b: &F51x8) -> F51x8 {
        // SAFETY: `self` exists only if `detect` found the features `field_op_x8` enables.
        unsafe { field_op_x8(op, a, b) }
    }

    /// Packs eight extended points into lanes.
    pub fn pack_extended(self, points: &[Extended; 8]) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `pack` enables.
        unsafe { ExtendedX8::pack(points) }
    }

    /// Unpacks lanes into eight extended points.
    pub fn unpack_extended(self, p: &ExtendedX8) -> [Extended; 8] {
        // SAFETY: `self` exists only if `detect` found the features `unpack` enables.
        unsafe { p.unpack() }
    }

    /// Packs eight cached points into lanes.
    pub fn pack_cached(self, points: &[Cached; 8]) -> CachedX8 {
        // SAFETY: `self` exists only if `detect` found the features `pack` enables.
        unsafe { CachedX8::pack(points) }
    }

    /// Lane-wise `p + q`.
    pub fn add(self, p: &ExtendedX8, q: &CachedX8) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `add` enables.
        unsafe { p.add(q) }
    }

    /// Lane-wise `2·p`.
    pub fn double(self, p: &ExtendedX8) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `double` enables.
        unsafe { p.double() }
    }

    /// Lane-wise `−p`.
    pub fn neg(self, p: &ExtendedX8) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `neg` enables.
        unsafe { p.neg() }
    }

    /// Lane-wise cached form of `p`.
    pub fn to_cached(self, p: &ExtendedX8) -> CachedX8 {
        // SAFETY: `self` exists only if `detect` found the features `to_cached` enables.
        unsafe { p.to_cached() }
    }

    /// Lane-wise cached form of `−P`.
    pub fn neg_cached(self, q: &CachedX8) -> CachedX8 {
        // SAFETY: `self` exists only if `detect` found the features `neg` enables.
        unsafe { q.neg() }
    }

    /// `n` dependent lane additions `p ← p + q`, in one call.
    pub fn add_chain(self, p: &ExtendedX8, q: &CachedX8, n: usize) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `add_chain` enables.
        unsafe { add_chain(p, q, n) }
    }

    /// For every group g and lane l: `accs[g][l] += table[idx[g][l]]`, gathering the
    /// addends from a scalar table (the engine's access pattern).
    ///
    /// # Panics
    /// If an index is out of `table`'s bounds.
    pub fn accumulate(self, accs: &mut [ExtendedX8], table: &[Cached], idx: &[[u32; 8]]) {
        // SAFETY: `self` exists only if `detect` found the features `accumulate` enables.
        unsafe { accumulate(accs, table, idx) }
    }

    /// For every group g: `accs[g] += table[idx[g]]` lane-wise (lane l reads lane l of
    /// the entry: eight side-by-side tables, the layout without gathers).
    ///
    /// # Panics
    /// If an index is out of `table`'s bounds.
    pub fn accumulate_lanewise(self, accs: &mut [ExtendedX8], table: &[CachedX8], idx: &[u32]) {
        // SAFETY: `self` exists only if `detect` found the features `accumulate_lanewise` enables.
        unsafe { accumulate_lanewise(accs, table, idx) }
    }

    /// The radix-16 comb of each lane's base (512 additions and doublings).
    pub fn comb(self, base: &ExtendedX8) -> CombX8 {
        // SAFETY: `self` exists only if `detect` found the features `CombX8::new` enables.
        unsafe { CombX8::new(base) }
    }

    /// s·Pₗ in every lane l for the scalar s with digits `digits`
    /// ([`super::radix16`]), constant-time in the digits.
    pub fn comb_mul(self, comb: &CombX8, digits: &[i8; 64]) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `CombX8::mul` enables.
        unsafe { comb.mul(digits) }
    }

    /// The small comb of `base` (the same base in every lane).
    pub fn small_comb(self, base: &ExtendedX8) -> SmallCombX8 {
        // SAFETY: `self` exists only if `detect` found the features `SmallCombX8::new` enables.
        unsafe { SmallCombX8::new(base) }
    }

    /// kₗ·B in lane l, constant-time in the kₗ; |kₗ| < 2¹⁶ (the caller
    /// checks: larger values give wrong points).
    pub fn small_comb_mul(self, comb: &SmallCombX8, ks: &[i64; 8]) -> ExtendedX8 {
        // SAFETY: `self` exists only if `detect` found the features `SmallCombX8::mul` enables.
        unsafe { comb.mul(ks) }
    }

    /// RFC 9496 encoding of the eight lanes (canonical 32 bytes each).
    pub fn vartime_encode(self, p: &ExtendedX8) -> [[u8; 32]; 8] {
        // SAFETY: `self` exists only if `detect` found the features `encode` enables.
        unsafe { p.encode() }
    }

    /// RFC 9496 decoding of eight encodings in the lanes: the points and the mask of
    /// lanes that decoded (bit l set iff `CompressedRistretto(bytes[l]).decompress()`
    /// succeeds). An invalid lane holds an unspecified point.
    pub fn vartime_decode_masked(self, bytes: &[[u8; 32]; 8]) -> (ExtendedX8, u8) {
        // SAFETY: `self` exists only if `detect` found the features `decode` enables.
        unsafe { ExtendedX8::decode(bytes) }
    }

    /// RFC 9496 decoding of eight encodings in the lanes.
    ///
    /// # Errors
    /// [`crate::Error::InvalidEncoding`] if any of the eight is not a valid encoding.
    pub fn vartime_decode(self, bytes: &[[u8; 32]; 8]) -> crate::Result<ExtendedX8> {
        let (points, ok) = self.vartime_decode_masked(bytes);
        if ok == u8::MAX {
            Ok(points)
        } else {
            Err(crate::Error::InvalidEncoding(
                "ristretto255: invalid point in a lane batch",
            ))
        }
    }
}

/// A lane-wise field operation, for tests and benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a²`.
    Square,
    /// `−a`.
    Neg,
    /// `|a|` (RFC 9496 `CT_ABS`).
    Abs,
}

#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn field_op_x8(op: FieldOp, a: &F51x8, b: &F51x8) -> F51x8 {
    match op {
        FieldOp::Add => a.add(b),
        FieldOp::Sub => a.sub(b),
        FieldOp::Mul => a.mul(b),
        FieldOp::Square => a.square(),
        FieldOp::Neg => a.neg(),
        FieldOp::Abs => a.abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ristretto::{vartime_decode, vartime_encode};
    use super::*;
    use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
    use curve25519_dalek::scalar::Scalar;
    use proptest::prelude::*;

    fn ifma() -> Option<Ifma> {
        let t = Ifma::detect();
        if t.is_none() {
            eprintln!("no AVX-512 IFMA on this CPU: lane test skipped");
        }
        t
    }

    fn point(seed: [u8; 32]) -> RistrettoPoint {
        RistrettoPoint::mul_base(&Scalar::from_bytes_mod_order(seed))
    }

    /// Reduced limbs (< 2⁵²), biased towards the edges of the range.
    fn limbs() -> impl Strategy<Value = [u64; 5]> {
        let limb = prop_oneof![
            0u64..(1 << 52),
            Just((1 << 52) - 1),
            Just(MASK51),
            Just(0u64)
        ];
        proptest::array::uniform5(limb)
    }

    fn fes() -> impl Strategy<Value = [Fe; 8]> {
        proptest::array::uniform8(limbs().prop_map(Fe))
    }

    fn points() -> impl Strategy<Value = [[u8; 32]; 8]> {
        proptest::array::uniform8(any::<[u8; 32]>())
    }

    fn scalar_op(op: FieldOp, a: &Fe, b: &Fe) -> Fe {
        match op {
            FieldOp::Add => a.add(b),
            FieldOp::Sub => a.sub(b),
            FieldOp::Mul => a.mul(b),
            FieldOp::Square => a.square(),
            FieldOp::Neg => a.neg(),
            FieldOp::Abs => a.abs(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn field_ops_match_scalar(a in fes(), b in fes()) {
            let Some(v) = ifma() else { return Ok(()) };
            let (va, vb) = (v.pack_fe(&a), v.pack_fe(&b));
            for op in [FieldOp::Add, FieldOp::Sub, FieldOp::Mul, FieldOp::Square, FieldOp::Neg, FieldOp::Abs] {
                let got = v.unpack_fe(&v.field_op(op, &va, &vb));
                for l in 0..8 {
                    prop_assert!(got[l].0.iter().all(|&x| x < 1 << 52), "{op:?} left a limb unreduced");
                    prop_assert_eq!(got[l].to_bytes(), scalar_op(op, &a[l], &b[l]).to_bytes(), "{:?} lane {}", op, l);
                }
            }
        }

        #[test]
        fn lane_points_match_dalek(seeds in points(), others in points()) {
            let Some(v) = ifma() else { return Ok(()) };
            let pa = seeds.map(point);
            let pb = others.map(point);
            let enc = |p: &RistrettoPoint| p.compress().to_bytes();
            let a = v.pack_extended(&pa.map(|p| vartime_decode(&enc(&p)).unwrap()));
            let b = v.pack_extended(&pb.map(|p| vartime_decode(&enc(&p)).unwrap()));
            let bc = v.to_cached(&b);
            let sum = v.unpack_extended(&v.add(&a, &bc));
            let diff = v.unpack_extended(&v.add(&a, &v.neg_cached(&bc)));
            let dbl = v.unpack_extended(&v.double(&a));
            let neg = v.unpack_extended(&v.neg(&a));
            let zero = v.unpack_extended(&v.add(&a, &v.to_cached(&v.neg(&a))));
            let lane_sum = v.vartime_encode(&v.add(&a, &bc));
            let lane_id = v.vartime_encode(&v.add(&a, &v.to_cached(&v.neg(&a))));
            let lane_dbl = v.vartime_encode(&v.double(&a));
            // The engine's fingerprints are dalek's encodings of 2P.
            let batch = RistrettoPoint::double_and_compress_batch(&pa);
            prop_assert!(batch.iter().zip(&lane_dbl).all(|(c, d)| c.as_bytes() == d));
            for l in 0..8 {
                prop_assert_eq!(lane_sum[l], enc(&(pa[l] + pb[l])));
                prop_assert_eq!(lane_id[l], [0u8; 32]);
                prop_assert_eq!(lane_dbl[l], enc(&(pa[l] + pa[l])));
                prop_assert_eq!(vartime_encode(&sum[l]), enc(&(pa[l] + pb[l])));
                prop_assert_eq!(vartime_encode(&diff[l]), enc(&(pa[l] - pb[l])));
                prop_assert_eq!(vartime_encode(&dbl[l]), enc(&(pa[l] + pa[l])));
                prop_assert_eq!(vartime_encode(&neg[l]), enc(&(-pa[l])));
                prop_assert_eq!(vartime_encode(&zero[l]), [0u8; 32]);
            }
        }

        #[test]
        fn lane_decode_matches_dalek_on_random_bytes(bytes in points()) {
            check_decode(&bytes);
        }

        #[test]
        fn lane_decode_matches_dalek_near_valid(seeds in points(), flips in proptest::array::uniform8(0usize..512)) {
            let mut bytes = seeds.map(|s| point(s).compress().to_bytes());
            for (b, f) in bytes.iter_mut().zip(flips) {
                if f < 256 {
                    b[f / 8] ^= 1 << (f % 8);
                }
            }
            check_decode(&bytes);
        }
    }

    fn check_decode(bytes: &[[u8; 32]; 8]) {
        let Some(v) = ifma() else { return };
        let (points, ok) = v.vartime_decode_masked(bytes);
        let points = v.unpack_extended(&points);
        for l in 0..8 {
            let theirs = CompressedRistretto(bytes[l]).decompress();
            assert_eq!(
                ok >> l & 1 == 1,
                theirs.is_some(),
                "lane {l}: {:?}",
                bytes[l]
            );
            assert_eq!(ok >> l & 1 == 1, vartime_decode(&bytes[l]).is_ok());
            if let Some(p) = theirs {
                assert_eq!(vartime_encode(&points[l]), p.compress().to_bytes());
            }
        }
        assert_eq!(v.vartime_decode(bytes).is_ok(), ok == u8::MAX);
    }

    #[test]
    fn lane_decode_identity_and_rejects_non_canonical_point() {
        let mut p_bytes = [0xffu8; 32];
        p_bytes[0] = 0xed;
        p_bytes[31] = 0x7f;
        let mut high = [0u8; 32];
        high[31] = 0x80;
        let mut one = [0u8; 32];
        one[0] = 1;
        let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED.to_bytes();
        check_decode(&[[0u8; 32], p_bytes, high, one, g, [0u8; 32], g, p_bytes]);
        check_decode(&[[0u8; 32]; 8]);
    }

    #[test]
    fn accumulate_lanewise_matches_scalar_additions() {
        let Some(v) = ifma() else { return };
        let scalar: Vec<[Cached; 8]> = (0u8..6)
            .map(|i| {
                core::array::from_fn(|l| {
                    let p = point([i * 8 + l as u8; 32]).compress().to_bytes();
                    vartime_decode(&p).unwrap().to_cached()
                })
            })
            .collect();
        let table: Vec<CachedX8> = scalar.iter().map(|e| v.pack_cached(e)).collect();
        let idx = [5u32, 0, 3];
        let mut accs = vec![v.pack_extended(&[Extended::IDENTITY; 8]); 3];
        v.accumulate_lanewise(&mut accs, &table, &idx);
        v.accumulate_lanewise(&mut accs, &table, &idx);
        for (acc, &i) in accs.iter().zip(&idx) {
            for (l, p) in v.unpack_extended(acc).iter().enumerate() {
                let e = &scalar[i as usize][l];
                assert_eq!(
                    vartime_encode(p),
                    vartime_encode(&Extended::IDENTITY.add(e).add(e))
                );
            }
        }
    }

    #[test]
    fn accumulate_matches_scalar_additions() {
        let Some(v) = ifma() else { return };
        let table: Vec<Cached> = (0u8..16)
            .map(|i| {
                vartime_decode(&point([i; 32]).compress().to_bytes())
                    .unwrap()
                    .to_cached()
            })
            .collect();
        let idx: Vec<[u32; 8]> = (0..3u32)
            .map(|g| core::array::from_fn(|l| (g * 7 + l as u32 * 3) % 16))
            .collect();
        let mut accs = vec![v.pack_extended(&[Extended::IDENTITY; 8]); 3];
        for _ in 0..4 {
            v.accumulate(&mut accs, &table, &idx);
        }
        for (acc, ix) in accs.iter().zip(&idx) {
            for (l, p) in v.unpack_extended(acc).iter().enumerate() {
                let mut expect = Extended::IDENTITY;
                for _ in 0..4 {
                    expect = expect.add(&table[ix[l] as usize]);
                }
                assert_eq!(vartime_encode(p), vartime_encode(&expect));
            }
        }
        let q = v.pack_cached(&[table[1]; 8]);
        let chained = v.unpack_extended(&v.add_chain(&accs[0], &q, 5));
        assert_eq!(vartime_encode(&chained[0]), {
            let mut e = v.unpack_extended(&accs[0])[0];
            for _ in 0..5 {
                e = e.add(&table[1]);
            }
            vartime_encode(&e)
        });
    }
}
