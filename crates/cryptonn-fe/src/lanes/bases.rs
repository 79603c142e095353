//! Encryption's r·bᵢ + xᵢ·g over eight bases at a time in the lanes, written
//! straight to encodings: a constant-time radix-16 comb per lane of bases
//! ([`super::ifma::CombX8`]) for the secret r and a small comb of g for the
//! secret xᵢ, then the lanes' RFC 9496 encoding (of a public ciphertext).

use zeroize::Zeroize;

use crate::{Error, Result};

/// Precomputed combs of a public key's bases, eight per lane group.
#[derive(Clone, Debug)]
pub struct LaneBases {
    #[cfg(target_arch = "x86_64")]
    inner: imp::Combs,
    #[cfg(not(target_arch = "x86_64"))]
    never: core::convert::Infallible,
}

/// Largest |xᵢ| the small comb takes (exclusive).
pub const SMALL_BOUND: u64 = 1 << 16;

impl LaneBases {
    /// The combs of `bases` (canonical Ristretto255 encodings) and of
    /// `generator`'s encoding; `None` when the CPU lacks AVX-512 IFMA.
    ///
    /// # Errors
    /// [`Error::InvalidEncoding`] for an encoding that does not decode.
    pub fn new(bases: &[[u8; 32]], generator: &[u8; 32]) -> Option<Result<LaneBases>> {
        #[cfg(target_arch = "x86_64")]
        {
            let ifma = super::ifma::Ifma::detect()?;
            Some(imp::Combs::new(ifma, bases, generator).map(|inner| LaneBases { inner }))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (bases, generator);
            None
        }
    }

    /// The number of bases.
    pub fn len(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        return self.inner.len;
        #[cfg(not(target_arch = "x86_64"))]
        match self.never {}
    }

    /// Whether there are no bases.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encodings of r·bᵢ + xᵢ·g for every base i, into `out` (32 bytes
    /// each), for r's canonical little-endian bytes; constant-time in r and
    /// the xᵢ.
    ///
    /// # Errors
    /// As [`LaneBases::encode_linear_many`].
    pub fn encode_linear(&self, r: &[u8; 32], xs: &[i64], out: &mut [u8]) -> Result<()> {
        let encoded = self.encode_linear_many(&[(r, xs)])?;
        let first = encoded.first().map(Vec::as_slice).unwrap_or_default();
        if out.len() != first.len() {
            return Err(Error::LengthMismatch {
                expected: first.len(),
                got: out.len(),
            });
        }
        out.copy_from_slice(first);
        Ok(())
    }

    /// [`LaneBases::encode_linear`] for many (r, x): the combs are walked
    /// once, each kept in cache for every vector (a comb of eight bases is
    /// 640 KiB; all of a 784-base key's are 64 MiB).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless every x has one entry per base;
    /// [`Error::InvalidParameter`] for |xᵢ| ≥ [`SMALL_BOUND`] (the caller
    /// takes another way for those) or r ≥ 2²⁵³.
    pub fn encode_linear_many(&self, items: &[(&[u8; 32], &[i64])]) -> Result<Vec<Vec<u8>>> {
        for (r, xs) in items {
            if xs.len() != self.len() {
                return Err(Error::LengthMismatch {
                    expected: self.len(),
                    got: xs.len(),
                });
            }
            if xs.iter().any(|x| x.unsigned_abs() >= SMALL_BOUND) || r[31] >= 32 {
                return Err(Error::InvalidParameter(
                    "lane encryption: |x| < 2^16 and r < 2^253 only".into(),
                ));
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            let mut digits: Vec<[i8; 64]> = items.iter().map(|(r, _)| super::radix16(r)).collect();
            let xs: Vec<&[i64]> = items.iter().map(|(_, xs)| *xs).collect();
            let out = self.inner.encode_linear(&digits, &xs);
            digits.zeroize();
            Ok(out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        match self.never {}
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use rayon::prelude::*;

    use crate::Result;
    use crate::lanes::ifma::{CombX8, Ifma, SmallCombX8};

    /// Lane groups of eight bases (the last padded with the identity).
    #[derive(Clone, Debug)]
    pub(super) struct Combs {
        ifma: Ifma,
        combs: Vec<CombX8>,
        small: SmallCombX8,
        pub(super) len: usize,
    }

    impl Combs {
        pub(super) fn new(ifma: Ifma, bases: &[[u8; 32]], generator: &[u8; 32]) -> Result<Combs> {
            let combs = bases
                .par_chunks(8)
                .map(|group| {
                    let mut lanes = [[0u8; 32]; 8];
                    lanes[..group.len()].copy_from_slice(group);
                    Ok(ifma.comb(&ifma.vartime_decode(&lanes)?))
                })
                .collect::<Result<Vec<_>>>()?;
            let g = ifma.vartime_decode(&[*generator; 8])?;
            Ok(Combs {
                ifma,
                combs,
                small: ifma.small_comb(&g),
                len: bases.len(),
            })
        }

        /// Comb-major: every vector's eight elements of one comb before
        /// the next comb, combs in parallel; then the pieces in place.
        pub(super) fn encode_linear(&self, digits: &[[i8; 64]], xs: &[&[i64]]) -> Vec<Vec<u8>> {
            let ifma = self.ifma;
            let pieces: Vec<Vec<[[u8; 32]; 8]>> = self
                .combs
                .par_iter()
                .enumerate()
                .map(|(c, comb)| {
                    digits
                        .iter()
                        .zip(xs)
                        .map(|(d, x)| {
                            let mut ks = [0i64; 8];
                            let part = &x[8 * c..(8 * c + 8).min(x.len())];
                            ks[..part.len()].copy_from_slice(part);
                            let rb = ifma.comb_mul(comb, d);
                            let xg = ifma.small_comb_mul(&self.small, &ks);
                            ifma.vartime_encode(&ifma.add(&rb, &ifma.to_cached(&xg)))
                        })
                        .collect()
                })
                .collect();
            (0..digits.len())
                .map(|v| {
                    let mut out = Vec::with_capacity(32 * self.len);
                    for piece in &pieces {
                        out.extend(piece[v].iter().flatten());
                    }
                    out.truncate(32 * self.len);
                    out
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use curve25519_dalek::ristretto::RistrettoPoint;
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::Identity;
    use proptest::prelude::*;

    use super::*;

    fn bases(n: usize, seed: u64) -> Vec<RistrettoPoint> {
        (0..n as u64)
            .map(|i| {
                if i % 9 == 4 {
                    RistrettoPoint::identity()
                } else {
                    RISTRETTO_BASEPOINT_POINT * Scalar::from(seed.wrapping_mul(31) + 7 * i + 1)
                }
            })
            .collect()
    }

    fn check(n: usize, r: Scalar, xs: &[i64], seed: u64) {
        let bs = bases(n, seed);
        let encoded: Vec<[u8; 32]> = bs.iter().map(|b| b.compress().to_bytes()).collect();
        let g = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        let Some(lanes) = LaneBases::new(&encoded, &g) else {
            eprintln!("no AVX-512 IFMA on this CPU: lane encryption is not exercised");
            return;
        };
        let lanes = lanes.unwrap();
        let mut out = vec![0u8; 32 * n];
        lanes.encode_linear(r.as_bytes(), xs, &mut out).unwrap();
        for ((b, &x), got) in bs.iter().zip(xs).zip(out.chunks_exact(32)) {
            let x_scalar = if x < 0 {
                -Scalar::from(x.unsigned_abs())
            } else {
                Scalar::from(x as u64)
            };
            let expected = b * r + RISTRETTO_BASEPOINT_POINT * x_scalar;
            assert_eq!(got, expected.compress().as_bytes(), "x = {x}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn lanes_encrypt_as_dalek(
            n in 1usize..21,
            r in proptest::array::uniform32(any::<u8>()),
            seed: u64,
            xs in proptest::collection::vec(
                prop_oneof![Just(0i64), Just(1), Just(-1), Just(65_535), Just(-65_535), -65_535i64..65_536],
                21,
            ),
        ) {
            check(n, Scalar::from_bytes_mod_order(r), &xs[..n], seed);
        }
    }

    #[test]
    fn boundary_scalars() {
        let xs = [0i64, 255, -255, 65_535, -65_535, 1, -1, 7, 8];
        for r in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(8u8),
            -Scalar::from(8u8),
        ] {
            check(9, r, &xs, 3);
        }
    }

    #[test]
    fn radix16_digits_sum_back() {
        for r in [
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(0x8888_8888u64),
            -Scalar::from(12345u64),
        ] {
            let digits = crate::lanes::radix16(r.as_bytes());
            assert!(digits.iter().all(|d| (-8..=8).contains(d)));
            let sum = digits.iter().rev().fold(Scalar::ZERO, |acc, &d| {
                let d = if d < 0 {
                    -Scalar::from(d.unsigned_abs())
                } else {
                    Scalar::from(d as u8)
                };
                acc * Scalar::from(16u8) + d
            });
            assert_eq!(sum, r);
        }
    }

    #[test]
    fn refuses_large_entries_and_bad_lengths() {
        let bs: Vec<[u8; 32]> = bases(3, 1)
            .iter()
            .map(|b| b.compress().to_bytes())
            .collect();
        let g = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        let Some(lanes) = LaneBases::new(&bs, &g) else {
            return;
        };
        let lanes = lanes.unwrap();
        let mut out = [0u8; 96];
        let r = Scalar::ONE.to_bytes();
        assert!(matches!(
            lanes.encode_linear(&r, &[0, 1 << 16, 0], &mut out),
            Err(Error::InvalidParameter(_))
        ));
        assert!(matches!(
            lanes.encode_linear(&r, &[0, 1], &mut out),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(LaneBases::new(&[[0xff; 32]], &g).unwrap().is_err());
    }
}
