//! Canonical binary encodings (little-endian), defined in `docs/RLWE.md`.
//!
//! Every object starts with a 40-byte header: magic `CNRL`, version 1, the
//! object's kind, a security flag (1: [`Params::new`], 0:
//! [`Params::insecure_for_tests`]), a zero byte, the parameters n, l, Bₓ,
//! B_y as u32, and the 16-byte [`KeyId`]. The body's length follows from the
//! header and is checked, exactly, before anything is allocated; residues
//! must be below their prime and small integers within their bound, so
//! every object has exactly one encoding.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::ciphertext::Ciphertext;
use super::keys::{FunctionKey, MasterPublicKey, MasterSecretKey, expand_a};
use super::ntt::{PRIMES, Rns};
use super::params::Params;
use super::sampler::TAIL;
use crate::key_id::KeyId;
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"CNRL";
const VERSION: u8 = 1;
const HEADER: usize = 40;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    MasterPublicKey = 1,
    Ciphertext = 2,
    FunctionKey = 3,
    MasterSecretKey = 4,
}

fn header(out: &mut Vec<u8>, kind: Kind, params: &Params, id: KeyId) {
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, kind as u8, u8::from(params.is_secure()), 0]);
    // Params bound every field far below 2³² (n, l ≤ 2¹⁶; B ≤ 2²⁰).
    for v in [
        params.degree() as u64,
        params.dim() as u64,
        params.x_bound(),
        params.y_bound(),
    ] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    out.extend_from_slice(id.as_bytes());
}

fn put_u64s(out: &mut Vec<u8>, vs: impl IntoIterator<Item = u64>) {
    for v in vs {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A cursor over bytes whose total length was checked up front.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < len {
            return Err(Error::InvalidEncoding("RLWE encoding is truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    fn words(&mut self, count: usize) -> Result<impl Iterator<Item = u64> + 'a> {
        Ok(self.take(8 * count)?.chunks_exact(8).map(|w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            u64::from_le_bytes(b)
        }))
    }

    /// `count` residues, residue i below the prime of limb `limb_of(i)`.
    fn residues(&mut self, limb_of: impl Fn(usize) -> usize, count: usize) -> Result<Vec<u64>> {
        let vs: Vec<u64> = self.words(count)?.collect();
        if vs.iter().enumerate().any(|(i, &v)| v >= PRIMES[limb_of(i)]) {
            return Err(Error::NonCanonical("RLWE residue not below its prime"));
        }
        Ok(vs)
    }

    /// `count` signed integers within ±bound.
    fn small(&mut self, count: usize, bound: u64) -> Result<Vec<i64>> {
        let vs: Vec<i64> = self.words(count)?.map(|v| v as i64).collect();
        if vs.iter().any(|v| v.unsigned_abs() > bound) {
            return Err(Error::InvalidEncoding("RLWE coefficient outside its bound"));
        }
        Ok(vs)
    }
}

/// Reads the header of an object of `kind` whose body has
/// `body_len(params, bytes after the header)` bytes, and checks the total.
fn read_header<'a>(
    bytes: &'a [u8],
    kind: Kind,
    body_len: impl Fn(&Params, &[u8]) -> Result<usize>,
) -> Result<(Params, KeyId, Reader<'a>)> {
    let mut r = Reader { bytes };
    if r.take(4)? != MAGIC {
        return Err(Error::InvalidEncoding("not an RLWE object (magic)"));
    }
    let flags = r.take(4)?;
    if flags[0] != VERSION || flags[1] != kind as u8 || flags[2] > 1 || flags[3] != 0 {
        return Err(Error::InvalidEncoding("wrong RLWE version, kind or flags"));
    }
    let [n, l, bx, by] = [r.u32()?, r.u32()?, r.u32()?, r.u32()?].map(|v| v as usize);
    let params = if flags[2] == 1 {
        Params::new(n, l, bx as u64, by as u64)
    } else {
        Params::insecure_for_tests(n, l, bx as u64, by as u64)
    }
    .map_err(|_| Error::InvalidEncoding("invalid RLWE parameters"))?;
    let mut id = [0u8; 16];
    id.copy_from_slice(r.take(16)?);
    if r.bytes.len() != body_len(&params, r.bytes)? {
        return Err(Error::InvalidEncoding("RLWE encoding has the wrong length"));
    }
    Ok((params, KeyId::from_bytes(id), r))
}

impl MasterPublicKey {
    /// The canonical encoding: header, seed, then pkᵢ (NTT domain) row by
    /// row, limb 0 then limb 1, as u64.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 32 + 8 * self.pk.len());
        header(&mut out, Kind::MasterPublicKey, &self.params, self.id);
        out.extend_from_slice(&self.seed);
        put_u64s(&mut out, self.pk.iter().copied());
        out
    }

    /// Reads [`MasterPublicKey::to_bytes`]; a is expanded from the seed.
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for a wrong header, parameters or length;
    /// [`Error::NonCanonical`] for a residue not below its prime.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (params, id, mut r) = read_header(bytes, Kind::MasterPublicKey, |p, _| {
            Ok(32 + 8 * 2 * p.degree() * p.dim())
        })?;
        let n = params.degree();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(r.take(32)?);
        let pk = r.residues(|i| (i / n) % 2, 2 * n * params.dim())?;
        let rns = Arc::new(Rns::new(n)?);
        Ok(Self {
            a_hat: expand_a(&seed, &rns),
            params,
            id,
            seed,
            rns,
            pk,
        })
    }
}

impl Ciphertext {
    /// The canonical encoding: header, the slot count as u32, ct₀ (NTT
    /// domain, limb 0 then 1), then for each limb the l rows of used slots.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 4 + 8 * (self.ct0.len() + self.ct.len()));
        header(&mut out, Kind::Ciphertext, &self.params, self.id);
        out.extend_from_slice(&(self.slots as u32).to_le_bytes());
        put_u64s(&mut out, self.ct0.iter().chain(&self.ct).copied());
        out
    }

    /// Reads [`Ciphertext::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for a wrong header, parameters, slot count
    /// (0 or above n) or length; [`Error::NonCanonical`] for a residue not
    /// below its prime.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let body = |p: &Params, rest: &[u8]| {
            let slots = rest
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .filter(|s| (1..=p.degree()).contains(s))
                .ok_or(Error::InvalidEncoding("RLWE ciphertext slot count"))?;
            Ok(4 + 8 * (2 * p.degree() + 2 * p.dim() * slots))
        };
        let (params, id, mut r) = read_header(bytes, Kind::Ciphertext, body)?;
        let slots = r.u32()? as usize;
        let n = params.degree();
        let ct0 = r.residues(|i| i / n, 2 * n)?;
        let half = params.dim() * slots;
        let ct = r.residues(|i| i / half, 2 * half)?;
        Ok(Self {
            params,
            id,
            slots,
            ct0,
            ct,
        })
    }
}

impl FunctionKey {
    /// The canonical encoding: header, y (l × i64), sk_y (n × i64).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 8 * (self.y.len() + self.sk.len()));
        header(&mut out, Kind::FunctionKey, &self.params, self.id);
        put_u64s(&mut out, self.y.iter().chain(&self.sk).map(|&v| v as u64));
        out
    }

    /// Reads [`FunctionKey::to_bytes`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for a wrong header, parameters or length,
    /// a yᵢ outside ±B_y or a coefficient of sk_y outside l·B_y·⌈TAIL·σ₁⌉.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (params, id, mut r) = read_header(bytes, Kind::FunctionKey, |p, _| {
            Ok(8 * (p.dim() + p.degree()))
        })?;
        let y = r.small(params.dim(), params.y_bound())?;
        let sk = r.small(params.degree(), params.key_coefficient_bound() as u64)?;
        Ok(Self { params, id, y, sk })
    }
}

impl MasterSecretKey {
    /// The canonical encoding: header, then s₁ … s_l (n × i64 each).
    ///
    /// # Security
    /// The bytes are the master secret; they are zeroized when dropped, but
    /// where they are written is up to the caller.
    pub fn to_bytes_exposing_secret(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER + 8 * self.s.len()));
        header(&mut out, Kind::MasterSecretKey, &self.params, self.id);
        put_u64s(&mut out, self.s.iter().map(|&v| v as i64 as u64));
        out
    }

    /// Reads [`MasterSecretKey::to_bytes_exposing_secret`].
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for a wrong header, parameters or length,
    /// or a coefficient outside ±⌈TAIL·σ₁⌉.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (params, id, mut r) = read_header(bytes, Kind::MasterSecretKey, |p, _| {
            Ok(8 * p.dim() * p.degree())
        })?;
        let bound = (TAIL * params.sigmas()[0]).ceil() as u64;
        let s = Zeroizing::new(r.small(params.dim() * params.degree(), bound)?);
        Ok(Self {
            s: s.iter().map(|&v| v as f64).collect(),
            params,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decryptor, derive_key, encrypt, setup};
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn objects() -> (MasterSecretKey, MasterPublicKey, Ciphertext, FunctionKey) {
        let mut rng = StdRng::seed_from_u64(1);
        let params = Params::insecure_for_tests(16, 3, 255, 128).unwrap();
        let (msk, mpk) = setup(&params, &mut rng).unwrap();
        let ct = encrypt(&mpk, &[1, 2, 3, 4, 5, 6], &mut rng).unwrap();
        let key = derive_key(&msk, &[1, -2, 3]).unwrap();
        (msk, mpk, ct, key)
    }

    type Decodes = fn(&[u8]) -> bool;

    /// Every encoding with its decoder, as (bytes, decodes?).
    fn decoders() -> Vec<(Vec<u8>, Decodes)> {
        let (msk, mpk, ct, key) = objects();
        vec![
            (msk.to_bytes_exposing_secret().to_vec(), |b| {
                MasterSecretKey::from_bytes(b).is_ok()
            }),
            (mpk.to_bytes(), |b| MasterPublicKey::from_bytes(b).is_ok()),
            (ct.to_bytes(), |b| Ciphertext::from_bytes(b).is_ok()),
            (key.to_bytes(), |b| FunctionKey::from_bytes(b).is_ok()),
        ]
    }

    #[test]
    fn round_trips() {
        let (msk, mpk, ct, key) = objects();
        assert_eq!(MasterPublicKey::from_bytes(&mpk.to_bytes()).unwrap(), mpk);
        assert_eq!(Ciphertext::from_bytes(&ct.to_bytes()).unwrap(), ct);
        assert_eq!(FunctionKey::from_bytes(&key.to_bytes()).unwrap(), key);
        let msk2 = MasterSecretKey::from_bytes(&msk.to_bytes_exposing_secret()).unwrap();
        assert_eq!(msk2.s, msk.s);
        let key2 = derive_key(&msk2, &[1, -2, 3]).unwrap();
        let dec = Decryptor::new(ct.params()).unwrap();
        assert_eq!(
            dec.decrypt(&key2, &ct).unwrap(),
            vec![1 - 4 + 9, 4 - 10 + 18]
        );
        // Decoded mpk encrypts like the original: a is expanded again.
        let mpk2 = MasterPublicKey::from_bytes(&mpk.to_bytes()).unwrap();
        assert_eq!(mpk2.a_hat, mpk.a_hat);
    }

    #[test]
    fn rejects_trailing_and_missing_bytes() {
        for (bytes, ok) in decoders() {
            assert!(ok(&bytes));
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(!ok(&longer));
            assert!(!ok(&bytes[..bytes.len() - 1]));
            assert!(!ok(&bytes[..HEADER - 1]));
            assert!(!ok(&[]));
        }
    }

    #[test]
    fn rejects_wrong_magic_version_kind_and_flags() {
        for (bytes, ok) in decoders() {
            for (at, value) in [(0, b'X'), (4, 2), (5, 9), (6, 2), (7, 1)] {
                let mut bad = bytes.clone();
                bad[at] = value;
                assert!(!ok(&bad), "byte {at}");
            }
        }
        // Each decoder refuses the others' objects.
        let all = decoders();
        for (i, (bytes, _)) in all.iter().enumerate() {
            for (j, (_, ok)) in all.iter().enumerate() {
                assert_eq!(ok(bytes), i == j);
            }
        }
    }

    #[test]
    fn rejects_claimed_security_of_toy_parameters() {
        for (mut bytes, ok) in decoders() {
            bytes[6] = 1;
            assert!(!ok(&bytes));
        }
    }

    #[test]
    fn rejects_invalid_parameters() {
        for (bytes, ok) in decoders() {
            let mut bad = bytes.clone();
            bad[8..12].copy_from_slice(&17u32.to_le_bytes()); // n not a power of two
            assert!(!ok(&bad));
            let mut bad = bytes.clone();
            bad[16..20].copy_from_slice(&0u32.to_le_bytes()); // Bₓ = 0
            assert!(!ok(&bad));
        }
    }

    #[test]
    fn rejects_non_canonical_residue() {
        let (_, mpk, ct, _) = objects();
        let mut bytes = ct.to_bytes();
        bytes[HEADER + 4..HEADER + 12].copy_from_slice(&PRIMES[0].to_le_bytes());
        assert!(matches!(
            Ciphertext::from_bytes(&bytes),
            Err(Error::NonCanonical(_))
        ));
        // The last residue belongs to limb 1: p₁ is out, p₁ − 1 is in.
        let mut bytes = mpk.to_bytes();
        let end = bytes.len();
        bytes[end - 8..].copy_from_slice(&PRIMES[1].to_le_bytes());
        assert!(MasterPublicKey::from_bytes(&bytes).is_err());
        bytes[end - 8..].copy_from_slice(&(PRIMES[1] - 1).to_le_bytes());
        assert!(MasterPublicKey::from_bytes(&bytes).is_ok());
    }

    #[test]
    fn rejects_bad_slot_count() {
        let (_, _, ct, _) = objects();
        for slots in [0u32, 17, u32::MAX] {
            let mut bytes = ct.to_bytes();
            bytes[HEADER..HEADER + 4].copy_from_slice(&slots.to_le_bytes());
            assert!(Ciphertext::from_bytes(&bytes).is_err());
        }
    }

    #[test]
    fn rejects_out_of_bound_key_entries() {
        let (msk, _, _, key) = objects();
        let mut bytes = key.to_bytes();
        bytes[HEADER..HEADER + 8].copy_from_slice(&129i64.to_le_bytes());
        assert!(FunctionKey::from_bytes(&bytes).is_err());
        let mut bytes = key.to_bytes();
        let end = bytes.len();
        bytes[end - 8..].copy_from_slice(&i64::MIN.to_le_bytes());
        assert!(FunctionKey::from_bytes(&bytes).is_err());
        let mut bytes = msk.to_bytes_exposing_secret().to_vec();
        bytes[HEADER..HEADER + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
        assert!(MasterSecretKey::from_bytes(&bytes).is_err());
    }
}
