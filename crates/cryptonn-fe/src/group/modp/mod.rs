//! The quadratic-residue subgroup of ℤ_p^* for the RFC 3526 safe primes.
//!
//! p = 2q + 1 with q prime, so the quadratic residues form the subgroup of
//! prime order q. p ≡ 7 (mod 8), so 2 is a quadratic residue and generates it.
//!
//! Arithmetic is fixed-size crypto-bigint ([`arith`]): elements are kept in
//! Montgomery form, so the group operation is one Montgomery multiplication
//! and doubling one squaring. `mul_base` and `mul_fixed` use a Lim–Lee comb
//! table ([`comb`]); the generator's is built once per process. num-bigint
//! parses the constants ([`ModpContext`]), prints elements, and is the
//! reference every fast path is tested against. Decoding checks residuosity
//! with a binary Jacobi symbol on 64-bit digits ([`jacobi`]).
//!
//! # Security
//! Constant-time in secret inputs: `mul` (crypto-bigint's 4-bit fixed-window
//! exponentiation, table entries selected in constant time), `mul_base` and
//! `mul_fixed` (comb with constant-time entry selection; every exponent is
//! treated as full width, never shortened), `mul_base_small` for |k| < 2¹⁶
//! (only whether |k| ≥ 2¹⁶ shows, as for Ristretto255), `add`, `double`,
//! `sub` (its inversion is constant-time safegcd), and the scalar arithmetic
//! mod q (`scalar_add`, `scalar_mul`, `scalar_neg`, `scalar_invert`,
//! `scalar_from_i64`, the reduction in `scalar_random`, the range check in
//! `scalar_from_bytes`).
//!
//! Not constant-time, on public inputs only: `vartime_mul_small` (its k, and
//! its inversion for k < 0), element decoding (range check, Jacobi
//! symbol), `fingerprints`, `is_identity` and element equality, and
//! element `Debug` (num-bigint). `fixed_base` runs the same operations
//! whatever the element.
//!
//! Scalars are zeroized on drop; the stack temporaries of crypto-bigint's
//! arithmetic and the byte vectors of `scalar_to_bytes` are not. This is
//! constant-time as the compiler leaves crypto-bigint's code (no hardware
//! guarantee); use [`Ristretto255`] where a stronger footing matters. This
//! group exists to be faithful to the paper.
//!
//! [`Ristretto255`]: super::Ristretto255

mod arith;
mod comb;
mod jacobi;
#[cfg(target_arch = "x86_64")]
mod lanes;
#[cfg(test)]
mod reference_tests;

use core::fmt;
use core::marker::PhantomData;
use std::sync::OnceLock;

use crypto_bigint::{U2048, U3072};
use num_bigint::BigUint;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::{Group, GroupId, hex_serde};
use crate::{Error, Result};
use arith::{ModpArith, MontyArith};

#[cfg(test)]
use num_traits::{One, Zero};

/// The constants of one MODP group, in num-bigint: the reference.
#[derive(Debug)]
pub struct ModpContext {
    p: BigUint,
    q: BigUint,
    g: BigUint,
    /// p's 64-bit digits, least significant first, for decoding's Jacobi
    /// symbol.
    p_digits: Vec<u64>,
}

impl ModpContext {
    /// The prime p.
    pub fn p(&self) -> &BigUint {
        &self.p
    }

    /// The group order q = (p − 1)/2.
    pub fn q(&self) -> &BigUint {
        &self.q
    }

    /// The generator g = 2.
    pub fn g(&self) -> &BigUint {
        &self.g
    }
}

/// The tables of the generator: a comb for `mul_base`, small multiples for
/// `mul_base_small`.
pub struct GeneratorTables<A: ModpArith> {
    comb: A::Comb,
    small: A::Small,
}

impl<A: ModpArith> GeneratorTables<A> {
    fn new() -> Self {
        Self {
            comb: A::comb(&A::generator()),
            small: A::small_table(),
        }
    }
}

/// Chooses one RFC 3526 prime.
pub trait ModpParams: Copy + Default + fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// Wire name of the group.
    const ID: GroupId;
    /// Bytes in the big-endian encoding of p (and of every element and scalar).
    const BYTES: usize;
    /// The fixed-size arithmetic mod p and q.
    type Arith: ModpArith;
    /// The group constants, computed once.
    fn context() -> &'static ModpContext;
    /// The generator's tables, computed once.
    fn generator_tables() -> &'static GeneratorTables<Self::Arith>;
}

fn context_from_hex(hex: &str) -> ModpContext {
    // The constants are fixed, known-good safe primes; parsing cannot fail.
    let p = BigUint::parse_bytes(hex.as_bytes(), 16).unwrap_or_default();
    let q = &p >> 1u32;
    ModpContext {
        p_digits: p.iter_u64_digits().collect(),
        p,
        q,
        g: BigUint::from(2u32),
    }
}

/// RFC 3526 group 14: the 2048-bit MODP prime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rfc3526Group14;

/// RFC 3526 group 15: the 3072-bit MODP prime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rfc3526Group15;

const PRIME_2048: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// q = (p − 1)/2 for [`PRIME_2048`] (checked against num-bigint in the tests).
const ORDER_2048: &str = concat!(
    "7FFFFFFFFFFFFFFFE487ED5110B4611A62633145C06E0E68948127044533E63A",
    "0105DF531D89CD9128A5043CC71A026EF7CA8CD9E69D218D98158536F92F8A1B",
    "A7F09AB6B6A8E122F242DABB312F3F637A262174D31BF6B585FFAE5B7A035BF6",
    "F71C35FDAD44CFD2D74F9208BE258FF324943328F6722D9EE1003E5C50B1DF82",
    "CC6D241B0E2AE9CD348B1FD47E9267AFC1B2AE91EE51D6CB0E3179AB1042A95D",
    "CF6A9483B84B4B36B3861AA7255E4C0278BA3604650C10BE19482F23171B671D",
    "F1CF3B960C074301CD93C1D17603D147DAE2AEF837A62964EF15E5FB4AAC0B8C",
    "1CCAA4BE754AB5728AE9130C4C7D02880AB9472D455655347FFFFFFFFFFFFFFF",
);

const PRIME_3072: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33",
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864",
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2",
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);

/// q = (p − 1)/2 for [`PRIME_3072`] (checked against num-bigint in the tests).
const ORDER_3072: &str = concat!(
    "7FFFFFFFFFFFFFFFE487ED5110B4611A62633145C06E0E68948127044533E63A",
    "0105DF531D89CD9128A5043CC71A026EF7CA8CD9E69D218D98158536F92F8A1B",
    "A7F09AB6B6A8E122F242DABB312F3F637A262174D31BF6B585FFAE5B7A035BF6",
    "F71C35FDAD44CFD2D74F9208BE258FF324943328F6722D9EE1003E5C50B1DF82",
    "CC6D241B0E2AE9CD348B1FD47E9267AFC1B2AE91EE51D6CB0E3179AB1042A95D",
    "CF6A9483B84B4B36B3861AA7255E4C0278BA3604650C10BE19482F23171B671D",
    "F1CF3B960C074301CD93C1D17603D147DAE2AEF837A62964EF15E5FB4AAC0B8C",
    "1CCAA4BE754AB5728AE9130C4C7D02880AB9472D45556216D6998B8682283D19",
    "D42A90D5EF8E5D32767DC2822C6DF785457538ABAE83063ED9CB87C2D370F263",
    "D5FAD7466D8499EB8F464A702512B0CEE771E9130D697735F897FD036CC50432",
    "6C3B01399F643532290F958C0BBD90065DF08BABBD30AEB63B84C4605D6CA371",
    "047127D03A72D598A1EDADFE707E884725C16890549D69657FFFFFFFFFFFFFFF",
);

crypto_bigint::const_monty_params!(
    Prime2048,
    U2048,
    PRIME_2048,
    "The RFC 3526 2048-bit prime p as a Montgomery modulus."
);
crypto_bigint::const_monty_params!(
    Order2048,
    U2048,
    ORDER_2048,
    "The order q = (p − 1)/2 of the 2048-bit group as a Montgomery modulus."
);
crypto_bigint::const_monty_params!(
    Prime3072,
    U3072,
    PRIME_3072,
    "The RFC 3526 3072-bit prime p as a Montgomery modulus."
);
crypto_bigint::const_monty_params!(
    Order3072,
    U3072,
    ORDER_3072,
    "The order q = (p − 1)/2 of the 3072-bit group as a Montgomery modulus."
);

impl ModpParams for Rfc3526Group14 {
    const ID: GroupId = GroupId::Modp2048;
    const BYTES: usize = 256;
    type Arith = MontyArith<Prime2048, Order2048, { U2048::LIMBS }>;
    fn context() -> &'static ModpContext {
        static CONTEXT: OnceLock<ModpContext> = OnceLock::new();
        CONTEXT.get_or_init(|| context_from_hex(PRIME_2048))
    }
    fn generator_tables() -> &'static GeneratorTables<Self::Arith> {
        static TABLES: OnceLock<GeneratorTables<<Rfc3526Group14 as ModpParams>::Arith>> =
            OnceLock::new();
        TABLES.get_or_init(GeneratorTables::new)
    }
}

impl ModpParams for Rfc3526Group15 {
    const ID: GroupId = GroupId::Modp3072;
    const BYTES: usize = 384;
    type Arith = MontyArith<Prime3072, Order3072, { U3072::LIMBS }>;
    fn context() -> &'static ModpContext {
        static CONTEXT: OnceLock<ModpContext> = OnceLock::new();
        CONTEXT.get_or_init(|| context_from_hex(PRIME_3072))
    }
    fn generator_tables() -> &'static GeneratorTables<Self::Arith> {
        static TABLES: OnceLock<GeneratorTables<<Rfc3526Group15 as ModpParams>::Arith>> =
            OnceLock::new();
        TABLES.get_or_init(GeneratorTables::new)
    }
}

/// The quadratic residues modulo an RFC 3526 prime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modp<P: ModpParams>(PhantomData<P>);

/// The 2048-bit MODP group (RFC 3526 group 14), about 112-bit secure.
pub type Modp2048 = Modp<Rfc3526Group14>;
/// The 3072-bit MODP group (RFC 3526 group 15), about 128-bit secure.
pub type Modp3072 = Modp<Rfc3526Group15>;

type Fe<P> = <<P as ModpParams>::Arith as ModpArith>::Fe;
type Int<P> = <<P as ModpParams>::Arith as ModpArith>::Int;

/// A quadratic residue mod p, encoded big-endian in exactly `P::BYTES` bytes.
/// Held in Montgomery form.
pub struct ModpElement<P: ModpParams>(Fe<P>);

/// A scalar mod q, encoded big-endian in exactly `P::BYTES` bytes.
///
/// Zeroized on drop (its own limbs; not the stack temporaries of
/// arithmetic). The `Debug` form is redacted.
pub struct ModpScalar<P: ModpParams>(Int<P>);

/// Encryption's lane combs of a public key's bases (the 2048-bit group on
/// AVX-512 IFMA, [`Group::lane_bases`]).
pub struct ModpLaneBases {
    #[cfg(target_arch = "x86_64")]
    combs: lanes::Combs,
    #[cfg(not(target_arch = "x86_64"))]
    never: core::convert::Infallible,
}

/// A fixed-base table of one element: a Lim–Lee comb (32 KiB for 2048 bits,
/// 48 KiB for 3072).
pub struct ModpTable<P: ModpParams>(<P::Arith as ModpArith>::Comb);

impl<P: ModpParams> Clone for ModpElement<P> {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}

impl<P: ModpParams> PartialEq for ModpElement<P> {
    /// Montgomery forms are fully reduced: equal forms, equal elements.
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<P: ModpParams> Eq for ModpElement<P> {}

impl<P: ModpParams> Clone for ModpScalar<P> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<P: ModpParams> PartialEq for ModpScalar<P> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<P: ModpParams> Eq for ModpScalar<P> {}

impl<P: ModpParams> Zeroize for ModpScalar<P> {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl<P: ModpParams> Drop for ModpScalar<P> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<P: ModpParams> fmt::Debug for ModpElement<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = BigUint::from_bytes_be(&P::Arith::fe_to_be(&self.0));
        write!(f, "ModpElement({})", value.to_str_radix(16))
    }
}

impl<P: ModpParams> fmt::Debug for ModpScalar<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ModpScalar(..)")
    }
}

hex_serde!([P: ModpParams] ModpElement<P>, P::BYTES, Modp::<P>::element_to_bytes, Modp::<P>::element_from_bytes);
hex_serde!([P: ModpParams] ModpScalar<P>, P::BYTES, Modp::<P>::scalar_to_bytes, Modp::<P>::scalar_from_bytes);

/// v big-endian in exactly `len` bytes (the encoding num-bigint gave).
#[cfg(test)]
fn fixed_be(v: &BigUint, len: usize) -> Vec<u8> {
    let raw = v.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(raw.len())];
    out.extend_from_slice(&raw);
    out
}

/// The Jacobi symbol (a/n) for odd n, by quadratic reciprocity with
/// num-bigint divisions: the reference for [`jacobi::jacobi`], which
/// decoding uses.
#[cfg(test)]
fn jacobi(a: &BigUint, n: &BigUint) -> i8 {
    let mut a = a % n;
    let mut n = n.clone();
    let mut t = 1i8;
    let low = |v: &BigUint, m: u32| v.iter_u32_digits().next().unwrap_or(0) & m;
    while !a.is_zero() {
        let zeros = a.trailing_zeros().unwrap_or(0);
        a >>= zeros;
        if zeros % 2 == 1 && matches!(low(&n, 7), 3 | 5) {
            t = -t;
        }
        core::mem::swap(&mut a, &mut n);
        if low(&a, 3) == 3 && low(&n, 3) == 3 {
            t = -t;
        }
        a %= &n;
    }
    if n.is_one() { t } else { 0 }
}

/// The splitmix64 finalizer: spreads every input bit over the output.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Two independent multiply-rotate hashes over 64-bit digits. Raw low bits
/// would not do: the small multiples 2ʲ of g = 2 share their low limbs.
fn fingerprint(digits: impl IntoIterator<Item = u64>) -> u128 {
    // Non-zero seeds, so that zero limbs still move the state.
    let (mut lo, mut hi) = (0x243F_6A88_85A3_08D3u64, 0x1319_8A2E_0370_7344u64);
    for limb in digits {
        lo = (lo ^ limb)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        hi = (hi ^ limb)
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(31);
    }
    u128::from(finalize(lo)) | (u128::from(finalize(hi)) << 64)
}

impl<P: ModpParams> Group for Modp<P> {
    const ID: GroupId = P::ID;
    const ELEMENT_LEN: usize = P::BYTES;
    const SCALAR_LEN: usize = P::BYTES;

    type Element = ModpElement<P>;
    type Scalar = ModpScalar<P>;
    type FixedBase = ModpTable<P>;
    type LaneBases = ModpLaneBases;

    fn generator() -> ModpElement<P> {
        ModpElement(P::Arith::generator())
    }

    fn identity() -> ModpElement<P> {
        ModpElement(P::Arith::one())
    }

    fn is_identity(a: &ModpElement<P>) -> bool {
        a.0 == P::Arith::one()
    }

    fn add(a: &ModpElement<P>, b: &ModpElement<P>) -> ModpElement<P> {
        ModpElement(P::Arith::mul(&a.0, &b.0))
    }

    fn sub(a: &ModpElement<P>, b: &ModpElement<P>) -> ModpElement<P> {
        ModpElement(P::Arith::mul(&a.0, &P::Arith::invert(&b.0)))
    }

    fn double(a: &ModpElement<P>) -> ModpElement<P> {
        ModpElement(P::Arith::square(&a.0))
    }

    fn mul(a: &ModpElement<P>, k: &ModpScalar<P>) -> ModpElement<P> {
        ModpElement(P::Arith::pow(&a.0, &k.0))
    }

    fn mul_base(k: &ModpScalar<P>) -> ModpElement<P> {
        ModpElement(P::Arith::comb_pow(&P::generator_tables().comb, &k.0))
    }

    /// Four radix-16 digits and the sign select entries of a table of
    /// g^(±d·16^i) in constant time: 4 multiplications instead of a comb.
    /// Only whether |k| ≥ 2¹⁶ (then `mul_base` runs) shows in timing.
    fn mul_base_small(k: i64) -> ModpElement<P> {
        if k.unsigned_abs() >= 1 << 16 {
            return Self::mul_base(&Self::scalar_from_i64(k));
        }
        ModpElement(P::Arith::small_pow(&P::generator_tables().small, k))
    }

    fn fixed_base(a: &ModpElement<P>) -> ModpTable<P> {
        ModpTable(P::Arith::comb(&a.0))
    }

    fn mul_fixed(table: &ModpTable<P>, k: &ModpScalar<P>) -> ModpElement<P> {
        ModpElement(P::Arith::comb_pow(&table.0, &k.0))
    }

    fn scalar_from_i64(v: i64) -> ModpScalar<P> {
        ModpScalar(P::Arith::int_from_i64(v))
    }

    fn scalar_random<R: CryptoRng + ?Sized>(rng: &mut R) -> ModpScalar<P> {
        // 128 extra bits make the bias of the reduction negligible.
        let mut wide = Zeroizing::new(vec![0u8; P::BYTES + 16]);
        rng.fill_bytes(&mut wide);
        ModpScalar(P::Arith::int_from_wide(&wide))
    }

    fn scalar_add(a: &ModpScalar<P>, b: &ModpScalar<P>) -> ModpScalar<P> {
        ModpScalar(P::Arith::int_add(&a.0, &b.0))
    }

    fn scalar_mul(a: &ModpScalar<P>, b: &ModpScalar<P>) -> ModpScalar<P> {
        ModpScalar(P::Arith::int_mul(&a.0, &b.0))
    }

    /// Word products summed unreduced, one reduction at the end instead of
    /// Montgomery multiplications for every entry.
    fn scalar_dot_small(s: &[ModpScalar<P>], y: &[i64]) -> ModpScalar<P> {
        let terms = s.iter().zip(y).filter(|&(_, &yi)| yi != 0);
        ModpScalar(P::Arith::int_dot_small(terms.map(|(si, &yi)| (&si.0, yi))))
    }

    fn scalar_neg(a: &ModpScalar<P>) -> ModpScalar<P> {
        ModpScalar(P::Arith::int_neg(&a.0))
    }

    fn scalar_invert(a: &ModpScalar<P>) -> Option<ModpScalar<P>> {
        P::Arith::int_invert(&a.0).map(ModpScalar)
    }

    fn element_to_bytes(a: &ModpElement<P>) -> Vec<u8> {
        P::Arith::fe_to_be(&a.0)
    }

    fn element_from_bytes(bytes: &[u8]) -> Result<ModpElement<P>> {
        if bytes.len() != P::BYTES {
            return Err(Error::InvalidEncoding("MODP element has the wrong length"));
        }
        let fe = P::Arith::fe_from_be(bytes)?;
        let p = &P::context().p_digits;
        if jacobi::jacobi(&jacobi::digits_from_be(bytes), p) != 1 {
            return Err(Error::InvalidEncoding(
                "MODP element is not a quadratic residue",
            ));
        }
        Ok(ModpElement(fe))
    }

    /// Length and range only: the Jacobi symbol (50 µs) is for untrusted bytes.
    fn element_from_valid_bytes(bytes: &[u8]) -> Result<ModpElement<P>> {
        if bytes.len() != P::BYTES {
            return Err(Error::InvalidEncoding("MODP element has the wrong length"));
        }
        P::Arith::fe_from_be(bytes).map(ModpElement)
    }

    fn scalar_to_bytes(a: &ModpScalar<P>) -> Vec<u8> {
        P::Arith::int_to_be(&a.0)
    }

    fn scalar_from_bytes(bytes: &[u8]) -> Result<ModpScalar<P>> {
        if bytes.len() != P::BYTES {
            return Err(Error::InvalidEncoding("MODP scalar has the wrong length"));
        }
        P::Arith::int_from_be(bytes)
            .map(ModpScalar)
            .ok_or(Error::NonCanonical("scalar not reduced mod q"))
    }

    /// Hashes the value's 64-bit digits (`fingerprint`), the same map
    /// num-bigint's limbs gave.
    fn fingerprints(points: &[ModpElement<P>]) -> Vec<u128> {
        points
            .iter()
            .map(|a| P::Arith::fe_fingerprint(&a.0))
            .collect()
    }

    /// Eight bases at a time in the 2048-bit group's lanes (a one-use comb
    /// each, constant-time in k); one window exponentiation each elsewhere.
    fn mul_many(bases: &[ModpElement<P>], k: &ModpScalar<P>) -> Vec<ModpElement<P>> {
        #[cfg(target_arch = "x86_64")]
        if let Some(out) = lanes::pow_many::<P>(bases, &k.0) {
            return out.into_iter().map(ModpElement).collect();
        }
        super::mul_each::<Self>(bases, k)
    }

    fn lane_bases(bases: &[ModpElement<P>]) -> Option<ModpLaneBases> {
        #[cfg(target_arch = "x86_64")]
        return lanes::lane_combs::<P>(bases).map(|combs| ModpLaneBases { combs });
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = bases;
            None
        }
    }

    fn lane_encrypt_bodies(
        lanes: &ModpLaneBases,
        rs: &[ModpScalar<P>],
        xs: &[&[i64]],
    ) -> Result<Vec<Vec<u8>>> {
        #[cfg(target_arch = "x86_64")]
        {
            let rs: Vec<&Int<P>> = rs.iter().map(|r| &r.0).collect();
            lanes::encrypt_bodies::<P>(&lanes.combs, &rs, xs)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (rs, xs);
            match lanes.never {}
        }
    }

    /// Eight ciphertexts at a time in SIMD lanes (the 2048-bit group on
    /// AVX-512 IFMA): the multi-product and the ct₀ comb of
    /// [`crate::lanes::ifma`]'s wide arithmetic.
    fn vartime_lane_inner_products(
        ct0s: &[&ModpElement<P>],
        cts: &[&[ModpElement<P>]],
        ys: &[&[i64]],
        sks: &[&ModpScalar<P>],
    ) -> Option<Result<Vec<ModpElement<P>>>> {
        #[cfg(target_arch = "x86_64")]
        {
            let sks: Vec<&Int<P>> = sks.iter().map(|sk| &sk.0).collect();
            let out = lanes::inner_products::<P>(ct0s, cts, ys, &sks)?;
            Some(out.map(|v| v.into_iter().map(ModpElement).collect()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (ct0s, cts, ys, sks);
            None
        }
    }

    /// Square-and-multiply on |k|, then one inversion if k < 0.
    fn vartime_mul_small(a: &ModpElement<P>, k: i64) -> ModpElement<P> {
        let pow = P::Arith::vartime_pow_u64(&a.0, k.unsigned_abs());
        ModpElement(if k < 0 {
            P::Arith::vartime_invert(&pow)
        } else {
            pow
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type G = Modp2048;

    #[test]
    fn generator_has_order_q() {
        let ctx = Rfc3526Group14::context();
        assert_eq!(ctx.p.bits(), 2048);
        assert!(ctx.g.modpow(&ctx.q, &ctx.p).is_one());
        let ctx = Rfc3526Group15::context();
        assert_eq!(ctx.p.bits(), 3072);
        assert!(ctx.g.modpow(&ctx.q, &ctx.p).is_one());
    }

    /// ⌊2^bits·π⌋ by Machin's formula π = 16·atan(1/5) − 4·atan(1/239), with
    /// 64 guard bits against the truncation of each term.
    fn pi_times_2_pow(bits: usize) -> BigUint {
        let one = BigUint::one() << (bits + 64);
        let atan_inv = |x: u32| {
            let x2 = BigUint::from(x * x);
            let mut term = &one / x;
            let (mut pos, mut neg) = (BigUint::zero(), BigUint::zero());
            for n in 0u32.. {
                if term.is_zero() {
                    break;
                }
                let t = &term / (2 * n + 1);
                if n % 2 == 0 {
                    pos += t
                } else {
                    neg += t
                }
                term /= &x2;
            }
            pos - neg
        };
        (atan_inv(5) * 16u32 - atan_inv(239) * 4u32) >> 64usize
    }

    /// The constants are RFC 3526's, as FORMAT.md states them:
    /// p = 2^N − 2^(N−64) − 1 + 2^64·(⌊2^(N−130)·π⌋ + c).
    #[test]
    fn primes_match_rfc3526_formula() {
        let rfc = |n: usize, c: u32| {
            let pi = pi_times_2_pow(n - 130);
            (BigUint::one() << n) + ((pi + c) << 64usize) - (BigUint::one() << (n - 64)) - 1u32
        };
        assert_eq!(Rfc3526Group14::context().p, rfc(2048, 124_476));
        assert_eq!(Rfc3526Group15::context().p, rfc(3072, 1_690_314));
    }

    #[test]
    fn jacobi_matches_euler_criterion() {
        let ctx = Rfc3526Group14::context();
        for v in [2u32, 3, 5, 7, 11, 12345, 65537] {
            let v = BigUint::from(v);
            let euler = v.modpow(&ctx.q, &ctx.p).is_one();
            assert_eq!(jacobi(&v, &ctx.p) == 1, euler, "v = {v}");
        }
    }

    #[test]
    fn rejects_non_residue() {
        // p ≡ 7 (mod 8) and p ≡ 2 (mod 3) make −1 and 3 non-residues... check by Euler.
        let ctx = Rfc3526Group14::context();
        let minus_one = &ctx.p - 1u32;
        let bytes = fixed_be(&minus_one, 256);
        assert!(G::element_from_bytes(&bytes).is_err());
    }

    #[test]
    fn rejects_out_of_range_element() {
        let ctx = Rfc3526Group14::context();
        assert!(matches!(
            G::element_from_bytes(&fixed_be(&ctx.p, 256)),
            Err(Error::NonCanonical(_))
        ));
        assert!(matches!(
            G::element_from_bytes(&[0u8; 256]),
            Err(Error::NonCanonical(_))
        ));
        assert!(matches!(
            G::element_from_bytes(&[1u8; 255]),
            Err(Error::InvalidEncoding(_))
        ));
    }

    #[test]
    fn rejects_unreduced_scalar() {
        let ctx = Rfc3526Group14::context();
        assert!(G::scalar_from_bytes(&fixed_be(&ctx.q, 256)).is_err());
    }

    #[test]
    fn negative_small_multiples() {
        let g = G::generator();
        let a = G::vartime_mul_small(&g, -5);
        let b = G::vartime_mul_small(&g, 5);
        assert!(G::is_identity(&G::add(&a, &b)));
        assert_eq!(G::mul(&g, &G::scalar_from_i64(-5)), a);
    }

    #[test]
    fn fingerprints_separate_powers_of_two() {
        let g = G::generator();
        let pts: Vec<_> = (0..600).map(|j| G::vartime_mul_small(&g, j)).collect();
        let mut fps = G::fingerprints(&pts);
        fps.sort_unstable();
        fps.dedup();
        assert_eq!(fps.len(), pts.len());
    }

    /// The unreduced word sums give the generic fold's key: random and
    /// extreme scalars (0, q − 1), y at ±(2⁶³ − 1), zeros, one sign only.
    #[test]
    fn scalar_dot_small_matches_the_fold() {
        fn fold<G: Group>(s: &[G::Scalar], y: &[i64]) -> G::Scalar {
            s.iter()
                .zip(y)
                .fold(G::scalar_from_i64(0), |acc, (si, &yi)| {
                    G::scalar_add(&acc, &G::scalar_mul(si, &G::scalar_from_i64(yi)))
                })
        }
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut s: Vec<_> = (0..40).map(|_| G::scalar_random(&mut rng)).collect();
        s[0] = G::scalar_from_i64(-1);
        s[1] = G::scalar_from_i64(0);
        let ys: [Vec<i64>; 4] = [
            (0..40).map(|i| (i * 37 % 255) - 127).collect(),
            (0..40)
                .map(|i| if i % 2 == 0 { i64::MAX } else { -i64::MAX })
                .collect(),
            vec![i64::MAX; 40],
            (0..40)
                .map(|i| if i % 3 == 0 { 0 } else { -(1 << 40) - i })
                .collect(),
        ];
        for y in &ys {
            assert!(G::scalar_dot_small(&s, y) == fold::<G>(&s, y));
            let s3: Vec<_> = s
                .iter()
                .map(|_| Modp3072::scalar_random(&mut rng))
                .collect();
            assert!(Modp3072::scalar_dot_small(&s3, y) == fold::<Modp3072>(&s3, y));
        }
    }

    /// Valid bytes decode to the same element on the trusted path, which
    /// still checks length and range.
    #[test]
    fn valid_bytes_decode_as_checked_bytes() {
        let g = G::generator();
        for k in [0i64, 1, 5, -9, 1 << 40] {
            let bytes = G::element_to_bytes(&G::vartime_mul_small(&g, k));
            assert!(
                G::element_from_valid_bytes(&bytes).unwrap()
                    == G::element_from_bytes(&bytes).unwrap()
            );
        }
        assert!(G::element_from_valid_bytes(&[0u8; 256]).is_err());
        assert!(G::element_from_valid_bytes(&[0xff; 256]).is_err());
        assert!(G::element_from_valid_bytes(&[1u8; 255]).is_err());
    }

    #[test]
    fn scalar_zeroize_clears_value() {
        let mut s = G::scalar_from_i64(-7);
        s.zeroize();
        assert!(s.0.is_zero());
    }
}
