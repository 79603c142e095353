//! One interface for both inner-product FE schemes, so that the layers
//! above (SecureLinear, the authority's rank budget, the batch files) can
//! be written once: [`Feip`] (DDH, one vector per ciphertext) and
//! [`RingLwe`] (post-quantum, up to n vectors per ciphertext, one per
//! slot). The stage-2 plan that uses it is in `docs/RLWE.md`.
//!
//! Batches are vectors of length l given row after row; results come back
//! vector-major: `out[v·keys + k] = ⟨x⁽ᵛ⁾, y⁽ᵏ⁾⟩`, v counting the vectors of
//! all ciphertexts in order.

use core::marker::PhantomData;

use rand_core::CryptoRng;

use crate::group::Group;
use crate::{Error, Result, feip, rlwe};

/// An inner-product functional-encryption scheme.
pub trait InnerProductFe {
    /// What setup needs: the vector length for FEIP, [`rlwe::Params`].
    type Setup;
    /// The authority's secret.
    type MasterSecretKey;
    /// What data owners encrypt with.
    type MasterPublicKey: Sync;
    /// A key for one vector y.
    type FunctionKey: Sync;
    /// An encryption of one or more vectors.
    type Ciphertext: Sync;
    /// The server's decryption state (FEIP: a discrete-log table).
    type Decryptor: Sync;

    /// How many vectors one ciphertext holds (FEIP 1, Ring-LWE n).
    fn capacity(mpk: &Self::MasterPublicKey) -> usize;

    /// The vector length l.
    fn dim(mpk: &Self::MasterPublicKey) -> usize;

    /// The vector y a key was derived for: what the authority's rank budget
    /// counts, identically for both schemes (keys are linear in the msk).
    fn key_vector(key: &Self::FunctionKey) -> &[i64];

    /// A fresh master key pair.
    ///
    /// # Errors
    /// The scheme's parameter errors.
    fn setup<R: CryptoRng + ?Sized>(
        setup: &Self::Setup,
        rng: &mut R,
    ) -> Result<(Self::MasterSecretKey, Self::MasterPublicKey)>;

    /// Encrypts the vectors of `x` into ⌈count / capacity⌉ ciphertexts.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `x` holds whole vectors; the
    /// scheme's bound errors.
    fn encrypt_batch<R: CryptoRng + ?Sized>(
        mpk: &Self::MasterPublicKey,
        x: &[i64],
        rng: &mut R,
    ) -> Result<Vec<Self::Ciphertext>>;

    /// Keys for the vectors of `ys` (the authority's whole step at once).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] unless `ys` holds whole vectors; the
    /// scheme's bound errors.
    fn derive_keys(msk: &Self::MasterSecretKey, ys: &[i64]) -> Result<Vec<Self::FunctionKey>>;

    /// Every inner product of every vector in `cts` with every key,
    /// vector-major.
    ///
    /// # Errors
    /// Mismatched keys, or results outside the scheme's bound.
    fn decrypt_batch(
        dec: &Self::Decryptor,
        keys: &[Self::FunctionKey],
        cts: &[Self::Ciphertext],
    ) -> Result<Vec<i64>>;
}

/// FEIP over the group `G` behind [`InnerProductFe`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Feip<G>(PhantomData<G>);

/// The Ring-LWE scheme of [`rlwe`] behind [`InnerProductFe`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RingLwe;

fn whole_vectors(len: usize, dim: usize) -> Result<()> {
    if len == 0 || !len.is_multiple_of(dim) {
        return Err(Error::LengthMismatch {
            expected: dim,
            got: len,
        });
    }
    Ok(())
}

impl<G: Group> InnerProductFe for Feip<G> {
    type Setup = usize;
    type MasterSecretKey = feip::MasterSecretKey<G>;
    type MasterPublicKey = feip::MasterPublicKey<G>;
    type FunctionKey = feip::FunctionKey<G>;
    type Ciphertext = feip::Ciphertext<G>;
    type Decryptor = feip::Decryptor<G>;

    fn capacity(_: &Self::MasterPublicKey) -> usize {
        1
    }

    fn dim(mpk: &Self::MasterPublicKey) -> usize {
        mpk.dim()
    }

    fn key_vector(key: &Self::FunctionKey) -> &[i64] {
        key.y()
    }

    fn setup<R: CryptoRng + ?Sized>(
        dim: &usize,
        rng: &mut R,
    ) -> Result<(Self::MasterSecretKey, Self::MasterPublicKey)> {
        feip::setup(*dim, rng)
    }

    fn encrypt_batch<R: CryptoRng + ?Sized>(
        mpk: &Self::MasterPublicKey,
        x: &[i64],
        rng: &mut R,
    ) -> Result<Vec<Self::Ciphertext>> {
        whole_vectors(x.len(), mpk.dim())?;
        let enc = feip::Encryptor::new(mpk)?;
        x.chunks_exact(mpk.dim())
            .map(|v| enc.encrypt(v, rng))
            .collect()
    }

    fn derive_keys(msk: &Self::MasterSecretKey, ys: &[i64]) -> Result<Vec<Self::FunctionKey>> {
        whole_vectors(ys.len(), msk.dim())?;
        ys.chunks_exact(msk.dim())
            .map(|y| feip::derive_key(msk, y))
            .collect()
    }

    fn decrypt_batch(
        dec: &Self::Decryptor,
        keys: &[Self::FunctionKey],
        cts: &[Self::Ciphertext],
    ) -> Result<Vec<i64>> {
        // Already ciphertext-major, and each ciphertext is one vector.
        dec.decrypt_batch(keys, cts)
    }
}

impl InnerProductFe for RingLwe {
    type Setup = rlwe::Params;
    type MasterSecretKey = rlwe::MasterSecretKey;
    type MasterPublicKey = rlwe::MasterPublicKey;
    type FunctionKey = rlwe::FunctionKey;
    type Ciphertext = rlwe::Ciphertext;
    type Decryptor = rlwe::Decryptor;

    fn capacity(mpk: &Self::MasterPublicKey) -> usize {
        mpk.params().degree()
    }

    fn dim(mpk: &Self::MasterPublicKey) -> usize {
        mpk.params().dim()
    }

    fn key_vector(key: &Self::FunctionKey) -> &[i64] {
        key.y()
    }

    fn setup<R: CryptoRng + ?Sized>(
        params: &rlwe::Params,
        rng: &mut R,
    ) -> Result<(Self::MasterSecretKey, Self::MasterPublicKey)> {
        rlwe::setup(params, rng)
    }

    fn encrypt_batch<R: CryptoRng + ?Sized>(
        mpk: &Self::MasterPublicKey,
        x: &[i64],
        rng: &mut R,
    ) -> Result<Vec<Self::Ciphertext>> {
        let l = mpk.params().dim();
        whole_vectors(x.len(), l)?;
        x.chunks(Self::capacity(mpk) * l)
            .map(|chunk| rlwe::encrypt(mpk, chunk, rng))
            .collect()
    }

    fn derive_keys(msk: &Self::MasterSecretKey, ys: &[i64]) -> Result<Vec<Self::FunctionKey>> {
        rlwe::derive_keys(msk, ys)
    }

    fn decrypt_batch(
        dec: &Self::Decryptor,
        keys: &[Self::FunctionKey],
        cts: &[Self::Ciphertext],
    ) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for ct in cts {
            // decrypt_many is key-major; transpose to vector-major.
            let per_key = dec.decrypt_many(keys, ct)?;
            for j in 0..ct.slots() {
                out.extend(per_key.iter().map(|row| row[j]));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Ristretto255;
    use crate::{DlogConfig, DlogTable};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::Arc;

    /// One suite for every scheme: the same batch and keys, the integer
    /// inner products back, vector-major.
    fn suite<S: InnerProductFe>(setup: &S::Setup, dec: &S::Decryptor, dim: usize) {
        let mut rng = StdRng::seed_from_u64(3);
        let (msk, mpk) = S::setup(setup, &mut rng).unwrap();
        let x: Vec<i64> = (0..5 * dim).map(|i| (i * 31 % 256) as i64).collect();
        let ys: Vec<i64> = (0..3 * dim).map(|i| (i * 7 % 255) as i64 - 127).collect();
        let cts = S::encrypt_batch(&mpk, &x, &mut rng).unwrap();
        assert_eq!(cts.len(), 5usize.div_ceil(S::capacity(&mpk)));
        let keys = S::derive_keys(&msk, &ys).unwrap();
        assert_eq!(S::key_vector(&keys[1]), &ys[dim..2 * dim]);
        let out = S::decrypt_batch(dec, &keys, &cts).unwrap();
        let expected: Vec<i64> = x
            .chunks(dim)
            .flat_map(|v| {
                ys.chunks(dim)
                    .map(move |y| v.iter().zip(y).map(|(a, b)| a * b).sum())
            })
            .collect();
        assert_eq!(out, expected);
        assert!(S::encrypt_batch(&mpk, &x[1..], &mut rng).is_err());
        assert!(S::derive_keys(&msk, &[]).is_err());
    }

    #[test]
    fn both_schemes_pass_one_suite() {
        let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 8, 1 << 20)).unwrap());
        suite::<Feip<Ristretto255>>(&6, &feip::Decryptor::new(table), 6);
        let params = rlwe::Params::insecure_for_tests(16, 6, 255, 128).unwrap();
        suite::<RingLwe>(&params, &rlwe::Decryptor::new(&params).unwrap(), 6);
        // 17 vectors at capacity n = 16: two Ring-LWE ciphertexts.
        let params = rlwe::Params::insecure_for_tests(16, 6, 255, 128).unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let (_, mpk) = RingLwe::setup(&params, &mut rng).unwrap();
        let x = vec![1i64; 17 * 6];
        assert_eq!(RingLwe::encrypt_batch(&mpk, &x, &mut rng).unwrap().len(), 2);
    }
}
