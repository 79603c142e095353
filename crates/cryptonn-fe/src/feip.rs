//! FEIP: inner-product functional encryption from DDH.
//!
//! The scheme of Abdalla, Bourse, De Caro and Pointcheval, *Simple
//! Functional Encryption Schemes for Inner Products*, PKC 2015, in a group 𝔾
//! of prime order q with generator g (written additively):
//!
//! - **Setup(n)**: sᵢ ← ℤ_q, hᵢ = sᵢ·g. msk = s, mpk = h.
//! - **Encrypt(mpk, x)**: r ← ℤ_q, ct₀ = r·g, ctᵢ = r·hᵢ + xᵢ·g.
//! - **KeyDerive(msk, y)**: sk_y = ⟨s, y⟩ mod q.
//! - **Decrypt(sk_y, ct)**: Σ yᵢ·ctᵢ − sk_y·ct₀ = ⟨x, y⟩·g, then a bounded
//!   discrete log ([`DlogTable`]).
//!
//! The holder of sk_y learns ⟨x, y⟩ and nothing else about x — but n keys
//! for independent y determine s and so every x (see `docs/THREAT_MODEL.md`).

use std::sync::{Arc, OnceLock};

use rand_core::CryptoRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::dlog::DlogTable;
use crate::group::{EncodedPoints, Group};
use crate::key_id::KeyId;
use crate::lanes::bases::SMALL_BOUND;
use crate::multiexp::{Engine, Method, ScaledSums, vartime_multiscalar_mul_shared_with};
use crate::wire::{self, GroupTag};
use crate::{Error, Result};

/// From this many keys on, one fixed-base table of ct₀ is cheaper than
/// separate multiplications (building it costs about four of them).
const CT0_TABLE_MIN_KEYS: usize = 8;

/// Entries of one vector encrypted per parallel task: long vectors (a whole
/// batch of images) spread over the cores, short ones stay in one task.
const ENCRYPT_CHUNK: usize = 256;

/// Points of one ciphertext per parallel task of a decryption: one
/// ciphertext of a whole batch spreads over the cores.
const DECRYPT_CHUNK: usize = 4096;

/// Below this many ciphertexts in a batch, the lane engine's eight lanes
/// would run partly empty: the generic engine decrypts.
const LANES_MIN_CIPHERTEXTS: usize = 8;

/// The largest vector length accepted by [`setup`].
pub const MAX_DIM: usize = 1 << 20;

/// The master secret key s ∈ ℤ_qⁿ. Held only by the authority.
///
/// Zeroized on drop; `Debug` is redacted; no serde. Writing it out is the
/// explicit [`MasterSecretKey::to_json_exposing_secret`].
pub struct MasterSecretKey<G: Group> {
    id: KeyId,
    s: Vec<G::Scalar>,
}

impl<G: Group> core::fmt::Debug for MasterSecretKey<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterSecretKey")
            .field("id", &self.id)
            .field("dim", &self.s.len())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct MasterSecretKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    s: Vec<G::Scalar>,
}

impl<G: Group> MasterSecretKey<G> {
    /// The name of this master key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The vector length n.
    pub fn dim(&self) -> usize {
        self.s.len()
    }

    /// The key as JSON (format in `docs/FORMAT.md`).
    ///
    /// # Security
    /// The text is the master secret; it is zeroized when dropped, but where
    /// it is written is up to the caller.
    pub fn to_json_exposing_secret(&self) -> Zeroizing<String> {
        let wire = MasterSecretKeyWire::<G> {
            group: GroupTag::default(),
            id: self.id,
            s: self.s.clone(),
        };
        // Serializing plain strings and numbers to JSON cannot fail.
        Zeroizing::new(serde_json::to_string_pretty(&wire).unwrap_or_default())
    }

    /// Reads a key written by [`MasterSecretKey::to_json_exposing_secret`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for malformed JSON (including an array in
    /// place of the object), a wrong group, or n = 0; the scalars are
    /// validated as canonical.
    pub fn from_json(text: &str) -> Result<Self> {
        let wire: MasterSecretKeyWire<G> =
            wire::object_from_json(text, "FEIP master secret key")
                .map_err(|_| Error::InvalidEncoding("malformed FEIP master secret key"))?;
        if wire.s.is_empty() || wire.s.len() > MAX_DIM {
            return Err(Error::InvalidEncoding(
                "FEIP master secret key has an invalid dimension",
            ));
        }
        Ok(Self {
            id: wire.id,
            s: wire.s,
        })
    }
}

/// The master public key h = (s₁·g, …, sₙ·g).
///
/// Deserialization refuses n = 0 and anything but a JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(bound = "")]
pub struct MasterPublicKey<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    h: Vec<G::Element>,
}

/// The fields of [`MasterPublicKey`] as read, before the checks.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct MasterPublicKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    h: Vec<G::Element>,
}

impl<'de, G: Group> Deserialize<'de> for MasterPublicKey<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: MasterPublicKeyWire<G> = wire::object(d, "FEIP master public key")?;
        if w.h.is_empty() {
            return Err(serde::de::Error::custom(Error::InvalidEncoding(
                "FEIP master public key has no elements (n must be at least 1)",
            )));
        }
        Ok(Self {
            group: w.group,
            id: w.id,
            h: w.h,
        })
    }
}

impl<G: Group> MasterPublicKey<G> {
    /// The name of the master key.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The vector length n.
    pub fn dim(&self) -> usize {
        self.h.len()
    }

    /// h₁ … hₙ.
    pub fn elements(&self) -> &[G::Element] {
        &self.h
    }
}

/// A function key for y: sk_y = ⟨s, y⟩ mod q, together with y.
///
/// Whoever holds it learns ⟨x, y⟩ from every ciphertext under the same
/// master key. Deserialization refuses an empty y and anything but a JSON
/// object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(bound = "")]
pub struct FunctionKey<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    y: Vec<i64>,
    sk: G::Scalar,
}

/// The fields of [`FunctionKey`] as read, before the checks.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct FunctionKeyWire<G: Group> {
    group: GroupTag<G>,
    id: KeyId,
    y: Vec<i64>,
    sk: G::Scalar,
}

impl<'de, G: Group> Deserialize<'de> for FunctionKey<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: FunctionKeyWire<G> = wire::object(d, "FEIP function key")?;
        let key = Self::from_parts(w.id, w.y, w.sk).map_err(serde::de::Error::custom)?;
        Ok(Self {
            group: w.group,
            ..key
        })
    }
}

impl<G: Group> FunctionKey<G> {
    /// The key for y under master key `id` with sk_y = `sk`: what
    /// deserialization builds, for a key sent in another form (e.g. only
    /// its `sk`, y being known to the receiver). It does not check sk: a
    /// wrong one decrypts to a wrong value or to none.
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for an empty y.
    pub fn from_parts(id: KeyId, y: Vec<i64>, sk: G::Scalar) -> Result<Self> {
        if y.is_empty() {
            return Err(Error::InvalidEncoding(
                "FEIP function key has an empty y (n must be at least 1)",
            ));
        }
        Ok(Self {
            group: GroupTag::default(),
            id,
            y,
            sk,
        })
    }

    /// The master key this key was derived from.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The vector y.
    pub fn y(&self) -> &[i64] {
        &self.y
    }

    /// sk_y = ⟨s, y⟩ mod q. Not secret from its holder, but keys for n
    /// independent vectors y determine s (see `docs/THREAT_MODEL.md`).
    pub fn sk(&self) -> &G::Scalar {
        &self.sk
    }
}

/// An encryption of x ∈ ℤⁿ: (ct₀, ct₁, …, ctₙ).
///
/// Deserialization refuses n = 0 and anything but a JSON object.
///
/// A ciphertext read from validated encodings ([`Ciphertext::from_encoding`])
/// decodes ct₁ … ctₙ only when they are first asked for: the lane engine
/// decrypts from the encodings and never needs them.
#[derive(Clone)]
pub struct Ciphertext<G: Group> {
    id: KeyId,
    ct0: G::Element,
    ct: OnceLock<Vec<G::Element>>,
    dim: usize,
    /// ct₀ ‖ ct₁ … ctₙ encoded, when the encryptor produced it in batches
    /// ([`Group::BATCH_ENCODING`]) or a decoder kept it; never part of
    /// equality or serde.
    encoded: Option<Arc<[u8]>>,
}

impl<G: Group> PartialEq for Ciphertext<G> {
    fn eq(&self, other: &Self) -> bool {
        (self.id, &self.ct0, self.elements()) == (other.id, &other.ct0, other.elements())
    }
}

impl<G: Group> Eq for Ciphertext<G> {}

impl<G: Group> core::fmt::Debug for Ciphertext<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ciphertext")
            .field("group", &G::ID)
            .field("id", &self.id)
            .field("ct0", &self.ct0)
            .field("ct", &self.elements())
            .finish_non_exhaustive()
    }
}

impl<G: Group> Serialize for Ciphertext<G> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Ciphertext", 4)?;
        out.serialize_field("group", &GroupTag::<G>::default())?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("ct0", &self.ct0)?;
        out.serialize_field("ct", self.elements())?;
        out.end()
    }
}

/// The fields of [`Ciphertext`] as read, before the checks.
#[derive(Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct CiphertextWire<G: Group> {
    #[expect(dead_code, reason = "deserialized only to check the group")]
    group: GroupTag<G>,
    id: KeyId,
    ct0: G::Element,
    ct: Vec<G::Element>,
}

impl<'de, G: Group> Deserialize<'de> for Ciphertext<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let w: CiphertextWire<G> = wire::object(d, "FEIP ciphertext")?;
        Self::from_parts(w.id, w.ct0, w.ct).map_err(serde::de::Error::custom)
    }
}

impl<G: Group> Ciphertext<G> {
    /// A ciphertext from its parts, for decoders of other containers than
    /// JSON: the name of the master key, ct₀ and ct₁ … ctₙ. The elements are
    /// valid by their type; nothing checks that they were made by
    /// [`encrypt`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] if `ct` is empty (n must be at least 1).
    pub fn from_parts(id: KeyId, ct0: G::Element, ct: Vec<G::Element>) -> Result<Self> {
        if ct.is_empty() {
            return Err(Error::InvalidEncoding(
                "FEIP ciphertext has no elements (n must be at least 1)",
            ));
        }
        Ok(Self {
            id,
            ct0,
            dim: ct.len(),
            ct: OnceLock::from(ct),
            encoded: None,
        })
    }

    /// [`Ciphertext::from_parts`] for a decoder that also keeps the bytes it
    /// decoded the elements from: `encoded` must be the canonical encodings
    /// of ct₀, ct₁, …, ctₙ back to back (as read from a container, where
    /// every element was decoded from exactly these bytes). The lane engine
    /// decrypts from them; only their length is checked here.
    ///
    /// # Errors
    /// As [`Ciphertext::from_parts`], and [`Error::LengthMismatch`] when
    /// `encoded` is not (n + 1)·`ELEMENT_LEN` bytes.
    pub fn from_parts_encoded(
        id: KeyId,
        ct0: G::Element,
        ct: Vec<G::Element>,
        encoded: Arc<[u8]>,
    ) -> Result<Self> {
        let expected = (ct.len() + 1) * G::ELEMENT_LEN;
        check_len(expected, encoded.len())?;
        let mut ciphertext = Self::from_parts(id, ct0, ct)?;
        ciphertext.encoded = Some(encoded);
        Ok(ciphertext)
    }

    /// A ciphertext from its encoding ct₀ ‖ ct₁ … ctₙ, every element
    /// validated now. Where the group validates in batches much faster than
    /// it decodes ([`Group::vartime_validate_encodings`]: SIMD lanes for
    /// Ristretto255), ct₁ … ctₙ are decoded only when first asked for;
    /// elsewhere now.
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for an element that does not decode, or a
    /// length that is not (n + 1)·`ELEMENT_LEN` with n ≥ 1.
    pub fn from_encoding(id: KeyId, encoded: Arc<[u8]>) -> Result<Self> {
        let len = G::ELEMENT_LEN;
        if encoded.len() < 2 * len || !encoded.len().is_multiple_of(len) {
            return Err(Error::InvalidEncoding(
                "FEIP ciphertext encoding is not n + 1 ≥ 2 whole elements",
            ));
        }
        let ct0 = G::element_from_bytes(&encoded[..len])?;
        let ct = OnceLock::new();
        match G::vartime_validate_encodings(&encoded[len..]) {
            Some(valid) => valid?,
            None => {
                let elements = encoded[len..]
                    .par_chunks_exact(len)
                    .map(G::element_from_bytes)
                    .collect::<Result<Vec<_>>>()?;
                let _ = ct.set(elements);
            }
        }
        Ok(Self {
            id,
            ct0,
            dim: encoded.len() / len - 1,
            ct,
            encoded: Some(encoded),
        })
    }

    /// A ciphertext from an encoding this crate just wrote (not validated
    /// again), its elements decoded only when asked for.
    fn from_trusted_encoding(id: KeyId, ct0: G::Element, encoded: Arc<[u8]>) -> Self {
        Self {
            id,
            ct0,
            dim: encoded.len() / G::ELEMENT_LEN - 1,
            ct: OnceLock::new(),
            encoded: Some(encoded),
        }
    }

    /// The canonical encodings of ct₀, ct₁, …, ctₙ back to back
    /// (`ELEMENT_LEN` bytes each), when the encryptor computed them in
    /// batches; encoders copy them instead of encoding element by element.
    pub fn encoding(&self) -> Option<&[u8]> {
        self.encoded.as_deref()
    }

    /// The master key it was encrypted under.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The vector length n.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// ct₀ = r·g.
    pub fn commitment(&self) -> &G::Element {
        &self.ct0
    }

    /// ct₁ … ctₙ (decoded on first use for a ciphertext read with
    /// [`Ciphertext::from_encoding`]; the encodings were validated then).
    pub fn elements(&self) -> &[G::Element] {
        self.ct.get_or_init(|| {
            let bytes = self.encoded.as_deref().unwrap_or_default();
            bytes[G::ELEMENT_LEN.min(bytes.len())..]
                .par_chunks_exact(G::ELEMENT_LEN)
                // Validated in from_encoding or written by the encryptor (the
                // only ways here without elements); the identity is unreachable.
                .map(|b| G::element_from_valid_bytes(b).unwrap_or_else(|_| G::identity()))
                .collect()
        })
    }
}

/// Generates a master key pair for vectors of length `dim`.
///
/// # Errors
/// [`Error::InvalidParameter`] unless 1 ≤ dim ≤ [`MAX_DIM`].
pub fn setup<G: Group, R: CryptoRng + ?Sized>(
    dim: usize,
    rng: &mut R,
) -> Result<(MasterSecretKey<G>, MasterPublicKey<G>)> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidParameter(format!(
            "FEIP dimension must be in 1..={MAX_DIM}, got {dim}"
        )));
    }
    let id = KeyId::random(rng);
    let s: Vec<G::Scalar> = (0..dim).map(|_| G::scalar_random(rng)).collect();
    let h = s.par_iter().map(G::mul_base).collect();
    Ok((
        MasterSecretKey { id, s },
        MasterPublicKey {
            group: GroupTag::default(),
            id,
            h,
        },
    ))
}

/// Derives the function key for y: sk_y = ⟨s, y⟩ mod q.
///
/// This is the raw scheme: it issues a key for any y. The authority in
/// `cryptonn-burn` puts a key policy in front of it.
///
/// # Errors
/// [`Error::LengthMismatch`] if y has the wrong length.
pub fn derive_key<G: Group>(msk: &MasterSecretKey<G>, y: &[i64]) -> Result<FunctionKey<G>> {
    check_len(msk.dim(), y.len())?;
    let sk = G::scalar_dot_small(&msk.s, y);
    Ok(FunctionKey {
        group: GroupTag::default(),
        id: msk.id,
        y: y.to_vec(),
        sk,
    })
}

fn check_len(expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch { expected, got })
    }
}

/// Encrypts x under mpk with plain scalar multiplications.
///
/// For many encryptions under one key, [`Encryptor`] is several times faster.
///
/// # Errors
/// [`Error::LengthMismatch`] if x has the wrong length; [`Error::Identity`] if
/// the public key holds the identity (it would expose x).
pub fn encrypt<G: Group, R: CryptoRng + ?Sized>(
    mpk: &MasterPublicKey<G>,
    x: &[i64],
    rng: &mut R,
) -> Result<Ciphertext<G>> {
    check_public_key(mpk)?;
    let r = G::scalar_random(rng);
    encrypt_with(mpk, x, &r, |i, r| G::mul(&mpk.h[i], r))
}

fn check_public_key<G: Group>(mpk: &MasterPublicKey<G>) -> Result<()> {
    if mpk.h.iter().any(G::is_identity) {
        return Err(Error::Identity("FEIP public key element"));
    }
    Ok(())
}

/// The scheme's encryption given r and a way to compute r·hᵢ.
fn encrypt_with<G: Group>(
    mpk: &MasterPublicKey<G>,
    x: &[i64],
    r: &G::Scalar,
    r_times_h: impl Fn(usize, &G::Scalar) -> G::Element + Sync,
) -> Result<Ciphertext<G>> {
    check_len(mpk.dim(), x.len())?;
    let ct = x
        .par_iter()
        .with_min_len(ENCRYPT_CHUNK)
        .enumerate()
        .map(|(i, &xi)| G::add(&r_times_h(i, r), &G::mul_base_small(xi)))
        .collect();
    Ciphertext::from_parts(mpk.id, G::mul_base(r), ct)
}

/// Encrypts many vectors under one public key, with a fixed-base table per hᵢ.
///
/// Building the tables costs about as much as a few plain encryptions; each
/// encryption after that costs n table multiplications. Where the group and
/// CPU have SIMD lanes ([`Group::lane_bases`]: Ristretto255 and the
/// 2048-bit MODP group on AVX-512 IFMA), the tables are lane combs of eight
/// bases each and encryption writes the wire encoding directly; the per-element tables are then built
/// only if an entry needs them (|xᵢ| ≥ 2¹⁶).
pub struct Encryptor<G: Group> {
    mpk: MasterPublicKey<G>,
    tables: OnceLock<Vec<G::FixedBase>>,
    lanes: Option<G::LaneBases>,
}

impl<G: Group> Encryptor<G> {
    /// Precomputes the tables for mpk, in parallel.
    ///
    /// # Errors
    /// [`Error::Identity`] if mpk holds the identity.
    pub fn new(mpk: &MasterPublicKey<G>) -> Result<Self> {
        check_public_key(mpk)?;
        let lanes = G::lane_bases(&mpk.h);
        let tables = OnceLock::new();
        if lanes.is_none() {
            let _ = tables.set(Self::fixed_bases(mpk));
        }
        Ok(Self {
            mpk: mpk.clone(),
            tables,
            lanes,
        })
    }

    fn fixed_bases(mpk: &MasterPublicKey<G>) -> Vec<G::FixedBase> {
        mpk.h.par_iter().map(G::fixed_base).collect()
    }

    /// The per-element tables, built on first use.
    fn tables(&self) -> &[G::FixedBase] {
        self.tables.get_or_init(|| Self::fixed_bases(&self.mpk))
    }

    /// The public key encrypted to.
    pub fn public_key(&self) -> &MasterPublicKey<G> {
        &self.mpk
    }

    /// Encrypts one vector.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if x has the wrong length.
    pub fn encrypt<R: CryptoRng + ?Sized>(&self, x: &[i64], rng: &mut R) -> Result<Ciphertext<G>> {
        let r = G::scalar_random(rng);
        self.encrypt_with_randomness(x, &r)
    }

    /// Encrypts many vectors in parallel. The randomness of each is drawn
    /// from `rng` first, in order, so a seeded `rng` gives reproducible output.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if any vector has the wrong length.
    pub fn encrypt_many<R: CryptoRng + ?Sized>(
        &self,
        xs: &[Vec<i64>],
        rng: &mut R,
    ) -> Result<Vec<Ciphertext<G>>> {
        let rs: Vec<G::Scalar> = xs.iter().map(|_| G::scalar_random(rng)).collect();
        let views: Vec<&[i64]> = xs.iter().map(Vec::as_slice).collect();
        if let Some(cts) = self.encrypt_many_in_lanes(&views, &rs)? {
            return Ok(cts);
        }
        xs.par_iter()
            .zip(rs.par_iter())
            .map(|(x, r)| self.encrypt_with_randomness(x, r))
            .collect()
    }

    /// All of `xs` by the lane combs, comb by comb (each stays in cache for
    /// every vector); `None` as for [`Self::encrypt_in_lanes`].
    fn encrypt_many_in_lanes(
        &self,
        xs: &[&[i64]],
        rs: &[G::Scalar],
    ) -> Result<Option<Vec<Ciphertext<G>>>> {
        let Some(lanes) = &self.lanes else {
            return Ok(None);
        };
        for x in xs {
            check_len(self.mpk.dim(), x.len())?;
        }
        if xs
            .iter()
            .flat_map(|x| x.iter())
            .any(|v| v.unsigned_abs() >= SMALL_BOUND)
        {
            return Ok(None);
        }
        let bodies = G::lane_encrypt_bodies(lanes, rs, xs)?;
        let len = G::ELEMENT_LEN;
        Ok(Some(
            rs.par_iter()
                .zip(bodies)
                .map(|(r, body)| {
                    let ct0 = G::mul_base(r);
                    let mut encoded = Vec::with_capacity(len + body.len());
                    encoded.extend(G::element_to_bytes(&ct0));
                    encoded.extend(body);
                    Ciphertext::from_trusted_encoding(self.mpk.id, ct0, encoded.into())
                })
                .collect(),
        ))
    }

    fn encrypt_with_randomness(&self, x: &[i64], r: &G::Scalar) -> Result<Ciphertext<G>> {
        if let Some(ct) = self.encrypt_in_lanes(x, r)? {
            return Ok(ct);
        }
        if G::BATCH_ENCODING {
            return self.encrypt_encoded(x, r);
        }
        encrypt_with(&self.mpk, x, r, |i, r| G::mul_fixed(&self.tables()[i], r))
    }

    /// The ciphertext by the lane combs, straight to its encoding (elements
    /// decoded only if asked for); `None` without lanes or when an entry is
    /// outside the small comb's range.
    fn encrypt_in_lanes(&self, x: &[i64], r: &G::Scalar) -> Result<Option<Ciphertext<G>>> {
        let many = self.encrypt_many_in_lanes(&[x], core::slice::from_ref(r))?;
        Ok(many.and_then(|cts| cts.into_iter().next()))
    }

    /// The same ciphertext, with its encoding computed in batches: each
    /// element is made as its half hᵢ = (r/2)·hᵢ' + (xᵢ)·(g/2), constant-time
    /// as the direct way, and [`Group::encode_doubled`] encodes 2·hᵢ = ctᵢ
    /// (the encodings are public, as the ciphertext is).
    fn encrypt_encoded(&self, x: &[i64], r: &G::Scalar) -> Result<Ciphertext<G>> {
        check_len(self.mpk.dim(), x.len())?;
        let two = G::scalar_from_i64(2);
        let half_r = G::scalar_invert(&two)
            .map(|half| G::scalar_mul(r, &half))
            .ok_or(Error::InvalidParameter("group order 2".into()))?;
        let len = G::ELEMENT_LEN;
        let ct0 = G::mul_base(r);
        let mut encoded = vec![0u8; (x.len() + 1) * len];
        let (head, body) = encoded.split_at_mut(len);
        head.copy_from_slice(&G::element_to_bytes(&ct0));
        let ct: Vec<G::Element> = body
            .par_chunks_mut(ENCRYPT_CHUNK * len)
            .zip(x.par_chunks(ENCRYPT_CHUNK))
            .enumerate()
            .flat_map_iter(|(c, (out, xs))| {
                let halves: Vec<G::Element> = xs
                    .iter()
                    .enumerate()
                    .map(|(j, &xi)| {
                        let table = &self.tables()[c * ENCRYPT_CHUNK + j];
                        G::add(&G::mul_fixed(table, &half_r), &G::mul_half_base_small(xi))
                    })
                    .collect();
                G::encode_doubled(&halves, out);
                halves.into_iter().map(|h| G::double(&h))
            })
            .collect();
        Ciphertext::from_parts_encoded(self.mpk.id, ct0, ct, encoded.into())
    }
}

/// Decrypts FEIP ciphertexts with a shared discrete-log table.
#[derive(Debug, Clone)]
pub struct Decryptor<G: Group> {
    table: Arc<DlogTable<G>>,
    engine: Engine,
}

impl<G: Group> Decryptor<G> {
    /// A decryptor searching with `table`, with the default [`Engine`].
    pub fn new(table: Arc<DlogTable<G>>) -> Self {
        Self {
            table,
            engine: Engine::default(),
        }
    }

    /// The same decryptor with another multi-exponentiation engine (for
    /// comparisons: every engine gives the same results).
    #[must_use]
    pub fn with_engine(self, engine: Engine) -> Self {
        Self { engine, ..self }
    }

    /// The multi-exponentiation engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The shared discrete-log table.
    pub fn table(&self) -> &Arc<DlogTable<G>> {
        &self.table
    }

    fn check_pair(key: &FunctionKey<G>, ct: &Ciphertext<G>) -> Result<()> {
        if key.id != ct.id {
            return Err(Error::KeyMismatch(
                "function key and ciphertext are under different master keys",
            ));
        }
        check_len(key.y.len(), ct.dim())
    }

    /// The points scale·⟨x, yⱼ⟩·g = scale·(Σ yⱼᵢ·ctᵢ − sk_yⱼ·ct₀) of one
    /// ciphertext for every key, before the discrete log, and the scale (1,
    /// or 2 from the signed engine). The work on ct's points is shared
    /// ([`vartime_multiscalar_mul_shared_with`]), and so is a fixed-base
    /// table of ct₀ once enough keys amortize it. Adding (−scale·sk)·ct₀
    /// rather than subtracting avoids an inversion in MODP.
    fn inner_product_points(
        &self,
        keys: &[FunctionKey<G>],
        ct: &Ciphertext<G>,
    ) -> Result<ScaledSums<G::Element>> {
        for key in keys {
            Self::check_pair(key, ct)?;
        }
        let sums = self.inner_product_sums(keys, ct.elements())?;
        Ok(Self::with_commitment(keys, ct, sums))
    }

    /// scale·(Σᵢ yⱼᵢ·ctᵢ − sk_yⱼ·ct₀) from the sums scale·Σᵢ yⱼᵢ·ctᵢ.
    fn with_commitment(
        keys: &[FunctionKey<G>],
        ct: &Ciphertext<G>,
        sums: ScaledSums<G::Element>,
    ) -> ScaledSums<G::Element> {
        let ScaledSums { sums, scale } = sums;
        let table = (keys.len() >= CT0_TABLE_MIN_KEYS).then(|| G::fixed_base(&ct.ct0));
        let minus_scale = G::scalar_from_i64(-i64::from(scale));
        let sums = sums
            .iter()
            .zip(keys)
            .map(|(sum, key)| {
                let k = G::scalar_mul(&key.sk, &minus_scale);
                let term = table
                    .as_ref()
                    .map_or_else(|| G::mul(&ct.ct0, &k), |t| G::mul_fixed(t, &k));
                G::add(sum, &term)
            })
            .collect();
        ScaledSums { sums, scale }
    }

    /// ⟨xᵢ, yⱼ⟩ by the lane engine, where it applies ([`Engine::Lanes`]):
    /// enough ciphertexts, keys for which it beats the per-vector methods
    /// ([`Method::lanes_win`]), and a group and CPU with lanes: from the
    /// encodings ([`Group::vartime_doubled_decryptions`], Ristretto255) or
    /// from the elements ([`Group::vartime_lane_inner_products`], MODP).
    /// `None` sends the caller to the generic path.
    fn lane_decryptions(
        &self,
        keys: &[FunctionKey<G>],
        cts: &[Ciphertext<G>],
    ) -> Result<Option<Vec<i64>>> {
        if self.engine != Engine::Lanes || cts.len() < LANES_MIN_CIPHERTEXTS {
            return Ok(None);
        }
        for ct in cts {
            for key in keys {
                Self::check_pair(key, ct)?;
            }
        }
        let ys: Vec<&[i64]> = keys.iter().map(|k| k.y.as_slice()).collect();
        if !Method::lanes_win(cts[0].dim(), &ys) {
            return Ok(None);
        }
        let sks: Vec<&G::Scalar> = keys.iter().map(|k| &k.sk).collect();
        if let Some(points) = Self::encoded_lanes(cts, &ys, &sks).transpose()? {
            return self
                .table
                .solve_encoded(&points.fingerprints, &points.encodings, 2)
                .into_iter()
                .collect::<Result<Vec<_>>>()
                .map(Some);
        }
        let ct0s: Vec<&G::Element> = cts.iter().map(|ct| &ct.ct0).collect();
        let elements: Vec<&[G::Element]> = cts.iter().map(Ciphertext::elements).collect();
        let Some(points) = G::vartime_lane_inner_products(&ct0s, &elements, &ys, &sks) else {
            return Ok(None);
        };
        self.table
            .solve_batch_scaled(&points?, 1)
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// The lane engine on encodings, if every ciphertext carries its
    /// encoding.
    fn encoded_lanes(
        cts: &[Ciphertext<G>],
        ys: &[&[i64]],
        sks: &[&G::Scalar],
    ) -> Option<Result<EncodedPoints>> {
        let encodings = cts
            .iter()
            .map(Ciphertext::encoding)
            .collect::<Option<Vec<_>>>()?;
        G::vartime_doubled_decryptions(&encodings, ys, sks)
    }

    /// scale·Σᵢ yⱼᵢ·ctᵢ for every key j, over chunks of the points in
    /// parallel when there are many.
    fn inner_product_sums(
        &self,
        keys: &[FunctionKey<G>],
        points: &[G::Element],
    ) -> Result<ScaledSums<G::Element>> {
        let chunk_sums = |start: usize, chunk: &[G::Element]| {
            let ys: Vec<&[i64]> = keys
                .iter()
                .map(|k| &k.y[start..start + chunk.len()])
                .collect();
            vartime_multiscalar_mul_shared_with::<G>(chunk, &ys, self.engine)
        };
        if points.len() < 2 * DECRYPT_CHUNK {
            return chunk_sums(0, points);
        }
        let partial = points
            .par_chunks(DECRYPT_CHUNK)
            .enumerate()
            .map(|(c, chunk)| chunk_sums(c * DECRYPT_CHUNK, chunk))
            .collect::<Result<Vec<_>>>()?;
        let scale = partial.iter().map(|p| p.scale).max().unwrap_or(1);
        let sums = (0..keys.len())
            .map(|j| {
                partial.iter().fold(G::identity(), |acc, part| {
                    G::add(&acc, &rescale::<G>(&part.sums[j], part.scale, scale))
                })
            })
            .collect();
        Ok(ScaledSums { sums, scale })
    }

    /// ⟨x, y⟩ for the x inside `ct` and the y of `key`.
    ///
    /// # Errors
    /// [`Error::KeyMismatch`], [`Error::LengthMismatch`], or
    /// [`Error::OutOfBound`] when ⟨x, y⟩ lies outside the table's bound.
    pub fn decrypt(&self, key: &FunctionKey<G>, ct: &Ciphertext<G>) -> Result<i64> {
        self.decrypt_batch(core::slice::from_ref(key), core::slice::from_ref(ct))?
            .pop()
            .ok_or(Error::OutOfBound {
                bound: self.table.config().bound,
            })
    }

    /// ⟨xᵢ, yⱼ⟩ for every ciphertext i and key j, row-major
    /// (`cts.len()` rows of `keys.len()`), in parallel.
    ///
    /// # Errors
    /// The first error of any pair, as for [`Decryptor::decrypt`].
    pub fn decrypt_batch(
        &self,
        keys: &[FunctionKey<G>],
        cts: &[Ciphertext<G>],
    ) -> Result<Vec<i64>> {
        if let Some(values) = self.lane_decryptions(keys, cts)? {
            return Ok(values);
        }
        let rows: Vec<ScaledSums<G::Element>> = cts
            .par_iter()
            .map(|ct| self.inner_product_points(keys, ct))
            .collect::<Result<_>>()?;
        let scale = rows.iter().map(|r| r.scale).max().unwrap_or(1);
        let points: Vec<G::Element> = rows
            .iter()
            .flat_map(|r| r.sums.iter().map(|p| rescale::<G>(p, r.scale, scale)))
            .collect();
        self.table
            .solve_batch_scaled(&points, scale)
            .into_iter()
            .collect()
    }
}

/// A point at scale `from` brought to scale `to` (a multiple of it).
fn rescale<G: Group>(point: &G::Element, from: u32, to: u32) -> G::Element {
    match to / from {
        1 => point.clone(),
        factor => G::vartime_mul_small(point, i64::from(factor)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlog::DlogConfig;
    use crate::group::{Modp2048, Ristretto255};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::OnceLock;

    fn decryptor<G: Group>() -> Decryptor<G> {
        Decryptor::new(Arc::new(
            DlogTable::new(DlogConfig::new(1 << 12, 1 << 24)).unwrap(),
        ))
    }

    fn ristretto() -> &'static Decryptor<Ristretto255> {
        static D: OnceLock<Decryptor<Ristretto255>> = OnceLock::new();
        D.get_or_init(decryptor)
    }

    fn modp() -> &'static Decryptor<Modp2048> {
        static D: OnceLock<Decryptor<Modp2048>> = OnceLock::new();
        D.get_or_init(decryptor)
    }

    fn dot(x: &[i64], y: &[i64]) -> i64 {
        x.iter().zip(y).map(|(a, b)| a * b).sum()
    }

    fn vectors(max_dim: usize, bound: i64) -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
        (1..=max_dim).prop_flat_map(move |n| {
            let entry = prop_oneof![Just(-bound), Just(bound), Just(0i64), -bound..=bound];
            (
                prop::collection::vec(entry.clone(), n),
                prop::collection::vec(entry, n),
            )
        })
    }

    fn round_trip<G: Group>(d: &Decryptor<G>, x: &[i64], y: &[i64], seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (msk, mpk) = setup::<G, _>(x.len(), &mut rng).unwrap();
        let key = derive_key(&msk, y).unwrap();
        let ct = encrypt(&mpk, x, &mut rng).unwrap();
        assert_eq!(d.decrypt(&key, &ct), Ok(dot(x, y)));
        let fast = Encryptor::new(&mpk).unwrap().encrypt(x, &mut rng).unwrap();
        assert_eq!(d.decrypt(&key, &fast), Ok(dot(x, y)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn decrypt_encrypt_is_inner_product_ristretto((x, y) in vectors(24, 255), seed: u64) {
            round_trip(ristretto(), &x, &y, seed);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6))]
        #[test]
        fn decrypt_encrypt_is_inner_product_modp((x, y) in vectors(4, 255), seed: u64) {
            round_trip(modp(), &x, &y, seed);
        }

        #[test]
        fn batch_equals_single(n in 1usize..20, cts in 1usize..4, keys in 1usize..12, seed: u64) {
            let mut rng = StdRng::seed_from_u64(seed);
            let d = ristretto();
            let (msk, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
            let xs: Vec<Vec<i64>> = (0..cts).map(|i| (0..n as i64).map(|j| (i as i64 * 31 + j * 7) % 256).collect()).collect();
            let ys: Vec<FunctionKey<Ristretto255>> = (0..keys)
                .map(|k| derive_key(&msk, &(0..n as i64).map(|j| (k as i64 * 13 - j * 5) % 300).collect::<Vec<_>>()).unwrap())
                .collect();
            let enc = Encryptor::new(&mpk).unwrap().encrypt_many(&xs, &mut rng).unwrap();
            let batch = d.decrypt_batch(&ys, &enc).unwrap();
            for (i, ct) in enc.iter().enumerate() {
                for (j, key) in ys.iter().enumerate() {
                    prop_assert_eq!(batch[i * keys + j], d.decrypt(key, ct).unwrap());
                }
            }
        }
    }

    #[test]
    fn long_ciphertexts_decrypt_in_parallel_chunks_exactly() {
        // Past two chunks, with a ragged last one, and sparse keys.
        let n = 2 * DECRYPT_CHUNK + 37;
        let mut rng = StdRng::seed_from_u64(9);
        let (msk, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
        let x: Vec<i64> = (0..n as i64).map(|i| (i * 37) % 7 - 3).collect();
        let ys: Vec<Vec<i64>> = (0..9i64)
            .map(|k| {
                (0..n as i64)
                    .map(|i| {
                        if (i + k) % 5 == 0 {
                            (i * k) % 255 - 127
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        let keys: Vec<_> = ys.iter().map(|y| derive_key(&msk, y).unwrap()).collect();
        let ct = encrypt(&mpk, &x, &mut rng).unwrap();
        let got = ristretto().decrypt_batch(&keys, &[ct]).unwrap();
        let expected: Vec<i64> = ys.iter().map(|y| dot(&x, y)).collect();
        assert_eq!(got, expected);
    }

    /// Dense keys take the shared engines (doubled sums on the signed one):
    /// the bound is the same, exactly at ±bound and one past it.
    #[test]
    fn engines_agree_and_keep_the_bound() {
        let n = 64;
        let bound = 1i64 << 24;
        let mut rng = StdRng::seed_from_u64(4);
        let (msk, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
        let x = vec![1i64; n];
        let mut ys: Vec<Vec<i64>> = vec![vec![bound / 64; n], vec![-bound / 64; n]];
        ys.extend((0..14i64).map(|k| {
            (0..n as i64)
                .map(|i| (k * 37 + i * 11) % 255 - 127)
                .collect()
        }));
        let mut past = vec![bound / 64; n];
        past[5] += 1;
        let key = |y: &Vec<i64>| derive_key(&msk, y).unwrap();
        let keys: Vec<_> = ys.iter().map(key).collect();
        // Eight encoded ciphertexts: enough for the lane engine.
        let cts = Encryptor::new(&mpk)
            .unwrap()
            .encrypt_many(&vec![x.clone(); 8], &mut rng)
            .unwrap();
        let one: Vec<i64> = ys.iter().map(|y| dot(&x, y)).collect();
        assert_eq!(one[..2], [bound, -bound]);
        let expected = one.repeat(8);
        for engine in [Engine::FourRussians, Engine::Signed, Engine::Lanes] {
            let d = ristretto().clone().with_engine(engine);
            assert_eq!(
                d.decrypt_batch(&keys, &cts),
                Ok(expected.clone()),
                "{engine:?}"
            );
            assert_eq!(
                d.decrypt_batch(&keys, &cts[..1]),
                Ok(one.clone()),
                "{engine:?}"
            );
            let mut with_past = keys.clone();
            with_past.push(key(&past));
            assert_eq!(
                d.decrypt_batch(&with_past, &cts),
                Err(Error::OutOfBound { bound: 1 << 24 }),
                "{engine:?}"
            );
        }
    }

    /// `count` images of n pixels cycling through 0, 255 and mixed values.
    fn boundary_pixels(count: usize, n: usize) -> Vec<Vec<i64>> {
        (0..count as i64)
            .map(|c| {
                (0..n as i64)
                    .map(|i| [0, 255, (c * 31 + i * 7) % 256][(i % 3) as usize])
                    .collect()
            })
            .collect()
    }

    /// `count` keys of n entries cycling through 127, `low`, 0 and mixed values.
    fn boundary_keys(count: i64, n: usize, low: i64) -> Vec<Vec<i64>> {
        (0..count)
            .map(|k| {
                (0..n as i64)
                    .map(|i| [127, low, 0, (k * 37 + i * 11) % 255 - 127][((k + i) % 4) as usize])
                    .collect()
            })
            .collect()
    }

    /// Batches of encoded ciphertexts take the lane engine where the CPU has
    /// it: every engine gives the plain inner products, with or without the
    /// encodings, at boundary keys and pixels.
    #[test]
    fn every_engine_decrypts_batches_exactly() {
        let (n, count) = (40, 11);
        let mut rng = StdRng::seed_from_u64(12);
        let (msk, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
        let xs = boundary_pixels(count, n);
        let ys = boundary_keys(16, n, -127);
        let keys: Vec<_> = ys.iter().map(|y| derive_key(&msk, y).unwrap()).collect();
        let cts = Encryptor::new(&mpk)
            .unwrap()
            .encrypt_many(&xs, &mut rng)
            .unwrap();
        assert!(cts.iter().all(|ct| ct.encoding().is_some()));
        let bare: Vec<_> = cts
            .iter()
            .map(|ct| Ciphertext::from_parts(ct.id(), ct.ct0, ct.elements().to_vec()).unwrap())
            .collect();
        let expected: Vec<i64> = xs
            .iter()
            .flat_map(|x| ys.iter().map(|y| dot(x, y)))
            .collect();
        for engine in [Engine::FourRussians, Engine::Signed, Engine::Lanes] {
            let d = ristretto().clone().with_engine(engine);
            assert_eq!(
                d.decrypt_batch(&keys, &cts),
                Ok(expected.clone()),
                "{engine:?}"
            );
            assert_eq!(
                d.decrypt_batch(&keys, &bare),
                Ok(expected.clone()),
                "{engine:?}"
            );
        }
    }

    /// MODP batches take the wide lanes where the CPU has them: the same
    /// inner products as the scalar engines at boundary keys and pixels,
    /// with a spare-lane group (11 = 8 + 3 ciphertexts) and zero keys; and
    /// on arbitrary group elements (the identity among them) the lanes and
    /// four-Russians agree, errors included.
    #[test]
    fn modp_lanes_decrypt_batches_exactly() {
        let (n, count) = (23, 11);
        let mut rng = StdRng::seed_from_u64(15);
        let (msk, mpk) = setup::<Modp2048, _>(n, &mut rng).unwrap();
        let xs = boundary_pixels(count, n);
        let mut ys = boundary_keys(6, n, -128);
        ys.push(vec![0; n]);
        let keys: Vec<_> = ys.iter().map(|y| derive_key(&msk, y).unwrap()).collect();
        let cts: Vec<_> = xs
            .iter()
            .map(|x| encrypt(&mpk, x, &mut rng).unwrap())
            .collect();
        let expected: Vec<i64> = xs
            .iter()
            .flat_map(|x| ys.iter().map(|y| dot(x, y)))
            .collect();
        for engine in [Engine::FourRussians, Engine::Lanes] {
            let d = modp().clone().with_engine(engine);
            assert_eq!(
                d.decrypt_batch(&keys, &cts),
                Ok(expected.clone()),
                "{engine:?}"
            );
        }
        // Elements that are not encryptions of anything small: g^k and the identity.
        let g = Modp2048::generator();
        let odd: Vec<_> = cts
            .iter()
            .enumerate()
            .map(|(c, ct)| {
                let elements = (0..n as i64)
                    .map(|i| match (c as i64 + i) % 3 {
                        0 => Modp2048::identity(),
                        1 => Modp2048::vartime_mul_small(&g, i - 7),
                        _ => ct.elements()[i as usize].clone(),
                    })
                    .collect();
                Ciphertext::from_parts(ct.id(), ct.ct0.clone(), elements).unwrap()
            })
            .collect();
        let small: Vec<_> = keys.iter().take(3).cloned().collect();
        let lanes = modp().clone().with_engine(Engine::Lanes);
        let four = modp().clone().with_engine(Engine::FourRussians);
        assert_eq!(
            lanes.decrypt_batch(&small, &odd),
            four.decrypt_batch(&small, &odd)
        );
    }

    /// A ciphertext read from its encoding equals the one written, decodes
    /// its elements on demand, and refuses bad points and lengths.
    #[test]
    fn from_encoding_validates_and_decodes_on_demand() {
        let mut rng = StdRng::seed_from_u64(14);
        let (_, mpk) = setup::<Ristretto255, _>(19, &mut rng).unwrap();
        let x: Vec<i64> = (0..19).collect();
        let ct = Encryptor::new(&mpk).unwrap().encrypt(&x, &mut rng).unwrap();
        let bytes: Arc<[u8]> = ct.encoding().unwrap().into();
        let read = Ciphertext::<Ristretto255>::from_encoding(ct.id(), bytes.clone()).unwrap();
        assert_eq!(read.dim(), 19);
        assert_eq!(read, ct);
        let mut bad = bytes.to_vec();
        bad[32 * 7 + 31] |= 0x80;
        assert!(Ciphertext::<Ristretto255>::from_encoding(ct.id(), bad.into()).is_err());
        for len in [0, 32, 33, 32 * 20 - 1] {
            let short: Arc<[u8]> = bytes[..len].into();
            assert!(
                Ciphertext::<Ristretto255>::from_encoding(ct.id(), short).is_err(),
                "{len}"
            );
        }
        let (_, mpk) = setup::<Modp2048, _>(2, &mut rng).unwrap();
        let ct = encrypt(&mpk, &[3, 4], &mut rng).unwrap();
        let bytes: Vec<u8> = core::iter::once(ct.commitment())
            .chain(ct.elements())
            .flat_map(Modp2048::element_to_bytes)
            .collect();
        assert_eq!(
            Ciphertext::<Modp2048>::from_encoding(ct.id(), bytes.into()).unwrap(),
            ct
        );
    }

    /// With the same randomness, the lane combs, the batched halves and the
    /// plain multiplications make the same ciphertext and encoding.
    #[test]
    fn every_encryption_path_agrees() {
        let mut rng = StdRng::seed_from_u64(15);
        let n = 21;
        let (_, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
        let encryptor = Encryptor::new(&mpk).unwrap();
        let mut x: Vec<i64> = (0..n as i64).map(|i| (i * 97) % 511 - 255).collect();
        x[0] = 65_535;
        x[1] = -65_535;
        let r = Ristretto255::scalar_random(&mut rng);
        let plain = encrypt_with(&mpk, &x, &r, |i, r| Ristretto255::mul(&mpk.h[i], r)).unwrap();
        let halves = encryptor.encrypt_encoded(&x, &r).unwrap();
        let main = encryptor.encrypt_with_randomness(&x, &r).unwrap();
        assert_eq!(halves, plain);
        assert_eq!(main, plain);
        assert_eq!(main.encoding(), halves.encoding());
        if encryptor.lanes.is_some() {
            assert!(encryptor.encrypt_in_lanes(&x, &r).unwrap().is_some());
            let zeros = vec![0i64; n];
            let r2 = Ristretto255::scalar_random(&mut rng);
            let many = encryptor
                .encrypt_many_in_lanes(&[&x, &zeros], &[r.clone(), r2.clone()])
                .unwrap()
                .unwrap();
            assert_eq!(many[0], plain);
            assert_eq!(many[0].encoding(), halves.encoding());
            let plain2 =
                encrypt_with(&mpk, &zeros, &r2, |i, r| Ristretto255::mul(&mpk.h[i], r)).unwrap();
            assert_eq!(many[1], plain2);
            x[2] = 1 << 16;
            assert!(encryptor.encrypt_in_lanes(&x, &r).unwrap().is_none());
        }
    }

    /// MODP's lane combs give the plain ciphertexts, at the small table's
    /// boundaries and with a spare-lane comb (n = 13 = 8 + 5).
    #[test]
    fn modp_lane_encryption_agrees() {
        let mut rng = StdRng::seed_from_u64(16);
        let n = 13;
        let (msk, mpk) = setup::<Modp2048, _>(n, &mut rng).unwrap();
        let encryptor = Encryptor::new(&mpk).unwrap();
        let mut x: Vec<i64> = (0..n as i64).map(|i| (i * 97) % 511 - 255).collect();
        x[0] = 65_535;
        x[1] = -65_535;
        let zeros = vec![0i64; n];
        let rs = [
            Modp2048::scalar_random(&mut rng),
            Modp2048::scalar_from_i64(1),
        ];
        let plain =
            |x: &[i64], r| encrypt_with(&mpk, x, r, |i, r| Modp2048::mul(&mpk.h[i], r)).unwrap();
        let Some(many) = encryptor.encrypt_many_in_lanes(&[&x, &zeros], &rs).unwrap() else {
            eprintln!("no MODP lanes on this CPU: lane encryption not exercised");
            return;
        };
        assert_eq!(many[0], plain(&x, &rs[0]));
        assert_eq!(many[1], plain(&zeros, &rs[1]));
        let y: Vec<i64> = (0..n as i64).map(|i| i - 6).collect();
        let key = derive_key(&msk, &y).unwrap();
        assert_eq!(modp().decrypt(&key, &many[0]), Ok(dot(&x, &y)));
        x[2] = 1 << 16;
        assert!(encryptor.encrypt_in_lanes(&x, &rs[0]).unwrap().is_none());
    }

    /// The batched encoding is the element-by-element one, and the
    /// ciphertext made through halves decrypts as the direct one.
    #[test]
    fn batch_encoding_matches_elementwise() {
        let mut rng = StdRng::seed_from_u64(8);
        let n = 2 * ENCRYPT_CHUNK + 3;
        let (msk, mpk) = setup::<Ristretto255, _>(n, &mut rng).unwrap();
        let mut x: Vec<i64> = (0..n as i64).map(|i| (i * 37) % 511 - 255).collect();
        x[0] = 0;
        x[1] = (1 << 16) + 5;
        x[2] = -(1 << 16);
        let ct = Encryptor::new(&mpk).unwrap().encrypt(&x, &mut rng).unwrap();
        let encoded = ct.encoding().unwrap();
        let elementwise: Vec<u8> = core::iter::once(ct.commitment())
            .chain(ct.elements())
            .flat_map(Ristretto255::element_to_bytes)
            .collect();
        assert_eq!(encoded, elementwise.as_slice());
        let y: Vec<i64> = (0..n as i64).map(|i| i % 3 - 1).collect();
        let key = derive_key(&msk, &y).unwrap();
        assert_eq!(ristretto().decrypt(&key, &ct), Ok(dot(&x, &y)));
        // Equality ignores the cached encoding.
        let parts =
            Ciphertext::from_parts(ct.id(), *ct.commitment(), ct.elements().to_vec()).unwrap();
        assert!(parts.encoding().is_none());
        assert_eq!(parts, ct);
        // MODP encodes in its lanes where the CPU has them, element by
        // element elsewhere; either way the encoding is the elements'.
        let (_, mpk) = setup::<Modp2048, _>(2, &mut rng).unwrap();
        let ct = Encryptor::new(&mpk)
            .unwrap()
            .encrypt(&[1, 2], &mut rng)
            .unwrap();
        if let Some(encoded) = ct.encoding() {
            let elementwise: Vec<u8> = core::iter::once(ct.commitment())
                .chain(ct.elements())
                .flat_map(Modp2048::element_to_bytes)
                .collect();
            assert_eq!(encoded, elementwise.as_slice());
        }
    }

    #[test]
    fn out_of_bound_is_an_error() {
        let mut rng = StdRng::seed_from_u64(1);
        let (msk, mpk) = setup::<Ristretto255, _>(2, &mut rng).unwrap();
        let key = derive_key(&msk, &[1 << 20, 1 << 20]).unwrap();
        let ct = encrypt(&mpk, &[1 << 10, 1 << 10], &mut rng).unwrap();
        assert_eq!(
            ristretto().decrypt(&key, &ct),
            Err(Error::OutOfBound { bound: 1 << 24 })
        );
    }

    #[test]
    fn rejects_wrong_length_key_and_vector() {
        let mut rng = StdRng::seed_from_u64(2);
        let (msk, mpk) = setup::<Ristretto255, _>(3, &mut rng).unwrap();
        assert_eq!(
            derive_key(&msk, &[1, 2]).err(),
            Some(Error::LengthMismatch {
                expected: 3,
                got: 2
            })
        );
        assert!(encrypt(&mpk, &[1, 2, 3, 4], &mut rng).is_err());
        let (msk4, _) = setup::<Ristretto255, _>(4, &mut rng).unwrap();
        let ct = encrypt(&mpk, &[1, 2, 3], &mut rng).unwrap();
        let key4 = derive_key(&msk4, &[1, 1, 1, 1]).unwrap();
        assert!(matches!(
            ristretto().decrypt(&key4, &ct),
            Err(Error::KeyMismatch(_))
        ));
    }

    #[test]
    fn rejects_bad_dimension() {
        let mut rng = StdRng::seed_from_u64(3);
        assert!(setup::<Ristretto255, _>(0, &mut rng).is_err());
        assert!(setup::<Ristretto255, _>(MAX_DIM + 1, &mut rng).is_err());
    }

    #[test]
    fn from_parts_builds_what_derive_key_does() {
        let mut rng = StdRng::seed_from_u64(5);
        let (msk, _) = setup::<Ristretto255, _>(3, &mut rng).unwrap();
        let key = derive_key(&msk, &[1, -2, 3]).unwrap();
        let rebuilt =
            FunctionKey::<Ristretto255>::from_parts(msk.id(), vec![1, -2, 3], key.sk().clone());
        assert_eq!(rebuilt.unwrap(), key);
        let empty = FunctionKey::<Ristretto255>::from_parts(msk.id(), Vec::new(), key.sk().clone());
        assert!(matches!(empty, Err(Error::InvalidEncoding(_))));
    }

    #[test]
    fn serde_round_trips() {
        let mut rng = StdRng::seed_from_u64(4);
        let (msk, mpk) = setup::<Ristretto255, _>(3, &mut rng).unwrap();
        let key = derive_key(&msk, &[1, -2, 3]).unwrap();
        let ct = encrypt(&mpk, &[4, 5, 6], &mut rng).unwrap();
        let mpk2: MasterPublicKey<Ristretto255> =
            serde_json::from_str(&serde_json::to_string(&mpk).unwrap()).unwrap();
        let key2: FunctionKey<Ristretto255> =
            serde_json::from_str(&serde_json::to_string(&key).unwrap()).unwrap();
        let ct2: Ciphertext<Ristretto255> =
            serde_json::from_str(&serde_json::to_string(&ct).unwrap()).unwrap();
        let msk2 =
            MasterSecretKey::<Ristretto255>::from_json(&msk.to_json_exposing_secret()).unwrap();
        assert_eq!((mpk2, &key2, &ct2), (mpk, &key, &ct));
        assert_eq!(derive_key(&msk2, &[1, -2, 3]).unwrap(), key);
        assert_eq!(ristretto().decrypt(&key2, &ct2), Ok(4 - 10 + 18));
    }

    #[test]
    fn rejects_wrong_group_on_decode() {
        let mut rng = StdRng::seed_from_u64(5);
        let (_, mpk) = setup::<Ristretto255, _>(1, &mut rng).unwrap();
        let text = serde_json::to_string(&mpk)
            .unwrap()
            .replace("ristretto255", "modp2048");
        assert!(serde_json::from_str::<MasterPublicKey<Modp2048>>(&text).is_err());
        assert!(serde_json::from_str::<MasterPublicKey<Ristretto255>>(&text).is_err());
    }

    /// Each object's name, its fields in declaration order (the order of
    /// serde's array form) and the field holding its n-vector.
    const OBJECTS: [(&str, &[&str], &str); 4] = [
        ("mpk", &["group", "id", "h"], "h"),
        ("msk", &["group", "id", "s"], "s"),
        ("key", &["group", "id", "y", "sk"], "y"),
        ("ct", &["group", "id", "ct0", "ct"], "ct"),
    ];

    /// Valid JSON of every object, by name, for n = 2.
    fn samples<G: Group>() -> Vec<serde_json::Value> {
        let mut rng = StdRng::seed_from_u64(7);
        let (msk, mpk) = setup::<G, _>(2, &mut rng).unwrap();
        let key = derive_key(&msk, &[3, -1]).unwrap();
        let ct = encrypt(&mpk, &[1, 2], &mut rng).unwrap();
        [
            serde_json::to_value(&mpk).unwrap(),
            serde_json::from_str(&msk.to_json_exposing_secret()).unwrap(),
            serde_json::to_value(&key).unwrap(),
            serde_json::to_value(&ct).unwrap(),
        ]
        .into()
    }

    fn decode<G: Group>(name: &str, text: &str) -> core::result::Result<(), String> {
        let shown = |e: serde_json::Error| e.to_string();
        match name {
            "mpk" => serde_json::from_str::<MasterPublicKey<G>>(text)
                .map(drop)
                .map_err(shown),
            "msk" => MasterSecretKey::<G>::from_json(text)
                .map(drop)
                .map_err(|e| e.to_string()),
            "key" => serde_json::from_str::<FunctionKey<G>>(text)
                .map(drop)
                .map_err(shown),
            _ => serde_json::from_str::<Ciphertext<G>>(text)
                .map(drop)
                .map_err(shown),
        }
    }

    /// What serde's derive alone would accept (the wire structs).
    fn derived_accepts<G: Group>(name: &str, text: &str) -> bool {
        match name {
            "mpk" => serde_json::from_str::<MasterPublicKeyWire<G>>(text).is_ok(),
            "msk" => serde_json::from_str::<MasterSecretKeyWire<G>>(text).is_ok(),
            "key" => serde_json::from_str::<FunctionKeyWire<G>>(text).is_ok(),
            _ => serde_json::from_str::<CiphertextWire<G>>(text).is_ok(),
        }
    }

    fn check_rejects_array_form<G: Group>() {
        for ((name, fields, _), value) in OBJECTS.iter().zip(samples::<G>()) {
            assert_eq!(decode::<G>(name, &value.to_string()), Ok(()), "{name}");
            let array: Vec<_> = fields.iter().map(|f| value[*f].clone()).collect();
            let array = serde_json::Value::Array(array).to_string();
            assert!(derived_accepts::<G>(name, &array), "{name}: test input");
            assert!(decode::<G>(name, &array).is_err(), "{name}");
        }
    }

    #[test]
    fn rejects_array_form() {
        check_rejects_array_form::<Ristretto255>();
        check_rejects_array_form::<Modp2048>();
    }

    fn check_rejects_empty_vectors<G: Group>() {
        for ((name, _, vector), mut value) in OBJECTS.iter().zip(samples::<G>()) {
            value[*vector] = serde_json::json!([]);
            let err = decode::<G>(name, &value.to_string()).unwrap_err();
            if *name != "msk" {
                assert!(err.contains("n must be at least 1"), "{name}: {err}");
            }
        }
        let mut rng = StdRng::seed_from_u64(8);
        let (_, mpk) = setup::<G, _>(1, &mut rng).unwrap();
        let ct = encrypt(&mpk, &[5], &mut rng).unwrap();
        assert!(matches!(
            Ciphertext::<G>::from_parts(ct.id(), ct.commitment().clone(), Vec::new()),
            Err(Error::InvalidEncoding(_))
        ));
    }

    #[test]
    fn rejects_empty_vectors() {
        check_rejects_empty_vectors::<Ristretto255>();
        check_rejects_empty_vectors::<Modp2048>();
    }

    fn check_rejects_group_not_a_string<G: Group>() {
        let forms = [
            serde_json::json!({ G::ID.name(): null }),
            serde_json::json!([G::ID.name()]),
            serde_json::json!(G::ID.name().to_uppercase()),
            serde_json::json!(null),
        ];
        for ((name, _, _), value) in OBJECTS.iter().zip(samples::<G>()) {
            for form in &forms {
                let mut bad = value.clone();
                bad["group"] = form.clone();
                assert!(
                    decode::<G>(name, &bad.to_string()).is_err(),
                    "{name}: {form}"
                );
            }
        }
    }

    #[test]
    fn rejects_group_not_a_string() {
        check_rejects_group_not_a_string::<Ristretto255>();
        check_rejects_group_not_a_string::<Modp2048>();
        // The CLI's alias is not a wire name.
        let mut mpk = samples::<Ristretto255>().swap_remove(0);
        mpk["group"] = serde_json::json!("ristretto");
        assert!(decode::<Ristretto255>("mpk", &mpk.to_string()).is_err());
    }

    #[test]
    fn rejects_duplicate_field() {
        let mpk = samples::<Ristretto255>().swap_remove(0).to_string();
        let doubled = mpk.replacen('{', r#"{"group":"ristretto255","#, 1);
        assert!(decode::<Ristretto255>("mpk", &doubled).is_err());
    }

    #[test]
    fn from_parts_round_trips() {
        let mut rng = StdRng::seed_from_u64(9);
        let (_, mpk) = setup::<Ristretto255, _>(3, &mut rng).unwrap();
        let ct = encrypt(&mpk, &[1, -2, 3], &mut rng).unwrap();
        let id = KeyId::from_bytes(*ct.id().as_bytes());
        let parts = Ciphertext::from_parts(id, *ct.commitment(), ct.elements().to_vec());
        assert_eq!(parts, Ok(ct));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let mut rng = StdRng::seed_from_u64(6);
        let (msk, _) = setup::<Ristretto255, _>(2, &mut rng).unwrap();
        let shown = format!("{msk:?}");
        let secret = msk.to_json_exposing_secret();
        let s_hex: serde_json::Value = serde_json::from_str(&secret).unwrap();
        let first = s_hex["s"][0].as_str().unwrap().to_string();
        assert!(!shown.contains(&first));
    }
}
