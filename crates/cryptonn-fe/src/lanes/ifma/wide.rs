//! Montgomery arithmetic modulo one odd p of up to 52·N − 2 bits over 8
//! independent lanes: the MODP groups' products eight at a time (N = 40 for
//! the 2048-bit prime, 60 would do 3072).
//!
//! A [`WideX8<N>`] holds eight numbers in radix 2⁵² limb-major order: vector
//! `k` holds limb `k` of all eight, lane `l` belongs to the `l`-th number.
//! Products are Montgomery products with R' = 2^(52N) (not crypto-bigint's
//! R = 2^(64W)), word by word (CIOS) with `vpmadd52{lo,hi}uq`, p's limbs
//! broadcast to every lane.
//!
//! # Invariant ("almost Montgomery")
//! Every limb of a [`WideX8`] is below 2⁵² (the multiplier reads 52 bits)
//! and every value is below 2p. Since 4p ≤ R' ([`WideModulus::new`] checks),
//! a product of two such values is again below 2p with no final
//! subtraction: (a·b + m·p)/R' < 4p²/R' + p ≤ 2p. Only unpacking reduces
//! fully (one masked subtraction of p).
//!
//! # Security
//! Packing, products, squares and unpacking run the same instructions and
//! touch the same addresses whatever the lane values: constant-time in the
//! values (the modulus is public). [`Ifma::wide_vartime_invert`] is
//! variable-time (crypto-bigint's vartime safegcd): public values only.

use core::arch::x86_64::*;

use crypto_bigint::{Odd, Uint};
use num_bigint::BigUint;
use num_traits::One;

use super::{Ifma, from_lanes, lanes_of, opaque, splat};

const MASK52: u64 = (1 << 52) - 1;

/// Eight numbers mod p, one per lane, in radix 2⁵² (see the module docs for
/// the invariant: limbs < 2⁵², values < 2p, Montgomery form with 2^(52N)).
#[derive(Clone, Copy, Debug)]
pub struct WideX8<const N: usize>(pub(super) [__m512i; N]);

/// One odd modulus p and the constants of its lane Montgomery arithmetic:
/// built once, shared by every lane operation mod p.
#[derive(Clone, Debug)]
pub struct WideModulus<const N: usize> {
    /// p in radix 2⁵² (broadcast to every lane at use).
    p: [u64; N],
    /// −p⁻¹ mod 2⁵².
    pinv: u64,
    /// p's 64-bit words; their count fixes the packed form (crypto-bigint's
    /// R = 2^(64·words)).
    p_words: Vec<u64>,
    /// R'²/R mod p: the lane Montgomery product by it turns x·R into x·R'.
    to_lanes: [u64; N],
    /// R mod p: the lane Montgomery product by it turns x·R' into x·R.
    from_lanes: [u64; N],
    /// R' mod p, the lanes' 1.
    one: [u64; N],
    /// R'³ mod p: the lane product by it turns (x·R')⁻¹ into x⁻¹·R'.
    cube: [u64; N],
}

/// The radix-2⁵² limbs of the little-endian 64-bit words `words` (bits past
/// limb N are dropped; the callers pass values below 2^(52N)).
fn limbs_from_words<const N: usize>(words: &[u64]) -> [u64; N] {
    let mut out = [0u64; N];
    let (mut acc, mut have, mut k) = (0u128, 0u32, 0usize);
    for &w in words {
        acc |= u128::from(w) << have;
        have += 64;
        while have >= 52 && k < N {
            out[k] = acc as u64 & MASK52;
            (acc, have, k) = (acc >> 52, have - 52, k + 1);
        }
    }
    if k < N {
        out[k] = acc as u64 & MASK52;
    }
    out
}

/// The little-endian 64-bit words of radix-2⁵² limbs (each below 2⁵²),
/// truncated to `out.len()` words.
fn words_from_limbs(limbs: &[u64], out: &mut [u64]) {
    let (mut acc, mut have) = (0u128, 0u32);
    let mut slots = out.iter_mut();
    for &l in limbs {
        acc |= u128::from(l) << have;
        have += 52;
        if have >= 64 {
            if let Some(o) = slots.next() {
                *o = acc as u64;
            }
            (acc, have) = (acc >> 64, have - 64);
        }
    }
    for o in slots {
        *o = acc as u64;
        acc = 0;
    }
}

fn limbs_of<const N: usize>(v: &BigUint) -> [u64; N] {
    limbs_from_words(&v.iter_u64_digits().collect::<Vec<_>>())
}

impl<const N: usize> WideModulus<N> {
    /// The context of the odd modulus p given as little-endian 64-bit words
    /// (crypto-bigint's layout; `p_words.len()` fixes the packed form's R =
    /// 2^(64·len)). `None` if p is even, below 3, or above 2^(52N − 2)
    /// (then R' < 4p and products would leave [0, 2p)), or if the packed
    /// form is wider than N limbs (64·len > 52N: packing takes any value
    /// below 2^(64·len)).
    pub fn new(p_words: &[u64]) -> Option<Self> {
        let p = BigUint::from_slice(
            &p_words
                .iter()
                .flat_map(|w| [*w as u32, (*w >> 32) as u32])
                .collect::<Vec<_>>(),
        );
        let (lane_bits, words_bits) = (52 * N as u64, 64 * p_words.len() as u64);
        let bad = p_words.first()? & 1 == 0 || p < BigUint::from(3u32);
        // N ≥ 2: the product's first step reads limb 1.
        if bad || N < 2 || words_bits > lane_bits || p.bits() + 2 > lane_bits {
            return None;
        }
        // p⁻¹ mod 2⁶⁴ by Newton's iteration (each step doubles the correct bits).
        let p0 = p_words[0];
        let mut inv = p0;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(p0.wrapping_mul(inv)));
        }
        let pow = |e: u64| (BigUint::one() << e) % &p;
        Some(WideModulus {
            p: limbs_of(&p),
            pinv: inv.wrapping_neg() & MASK52,
            p_words: p_words.to_vec(),
            to_lanes: limbs_of(&pow(2 * lane_bits - words_bits)),
            from_lanes: limbs_of(&pow(words_bits)),
            one: limbs_of(&pow(lane_bits)),
            cube: limbs_of(&pow(3 * lane_bits)),
        })
    }

    /// The 64-bit words of the packed form (the length `new` was given).
    pub fn words(&self) -> usize {
        self.p_words.len()
    }

    /// p as W words (W = [`WideModulus::words`], which the callers check).
    fn p_uint<const W: usize>(&self) -> Option<Odd<Uint<W>>> {
        let words: [u64; W] = self.p_words.as_slice().try_into().ok()?;
        Odd::new(Uint::from_words(words)).into_option()
    }
}

/// `c` in every lane.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn broadcast<const N: usize>(c: &[u64; N]) -> [__m512i; N] {
    c.map(|x| splat(x))
}

/// Limbs below 2⁵² by one carry pass, lowest first (a serial chain of N
/// shifts and adds). Inputs below 2⁶³; the value must fit N limbs.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn normalize<const N: usize>(mut t: [__m512i; N]) -> [__m512i; N] {
    let mask = splat(MASK52);
    for k in 0..N - 1 {
        t[k + 1] = _mm512_add_epi64(t[k + 1], _mm512_srli_epi64::<52>(t[k]));
        t[k] = _mm512_and_si512(t[k], mask);
    }
    t
}

/// a·b/R' mod p in every lane (CIOS, lazy carries), for limbs < 2⁵² and
/// a·b < R'·p; the result has limbs < 2⁵² and is below a·b/R' + p (< 2p for
/// a, b < 2p).
///
/// Step i adds aᵢ·b and mᵢ·p, with mᵢ = t₀·(−p⁻¹) mod 2⁵² making limb 0 a
/// multiple of 2⁵², then shifts down one limb; steps go in pairs, one sweep
/// over the limbs per pair (the sweep is load/store-bound otherwise). Overflow: every step adds to
/// each limb slot at most four 52-bit halves (lo(aᵢ·bⱼ), lo(mᵢ·pⱼ),
/// hi(aᵢ·bⱼ₋₁), hi(mᵢ·pⱼ₋₁)), and slot 0's carry (below 2⁹) to slot 1; over
/// N steps a slot holds less than (4N + 1)·2⁵² ≤ 2⁶⁰ for N ≤ 63, and slot 0
/// during a step at most 2⁵² more per madd: no 64-bit accumulator wraps.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn mont_mul<const N: usize>(
    m: &WideModulus<N>,
    a: &[__m512i; N],
    b: &[__m512i; N],
) -> [__m512i; N] {
    let pinv = splat(m.pinv);
    // Broadcast once: the products then read p's limbs as memory operands.
    let p = broadcast(&m.p);
    let mut t = [_mm512_setzero_si512(); N];
    // Two steps per sweep: each limb slot is loaded and stored once per pair.
    let mut i = 0;
    while i + 1 < N {
        cios_two_steps(&mut t, a[i], a[i + 1], b, &p, pinv);
        i += 2;
    }
    if i < N {
        cios_step(&mut t, a[i], b, &p, pinv);
    }
    normalize(t)
}

/// mᵢ for the step of aᵢ on limb 0 `t0`, and limb 0's carry after adding
/// aᵢ·b₀ and mᵢ·p₀ (the low 52 bits are then zero).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn step_start(
    t0: __m512i,
    ai: __m512i,
    b0: __m512i,
    p0: __m512i,
    pinv: __m512i,
) -> (__m512i, __m512i) {
    let t0 = _mm512_madd52lo_epu64(t0, ai, b0);
    // madd52lo reads only t0's low 52 bits: mᵢ = t0·(−p⁻¹) mod 2⁵².
    let q = _mm512_madd52lo_epu64(_mm512_setzero_si512(), t0, pinv);
    let t0 = _mm512_madd52lo_epu64(t0, q, p0);
    (q, _mm512_srli_epi64::<52>(t0))
}

/// The top limb of a step: hi(aᵢ·b_(N−1)) + hi(mᵢ·p_(N−1)).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn step_top(ai: __m512i, q: __m512i, b: __m512i, p: __m512i) -> __m512i {
    let top = _mm512_madd52hi_epu64(_mm512_setzero_si512(), ai, b);
    _mm512_madd52hi_epu64(top, q, p)
}

/// One CIOS step: t ← (t + aᵢ·b + mᵢ·p)/2⁵², limbs lazy.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn cios_step<const N: usize>(
    t: &mut [__m512i; N],
    ai: __m512i,
    b: &[__m512i; N],
    p: &[__m512i; N],
    pinv: __m512i,
) {
    let (q, carry) = step_start(t[0], ai, b[0], p[0], pinv);
    t[0] = cios_limb(_mm512_add_epi64(t[1], carry), ai, q, b, p, 1);
    for j in 2..N {
        t[j - 1] = cios_limb(t[j], ai, q, b, p, j);
    }
    t[N - 1] = step_top(ai, q, b[N - 1], p[N - 1]);
}

/// The steps of aᵢ and aᵢ₊₁ in one sweep: the first step's slot k (u) is
/// made just before the second step turns it into slot k − 1. The second
/// step's m needs the first's slot 0 only, computed up front.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn cios_two_steps<const N: usize>(
    t: &mut [__m512i; N],
    ai: __m512i,
    aj: __m512i,
    b: &[__m512i; N],
    p: &[__m512i; N],
    pinv: __m512i,
) {
    let (qi, carry) = step_start(t[0], ai, b[0], p[0], pinv);
    let u0 = cios_limb(_mm512_add_epi64(t[1], carry), ai, qi, b, p, 1);
    let (qj, carry) = step_start(u0, aj, b[0], p[0], pinv);
    let mut u = if N > 2 {
        cios_limb(t[2], ai, qi, b, p, 2)
    } else {
        step_top(ai, qi, b[N - 1], p[N - 1])
    };
    t[0] = cios_limb(_mm512_add_epi64(u, carry), aj, qj, b, p, 1);
    for k in 2..N {
        u = if k + 1 < N {
            cios_limb(t[k + 1], ai, qi, b, p, k + 1)
        } else {
            step_top(ai, qi, b[N - 1], p[N - 1])
        };
        t[k - 1] = cios_limb(u, aj, qj, b, p, k);
    }
    t[N - 1] = step_top(aj, qj, b[N - 1], p[N - 1]);
}

/// The new limb j − 1 of a CIOS step: old limb j plus lo(aᵢ·bⱼ), lo(m·pⱼ),
/// hi(aᵢ·bⱼ₋₁) and hi(m·pⱼ₋₁).
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
#[inline]
fn cios_limb<const N: usize>(
    tj: __m512i,
    ai: __m512i,
    q: __m512i,
    b: &[__m512i; N],
    p: &[__m512i; N],
    j: usize,
) -> __m512i {
    let x = _mm512_madd52hi_epu64(tj, ai, b[j - 1]);
    let x = _mm512_madd52hi_epu64(x, q, p[j - 1]);
    let x = _mm512_madd52lo_epu64(x, ai, b[j]);
    _mm512_madd52lo_epu64(x, q, p[j])
}

/// x − p in the lanes where x ≥ p, x elsewhere (limbs < 2⁵², x < 2p): the
/// borrow runs through every limb and the choice is a mask.
#[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
fn reduce_once<const N: usize>(m: &WideModulus<N>, x: &[__m512i; N]) -> [__m512i; N] {
    let mask = splat(MASK52);
    let mut d = [_mm512_setzero_si512(); N];
    let mut borrow = _mm512_setzero_si512();
    for k in 0..N {
        // Signed: x − p + borrow ∈ (−2⁵³, 2⁵²); the arithmetic shift is the next borrow.
        let v = _mm512_add_epi64(_mm512_sub_epi64(x[k], splat(m.p[k])), borrow);
        borrow = _mm512_srai_epi64::<52>(v);
        d[k] = _mm512_and_si512(v, mask);
    }
    let ge = _mm512_cmpeq_epi64_mask(borrow, _mm512_setzero_si512());
    let mut out = *x;
    for (o, dk) in out.iter_mut().zip(d) {
        *o = opaque(_mm512_mask_blend_epi64(ge, opaque(*o), opaque(dk)));
    }
    out
}

impl<const N: usize> WideX8<N> {
    /// Lane l takes the 64-bit words `words[l]` as an integer (any value
    /// below 2^(52N)), limbs < 2⁵², no reduction.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn from_words<const W: usize>(words: &[[u64; W]; 8]) -> WideX8<N> {
        let limbs: [[u64; N]; 8] = core::array::from_fn(|l| limbs_from_words(&words[l]));
        WideX8(core::array::from_fn(|k| {
            from_lanes(core::array::from_fn(|l| limbs[l][k]))
        }))
    }

    /// The lanes' integers as 64-bit words (limbs < 2⁵² assumed).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    fn lane_words<const W: usize>(&self) -> [[u64; W]; 8] {
        let by_limb: [[u64; 8]; N] = self.0.map(|v| lanes_of(v));
        core::array::from_fn(|l| {
            let limbs: [u64; N] = core::array::from_fn(|k| by_limb[k][l]);
            let mut out = [0u64; W];
            words_from_limbs(&limbs, &mut out);
            out
        })
    }

    /// From crypto-bigint's Montgomery form x·R (words[l], any value < R)
    /// to the lanes' x·R' in [0, 2p): one lane product by R'²/R.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn pack<const W: usize>(m: &WideModulus<N>, words: &[[u64; W]; 8]) -> WideX8<N> {
        let x = WideX8::<N>::from_words(words);
        WideX8(mont_mul(m, &x.0, &broadcast(&m.to_lanes)))
    }

    /// Back to crypto-bigint's Montgomery form x·R mod p, fully reduced: one
    /// lane product by R, then one masked subtraction.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn unpack<const W: usize>(&self, m: &WideModulus<N>) -> [[u64; W]; 8] {
        let x = mont_mul(m, &self.0, &broadcast(&m.from_lanes));
        WideX8(reduce_once(m, &x)).lane_words()
    }

    /// The lanes' inverses, in variable time (public values): the eight
    /// reduced values x·R' inverted by crypto-bigint's safegcd, then one lane
    /// product by R'³. `None` if a lane is 0 mod p (or W is not p's width).
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn vartime_invert<const W: usize>(&self, m: &WideModulus<N>) -> Option<WideX8<N>> {
        let p = m.p_uint::<W>()?;
        let raw: [[u64; W]; 8] = WideX8(reduce_once(m, &self.0)).lane_words();
        let mut inv = [[0u64; W]; 8];
        for (i, r) in inv.iter_mut().zip(&raw) {
            let x = Uint::<W>::from_words(*r).invert_odd_mod_vartime(&p);
            *i = x.into_option()?.to_words();
        }
        let y = WideX8::<N>::from_words(&inv);
        Some(WideX8(mont_mul(m, &y.0, &broadcast(&m.cube))))
    }

    /// The lanes' 1 (R' mod p) in every lane.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    pub(super) fn one(m: &WideModulus<N>) -> WideX8<N> {
        WideX8(broadcast(&m.one))
    }

    /// Lane-wise Montgomery product.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(super) fn mul(&self, m: &WideModulus<N>, rhs: &WideX8<N>) -> WideX8<N> {
        WideX8(mont_mul(m, &self.0, &rhs.0))
    }

    /// Lane-wise Montgomery square.
    #[target_feature(enable = "avx512ifma,avx512vl,avx512f")]
    #[inline]
    pub(super) fn square(&self, m: &WideModulus<N>) -> WideX8<N> {
        WideX8(mont_mul(m, &self.0, &self.0))
    }
}

impl Ifma {
    /// Packs eight values given in crypto-bigint's Montgomery form (x·2^(64W)
    /// mod p as W little-endian words, e.g. `ConstMontyForm::to_montgomery`)
    /// into the lanes' form x·2^(52N) mod p, in [0, 2p).
    ///
    /// # Panics
    /// If W differs from the word count `m` was built with.
    pub fn wide_pack<const N: usize, const W: usize>(
        self,
        m: &WideModulus<N>,
        words: &[[u64; W]; 8],
    ) -> WideX8<N> {
        assert_eq!(W, m.words(), "packed form of another width");
        // SAFETY: `self` exists only if `detect` found the features `pack` enables.
        unsafe { WideX8::pack(m, words) }
    }

    /// Unpacks lanes into crypto-bigint's Montgomery form x·2^(64W) mod p,
    /// fully reduced (< p): `ConstMontyForm::from_montgomery` takes it.
    ///
    /// # Panics
    /// If W differs from the word count `m` was built with.
    pub fn wide_unpack<const N: usize, const W: usize>(
        self,
        m: &WideModulus<N>,
        x: &WideX8<N>,
    ) -> [[u64; W]; 8] {
        assert_eq!(W, m.words(), "packed form of another width");
        // SAFETY: `self` exists only if `detect` found the features `unpack` enables.
        unsafe { x.unpack(m) }
    }

    /// 1 in every lane (the lanes' Montgomery form of 1).
    pub fn wide_one<const N: usize>(self, m: &WideModulus<N>) -> WideX8<N> {
        // SAFETY: `self` exists only if `detect` found the features `one` enables.
        unsafe { WideX8::one(m) }
    }

    /// Lane-wise a·b mod p (Montgomery: inputs and output in the lanes' form,
    /// all in [0, 2p)).
    pub fn wide_mul<const N: usize>(
        self,
        m: &WideModulus<N>,
        a: &WideX8<N>,
        b: &WideX8<N>,
    ) -> WideX8<N> {
        // SAFETY: `self` exists only if `detect` found the features `mul` enables.
        unsafe { a.mul(m, b) }
    }

    /// Lane-wise a⁻¹ mod p, in variable time (public values only); `None`
    /// if a lane is 0 mod p or W is not the width `m` was built with.
    pub fn wide_vartime_invert<const N: usize, const W: usize>(
        self,
        m: &WideModulus<N>,
        a: &WideX8<N>,
    ) -> Option<WideX8<N>> {
        // SAFETY: `self` exists only if `detect` found the features `vartime_invert` enables.
        unsafe { a.vartime_invert::<W>(m) }
    }

    /// Lane-wise a² mod p (in and out in [0, 2p)).
    pub fn wide_square<const N: usize>(self, m: &WideModulus<N>, a: &WideX8<N>) -> WideX8<N> {
        // SAFETY: `self` exists only if `detect` found the features `square` enables.
        unsafe { a.square(m) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Prime2048;
    use crypto_bigint::modular::{ConstMontyForm, ConstMontyParams};
    use crypto_bigint::{U2048, Uint};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::super::wide_fixtures::{Fe, Words, fe, ifma, modulus};

    fn p_words() -> Words {
        *Prime2048::PARAMS.modulus().as_ref().as_words()
    }

    fn words(x: &Fe) -> Words {
        *x.to_montgomery().as_words()
    }

    /// p − k for small k.
    fn p_minus(k: u64) -> Words {
        *U2048::from_words(p_words())
            .wrapping_sub(&U2048::from_u64(k))
            .as_words()
    }

    /// A uniform-ish value below p (the top word is below p's all-ones word).
    fn random_below_p(rng: &mut StdRng) -> Words {
        let mut w: Words = core::array::from_fn(|_| rng.random());
        w[31] %= u64::MAX;
        w
    }

    /// Montgomery forms on every boundary: 0, 1, p − 1, p − 2, all-ones
    /// limbs below p, a lone top bit.
    fn boundaries() -> Vec<Words> {
        let mut ones = [u64::MAX; 32];
        ones[31] = u64::MAX >> 1;
        let mut top = [0u64; 32];
        top[31] = 1 << 63;
        let mut low_ones = [0u64; 32];
        low_ones[..31].fill(u64::MAX);
        let limb_ones: Words = {
            let mut w = [0u64; 32];
            words_from_limbs(&[MASK52; 39], &mut w);
            w
        };
        let mut one = [0u64; 32];
        one[0] = 1;
        vec![
            [0; 32],
            one,
            p_minus(1),
            p_minus(2),
            ones,
            top,
            low_ones,
            limb_ones,
        ]
    }

    fn check_mul(v: Ifma, m: &WideModulus<40>, a: &[Words; 8], b: &[Words; 8]) {
        let (la, lb) = (v.wide_pack(m, a), v.wide_pack(m, b));
        let prod: [Words; 8] = v.wide_unpack(m, &v.wide_mul(m, &la, &lb));
        let sq: [Words; 8] = v.wide_unpack(m, &v.wide_square(m, &la));
        let back: [Words; 8] = v.wide_unpack(m, &la);
        for l in 0..8 {
            assert_eq!(prod[l], words(&fe(&a[l]).mul(&fe(&b[l]))), "mul lane {l}");
            assert_eq!(sq[l], words(&fe(&a[l]).square()), "square lane {l}");
            assert_eq!(back[l], words(&fe(&a[l])), "round trip lane {l}");
        }
    }

    #[test]
    fn limb_conversions_round_trip() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let w = random_below_p(&mut rng);
            let limbs: [u64; 40] = limbs_from_words(&w);
            assert!(limbs.iter().all(|&l| l <= MASK52));
            let mut back = [0u64; 32];
            words_from_limbs(&limbs, &mut back);
            assert_eq!(back, w);
        }
    }

    #[test]
    fn modulus_rejects_even_small_and_too_wide() {
        assert!(WideModulus::<40>::new(&[4, 1]).is_none());
        assert!(WideModulus::<40>::new(&[1]).is_none());
        assert!(WideModulus::<40>::new(&[]).is_none());
        // 33 words: packed values up to 2²¹¹² do not fit 2080 bits.
        let mut wide = [0u64; 33];
        (wide[0], wide[32]) = (1, 1);
        assert!(WideModulus::<40>::new(&wide[..33]).is_none());
        assert!(WideModulus::<41>::new(&wide[..33]).is_some());
        // 16 limbs = 13 words = 832 bits: p needs 2 bits to spare.
        (wide[12], wide[32]) = (1 << 62, 0);
        assert!(WideModulus::<16>::new(&wide[..13]).is_none());
        wide[12] = 1 << 61;
        assert!(WideModulus::<16>::new(&wide[..13]).is_some());
        assert_eq!(modulus().words(), 32);
    }

    #[test]
    fn lane_mul_matches_crypto_bigint_on_boundaries() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let edges = boundaries();
        let mut rng = StdRng::seed_from_u64(2);
        for (i, x) in edges.iter().enumerate() {
            // Lane l pairs x with a different edge or random value.
            let a = [*x; 8];
            let b: [Words; 8] = core::array::from_fn(|l| {
                edges
                    .get((i + l) % (edges.len() + 1))
                    .copied()
                    .unwrap_or_else(|| random_below_p(&mut rng))
            });
            check_mul(v, &m, &a, &b);
            check_mul(v, &m, &b, &a);
        }
    }

    /// Inputs in [p, 2p) (what products may return) still multiply right and
    /// stay below 2p.
    #[test]
    fn lane_mul_takes_almost_reduced_inputs() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let p = BigUint::from_slice(&words_u32(&p_words()));
        let mut rng = StdRng::seed_from_u64(3);
        let values: [BigUint; 8] = core::array::from_fn(|l| match l {
            0 => &p + 0u32,
            1 => &p * 2u32 - 1u32,
            2 => &p * 2u32 - 2u32,
            _ => &p + BigUint::from_slice(&words_u32(&random_below_p(&mut rng))) % &p,
        });
        let x = WideX8(core::array::from_fn(|k| {
            let lanes: [u64; 8] = core::array::from_fn(|l| limbs_of::<40>(&values[l])[k]);
            lane_vector(v, lanes)
        }));
        let r_inv = (BigUint::one() << 2080u32).modinv(&p).expect("p odd");
        let sq = v.wide_square(&m, &x);
        let prod = v.wide_mul(&m, &x, &sq);
        for (out, expect) in [
            (sq, values.clone().map(|a| &a * &a * &r_inv % &p)),
            (
                prod,
                core::array::from_fn(|l| {
                    let s = &values[l] * &values[l] * &r_inv % &p;
                    &values[l] * s * &r_inv % &p
                }),
            ),
        ] {
            let raw = raw_values(v, &out);
            for l in 0..8 {
                assert!(raw[l] < &p * 2u32, "lane {l} left [0, 2p)");
                assert_eq!(&raw[l] % &p, expect[l], "lane {l}");
            }
        }
    }

    fn words_u32(w: &[u64]) -> Vec<u32> {
        w.iter()
            .flat_map(|x| [*x as u32, (x >> 32) as u32])
            .collect()
    }

    fn lane_vector(_: Ifma, lanes: [u64; 8]) -> __m512i {
        // SAFETY: the `Ifma` argument proves the features `from_lanes` enables.
        unsafe { from_lanes(lanes) }
    }

    /// The lanes' raw integers (limbs < 2⁵² checked).
    fn raw_values(_: Ifma, x: &WideX8<40>) -> [BigUint; 8] {
        // SAFETY: the `Ifma` argument proves the features `lanes_of` enables.
        let by_limb = x.0.map(|v| unsafe { lanes_of(v) });
        core::array::from_fn(|l| {
            let limbs: [u64; 40] = core::array::from_fn(|k| by_limb[k][l]);
            assert!(limbs.iter().all(|&x| x <= MASK52), "unnormalized limb");
            let mut w = [0u64; 40];
            words_from_limbs(&limbs, &mut w);
            BigUint::from_slice(&words_u32(&w))
        })
    }

    #[test]
    fn dependent_chains_of_1000_products_match() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let mut rng = StdRng::seed_from_u64(4);
        let mut edges = boundaries();
        edges.truncate(4);
        let start: [Words; 8] = core::array::from_fn(|l| {
            if l == 0 {
                p_minus(1)
            } else {
                random_below_p(&mut rng)
            }
        });
        let step: [Words; 8] = core::array::from_fn(|l| {
            if l < 2 {
                p_minus(1 + l as u64)
            } else {
                random_below_p(&mut rng)
            }
        });
        let (mut x, y) = (v.wide_pack(&m, &start), v.wide_pack(&m, &step));
        let mut expect = start.map(|w| fe(&w));
        for i in 0..1000 {
            if i % 3 == 2 {
                x = v.wide_square(&m, &x);
                expect = expect.map(|e| e.square());
            } else {
                x = v.wide_mul(&m, &x, &y);
                for (e, s) in expect.iter_mut().zip(&step) {
                    *e = e.mul(&fe(s));
                }
            }
        }
        let got: [Words; 8] = v.wide_unpack(&m, &x);
        for l in 0..8 {
            assert_eq!(got[l], words(&expect[l]), "lane {l}");
        }
    }

    #[test]
    fn vartime_inverse_matches_crypto_bigint() {
        let Some(v) = ifma() else { return };
        let m = modulus();
        let mut rng = StdRng::seed_from_u64(5);
        let mut xs: [Words; 8] = core::array::from_fn(|_| random_below_p(&mut rng));
        xs[0] = words(&Fe::ONE);
        xs[1] = words(&Fe::ONE.neg());
        xs[2][0] = 1; // any unit
        // One more product: lanes may lie in [p, 2p), as products leave them.
        let x = v.wide_mul(&m, &v.wide_pack(&m, &xs), &v.wide_one(&m));
        let inv = v.wide_vartime_invert::<40, 32>(&m, &x).expect("units");
        let got: [Words; 8] = v.wide_unpack(&m, &inv);
        for l in 0..8 {
            let expect = fe(&xs[l]).invert_vartime().into_option().expect("unit");
            assert_eq!(got[l], words(&expect), "lane {l}");
        }
        xs[5] = [0; 32];
        assert!(
            v.wide_vartime_invert::<40, 32>(&m, &v.wide_pack(&m, &xs))
                .is_none()
        );
        assert!(v.wide_vartime_invert::<40, 31>(&m, &x).is_none());
    }

    /// An odd limb count (the single-step tail of the product) and the
    /// 3072-bit prime (N = 60, W = 48) against crypto-bigint.
    #[test]
    fn odd_limb_count_and_3072_bits_match() {
        use crate::group::Prime3072;
        let Some(v) = ifma() else { return };
        let mut rng = StdRng::seed_from_u64(6);
        let m41 = WideModulus::<41>::new(&p_words()).expect("fits");
        let a: [Words; 8] = core::array::from_fn(|_| random_below_p(&mut rng));
        let mut b: [Words; 8] = core::array::from_fn(|_| random_below_p(&mut rng));
        b[0] = p_minus(1);
        let prod: [Words; 8] = v.wide_unpack(
            &m41,
            &v.wide_mul(&m41, &v.wide_pack(&m41, &a), &v.wide_pack(&m41, &b)),
        );
        for l in 0..8 {
            assert_eq!(
                prod[l],
                words(&fe(&a[l]).mul(&fe(&b[l]))),
                "N = 41, lane {l}"
            );
        }
        type Fe3 = ConstMontyForm<Prime3072, 48>;
        let p3 = *Prime3072::PARAMS.modulus().as_ref().as_words();
        let m60 = WideModulus::<60>::new(&p3).expect("3072 bits fit 60 limbs");
        let xs: [[u64; 48]; 8] = core::array::from_fn(|l| {
            let mut w: [u64; 48] = core::array::from_fn(|_| rng.random());
            w[47] >>= 1;
            if l == 1 {
                w = p3;
                w[0] -= 1;
            }
            w
        });
        let x = v.wide_pack(&m60, &xs);
        let mut chain = x;
        for _ in 0..50 {
            chain = v.wide_mul(&m60, &chain, &x);
        }
        let got: [[u64; 48]; 8] = v.wide_unpack(&m60, &chain);
        for l in 0..8 {
            let base = Fe3::from_montgomery(Uint::from_words(xs[l]));
            let expect = (0..50).fold(base, |acc, _| acc.mul(&base));
            assert_eq!(got[l], *expect.to_montgomery().as_words(), "3072, lane {l}");
        }
    }

    fn below_p() -> impl Strategy<Value = Words> {
        proptest::array::uniform32(any::<u64>()).prop_map(|mut w| {
            w[31] %= u64::MAX;
            w
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn lane_mul_matches_crypto_bigint(
            a in proptest::array::uniform8(below_p()),
            b in proptest::array::uniform8(below_p()),
        ) {
            let Some(v) = ifma() else { return Ok(()) };
            check_mul(v, &modulus(), &a, &b);
        }
    }
}
