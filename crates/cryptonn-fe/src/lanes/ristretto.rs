//! Scalar Ristretto255 decoding and encoding, RFC 9496 §4.3.1 and §4.3.2, on the
//! Edwards points of [`super::edwards`].
//!
//! # Security
//! Variable time (branches on the validity checks and on signs). Public values only.

use super::edwards::Extended;
use super::field::Fe;
use crate::{Error, Result};

/// Decodes a 32-byte Ristretto255 encoding to an Edwards representative,
/// RFC 9496 §4.3.1.
///
/// # Errors
/// [`Error::InvalidEncoding`] exactly where curve25519-dalek's
/// `CompressedRistretto::decompress` returns `None`: a non-canonical field
/// element s (including a set top bit), a negative s, a non-square, a negative
/// t = x·y, or y = 0.
pub fn vartime_decode(bytes: &[u8; 32]) -> Result<Extended> {
    let s = Fe::from_bytes(bytes);
    let s_bytes = s.to_bytes();
    if s_bytes != *bytes {
        return Err(Error::InvalidEncoding(
            "ristretto255: non-canonical field element",
        ));
    }
    if s.is_negative() {
        return Err(Error::InvalidEncoding("ristretto255: negative s"));
    }
    let ss = s.square();
    let u1 = Fe::ONE.sub(&ss);
    let u2 = Fe::ONE.add(&ss);
    let u2_sqr = u2.square();
    let v = Fe::D.mul(&u1.square()).neg().sub(&u2_sqr);
    let (was_square, invsqrt) = Fe::sqrt_ratio_i(&Fe::ONE, &v.mul(&u2_sqr));
    let den_x = invsqrt.mul(&u2);
    let den_y = invsqrt.mul(&den_x).mul(&v);
    let x = s.add(&s).mul(&den_x).abs();
    let y = u1.mul(&den_y);
    let t = x.mul(&y);
    if !was_square || t.is_negative() || y.is_zero() {
        return Err(Error::InvalidEncoding("ristretto255: not a valid point"));
    }
    Ok(Extended {
        x,
        y,
        z: Fe::ONE,
        t,
    })
}

/// Encodes an Edwards representative to its canonical 32-byte Ristretto255
/// encoding, RFC 9496 §4.3.2. Equal Ristretto elements encode equally.
pub fn vartime_encode(p: &Extended) -> [u8; 32] {
    let u1 = p.z.add(&p.y).mul(&p.z.sub(&p.y));
    let u2 = p.x.mul(&p.y);
    let (_, invsqrt) = Fe::sqrt_ratio_i(&Fe::ONE, &u1.mul(&u2.square()));
    let den1 = invsqrt.mul(&u1);
    let den2 = invsqrt.mul(&u2);
    let z_inv = den1.mul(&den2).mul(&p.t);
    let rotate = p.t.mul(&z_inv).is_negative();
    let (x, y, den_inv) = if rotate {
        let enchanted = den1.mul(&Fe::INVSQRT_A_MINUS_D);
        (p.y.mul(&Fe::SQRT_M1), p.x.mul(&Fe::SQRT_M1), enchanted)
    } else {
        (p.x, p.y, den2)
    };
    let y = if x.mul(&z_inv).is_negative() {
        y.neg()
    } else {
        y
    };
    den_inv.mul(&p.z.sub(&y)).abs().to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::Identity;
    use proptest::prelude::*;

    fn point(seed: [u8; 32]) -> RistrettoPoint {
        RistrettoPoint::mul_base(&Scalar::from_bytes_mod_order(seed))
    }

    fn dec(p: &RistrettoPoint) -> Extended {
        vartime_decode(&p.compress().to_bytes()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn decode_encode_roundtrips(seed in any::<[u8; 32]>()) {
            let bytes = point(seed).compress().to_bytes();
            prop_assert_eq!(vartime_encode(&vartime_decode(&bytes).unwrap()), bytes);
        }

        #[test]
        fn add_double_neg_match_dalek(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let (pa, pb) = (point(a), point(b));
            let (ea, eb) = (dec(&pa), dec(&pb));
            prop_assert_eq!(vartime_encode(&ea.add(&eb.to_cached())), (pa + pb).compress().to_bytes());
            prop_assert_eq!(vartime_encode(&ea.add(&eb.to_cached().neg())), (pa - pb).compress().to_bytes());
            prop_assert_eq!(vartime_encode(&ea.double()), (pa + pa).compress().to_bytes());
            prop_assert_eq!(vartime_encode(&ea.neg()), (-pa).compress().to_bytes());
            prop_assert_eq!(vartime_encode(&ea.add(&ea.neg().to_cached())), [0u8; 32]);
        }

        #[test]
        fn decode_accepts_exactly_what_dalek_accepts(bytes in any::<[u8; 32]>()) {
            let ours = vartime_decode(&bytes).is_ok();
            prop_assert_eq!(ours, CompressedRistretto(bytes).decompress().is_some());
        }

        #[test]
        fn decode_accepts_exactly_what_dalek_accepts_near_valid(seed in any::<[u8; 32]>(), byte in 0usize..32, bit in 0u8..8) {
            let mut bytes = point(seed).compress().to_bytes();
            bytes[byte] ^= 1 << bit;
            let ours = vartime_decode(&bytes).map(|p| vartime_encode(&p)).ok();
            let theirs = CompressedRistretto(bytes).decompress().map(|p| p.compress().to_bytes());
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn identity_and_small_multiples_roundtrip() {
        let id = RistrettoPoint::identity();
        assert_eq!(vartime_encode(&Extended::IDENTITY), [0u8; 32]);
        assert_eq!(vartime_encode(&dec(&id)), [0u8; 32]);
        let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
        let mut acc = Extended::IDENTITY;
        let mut expect = id;
        for _ in 0..40 {
            acc = acc.add(&dec(&g).to_cached());
            expect += g;
            assert_eq!(vartime_encode(&acc), expect.compress().to_bytes());
            assert_eq!(vartime_encode(&acc.neg()), (-expect).compress().to_bytes());
        }
    }

    #[test]
    fn rejects_non_canonical_point() {
        // p itself encodes zero non-canonically; p + 2 (even, so "non-negative") too.
        let mut p_bytes = [0xffu8; 32];
        p_bytes[0] = 0xed;
        p_bytes[31] = 0x7f;
        assert!(vartime_decode(&p_bytes).is_err());
        p_bytes[0] = 0xef;
        assert!(vartime_decode(&p_bytes).is_err());
        let mut high = [0u8; 32];
        high[31] = 0x80;
        assert!(vartime_decode(&high).is_err());
        assert!(CompressedRistretto(high).decompress().is_none());
    }

    #[test]
    fn rejects_negative_s() {
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(vartime_decode(&one).is_err());
        assert!(CompressedRistretto(one).decompress().is_none());
    }

    #[test]
    fn field_inverse_and_canonical_bytes() {
        let x = Fe::from_limbs([(1 << 52) - 1, 3, 5, 7, (1 << 52) - 1]);
        assert_eq!(x.mul(&x.invert()).to_bytes(), Fe::ONE.to_bytes());
        assert!(Fe::ZERO.sub(&Fe::ZERO).is_zero());
        assert_eq!(Fe::SQRT_M1.square().to_bytes(), Fe::ONE.neg().to_bytes());
    }
}
