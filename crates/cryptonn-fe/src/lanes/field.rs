//! Scalar reference arithmetic in GF(2²⁵⁵ − 19): five 51-bit limbs, `u128` products.
//!
//! This is the oracle for the lane code in [`super::ifma`] and its fallback. The
//! representation is the one curve25519-dalek's `u64` backend uses, so the limbs
//! move into the IFMA lanes without conversion.
//!
//! # Invariant
//! Every [`Fe`] returned by this module is *reduced*: each limb is below 2⁵²
//! (not necessarily below 2⁵¹; the value is any representative mod p). Every
//! operation accepts reduced inputs.
//!
//! # Security
//! Variable time: comparisons and selections branch. Only for public values.

/// Mask of the low 51 bits.
pub(crate) const MASK51: u64 = (1 << 51) - 1;

/// An element of GF(2²⁵⁵ − 19) as five limbs of radix 2⁵¹ (see the module invariant).
#[derive(Clone, Copy, Debug)]
pub struct Fe(pub(crate) [u64; 5]);

/// 16·p, limb by limb: added before a subtraction so that no limb underflows.
const SIXTEEN_P: [u64; 5] = [
    16 * (MASK51 - 18),
    16 * MASK51,
    16 * MASK51,
    16 * MASK51,
    16 * MASK51,
];

impl Fe {
    /// Zero.
    pub const ZERO: Fe = Fe([0; 5]);
    /// One.
    pub const ONE: Fe = Fe([1, 0, 0, 0, 0]);
    /// The Edwards curve constant d = −121665/121666.
    pub const D: Fe = Fe([
        929955233495203,
        466365720129213,
        1662059464998953,
        2033849074728123,
        1442794654840575,
    ]);
    /// 2·d.
    pub const D2: Fe = Fe([
        1859910466990425,
        932731440258426,
        1072319116312658,
        1815898335770999,
        633789495995903,
    ]);
    /// The square root of −1 that RFC 9496 names SQRT_M1 (2^((p−1)/4)).
    pub const SQRT_M1: Fe = Fe([
        1718705420411056,
        234908883556509,
        2233514472574048,
        2117202627021982,
        765476049583133,
    ]);
    /// RFC 9496's INVSQRT_A_MINUS_D = 1/sqrt(a − d), a = −1.
    pub const INVSQRT_A_MINUS_D: Fe = Fe([
        278908739862762,
        821645201101625,
        8113234426968,
        1777959178193151,
        2118520810568447,
    ]);

    /// The limbs (reduced, see the module invariant).
    pub fn limbs(&self) -> [u64; 5] {
        self.0
    }

    /// Builds an element from limbs, carrying so that the result is reduced.
    pub fn from_limbs(limbs: [u64; 5]) -> Fe {
        Fe::carry(limbs)
    }

    /// Parallel carry of limbs of any size below 2⁶⁴; the result is reduced.
    fn carry(l: [u64; 5]) -> Fe {
        let c = [l[0] >> 51, l[1] >> 51, l[2] >> 51, l[3] >> 51, l[4] >> 51];
        Fe([
            (l[0] & MASK51) + c[4] * 19,
            (l[1] & MASK51) + c[0],
            (l[2] & MASK51) + c[1],
            (l[3] & MASK51) + c[2],
            (l[4] & MASK51) + c[3],
        ])
    }

    /// `self + rhs`.
    pub fn add(&self, rhs: &Fe) -> Fe {
        Fe::carry(core::array::from_fn(|i| self.0[i] + rhs.0[i]))
    }

    /// `self − rhs`.
    pub fn sub(&self, rhs: &Fe) -> Fe {
        Fe::carry(core::array::from_fn(|i| {
            self.0[i] + SIXTEEN_P[i] - rhs.0[i]
        }))
    }

    /// `−self`.
    pub fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    /// `self · rhs`.
    pub fn mul(&self, rhs: &Fe) -> Fe {
        let m = |x: u64, y: u64| (x as u128) * (y as u128);
        let (a, b) = (&self.0, &rhs.0);
        let b19: [u64; 5] = core::array::from_fn(|i| b[i] * 19);
        let c0 =
            m(a[0], b[0]) + m(a[4], b19[1]) + m(a[3], b19[2]) + m(a[2], b19[3]) + m(a[1], b19[4]);
        let c1 =
            m(a[1], b[0]) + m(a[0], b[1]) + m(a[4], b19[2]) + m(a[3], b19[3]) + m(a[2], b19[4]);
        let c2 = m(a[2], b[0]) + m(a[1], b[1]) + m(a[0], b[2]) + m(a[4], b19[3]) + m(a[3], b19[4]);
        let c3 = m(a[3], b[0]) + m(a[2], b[1]) + m(a[1], b[2]) + m(a[0], b[3]) + m(a[4], b19[4]);
        let c4 = m(a[4], b[0]) + m(a[3], b[1]) + m(a[2], b[2]) + m(a[1], b[3]) + m(a[0], b[4]);
        Fe::carry_wide([c0, c1, c2, c3, c4])
    }

    /// Sequential carry of 128-bit column sums (each below 2¹¹⁴).
    fn carry_wide(mut c: [u128; 5]) -> Fe {
        let mut out = [0u64; 5];
        for i in 0..4 {
            c[i + 1] += c[i] >> 51;
            out[i] = (c[i] as u64) & MASK51;
        }
        out[4] = (c[4] as u64) & MASK51;
        // c[4] >> 51 < 2^63, times 19 fits a u64 only in u128 first.
        let top = (c[4] >> 51) * 19 + out[0] as u128;
        out[0] = (top as u64) & MASK51;
        out[1] += (top >> 51) as u64;
        Fe::carry(out)
    }

    /// `self²` (symmetric products counted once).
    pub fn square(&self) -> Fe {
        let m = |x: u64, y: u64| (x as u128) * (y as u128);
        let a = &self.0;
        let (a3_19, a4_19) = (a[3] * 19, a[4] * 19);
        let c0 = m(a[0], a[0]) + 2 * (m(a[1], a4_19) + m(a[2], a3_19));
        let c1 = m(a[3], a3_19) + 2 * (m(a[0], a[1]) + m(a[2], a4_19));
        let c2 = m(a[1], a[1]) + 2 * (m(a[0], a[2]) + m(a[4], a3_19));
        let c3 = m(a[4], a4_19) + 2 * (m(a[0], a[3]) + m(a[1], a[2]));
        let c4 = m(a[2], a[2]) + 2 * (m(a[0], a[4]) + m(a[1], a[3]));
        Fe::carry_wide([c0, c1, c2, c3, c4])
    }

    /// `self^(2^k)`, k ≥ 1.
    pub fn pow2k(&self, k: u32) -> Fe {
        let mut x = self.square();
        for _ in 1..k {
            x = x.square();
        }
        x
    }

    /// `(self^(2^250 − 1), self^11)`, the shared head of the inversion and square-root chains.
    fn pow22501(&self) -> (Fe, Fe) {
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
        (t19, t3)
    }

    /// `self^((p − 5)/8) = self^(2^252 − 3)`.
    pub fn pow_p58(&self) -> Fe {
        let (t19, _) = self.pow22501();
        self.mul(&t19.pow2k(2))
    }

    /// `self⁻¹` (zero maps to zero).
    pub fn invert(&self) -> Fe {
        let (t19, t3) = self.pow22501();
        t19.pow2k(5).mul(&t3)
    }

    /// RFC 9496 `SQRT_RATIO_M1(u, v)`: `(was_square, r)` with r the non-negative
    /// square root of u/v if it exists, else of SQRT_M1·u/v.
    pub fn sqrt_ratio_i(u: &Fe, v: &Fe) -> (bool, Fe) {
        let v3 = v.square().mul(v);
        let v7 = v3.square().mul(v);
        let r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
        let check = v.mul(&r.square());
        let neg_u = u.neg();
        let correct = check.vartime_eq(u);
        let flipped = check.vartime_eq(&neg_u);
        let flipped_i = check.vartime_eq(&neg_u.mul(&Fe::SQRT_M1));
        let r = if flipped || flipped_i {
            r.mul(&Fe::SQRT_M1)
        } else {
            r
        };
        (correct || flipped, r.abs())
    }

    /// The canonical 32-byte little-endian encoding (value below p, top bit clear).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut l = Fe::carry(self.0).0;
        let mut q = (l[0] + 19) >> 51;
        for limb in &l[1..] {
            q = (limb + q) >> 51;
        }
        l[0] += 19 * q;
        for i in 0..4 {
            l[i + 1] += l[i] >> 51;
            l[i] &= MASK51;
        }
        l[4] &= MASK51;
        let mut bytes = [0u8; 32];
        let mut acc: u128 = 0;
        let mut bits = 0;
        let mut k = 0;
        for limb in l {
            acc |= (limb as u128) << bits;
            bits += 51;
            while bits >= 8 && k < 32 {
                bytes[k] = acc as u8;
                acc >>= 8;
                bits -= 8;
                k += 1;
            }
        }
        if k < 32 {
            bytes[k] = acc as u8;
        }
        bytes
    }

    /// Loads 32 little-endian bytes, ignoring the top bit (no canonicity check:
    /// callers compare with [`Fe::to_bytes`]).
    pub fn from_bytes(bytes: &[u8; 32]) -> Fe {
        let load = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Fe([
            load(0) & MASK51,
            (load(6) >> 3) & MASK51,
            (load(12) >> 6) & MASK51,
            (load(19) >> 1) & MASK51,
            (load(24) >> 12) & MASK51,
        ])
    }

    /// RFC 9496 `IS_NEGATIVE`: the low bit of the canonical encoding.
    pub fn is_negative(&self) -> bool {
        self.to_bytes()[0] & 1 == 1
    }

    /// Whether the element is zero mod p.
    pub fn is_zero(&self) -> bool {
        self.to_bytes() == [0u8; 32]
    }

    /// Equality mod p (variable time).
    pub fn vartime_eq(&self, rhs: &Fe) -> bool {
        self.to_bytes() == rhs.to_bytes()
    }

    /// RFC 9496 `CT_ABS` (here variable time): `−self` if negative, else `self`.
    pub fn abs(&self) -> Fe {
        if self.is_negative() {
            self.neg()
        } else {
            *self
        }
    }
}
