//! The one module of modular arithmetic behind [`crate::rlwe`]: two 62-bit
//! NTT-friendly primes, Barrett and Shoup multiplication, the negacyclic
//! number-theoretic transform of ℤ_p\[X\]/(Xⁿ + 1), and CRT to q = p₀·p₁.
//!
//! Everything here is constant time in the values (no branch or index
//! depends on a residue); only the sizes n and the public twiddles steer
//! control flow. Audit notes:
//! - p < 2⁶² so that Harvey's lazy butterflies keep values below 4p < 2⁶⁴.
//! - [`Modulus::reduce`] is Barrett with μ = ⌊2¹²⁴/p⌋ for inputs x < 2¹²⁴:
//!   x₁ = ⌊x/2⁶⁰⌋ and q̂ = ⌊x₁·μ/2⁶⁴⌋ satisfy ⌊x/p⌋ − 2 ≤ q̂ ≤ ⌊x/p⌋ since
//!   2⁶⁰/p < ½, so x − q̂·p < 3p and two conditional subtractions finish.
//! - Shoup: for a fixed w < p and w′ = ⌊w·2⁶⁴/p⌋, a·w − ⌊a·w′/2⁶⁴⌋·p lies in
//!   [0, 2p) for every a < 2⁶⁴.
//! - The transforms follow Longa–Naehrig (CANS 2016): forward
//!   Cooley–Tukey on ψ powers in bit-reversed order (output bit-reversed),
//!   inverse Gentleman–Sande on ψ⁻¹ powers (input bit-reversed), then n⁻¹.
//!   Tests check both against schoolbook negacyclic products.

use crate::{Error, Result};

/// The two primes of the RNS: p ≡ 1 (mod 2¹⁷), 2⁶¹ < p < 2⁶², so every
/// degree n ≤ 2¹⁶ has a primitive 2n-th root of unity mod each.
pub const PRIMES: [u64; 2] = [0x3fff_ffff_ffe8_0001, 0x3fff_ffff_ffbe_0001];

/// A generator of ℤ_p^* for both primes (checked in the tests).
const GENERATOR: u64 = 3;

/// The largest ring degree the primes support.
pub const MAX_DEGREE: usize = 1 << 16;

/// Returns `a − b` if a ≥ b, else a, for a < b + 2⁶³ and b ≤ 2⁶³ (true of
/// every call: b is p or 2p, a < 4p).
///
/// The borrow is read from the sign bit of a − b with an arithmetic shift,
/// not from a comparison: LLVM turns a compare-and-select into a branch
/// when it thinks that is faster (it did, in the final pass of the forward
/// transform), which would make the time depend on the value.
#[inline(always)]
fn csub(a: u64, b: u64) -> u64 {
    let d = a.wrapping_sub(b);
    let mask = ((d as i64) >> 63) as u64;
    d.wrapping_add(b & mask)
}

/// One prime modulus with its Barrett constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    p: u64,
    mu: u64,
}

impl Modulus {
    /// The modulus p (2⁶¹ < p < 2⁶² is assumed, true of [`PRIMES`]).
    pub(crate) const fn new(p: u64) -> Self {
        Self {
            p,
            mu: ((1u128 << 124) / p as u128) as u64,
        }
    }

    /// p.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.p
    }

    /// x mod p for x < 2¹²⁴ (Barrett; see the module notes).
    #[inline(always)]
    pub fn reduce(&self, x: u128) -> u64 {
        let x1 = (x >> 60) as u64;
        let qhat = ((u128::from(x1) * u128::from(self.mu)) >> 64) as u64;
        let r = x.wrapping_sub(u128::from(qhat) * u128::from(self.p)) as u64;
        csub(csub(r, self.p), self.p)
    }

    /// a·b mod p for a, b < p.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce(u128::from(a) * u128::from(b))
    }

    /// a + b mod p for a, b < p.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        csub(a + b, self.p)
    }

    /// a − b mod p for a, b < p.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        csub(a + self.p - b, self.p)
    }

    /// v mod p for a signed v, in constant time: |v| ≤ 2⁶³ < 3p, so two
    /// conditional subtractions reduce it, and a masked addition negates.
    #[inline(always)]
    pub fn from_i64(&self, v: i64) -> u64 {
        // |v| ≤ 2⁶³ < 3p, within csub's range for b = 2p.
        let mag = csub(csub(v.unsigned_abs(), 2 * self.p), self.p);
        // v < 0: add p − 2·mag (wrapping), giving p − mag; the mask is the
        // shifted sign, and p itself folds back to 0.
        let neg = (v >> 63) as u64;
        csub(mag.wrapping_add(neg & self.p.wrapping_sub(2 * mag)), self.p)
    }

    /// The Shoup companion ⌊w·2⁶⁴/p⌋ of a constant w < p.
    fn shoup(&self, w: u64) -> u64 {
        ((u128::from(w) << 64) / u128::from(self.p)) as u64
    }

    /// a·w mod p, lazily in [0, 2p), for any a < 2⁶⁴ and a constant w < p
    /// with companion `ws`.
    #[inline(always)]
    fn mul_shoup_lazy(&self, a: u64, w: u64, ws: u64) -> u64 {
        let q = ((u128::from(a) * u128::from(ws)) >> 64) as u64;
        a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p))
    }

    /// bᵉ mod p (public exponent; used for constants only).
    pub(crate) fn pow(&self, mut b: u64, mut e: u64) -> u64 {
        let mut acc = 1;
        while e > 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, b);
            }
            b = self.mul(b, b);
            e >>= 1;
        }
        acc
    }

    /// a⁻¹ mod p for a ≠ 0 (Fermat; constants only).
    pub(crate) fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.p - 2)
    }
}

/// Twiddle tables of the negacyclic NTT of degree n for one prime.
#[derive(Clone, Debug)]
pub struct NttTable {
    m: Modulus,
    n: usize,
    psi_rev: Vec<(u64, u64)>,
    psi_inv_rev: Vec<(u64, u64)>,
    n_inv: (u64, u64),
}

fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

impl NttTable {
    /// The tables for degree n (a power of two, 2 ≤ n ≤ [`MAX_DEGREE`]).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for any other n.
    pub fn new(m: Modulus, n: usize) -> Result<Self> {
        if !n.is_power_of_two() || !(2..=MAX_DEGREE).contains(&n) {
            return Err(Error::InvalidParameter(format!(
                "NTT degree must be a power of two in 2..={MAX_DEGREE}, got {n}"
            )));
        }
        let psi = m.pow(GENERATOR, (m.value() - 1) / (2 * n as u64));
        let psi_inv = m.inv(psi);
        let bits = n.trailing_zeros();
        let table = |root: u64| -> Vec<(u64, u64)> {
            let mut pows = Vec::with_capacity(n);
            let mut w = 1;
            for _ in 0..n {
                pows.push(w);
                w = m.mul(w, root);
            }
            (0..n)
                .map(|i| {
                    let w = pows[bit_reverse(i, bits)];
                    (w, m.shoup(w))
                })
                .collect()
        };
        let n_inv = m.inv(n as u64);
        Ok(Self {
            psi_rev: table(psi),
            psi_inv_rev: table(psi_inv),
            n_inv: (n_inv, m.shoup(n_inv)),
            m,
            n,
        })
    }

    /// The modulus.
    pub fn modulus(&self) -> &Modulus {
        &self.m
    }

    /// The degree n.
    pub fn degree(&self) -> usize {
        self.n
    }

    fn check_len(&self, a: &[u64]) -> Result<()> {
        if a.len() == self.n {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                expected: self.n,
                got: a.len(),
            })
        }
    }

    /// In place: coefficients in [0, p) → evaluations (bit-reversed order)
    /// in [0, p).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len()` is n.
    pub fn forward(&self, a: &mut [u64]) -> Result<()> {
        self.check_len(a)?;
        let (p, two_p) = (self.m.p, 2 * self.m.p);
        let n = self.n;
        let (mut t, mut m) = (n, 1);
        while m < n {
            t >>= 1;
            for (chunk, &(w, ws)) in a.chunks_exact_mut(2 * t).zip(&self.psi_rev[m..]) {
                let (lo, hi) = chunk.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let u = csub(*x, two_p);
                    let v = self.m.mul_shoup_lazy(*y, w, ws);
                    *x = u + v;
                    *y = u + two_p - v;
                }
            }
            m <<= 1;
        }
        for x in a.iter_mut() {
            *x = csub(csub(*x, two_p), p);
        }
        Ok(())
    }

    /// In place: evaluations (bit-reversed order) in [0, 2p) → coefficients
    /// in [0, p).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len()` is n.
    pub fn inverse(&self, a: &mut [u64]) -> Result<()> {
        self.inverse_prefix(a, self.n).map(|_| ())
    }

    /// The first `outputs` coefficients of the inverse transform, computed
    /// in place in `a[..outputs]` (the rest of `a` is left scrambled), and
    /// returned as that slice. Inputs in [0, 2p).
    ///
    /// With B = `outputs` rounded up to a power of two, the Gentleman–Sande
    /// stages of span t ≥ B keep only their sums u + v at offsets below B
    /// in each block, so after the log₂ B stages of span t < B, output j is
    /// Σₖ a[k·B + j] for k < n/B (then times n⁻¹): a fold instead of the
    /// last log₂(n/B) stages. Decryption and encryption need only the used
    /// slots.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `a.len()` is n and
    /// 1 ≤ outputs ≤ n.
    pub fn inverse_prefix<'a>(&self, a: &'a mut [u64], outputs: usize) -> Result<&'a [u64]> {
        self.check_len(a)?;
        if !(1..=self.n).contains(&outputs) {
            return Err(Error::LengthMismatch {
                expected: self.n,
                got: outputs,
            });
        }
        let (p, two_p) = (self.m.p, 2 * self.m.p);
        let span = outputs.next_power_of_two();
        let (mut t, mut m) = (1, self.n);
        while t < span {
            let h = m >> 1;
            for (chunk, &(w, ws)) in a.chunks_exact_mut(2 * t).zip(&self.psi_inv_rev[h..]) {
                let (lo, hi) = chunk.split_at_mut(t);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (u, v) = (*x, *y);
                    *x = csub(u + v, two_p);
                    *y = self.m.mul_shoup_lazy(u + two_p - v, w, ws);
                }
            }
            t <<= 1;
            m = h;
        }
        let (head, rest) = a.split_at_mut(span);
        for block in rest.chunks_exact(span) {
            for (x, &b) in head.iter_mut().zip(block) {
                *x = csub(*x + b, two_p);
            }
        }
        let (ni, nis) = self.n_inv;
        let out = &mut head[..outputs];
        for x in out.iter_mut() {
            *x = csub(self.m.mul_shoup_lazy(*x, ni, nis), p);
        }
        Ok(out)
    }
}

/// The RNS of q = p₀·p₁ at one degree: both moduli, their NTT tables and the
/// CRT constant.
#[derive(Clone, Debug)]
pub struct Rns {
    tables: [NttTable; 2],
    /// p₀⁻¹ mod p₁.
    p0_inv: u64,
}

impl Rns {
    /// The RNS at degree n.
    ///
    /// # Errors
    /// As [`NttTable::new`].
    pub fn new(n: usize) -> Result<Self> {
        let [m0, m1] = PRIMES.map(Modulus::new);
        Ok(Self {
            tables: [NttTable::new(m0, n)?, NttTable::new(m1, n)?],
            p0_inv: m1.inv(m1.reduce(u128::from(PRIMES[0]))),
        })
    }

    /// q = p₀·p₁ (just under 2¹²⁴).
    pub const fn modulus() -> u128 {
        PRIMES[0] as u128 * PRIMES[1] as u128
    }

    /// The NTT table of limb k.
    pub fn table(&self, k: usize) -> &NttTable {
        &self.tables[k]
    }

    /// Both moduli.
    pub fn moduli(&self) -> [Modulus; 2] {
        [self.tables[0].m, self.tables[1].m]
    }

    /// The degree n.
    pub fn degree(&self) -> usize {
        self.tables[0].n
    }

    /// The residue of x ∈ [0, q) from (x mod p₀, x mod p₁) (Garner).
    #[inline]
    pub fn crt(&self, r0: u64, r1: u64) -> u128 {
        let m1 = &self.tables[1].m;
        let r0_1 = csub(r0, m1.p);
        let t = m1.mul(m1.sub(r1, r0_1), self.p0_inv);
        u128::from(r0) + u128::from(PRIMES[0]) * u128::from(t)
    }

    /// The centred representative of x ∈ [0, q) in (−q/2, q/2].
    #[inline]
    pub fn centre(x: u128) -> i128 {
        let q = Self::modulus();
        if x > q / 2 {
            x as i128 - q as i128
        } else {
            x as i128
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::needless_range_loop,
    reason = "index loops read like the schoolbook product"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schoolbook(m: &Modulus, a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let prod = m.mul(a[i], b[j]);
                let k = (i + j) % n;
                c[k] = if i + j >= n {
                    m.sub(c[k], prod)
                } else {
                    m.add(c[k], prod)
                };
            }
        }
        c
    }

    #[test]
    fn primes_fit_the_audit_notes() {
        for p in PRIMES {
            assert!(p > 1 << 61 && p < 1 << 62);
            assert_eq!((p - 1) % (1 << 17), 0);
            let m = Modulus::new(p);
            // 3 generates ℤ_p^*: 3^((p−1)/2) = −1 (a non-residue), and the
            // 2¹⁷-th root it gives has exact order 2¹⁷.
            assert_eq!(m.pow(GENERATOR, (p - 1) / 2), p - 1);
            let root = m.pow(GENERATOR, (p - 1) >> 17);
            assert_eq!(m.pow(root, 1 << 16), p - 1);
        }
        assert!(Rns::modulus() > 1u128 << 123);
    }

    proptest! {
        #[test]
        fn barrett_matches_remainder(hi in 0u64..(1 << 60), lo: u64, k in 0usize..2) {
            let x = (u128::from(hi) << 64) | u128::from(lo);
            let m = Modulus::new(PRIMES[k]);
            prop_assert_eq!(u128::from(m.reduce(x)), x % u128::from(PRIMES[k]));
        }

        #[test]
        fn signed_residues(v: i64, k in 0usize..2) {
            let m = Modulus::new(PRIMES[k]);
            let expected = i128::from(v).rem_euclid(i128::from(PRIMES[k])) as u64;
            prop_assert_eq!(m.from_i64(v), expected);
        }

        #[test]
        fn crt_inverts_residues(hi in 0u64..(1 << 59), lo: u64) {
            let x = ((u128::from(hi) << 64) | u128::from(lo)) % Rns::modulus();
            let rns = Rns::new(4).unwrap();
            let [m0, m1] = rns.moduli();
            prop_assert_eq!(rns.crt(m0.reduce(x), m1.reduce(x)), x);
        }
    }

    #[test]
    fn signed_residues_at_the_edges() {
        for p in PRIMES {
            let m = Modulus::new(p);
            let pi = p as i64;
            for v in [
                0,
                1,
                -1,
                pi,
                -pi,
                pi - 1,
                1 - pi,
                2 * pi,
                -2 * pi,
                i64::MAX,
                i64::MIN,
                i64::MIN + 1,
            ] {
                let expected = i128::from(v).rem_euclid(i128::from(p)) as u64;
                assert_eq!(m.from_i64(v), expected, "{v}");
            }
        }
    }

    #[test]
    fn ntt_products_match_schoolbook() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [2usize, 4, 16, 64, 256] {
            for k in 0..2 {
                let t = NttTable::new(Modulus::new(PRIMES[k]), n).unwrap();
                let p = PRIMES[k];
                let a: Vec<u64> = (0..n).map(|_| next() % p).collect();
                let b: Vec<u64> = (0..n).map(|_| next() % p).collect();
                let expected = schoolbook(t.modulus(), &a, &b);
                let (mut fa, mut fb) = (a.clone(), b.clone());
                t.forward(&mut fa).unwrap();
                t.forward(&mut fb).unwrap();
                let mut c: Vec<u64> = fa
                    .iter()
                    .zip(&fb)
                    .map(|(&x, &y)| t.modulus().mul(x, y))
                    .collect();
                for outputs in [1, n / 2 + 1, n] {
                    let mut c2 = c.clone();
                    let got = t.inverse_prefix(&mut c2, outputs).unwrap();
                    assert_eq!(got, &expected[..outputs], "n = {n}, {outputs} outputs");
                }
                t.inverse(&mut c).unwrap();
                assert_eq!(c, expected, "n = {n}, prime {k}");
                t.inverse(&mut fa).unwrap();
                assert_eq!(fa, a, "round trip n = {n}");
            }
        }
    }

    #[test]
    fn extreme_residues_survive_the_lazy_butterflies() {
        for k in 0..2 {
            let t = NttTable::new(Modulus::new(PRIMES[k]), 1024).unwrap();
            let a = vec![PRIMES[k] - 1; 1024];
            let mut b = a.clone();
            t.forward(&mut b).unwrap();
            assert!(b.iter().all(|&x| x < PRIMES[k]));
            // The inverse takes lazy inputs up to 2p − 1.
            let mut lazy: Vec<u64> = b.iter().map(|&x| x + PRIMES[k]).collect();
            t.inverse(&mut lazy).unwrap();
            assert_eq!(lazy, a);
            let mut c = b.clone();
            assert_eq!(t.inverse_prefix(&mut c, 3).unwrap(), &a[..3]);
            t.inverse(&mut b).unwrap();
            assert_eq!(b, a);
        }
    }

    #[test]
    fn rejects_bad_degree() {
        let m = Modulus::new(PRIMES[0]);
        assert!(NttTable::new(m, 3).is_err());
        assert!(NttTable::new(m, 1).is_err());
        assert!(NttTable::new(m, MAX_DEGREE * 2).is_err());
        let t = NttTable::new(m, 16).unwrap();
        assert!(t.forward(&mut [0; 8]).is_err());
        assert!(t.inverse(&mut [0; 32]).is_err());
        assert!(t.inverse_prefix(&mut [0; 16], 0).is_err());
        assert!(t.inverse_prefix(&mut [0; 16], 17).is_err());
    }
}
