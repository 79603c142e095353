//! Prime-order groups, written additively.
//!
//! FE schemes here need a cyclic group 𝔾 of prime order q with generator g
//! in which DDH is hard. Two implementations are provided:
//!
//! - [`Ristretto255`]: the prime-order quotient of Curve25519 (q ≈ 2²⁵²),
//!   the default. Scalar multiplications by secrets are constant-time.
//! - [`Modp2048`] and [`Modp3072`]: the quadratic residues modulo the RFC 3526
//!   safe primes (groups 14 and 15), q = (p − 1)/2. This is the option
//!   faithful to the CryptoNN paper; fixed-size crypto-bigint Montgomery
//!   arithmetic, constant-time in secret scalars (see the module's
//!   `# Security` for the exact list).
//!
//! Everything is written additively: `add` is the group operation, `mul`
//! is scalar multiplication (exponentiation in MODP notation).

mod modp;
mod ristretto;

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use zeroize::Zeroize;

use crate::{Error, Result};

pub use modp::{
    Modp, Modp2048, Modp3072, ModpElement, ModpLaneBases, ModpParams, ModpScalar, Rfc3526Group14,
    Rfc3526Group15,
};
/// The primes' crypto-bigint parameters, for the lane arithmetic's tests.
#[cfg(test)]
pub(crate) use modp::{Prime2048, Prime3072};
pub use ristretto::{Ristretto255, RistrettoElement, RistrettoScalar};

/// Names a group on the wire and on the command line.
///
/// Its serde form is the wire name as a string ([`GroupId::name`]); nothing
/// else is accepted on the way in (see `docs/FORMAT.md`).
/// With the `clap` feature it is a command-line value too (`ristretto255`,
/// alias `ristretto`; `modp2048`; `modp3072`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum GroupId {
    /// Ristretto255 (RFC 9496): 128-bit, fast.
    #[cfg_attr(feature = "clap", value(name = "ristretto255", alias = "ristretto"))]
    Ristretto255,
    /// Quadratic residues modulo the RFC 3526 2048-bit prime (group 14): the
    /// paper's kind of group, 112-bit, slow.
    #[cfg_attr(feature = "clap", value(name = "modp2048"))]
    Modp2048,
    /// Quadratic residues modulo the RFC 3526 3072-bit prime (group 15).
    #[cfg_attr(feature = "clap", value(name = "modp3072"))]
    Modp3072,
}

impl Serialize for GroupId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        // Exact wire names only: not the CLI alias "ristretto", not a map.
        crate::wire::from_name(
            d,
            "a group name string: \"ristretto255\", \"modp2048\" or \"modp3072\"",
            |s| GroupId::ALL.into_iter().find(|g| g.name() == s),
        )
    }
}

impl GroupId {
    /// Every supported group.
    pub const ALL: [GroupId; 3] = [GroupId::Ristretto255, GroupId::Modp2048, GroupId::Modp3072];

    /// The wire name, e.g. `"ristretto255"`.
    pub const fn name(self) -> &'static str {
        match self {
            GroupId::Ristretto255 => "ristretto255",
            GroupId::Modp2048 => "modp2048",
            GroupId::Modp3072 => "modp3072",
        }
    }

    /// Classical security level in bits (NIST SP 800-57 estimates).
    pub const fn security_bits(self) -> u32 {
        match self {
            GroupId::Ristretto255 => 128,
            GroupId::Modp2048 => 112,
            GroupId::Modp3072 => 128,
        }
    }
}

/// Group elements as their encodings (`ELEMENT_LEN` bytes each) and
/// fingerprints ([`Group::fingerprints`]), in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedPoints {
    /// The canonical encodings, back to back.
    pub encodings: Vec<u8>,
    /// One fingerprint per element.
    pub fingerprints: Vec<u128>,
}

/// k·aᵢ for every aᵢ by [`Group::mul`], in parallel: [`Group::mul_many`]'s
/// default, and its fallback where a group overrides it.
pub(crate) fn mul_each<G: Group>(bases: &[G::Element], k: &G::Scalar) -> Vec<G::Element> {
    use rayon::prelude::*;
    bases.par_iter().map(|a| G::mul(a, k)).collect()
}

/// Code generic over the group, run for a group chosen at run time with
/// [`GroupId::dispatch`]: the one place a run-time choice becomes a type.
pub trait ForGroup {
    /// What the code returns.
    type Output;

    /// Runs the code for `G`.
    fn run<G: Group>(self) -> Self::Output;
}

impl GroupId {
    /// Runs `code` for this group.
    pub fn dispatch<F: ForGroup>(self, code: F) -> F::Output {
        match self {
            GroupId::Ristretto255 => code.run::<Ristretto255>(),
            GroupId::Modp2048 => code.run::<Modp2048>(),
            GroupId::Modp3072 => code.run::<Modp3072>(),
        }
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GroupId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ristretto" | "ristretto255" => Ok(GroupId::Ristretto255),
            "modp2048" => Ok(GroupId::Modp2048),
            "modp3072" => Ok(GroupId::Modp3072),
            _ => Err(Error::InvalidParameter(format!(
                "unknown group {s:?} (expected ristretto255, modp2048 or modp3072)"
            ))),
        }
    }
}

/// A cyclic group of prime order q, with its scalar field ℤ_q.
///
/// Implementations are zero-sized markers; all operations are associated
/// functions so generic code reads like the math.
///
/// # Security
/// `mul`, `mul_base` and `mul_fixed` may receive secret scalars and are
/// constant-time where the backend is (Ristretto255). Functions named
/// `vartime_*` leak their (public) inputs through timing.
pub trait Group: Copy + Default + fmt::Debug + Send + Sync + 'static {
    /// Wire name of this group.
    const ID: GroupId;
    /// Length in bytes of an encoded element.
    const ELEMENT_LEN: usize;
    /// Length in bytes of an encoded scalar.
    const SCALAR_LEN: usize;
    /// Whether [`Group::neg`] costs far less than [`Group::add`]: true on a
    /// curve (negate a coordinate), false in MODP (an inversion). Methods
    /// that negate freely are chosen only where it holds.
    const CHEAP_NEG: bool = false;
    /// Whether [`Group::encode_doubled`] costs much less per element than
    /// [`Group::element_to_bytes`] (Ristretto255: one inversion per batch
    /// instead of an inverse square root per point), so that encrypting
    /// halves and encoding their doubles pays.
    const BATCH_ENCODING: bool = false;

    /// A group element. Its serde form is the canonical encoding in hex,
    /// validated on the way in.
    type Element: Clone + PartialEq + Eq + fmt::Debug + Send + Sync + Serialize + DeserializeOwned;
    /// An element of ℤ_q. Its serde form is the canonical encoding in hex.
    type Scalar: Clone + PartialEq + Send + Sync + Zeroize + Serialize + DeserializeOwned;
    /// A precomputed table for fast multiplication of one fixed element.
    type FixedBase: Send + Sync;
    /// Encryption's combs of a public key's bases in SIMD lanes
    /// ([`Group::lane_bases`]).
    type LaneBases: Send + Sync;

    /// The generator g.
    fn generator() -> Self::Element;
    /// The identity element.
    fn identity() -> Self::Element;
    /// Whether `a` is the identity.
    fn is_identity(a: &Self::Element) -> bool;
    /// a + b.
    fn add(a: &Self::Element, b: &Self::Element) -> Self::Element;
    /// a − b.
    fn sub(a: &Self::Element, b: &Self::Element) -> Self::Element;
    /// −a.
    fn neg(a: &Self::Element) -> Self::Element {
        Self::sub(&Self::identity(), a)
    }
    /// 2a.
    fn double(a: &Self::Element) -> Self::Element {
        Self::add(a, a)
    }
    /// k·a, constant-time in k where the backend allows.
    fn mul(a: &Self::Element, k: &Self::Scalar) -> Self::Element;
    /// k·g.
    fn mul_base(k: &Self::Scalar) -> Self::Element;
    /// k·aᵢ for every aᵢ, constant-time in k: one secret scalar, many bases
    /// (FEBO key derivation), in parallel.
    fn mul_many(bases: &[Self::Element], k: &Self::Scalar) -> Vec<Self::Element> {
        mul_each::<Self>(bases, k)
    }
    /// k·g for a small secret k, such as one entry of a plaintext vector.
    /// Implementations may specialise |k| < 2¹⁶ (a short constant-time
    /// comb); the default is [`Group::mul_base`].
    fn mul_base_small(k: i64) -> Self::Element {
        Self::mul_base(&Self::scalar_from_i64(k))
    }
    /// k·(2⁻¹·g) for a small secret k, with the timing guarantees of
    /// [`Group::mul_base_small`].
    fn mul_half_base_small(k: i64) -> Self::Element {
        let half = Self::scalar_invert(&Self::scalar_from_i64(2))
            .unwrap_or_else(|| Self::scalar_from_i64(0));
        Self::mul_base(&Self::scalar_mul(&Self::scalar_from_i64(k), &half))
    }
    /// The encodings of 2·hᵢ for each hᵢ in `halves`, into `out`
    /// (`ELEMENT_LEN` bytes each, in order).
    fn encode_doubled(halves: &[Self::Element], out: &mut [u8]) {
        for (h, dst) in halves.iter().zip(out.chunks_exact_mut(Self::ELEMENT_LEN)) {
            dst.copy_from_slice(&Self::element_to_bytes(&Self::double(h)));
        }
    }
    /// The decryption points 2·(Σᵢ yⱼᵢ·ctᵢ − sk_yⱼ·ct₀) = 2·⟨x, yⱼ⟩·g of
    /// every ciphertext (its encoding ct₀ ‖ ct₁ … ctₙ) and key j (y, sk),
    /// row-major, as encodings with their [`Group::fingerprints`], by an
    /// engine faster than the generic one where the group and CPU have it
    /// (Ristretto255 on AVX-512 IFMA: SIMD lanes, see
    /// [`crate::multiexp::Engine::Lanes`]); `None` elsewhere. Variable-time
    /// in the ciphertexts and y, constant-time in the sk.
    ///
    /// # Errors
    /// Lengths that differ, or an encoding that does not decode.
    fn vartime_doubled_decryptions(
        cts: &[&[u8]],
        ys: &[&[i64]],
        sks: &[&Self::Scalar],
    ) -> Option<Result<EncodedPoints>> {
        let _ = (cts, ys, sks);
        None
    }
    /// ⟨xᵥ, yⱼ⟩·g = Σᵢ yⱼᵢ·ctᵥᵢ − skⱼ·ct₀ᵥ for every ciphertext v (its
    /// commitment `ct0s[v]` and elements `cts[v]`) and key j, row-major, in
    /// SIMD lanes where the group and CPU have them (MODP on AVX-512 IFMA);
    /// `None` elsewhere. Variable-time in the public elements and y,
    /// constant-time in the skⱼ.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless every ciphertext has one element per
    /// entry of every y.
    fn vartime_lane_inner_products(
        ct0s: &[&Self::Element],
        cts: &[&[Self::Element]],
        ys: &[&[i64]],
        sks: &[&Self::Scalar],
    ) -> Option<Result<Vec<Self::Element>>> {
        let _ = (ct0s, cts, ys, sks);
        None
    }
    /// Combs for encrypting under `bases` eight at a time in SIMD lanes
    /// (Ristretto255: [`crate::lanes::bases`]; the 2048-bit MODP group: its
    /// wide lanes), where the group and CPU have them; `None` elsewhere.
    fn lane_bases(bases: &[Self::Element]) -> Option<Self::LaneBases> {
        let _ = bases;
        None
    }
    /// The encodings of rₖ·hᵢ + xₖᵢ·g for every item k (randomness `rs[k]`,
    /// vector `xs[k]`) and base hᵢ of `lanes`, back to back per item:
    /// encryption's ct₁ … ctₙ. Constant-time in the rₖ and xₖᵢ.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless every x has one entry per base;
    /// [`Error::InvalidParameter`] for |xₖᵢ| ≥
    /// [`crate::lanes::bases::SMALL_BOUND`] (the caller takes another way).
    fn lane_encrypt_bodies(
        lanes: &Self::LaneBases,
        rs: &[Self::Scalar],
        xs: &[&[i64]],
    ) -> Result<Vec<Vec<u8>>>;
    /// Checks that `bytes` holds valid encodings (`ELEMENT_LEN` bytes each)
    /// without keeping the elements, where the group does that much faster
    /// than decoding them (Ristretto255 on AVX-512 IFMA); `None` where it
    /// cannot (decode instead). Acceptance is exactly
    /// [`Group::element_from_bytes`]'s.
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] if any element does not decode.
    fn vartime_validate_encodings(bytes: &[u8]) -> Option<Result<()>> {
        let _ = bytes;
        None
    }
    /// Precomputes a table for repeated `mul_fixed` by the same element.
    fn fixed_base(a: &Self::Element) -> Self::FixedBase;
    /// k·a using a table from [`Group::fixed_base`].
    fn mul_fixed(table: &Self::FixedBase, k: &Self::Scalar) -> Self::Element;

    /// The scalar v mod q.
    fn scalar_from_i64(v: i64) -> Self::Scalar;
    /// A uniformly random scalar.
    fn scalar_random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self::Scalar;
    /// a + b mod q.
    fn scalar_add(a: &Self::Scalar, b: &Self::Scalar) -> Self::Scalar;
    /// a · b mod q.
    fn scalar_mul(a: &Self::Scalar, b: &Self::Scalar) -> Self::Scalar;
    /// Σᵢ sᵢ·yᵢ for secret scalars sᵢ and public integers yᵢ (a FEIP
    /// function key), constant-time in the sᵢ; zero yᵢ are skipped (y is
    /// public).
    fn scalar_dot_small(s: &[Self::Scalar], y: &[i64]) -> Self::Scalar {
        s.iter().zip(y).filter(|&(_, &yi)| yi != 0).fold(
            Self::scalar_from_i64(0),
            |acc, (si, &yi)| {
                Self::scalar_add(&acc, &Self::scalar_mul(si, &Self::scalar_from_i64(yi)))
            },
        )
    }
    /// −a mod q.
    fn scalar_neg(a: &Self::Scalar) -> Self::Scalar;
    /// a⁻¹ mod q, or `None` for zero.
    fn scalar_invert(a: &Self::Scalar) -> Option<Self::Scalar>;

    /// The canonical encoding of an element (`ELEMENT_LEN` bytes).
    fn element_to_bytes(a: &Self::Element) -> Vec<u8>;
    /// Decodes and validates an element.
    ///
    /// # Errors
    /// Wrong length, non-canonical bytes, or a value outside the group.
    fn element_from_bytes(bytes: &[u8]) -> Result<Self::Element>;
    /// [`Group::element_from_bytes`] for bytes already known to encode an
    /// element (written by this crate, or validated when read): a group may
    /// skip checks that only untrusted bytes need (MODP: residuosity).
    ///
    /// # Errors
    /// As [`Group::element_from_bytes`], for what is still checked.
    fn element_from_valid_bytes(bytes: &[u8]) -> Result<Self::Element> {
        Self::element_from_bytes(bytes)
    }
    /// The canonical encoding of a scalar (`SCALAR_LEN` bytes).
    fn scalar_to_bytes(a: &Self::Scalar) -> Vec<u8>;
    /// Decodes a scalar, which must be fully reduced mod q.
    ///
    /// # Errors
    /// Wrong length or a value ≥ q.
    fn scalar_from_bytes(bytes: &[u8]) -> Result<Self::Scalar>;

    /// A 128-bit fingerprint of each element, for discrete-log table
    /// lookups. Equal elements give equal fingerprints; the map is fixed per
    /// group, so tables and queries agree. Batched because a batch can share
    /// one field inversion.
    fn fingerprints(points: &[Self::Element]) -> Vec<u128>;

    /// k·a for a small public k, by signed double-and-add.
    fn vartime_mul_small(a: &Self::Element, k: i64) -> Self::Element {
        let mut acc = Self::identity();
        let mag = k.unsigned_abs();
        for bit in (0..64 - mag.leading_zeros()).rev() {
            acc = Self::double(&acc);
            if (mag >> bit) & 1 == 1 {
                acc = Self::add(&acc, a);
            }
        }
        if k < 0 {
            Self::sub(&Self::identity(), &acc)
        } else {
            acc
        }
    }
}

/// Hex serde for the element and scalar newtypes: lowercase hex of the
/// canonical bytes, decoded through the group's validating decoder.
macro_rules! hex_serde {
    ([$($gen:tt)*] $ty:ty, $len:expr, $to:path, $from:path) => {
        impl<$($gen)*> serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
                s.serialize_str(&crate::wire::to_hex(&$to(self)))
            }
        }
        impl<'de, $($gen)*> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                let bytes = crate::wire::from_hex(&text, $len).map_err(serde::de::Error::custom)?;
                $from(&bytes).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_serde;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_id_serde_is_the_wire_name() {
        for id in GroupId::ALL {
            let text = serde_json::to_string(&id).unwrap_or_default();
            assert_eq!(text, format!("\"{}\"", id.name()));
            assert_eq!(serde_json::from_str::<GroupId>(&text).ok(), Some(id));
        }
    }

    fn check_halves<G: Group>() {
        for k in [0i64, 1, -1, 255, -70_000] {
            let half = G::mul_half_base_small(k);
            assert_eq!(G::double(&half), G::mul_base_small(k), "k = {k}");
            let mut encoded = vec![0u8; G::ELEMENT_LEN];
            G::encode_doubled(core::slice::from_ref(&half), &mut encoded);
            assert_eq!(encoded, G::element_to_bytes(&G::mul_base_small(k)));
        }
    }

    #[test]
    fn halves_double_to_the_small_multiples() {
        check_halves::<Ristretto255>();
        check_halves::<Modp2048>();
    }

    #[test]
    fn rejects_group_id_not_a_string() {
        for text in [
            r#"{"ristretto255":null}"#,
            r#"{"modp2048":null}"#,
            r#"["modp3072"]"#,
            r#""ristretto""#,
            r#""Modp2048""#,
            "0",
            "null",
        ] {
            assert!(serde_json::from_str::<GroupId>(text).is_err(), "{text}");
        }
    }
}
