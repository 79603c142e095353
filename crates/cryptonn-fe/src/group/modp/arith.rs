//! Fixed-size arithmetic for the MODP groups, on crypto-bigint.
//!
//! Elements are kept in Montgomery form modulo p ([`ConstMontyForm`]), so a
//! group operation is one Montgomery multiplication of `L` limbs. Scalars are
//! plain `L`-limb integers in [0, q). [`ModpArith`] is the interface the
//! group code in the parent module sees; [`MontyArith`] is its one
//! implementation, generic over the limb count so that 2048 and 3072 bits
//! share every line.
//!
//! # Security
//! Everything here is constant-time in its secret inputs except the
//! functions named `vartime_*` and decoding (public input); see the parent
//! module's `# Security` section for the precise list.

use core::marker::PhantomData;

use crypto_bigint::modular::{ConstMontyForm, ConstMontyParams};
use crypto_bigint::{Choice, CtLt, CtSelect, Uint};
use zeroize::{Zeroize, Zeroizing};

use super::comb::{Comb, SmallTable};
use super::fingerprint;
use crate::{Error, Result};

mod sealed {
    pub trait Sealed {}
}

/// A scalar's integer in [0, q): `L` limbs, zeroized by its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct ScalarInt<const L: usize>(pub(super) Uint<L>);

impl<const L: usize> ScalarInt<L> {
    /// Whether the value is zero (constant-time in the value).
    pub fn is_zero(&self) -> bool {
        self.0.is_zero().to_bool()
    }
}

impl<const L: usize> Zeroize for ScalarInt<L> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// The arithmetic of one MODP group: elements mod p, scalars mod q.
///
/// Sealed: implemented only by [`MontyArith`] for the RFC 3526 primes.
pub trait ModpArith: sealed::Sealed + Send + Sync + 'static {
    /// An element in Montgomery form, fully reduced (so equal elements have
    /// equal representations).
    type Fe: Copy + Eq + Send + Sync + 'static;
    /// A scalar's integer in [0, q).
    type Int: Clone + Eq + Send + Sync + Zeroize + 'static;
    /// A fixed-base comb table of one element.
    type Comb: Send + Sync + 'static;
    /// The table of small multiples of the generator.
    type Small: Send + Sync + 'static;

    /// The identity, 1.
    fn one() -> Self::Fe;
    /// The generator, 2.
    fn generator() -> Self::Fe;
    /// a·b mod p.
    fn mul(a: &Self::Fe, b: &Self::Fe) -> Self::Fe;
    /// a² mod p.
    fn square(a: &Self::Fe) -> Self::Fe;
    /// a⁻¹ mod p, constant-time (safegcd); a must be a unit.
    fn invert(a: &Self::Fe) -> Self::Fe;
    /// a⁻¹ mod p in variable time; a must be a unit.
    fn vartime_invert(a: &Self::Fe) -> Self::Fe;
    /// a^k by a constant-time fixed-window exponentiation.
    fn pow(a: &Self::Fe, k: &Self::Int) -> Self::Fe;
    /// a^k for a public k, by square-and-multiply.
    fn vartime_pow_u64(a: &Self::Fe, k: u64) -> Self::Fe;
    /// The comb table of a.
    fn comb(a: &Self::Fe) -> Self::Comb;
    /// a^k from a's comb table, constant-time in k.
    fn comb_pow(table: &Self::Comb, k: &Self::Int) -> Self::Fe;
    /// The table of g^(±d·16^i).
    fn small_table() -> Self::Small;
    /// g^k for |k| < 2¹⁶, constant-time in k.
    fn small_pow(table: &Self::Small, k: i64) -> Self::Fe;

    /// The big-endian encoding of the element's value, `Uint::BYTES` bytes.
    fn fe_to_be(a: &Self::Fe) -> Vec<u8>;
    /// Decodes a big-endian value of `Uint::BYTES` bytes in [1, p) (the
    /// caller checks that it is a quadratic residue).
    ///
    /// # Errors
    /// [`Error::NonCanonical`] for 0 or a value ≥ p.
    fn fe_from_be(bytes: &[u8]) -> Result<Self::Fe>;
    /// The fingerprint of the element: the hash of its value's 64-bit
    /// digits, least significant first, without zero digits at the top (the
    /// digits num-bigint gave, so the map is the one before crypto-bigint).
    fn fe_fingerprint(a: &Self::Fe) -> u128;
    /// The Montgomery form's little-endian 64-bit words (x·2^(64L) mod p,
    /// fully reduced), into `out` (L words): what the SIMD lanes pack.
    fn fe_montgomery_words(a: &Self::Fe, out: &mut [u64]);
    /// The element whose Montgomery form has the words `words` (L words,
    /// fully reduced: as the lanes unpack them).
    fn fe_from_montgomery_words(words: &[u64]) -> Self::Fe;
    /// The scalar's little-endian 64-bit words (L), into `out`.
    fn int_words(a: &Self::Int, out: &mut [u64]);

    /// v mod q.
    fn int_from_i64(v: i64) -> Self::Int;
    /// The big-endian value of `wide` (`Uint::BYTES` + 16 bytes) mod q.
    fn int_from_wide(wide: &[u8]) -> Self::Int;
    /// a + b mod q.
    fn int_add(a: &Self::Int, b: &Self::Int) -> Self::Int;
    /// a·b mod q.
    fn int_mul(a: &Self::Int, b: &Self::Int) -> Self::Int;
    /// −a mod q.
    fn int_neg(a: &Self::Int) -> Self::Int;
    /// Σ sᵢ·yᵢ mod q for secret sᵢ and public yᵢ, constant-time in the
    /// sᵢ: word products summed without reduction, one reduction at the end.
    fn int_dot_small<'a>(terms: impl Iterator<Item = (&'a Self::Int, i64)>) -> Self::Int;
    /// a⁻¹ mod q, or `None` for 0 (constant-time safegcd).
    fn int_invert(a: &Self::Int) -> Option<Self::Int>;
    /// The big-endian encoding, `Uint::BYTES` bytes.
    fn int_to_be(a: &Self::Int) -> Vec<u8>;
    /// Decodes `Uint::BYTES` big-endian bytes, `None` if the value is ≥ q.
    fn int_from_be(bytes: &[u8]) -> Option<Self::Int>;
}

/// [`ModpArith`] with elements mod `M` (the prime p) and scalars mod `Q`
/// (q = (p − 1)/2), on `L` limbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MontyArith<M, Q, const L: usize>(PhantomData<(M, Q)>);

/// The Montgomery form of an element mod `M`.
pub type Fe<M, const L: usize> = ConstMontyForm<M, L>;

impl<M, Q, const L: usize> MontyArith<M, Q, L>
where
    M: ConstMontyParams<L>,
    Q: ConstMontyParams<L>,
{
    const TWO: Fe<M, L> = Fe::<M, L>::new(&Uint::from_u64(2));
}

impl<M, Q, const L: usize> MontyArith<M, Q, L>
where
    M: ConstMontyParams<L>,
    Q: ConstMontyParams<L>,
{
    /// v mod q for v < 2¹²⁸ (two words; q has far more).
    fn int_from_u128(v: u128) -> ScalarInt<L> {
        let mut words = [0u64; L];
        words[0] = v as u64;
        words[1] = (v >> 64) as u64;
        ScalarInt(Uint::from_words(words))
    }
}

impl<M, Q, const L: usize> sealed::Sealed for MontyArith<M, Q, L>
where
    M: ConstMontyParams<L>,
    Q: ConstMontyParams<L>,
{
}

impl<M, Q, const L: usize> ModpArith for MontyArith<M, Q, L>
where
    M: ConstMontyParams<L>,
    Q: ConstMontyParams<L>,
{
    type Fe = Fe<M, L>;
    type Int = ScalarInt<L>;
    type Comb = Comb<M, L>;
    type Small = SmallTable<M, L>;

    fn one() -> Fe<M, L> {
        Fe::<M, L>::ONE
    }

    fn generator() -> Fe<M, L> {
        Self::TWO
    }

    fn mul(a: &Fe<M, L>, b: &Fe<M, L>) -> Fe<M, L> {
        a.mul(b)
    }

    fn square(a: &Fe<M, L>) -> Fe<M, L> {
        a.square()
    }

    fn invert(a: &Fe<M, L>) -> Fe<M, L> {
        // Every element of the subgroup is a unit; 0 never reaches here.
        a.invert().unwrap_or(Fe::<M, L>::ZERO)
    }

    fn vartime_invert(a: &Fe<M, L>) -> Fe<M, L> {
        a.invert_vartime().unwrap_or(Fe::<M, L>::ZERO)
    }

    fn pow(a: &Fe<M, L>, k: &ScalarInt<L>) -> Fe<M, L> {
        a.pow(&k.0)
    }

    fn vartime_pow_u64(a: &Fe<M, L>, k: u64) -> Fe<M, L> {
        if k == 0 {
            return Fe::<M, L>::ONE;
        }
        let mut acc = *a;
        for bit in (0..63 - k.leading_zeros()).rev() {
            acc = acc.square();
            if (k >> bit) & 1 == 1 {
                acc = acc.mul(a);
            }
        }
        acc
    }

    fn comb(a: &Fe<M, L>) -> Comb<M, L> {
        Comb::new(a)
    }

    fn comb_pow(table: &Comb<M, L>, k: &ScalarInt<L>) -> Fe<M, L> {
        table.pow(&k.0)
    }

    fn small_table() -> SmallTable<M, L> {
        SmallTable::new(&Self::TWO)
    }

    fn small_pow(table: &SmallTable<M, L>, k: i64) -> Fe<M, L> {
        table.pow(k)
    }

    fn fe_to_be(a: &Fe<M, L>) -> Vec<u8> {
        a.retrieve().to_be_bytes().as_ref().to_vec()
    }

    fn fe_montgomery_words(a: &Fe<M, L>, out: &mut [u64]) {
        for (o, w) in out.iter_mut().zip(a.as_montgomery().as_words()) {
            *o = *w;
        }
    }

    fn fe_from_montgomery_words(words: &[u64]) -> Fe<M, L> {
        let mut limbs = [0u64; L];
        for (l, w) in limbs.iter_mut().zip(words) {
            *l = *w;
        }
        Fe::<M, L>::from_montgomery(Uint::from_words(limbs))
    }

    fn int_words(a: &ScalarInt<L>, out: &mut [u64]) {
        for (o, w) in out.iter_mut().zip(a.0.as_words()) {
            *o = *w;
        }
    }

    fn fe_from_be(bytes: &[u8]) -> Result<Fe<M, L>> {
        let v = Uint::<L>::from_be_slice(bytes);
        let p = M::PARAMS.modulus().as_ref();
        if v.is_zero_vartime() || v.cmp_vartime(p).is_ge() {
            return Err(Error::NonCanonical("MODP element not in [1, p)"));
        }
        Ok(Fe::<M, L>::new(&v))
    }

    /// Hashing the Montgomery form instead would skip a reduction, but the
    /// forms of g^j and g^(j+29) (x ↦ 2²⁹·x mod p) collided in the low 64
    /// bits of this multiply-rotate hash: the value it is.
    fn fe_fingerprint(a: &Fe<M, L>) -> u128 {
        let le = a.retrieve().to_le_bytes();
        let digits = le
            .as_ref()
            .chunks(8)
            .map(|c| c.iter().rev().fold(0u64, |d, &b| (d << 8) | u64::from(b)));
        let used = le
            .as_ref()
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i / 8 + 1);
        fingerprint(digits.take(used))
    }

    fn int_from_i64(v: i64) -> ScalarInt<L> {
        let mag = Uint::<L>::from_u64(v.unsigned_abs());
        let neg = mag.neg_mod(Q::PARAMS.modulus().as_nz_ref());
        ScalarInt(mag.ct_select(&neg, Choice::from_u64_lsb((v as u64) >> 63)))
    }

    fn int_from_wide(wide: &[u8]) -> ScalarInt<L> {
        let split = wide.len().saturating_sub(Uint::<L>::BYTES);
        let mut high = Zeroizing::new(vec![0u8; Uint::<L>::BYTES]);
        high[Uint::<L>::BYTES - split..].copy_from_slice(&wide[..split]);
        let mut lo_hi = (
            Uint::<L>::from_be_slice(&wide[split..]),
            Uint::<L>::from_be_slice(&high),
        );
        let v = Uint::rem_wide(lo_hi, Q::PARAMS.modulus().as_nz_ref());
        lo_hi.0.zeroize();
        lo_hi.1.zeroize();
        ScalarInt(v)
    }

    fn int_dot_small<'a>(terms: impl Iterator<Item = (&'a ScalarInt<L>, i64)>) -> ScalarInt<L> {
        // Positive and negative yᵢ (public) in separate sums: L words and a
        // top of at most 64 + log₂(n) bits each.
        let mut words = Zeroizing::new([[0u64; L]; 2]);
        let mut tops = Zeroizing::new([0u128; 2]);
        for (s, y) in terms {
            let sign = usize::from(y < 0);
            let mag = u128::from(y.unsigned_abs());
            let mut carry = 0u128;
            for (w, sw) in words[sign].iter_mut().zip(s.0.as_words()) {
                // < 2¹²⁷ + 2⁶⁵: no overflow for |y| ≤ 2⁶³.
                let t = u128::from(*w) + u128::from(*sw) * mag + carry;
                *w = t as u64;
                carry = t >> 64;
            }
            tops[sign] += carry;
        }
        let q = Q::PARAMS.modulus().as_nz_ref();
        // 2^(64L) mod q: the Montgomery form of 1.
        let r_mod_q = ScalarInt(ConstMontyForm::<Q, L>::ONE.to_montgomery());
        let reduce = |sign: usize| {
            let low = ScalarInt(Uint::from_words(words[sign]).rem(q));
            let high = Self::int_mul(&r_mod_q, &Self::int_from_u128(tops[sign]));
            Self::int_add(&low, &high)
        };
        let (pos, neg) = (reduce(0), reduce(1));
        Self::int_add(&pos, &Self::int_neg(&neg))
    }

    fn int_add(a: &ScalarInt<L>, b: &ScalarInt<L>) -> ScalarInt<L> {
        ScalarInt(a.0.add_mod(&b.0, Q::PARAMS.modulus().as_nz_ref()))
    }

    /// Two Montgomery multiplications: (a·R)·b·R⁻¹ = a·b, with a·R from
    /// converting a into Montgomery form and b taken as a Montgomery value.
    fn int_mul(a: &ScalarInt<L>, b: &ScalarInt<L>) -> ScalarInt<L> {
        let a = ConstMontyForm::<Q, L>::new(&a.0);
        let b = ConstMontyForm::<Q, L>::from_montgomery(b.0);
        ScalarInt(a.mul(&b).to_montgomery())
    }

    fn int_neg(a: &ScalarInt<L>) -> ScalarInt<L> {
        ScalarInt(a.0.neg_mod(Q::PARAMS.modulus().as_nz_ref()))
    }

    fn int_invert(a: &ScalarInt<L>) -> Option<ScalarInt<L>> {
        a.0.invert_odd_mod(Q::PARAMS.modulus())
            .into_option()
            .map(ScalarInt)
    }

    fn int_to_be(a: &ScalarInt<L>) -> Vec<u8> {
        Zeroizing::new(a.0.to_be_bytes()).as_ref().to_vec()
    }

    fn int_from_be(bytes: &[u8]) -> Option<ScalarInt<L>> {
        let v = ScalarInt(Uint::<L>::from_be_slice(bytes));
        v.0.ct_lt(Q::PARAMS.modulus().as_ref())
            .to_bool()
            .then_some(v)
    }
}
