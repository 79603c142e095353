//! The quadratic-residue subgroup of ℤ_p^* for the RFC 3526 safe primes.
//!
//! p = 2q + 1 with q prime, so the quadratic residues form the subgroup of
//! prime order q. p ≡ 7 (mod 8), so 2 is a quadratic residue and generates it.
//!
//! # Security
//! num-bigint is not constant-time: exponentiations by secret scalars leak
//! through timing, and its temporaries are not zeroized. Use [`Ristretto255`]
//! where that matters; this group exists to be faithful to the paper.
//!
//! [`Ristretto255`]: super::Ristretto255

use core::fmt;
use core::marker::PhantomData;
use std::sync::OnceLock;

use num_bigint::BigUint;
use num_traits::{One, Zero};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::{Group, GroupId, hex_serde};
use crate::{Error, Result};

/// The constants of one MODP group.
#[derive(Debug)]
pub struct ModpContext {
    p: BigUint,
    q: BigUint,
    g: BigUint,
}

/// Chooses one RFC 3526 prime.
pub trait ModpParams: Copy + Default + fmt::Debug + PartialEq + Eq + Send + Sync + 'static {
    /// Wire name of the group.
    const ID: GroupId;
    /// Bytes in the big-endian encoding of p (and of every element and scalar).
    const BYTES: usize;
    /// The group constants, computed once.
    fn context() -> &'static ModpContext;
}

fn context_from_hex(hex: &[&str]) -> ModpContext {
    let digits: String = hex.concat();
    // The constants are fixed, known-good safe primes; parsing cannot fail.
    let p = BigUint::parse_bytes(digits.as_bytes(), 16).unwrap_or_default();
    let q = &p >> 1u32;
    ModpContext {
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

const PRIME_2048: [&str; 8] = [
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
];

const PRIME_3072: [&str; 12] = [
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
];

impl ModpParams for Rfc3526Group14 {
    const ID: GroupId = GroupId::Modp2048;
    const BYTES: usize = 256;
    fn context() -> &'static ModpContext {
        static CONTEXT: OnceLock<ModpContext> = OnceLock::new();
        CONTEXT.get_or_init(|| context_from_hex(&PRIME_2048))
    }
}

impl ModpParams for Rfc3526Group15 {
    const ID: GroupId = GroupId::Modp3072;
    const BYTES: usize = 384;
    fn context() -> &'static ModpContext {
        static CONTEXT: OnceLock<ModpContext> = OnceLock::new();
        CONTEXT.get_or_init(|| context_from_hex(&PRIME_3072))
    }
}

/// The quadratic residues modulo an RFC 3526 prime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modp<P: ModpParams>(PhantomData<P>);

/// The 2048-bit MODP group (RFC 3526 group 14), about 112-bit secure.
pub type Modp2048 = Modp<Rfc3526Group14>;
/// The 3072-bit MODP group (RFC 3526 group 15), about 128-bit secure.
pub type Modp3072 = Modp<Rfc3526Group15>;

/// A quadratic residue mod p, encoded big-endian in exactly `P::BYTES` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ModpElement<P: ModpParams>(BigUint, PhantomData<P>);

/// A scalar mod q, encoded big-endian in exactly `P::BYTES` bytes.
///
/// Zeroized on drop as far as num-bigint allows (its own buffer; not the
/// temporaries of arithmetic). The `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ModpScalar<P: ModpParams>(BigUint, PhantomData<P>);

impl<P: ModpParams> Zeroize for ModpScalar<P> {
    fn zeroize(&mut self) {
        // Overwrites the limbs in place: the buffer keeps its capacity.
        let words = self.0.to_u32_digits().len();
        self.0.assign_from_slice(&vec![0u32; words]);
    }
}

impl<P: ModpParams> Drop for ModpScalar<P> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<P: ModpParams> fmt::Debug for ModpElement<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModpElement({})", self.0.to_str_radix(16))
    }
}

impl<P: ModpParams> fmt::Debug for ModpScalar<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ModpScalar(..)")
    }
}

hex_serde!([P: ModpParams] ModpElement<P>, P::BYTES, Modp::<P>::element_to_bytes, Modp::<P>::element_from_bytes);
hex_serde!([P: ModpParams] ModpScalar<P>, P::BYTES, Modp::<P>::scalar_to_bytes, Modp::<P>::scalar_from_bytes);

fn element<P: ModpParams>(v: BigUint) -> ModpElement<P> {
    ModpElement(v, PhantomData)
}

fn scalar<P: ModpParams>(v: BigUint) -> ModpScalar<P> {
    ModpScalar(v, PhantomData)
}

fn fixed_be(v: &BigUint, len: usize) -> Vec<u8> {
    let raw = v.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(raw.len())];
    out.extend_from_slice(&raw);
    out
}

/// The Jacobi symbol (a/n) for odd n, by quadratic reciprocity; for prime n
/// it is the Legendre symbol, far cheaper than a^((n−1)/2).
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

impl<P: ModpParams> Modp<P> {
    fn ctx() -> &'static ModpContext {
        P::context()
    }

    fn invert(a: &BigUint) -> BigUint {
        // Every element of the subgroup is a unit mod p.
        a.modinv(&Self::ctx().p).unwrap_or_default()
    }
}

impl<P: ModpParams> Group for Modp<P> {
    const ID: GroupId = P::ID;
    const ELEMENT_LEN: usize = P::BYTES;
    const SCALAR_LEN: usize = P::BYTES;

    type Element = ModpElement<P>;
    type Scalar = ModpScalar<P>;
    type FixedBase = ModpElement<P>;

    fn generator() -> ModpElement<P> {
        element(Self::ctx().g.clone())
    }

    fn identity() -> ModpElement<P> {
        element(BigUint::one())
    }

    fn is_identity(a: &ModpElement<P>) -> bool {
        a.0.is_one()
    }

    fn add(a: &ModpElement<P>, b: &ModpElement<P>) -> ModpElement<P> {
        element((&a.0 * &b.0) % &Self::ctx().p)
    }

    fn sub(a: &ModpElement<P>, b: &ModpElement<P>) -> ModpElement<P> {
        element((&a.0 * Self::invert(&b.0)) % &Self::ctx().p)
    }

    fn double(a: &ModpElement<P>) -> ModpElement<P> {
        element((&a.0 * &a.0) % &Self::ctx().p)
    }

    fn mul(a: &ModpElement<P>, k: &ModpScalar<P>) -> ModpElement<P> {
        element(a.0.modpow(&k.0, &Self::ctx().p))
    }

    fn mul_base(k: &ModpScalar<P>) -> ModpElement<P> {
        element(Self::ctx().g.modpow(&k.0, &Self::ctx().p))
    }

    fn fixed_base(a: &ModpElement<P>) -> ModpElement<P> {
        a.clone()
    }

    fn mul_fixed(table: &ModpElement<P>, k: &ModpScalar<P>) -> ModpElement<P> {
        Self::mul(table, k)
    }

    fn scalar_from_i64(v: i64) -> ModpScalar<P> {
        let mag = BigUint::from(v.unsigned_abs());
        if v < 0 {
            scalar(&Self::ctx().q - mag)
        } else {
            scalar(mag)
        }
    }

    fn scalar_random<R: CryptoRng + ?Sized>(rng: &mut R) -> ModpScalar<P> {
        // 128 extra bits make the bias of the reduction negligible.
        let mut wide = Zeroizing::new(vec![0u8; P::BYTES + 16]);
        rng.fill_bytes(&mut wide);
        scalar(BigUint::from_bytes_be(&wide) % &Self::ctx().q)
    }

    fn scalar_add(a: &ModpScalar<P>, b: &ModpScalar<P>) -> ModpScalar<P> {
        scalar((&a.0 + &b.0) % &Self::ctx().q)
    }

    fn scalar_mul(a: &ModpScalar<P>, b: &ModpScalar<P>) -> ModpScalar<P> {
        scalar((&a.0 * &b.0) % &Self::ctx().q)
    }

    fn scalar_neg(a: &ModpScalar<P>) -> ModpScalar<P> {
        if a.0.is_zero() {
            a.clone()
        } else {
            scalar(&Self::ctx().q - &a.0)
        }
    }

    fn scalar_invert(a: &ModpScalar<P>) -> Option<ModpScalar<P>> {
        a.0.modinv(&Self::ctx().q).map(scalar)
    }

    fn element_to_bytes(a: &ModpElement<P>) -> Vec<u8> {
        fixed_be(&a.0, P::BYTES)
    }

    fn element_from_bytes(bytes: &[u8]) -> Result<ModpElement<P>> {
        if bytes.len() != P::BYTES {
            return Err(Error::InvalidEncoding("MODP element has the wrong length"));
        }
        let v = BigUint::from_bytes_be(bytes);
        let ctx = Self::ctx();
        if v.is_zero() || v >= ctx.p {
            return Err(Error::NonCanonical("MODP element not in [1, p)"));
        }
        if jacobi(&v, &ctx.p) != 1 {
            return Err(Error::InvalidEncoding(
                "MODP element is not a quadratic residue",
            ));
        }
        Ok(element(v))
    }

    fn scalar_to_bytes(a: &ModpScalar<P>) -> Vec<u8> {
        fixed_be(&a.0, P::BYTES)
    }

    fn scalar_from_bytes(bytes: &[u8]) -> Result<ModpScalar<P>> {
        if bytes.len() != P::BYTES {
            return Err(Error::InvalidEncoding("MODP scalar has the wrong length"));
        }
        let v = BigUint::from_bytes_be(bytes);
        if v >= Self::ctx().q {
            return Err(Error::NonCanonical("scalar not reduced mod q"));
        }
        Ok(scalar(v))
    }

    /// Two independent multiply-rotate hashes over every limb. Raw low bits
    /// would not do: the small multiples 2ʲ of g = 2 share their low limbs.
    fn fingerprints(points: &[ModpElement<P>]) -> Vec<u128> {
        points
            .iter()
            .map(|a| {
                // Non-zero seeds, so that zero limbs still move the state.
                let (mut lo, mut hi) = (0x243F_6A88_85A3_08D3u64, 0x1319_8A2E_0370_7344u64);
                for limb in a.0.iter_u64_digits() {
                    lo = (lo ^ limb)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .rotate_left(29);
                    hi = (hi ^ limb)
                        .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
                        .rotate_left(31);
                }
                u128::from(finalize(lo)) | (u128::from(finalize(hi)) << 64)
            })
            .collect()
    }

    fn vartime_mul_small(a: &ModpElement<P>, k: i64) -> ModpElement<P> {
        let p = &Self::ctx().p;
        let pow = a.0.modpow(&BigUint::from(k.unsigned_abs()), p);
        element(if k < 0 { Self::invert(&pow) } else { pow })
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

    #[test]
    fn scalar_zeroize_clears_value() {
        let mut s = G::scalar_from_i64(-7);
        s.zeroize();
        assert!(s.0.is_zero());
    }
}
