//! Ristretto255 (RFC 9496) on curve25519-dalek.

use core::fmt;

use crate::lanes::bases::LaneBases;
use curve25519_dalek::constants::{RISTRETTO_BASEPOINT_POINT, RISTRETTO_BASEPOINT_TABLE};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core::CryptoRng;
use std::sync::OnceLock;
use subtle::{Choice, ConditionallyNegatable, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use super::{Group, GroupId, hex_serde};
use crate::{Error, Result};

/// Ristretto255: a prime-order group of order
/// q = 2²⁵² + 27742317777372353535851937790883648493, about 128-bit secure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ristretto255;

/// A Ristretto255 point. Encoded as its 32-byte canonical compression.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RistrettoElement(pub(crate) RistrettoPoint);

/// A scalar mod q, encoded as 32 bytes little-endian, fully reduced.
///
/// Scalars derived from secrets (function keys) are zeroized on drop; the
/// `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq, Zeroize)]
pub struct RistrettoScalar(pub(crate) Scalar);

impl Drop for RistrettoScalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for RistrettoElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RistrettoElement({})",
            crate::wire::to_hex(self.0.compress().as_bytes())
        )
    }
}

impl fmt::Debug for RistrettoScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RistrettoScalar(..)")
    }
}

hex_serde!([] RistrettoElement, 32, Ristretto255::element_to_bytes, Ristretto255::element_from_bytes);
hex_serde!([] RistrettoScalar, 32, Ristretto255::scalar_to_bytes, Ristretto255::scalar_from_bytes);

/// A fixed-base table for one point (dalek's radix-16 comb, about 30 KiB).
pub struct RistrettoTable(RistrettoBasepointTable);

/// A comb for small multiples of one base: j·16ⁱ·base for i < 4, j < 16.
type SmallComb = [[RistrettoPoint; 16]; 4];

fn small_comb(base: RistrettoPoint) -> SmallComb {
    let mut table = [[RistrettoPoint::identity(); 16]; 4];
    let mut base = base;
    for row in table.iter_mut() {
        for j in 1..16 {
            row[j] = row[j - 1] + base;
        }
        base = row[15] + base;
    }
    table
}

/// The comb of g.
fn small_base_table() -> &'static SmallComb {
    static TABLE: OnceLock<SmallComb> = OnceLock::new();
    TABLE.get_or_init(|| small_comb(RISTRETTO_BASEPOINT_POINT))
}

/// 2⁻¹ mod q.
fn half() -> Scalar {
    Scalar::from(2u8).invert()
}

/// The comb of g/2 = 2⁻¹·g.
fn half_base_table() -> &'static SmallComb {
    static TABLE: OnceLock<SmallComb> = OnceLock::new();
    TABLE.get_or_init(|| small_comb(RISTRETTO_BASEPOINT_POINT * half()))
}

/// k·base for |k| < 2¹⁶ from `comb`, with constant-time table selection:
/// about 8 additions instead of a full 64-digit multiplication.
fn comb_mul(comb: &SmallComb, k: i64) -> RistrettoPoint {
    let mag = k.unsigned_abs();
    let mut acc = RistrettoPoint::identity();
    for (i, row) in comb.iter().enumerate() {
        let digit = ((mag >> (4 * i)) & 15) as u8;
        let mut selected = RistrettoPoint::identity();
        for (j, p) in (0u8..).zip(row) {
            selected.conditional_assign(p, j.ct_eq(&digit));
        }
        acc += selected;
    }
    acc.conditional_negate(Choice::from(((k >> 63) & 1) as u8));
    acc
}

impl Group for Ristretto255 {
    const ID: GroupId = GroupId::Ristretto255;
    const ELEMENT_LEN: usize = 32;
    const SCALAR_LEN: usize = 32;
    const CHEAP_NEG: bool = true;
    const BATCH_ENCODING: bool = true;

    type Element = RistrettoElement;
    type Scalar = RistrettoScalar;
    type FixedBase = RistrettoTable;
    type LaneBases = LaneBases;

    fn generator() -> RistrettoElement {
        RistrettoElement(RISTRETTO_BASEPOINT_POINT)
    }

    fn identity() -> RistrettoElement {
        RistrettoElement(RistrettoPoint::identity())
    }

    fn is_identity(a: &RistrettoElement) -> bool {
        a.0 == RistrettoPoint::identity()
    }

    fn add(a: &RistrettoElement, b: &RistrettoElement) -> RistrettoElement {
        RistrettoElement(a.0 + b.0)
    }

    fn sub(a: &RistrettoElement, b: &RistrettoElement) -> RistrettoElement {
        RistrettoElement(a.0 - b.0)
    }

    fn neg(a: &RistrettoElement) -> RistrettoElement {
        RistrettoElement(-a.0)
    }

    fn mul(a: &RistrettoElement, k: &RistrettoScalar) -> RistrettoElement {
        RistrettoElement(a.0 * k.0)
    }

    fn mul_base(k: &RistrettoScalar) -> RistrettoElement {
        RistrettoElement(&k.0 * RISTRETTO_BASEPOINT_TABLE)
    }

    /// A radix-16 comb over four digits (`comb_mul`). Only whether
    /// |k| ≥ 2¹⁶ (then the full multiplication runs) shows in timing.
    fn mul_base_small(k: i64) -> RistrettoElement {
        if k.unsigned_abs() >= 1 << 16 {
            return Self::mul_base(&Self::scalar_from_i64(k));
        }
        RistrettoElement(comb_mul(small_base_table(), k))
    }

    /// The same comb over g/2.
    fn mul_half_base_small(k: i64) -> RistrettoElement {
        if k.unsigned_abs() >= 1 << 16 {
            return Self::mul_base(&RistrettoScalar(Self::scalar_from_i64(k).0 * half()));
        }
        RistrettoElement(comb_mul(half_base_table(), k))
    }

    /// dalek's `double_and_compress_batch`: one inversion for the batch
    /// instead of an inverse square root per point.
    fn encode_doubled(halves: &[RistrettoElement], out: &mut [u8]) {
        let encoded = RistrettoPoint::double_and_compress_batch(halves.iter().map(|p| &p.0));
        for (c, dst) in encoded.iter().zip(out.chunks_exact_mut(32)) {
            dst.copy_from_slice(c.as_bytes());
        }
    }

    /// The lane engine (`multiexp::lanes`) with the −2·sk·ct₀
    /// term in the lanes' constant-time comb; fingerprints from the lanes'
    /// encoding of 2·D, the bytes `double_and_compress_batch` gives.
    fn vartime_doubled_decryptions(
        cts: &[&[u8]],
        ys: &[&[i64]],
        sks: &[&RistrettoScalar],
    ) -> Option<Result<super::EncodedPoints>> {
        // Shapes first: nothing returns between making the secret digits
        // and zeroizing them.
        let commitments: Vec<[u8; 32]> = cts
            .iter()
            .map(|c| c.get(..32).and_then(|b| b.try_into().ok()))
            .collect::<Option<_>>()?;
        let vectors: Vec<&[u8]> = cts.iter().map(|c| &c[32..]).collect();
        let mut digits: Vec<[i8; 64]> = sks
            .iter()
            .map(|sk| {
                let minus_twice = Zeroizing::new(-(sk.0 + sk.0));
                crate::lanes::radix16(minus_twice.as_bytes())
            })
            .collect();
        let rows =
            crate::multiexp::lanes::decryption_encodings(&vectors, &commitments, ys, &digits);
        digits.zeroize();
        Some(rows?.map(|rows| {
            let mut points = super::EncodedPoints::default();
            for both in rows.iter().flatten() {
                points.encodings.extend_from_slice(&both[..32]);
                let mut low = [0u8; 16];
                low.copy_from_slice(&both[32..48]);
                points.fingerprints.push(u128::from_le_bytes(low));
            }
            points
        }))
    }

    /// Eight at a time in the lanes ([`crate::lanes`]), about nine times
    /// faster than dalek's decompression; the lane decoder accepts exactly
    /// what dalek accepts (tested on random and near-valid encodings).
    fn vartime_validate_encodings(bytes: &[u8]) -> Option<Result<()>> {
        crate::multiexp::lanes::validate_encodings(bytes)
    }

    fn lane_bases(bases: &[RistrettoElement]) -> Option<LaneBases> {
        use rayon::prelude::*;
        let encoded: Vec<[u8; 32]> = bases
            .par_iter()
            .map(|b| b.0.compress().to_bytes())
            .collect();
        let g = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        crate::lanes::bases::LaneBases::new(&encoded, &g)?.ok()
    }

    fn lane_encrypt_bodies(
        lanes: &LaneBases,
        rs: &[RistrettoScalar],
        xs: &[&[i64]],
    ) -> Result<Vec<Vec<u8>>> {
        let bytes: Vec<Zeroizing<[u8; 32]>> =
            rs.iter().map(|r| Zeroizing::new(r.0.to_bytes())).collect();
        let items: Vec<(&[u8; 32], &[i64])> =
            bytes.iter().map(|b| &**b).zip(xs.iter().copied()).collect();
        lanes.encode_linear_many(&items)
    }

    fn fixed_base(a: &RistrettoElement) -> RistrettoTable {
        RistrettoTable(RistrettoBasepointTable::create(&a.0))
    }

    fn mul_fixed(table: &RistrettoTable, k: &RistrettoScalar) -> RistrettoElement {
        RistrettoElement(&k.0 * &table.0)
    }

    fn scalar_from_i64(v: i64) -> RistrettoScalar {
        let mag = Scalar::from(v.unsigned_abs());
        RistrettoScalar(if v < 0 { -mag } else { mag })
    }

    fn scalar_random<R: CryptoRng + ?Sized>(rng: &mut R) -> RistrettoScalar {
        let mut wide = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(wide.as_mut());
        RistrettoScalar(Scalar::from_bytes_mod_order_wide(&wide))
    }

    fn scalar_add(a: &RistrettoScalar, b: &RistrettoScalar) -> RistrettoScalar {
        RistrettoScalar(a.0 + b.0)
    }

    fn scalar_mul(a: &RistrettoScalar, b: &RistrettoScalar) -> RistrettoScalar {
        RistrettoScalar(a.0 * b.0)
    }

    fn scalar_neg(a: &RistrettoScalar) -> RistrettoScalar {
        RistrettoScalar(-a.0)
    }

    fn scalar_invert(a: &RistrettoScalar) -> Option<RistrettoScalar> {
        (a.0 != Scalar::ZERO).then(|| RistrettoScalar(a.0.invert()))
    }

    fn element_to_bytes(a: &RistrettoElement) -> Vec<u8> {
        a.0.compress().to_bytes().to_vec()
    }

    fn element_from_bytes(bytes: &[u8]) -> Result<RistrettoElement> {
        let compressed = CompressedRistretto::from_slice(bytes)
            .map_err(|_| Error::InvalidEncoding("a Ristretto255 element is 32 bytes"))?;
        // dalek's decompress rejects every non-canonical or off-group encoding.
        compressed
            .decompress()
            .map(RistrettoElement)
            .ok_or(Error::NonCanonical("not a canonical Ristretto255 encoding"))
    }

    fn scalar_to_bytes(a: &RistrettoScalar) -> Vec<u8> {
        a.0.to_bytes().to_vec()
    }

    fn scalar_from_bytes(bytes: &[u8]) -> Result<RistrettoScalar> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidEncoding("a Ristretto255 scalar is 32 bytes"))?;
        Option::from(Scalar::from_canonical_bytes(array))
            .map(RistrettoScalar)
            .ok_or(Error::NonCanonical(
                "scalar not reduced mod the group order",
            ))
    }

    /// Uses `double_and_compress_batch`, which shares one inversion across
    /// the batch: the fingerprint of P is taken from the encoding of 2P.
    fn fingerprints(points: &[RistrettoElement]) -> Vec<u128> {
        RistrettoPoint::double_and_compress_batch(points.iter().map(|p| &p.0))
            .iter()
            .map(|c| {
                let mut low = [0u8; 16];
                low.copy_from_slice(&c.as_bytes()[..16]);
                u128::from_le_bytes(low)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_canonical_point() {
        // 2^255 - 18 is p - 1 + ... : any encoding with the top bit set is non-canonical.
        let mut bytes = [0u8; 32];
        bytes[31] = 0x80;
        assert!(matches!(
            Ristretto255::element_from_bytes(&bytes),
            Err(Error::NonCanonical(_))
        ));
        // Negative field element (odd low bit) is not canonical either.
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        assert!(Ristretto255::element_from_bytes(&bytes).is_err());
    }

    #[test]
    fn rejects_wrong_length_point() {
        assert!(matches!(
            Ristretto255::element_from_bytes(&[0u8; 31]),
            Err(Error::InvalidEncoding(_))
        ));
        assert!(Ristretto255::element_from_bytes(&[0u8; 33]).is_err());
    }

    #[test]
    fn rejects_unreduced_scalar() {
        assert!(matches!(
            Ristretto255::scalar_from_bytes(&[0xff; 32]),
            Err(Error::NonCanonical(_))
        ));
    }

    /// The order FORMAT.md states: ℓ = 2²⁵² + 27742317777372353535851937790883648493.
    #[test]
    fn rejects_scalar_l_and_accepts_l_minus_1() {
        let tail: num_bigint::BigUint = "27742317777372353535851937790883648493"
            .parse()
            .unwrap_or_default();
        let l = (num_bigint::BigUint::from(1u32) << 252usize) + tail;
        let le = |v: &num_bigint::BigUint| {
            let mut bytes = v.to_bytes_le();
            bytes.resize(32, 0);
            bytes
        };
        assert!(matches!(
            Ristretto255::scalar_from_bytes(&le(&l)),
            Err(Error::NonCanonical(_))
        ));
        let l_minus_1 = Ristretto255::scalar_from_bytes(&le(&(l - 1u32)));
        assert_eq!(l_minus_1.ok(), Some(Ristretto255::scalar_from_i64(-1)));
    }

    #[test]
    fn small_multiples_agree() {
        let g = Ristretto255::generator();
        for k in [-300i64, -1, 0, 1, 2, 255, 4097] {
            let direct = Ristretto255::mul(&g, &Ristretto255::scalar_from_i64(k));
            assert_eq!(Ristretto255::vartime_mul_small(&g, k), direct, "k = {k}");
        }
    }

    #[test]
    fn small_base_comb_matches_full_multiplication() {
        for k in [
            0i64,
            1,
            -1,
            15,
            16,
            -255,
            4095,
            65535,
            -65535,
            65536,
            -70000,
            i64::MIN + 1,
        ] {
            let full = Ristretto255::mul_base(&Ristretto255::scalar_from_i64(k));
            assert_eq!(Ristretto255::mul_base_small(k), full, "k = {k}");
            let half = Ristretto255::mul_half_base_small(k);
            assert_eq!(Ristretto255::double(&half), full, "k = {k}");
            let mut encoded = [0u8; 32];
            Ristretto255::encode_doubled(&[half], &mut encoded);
            assert_eq!(encoded.to_vec(), Ristretto255::element_to_bytes(&full));
        }
    }

    #[test]
    fn fingerprints_match_single_and_batch() {
        let g = Ristretto255::generator();
        let pts: Vec<_> = (1..5)
            .map(|k| Ristretto255::vartime_mul_small(&g, k))
            .collect();
        let batch = Ristretto255::fingerprints(&pts);
        for (p, f) in pts.iter().zip(&batch) {
            assert_eq!(Ristretto255::fingerprints(core::slice::from_ref(p))[0], *f);
        }
    }
}
