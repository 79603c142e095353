//! Random and mutated bytes fed to every decoder: keys, ciphertexts,
//! encrypted batches and IDX files. Each must return an error or a valid
//! value — never panic.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

use std::path::Path;

use cryptonn::authority::{Authority, IssueAll};
use cryptonn::client::idx;
use cryptonn::client::{Client, Samples};
use cryptonn::fe::{Modp2048, Ristretto255, febo, feip};
use cryptonn::protocol::EncryptedBatch;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::de::DeserializeOwned;

/// Flips, overwrites, truncates and extends `valid` in many ways.
fn mutations(valid: &[u8], rng: &mut StdRng, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut bytes = valid.to_vec();
            match i % 4 {
                0 => {
                    for _ in 0..rng.random_range(1..4) {
                        let at = rng.random_range(0..bytes.len());
                        bytes[at] = rng.random();
                    }
                }
                1 => bytes.truncate(rng.random_range(0..bytes.len())),
                2 => bytes.extend((0..rng.random_range(1..16)).map(|_| rng.random::<u8>())),
                _ => {
                    bytes = (0..rng.random_range(0..64))
                        .map(|_| rng.random::<u8>())
                        .collect()
                }
            }
            bytes
        })
        .collect()
}

fn survives<T: DeserializeOwned>(valid: &[u8], rng: &mut StdRng) {
    assert!(
        serde_json::from_slice::<T>(valid).is_ok(),
        "the unmutated input must decode"
    );
    for bytes in mutations(valid, rng, 200) {
        let _ = serde_json::from_slice::<T>(&bytes);
    }
}

#[test]
fn fe_decoders_never_panic() {
    let mut rng = StdRng::seed_from_u64(1);
    let (msk, mpk) = feip::setup::<Ristretto255, _>(4, &mut rng).unwrap();
    let key = feip::derive_key(&msk, &[1, -2, 3, 4]).unwrap();
    let ct = feip::encrypt(&mpk, &[5, 6, 7, 8], &mut rng).unwrap();
    survives::<feip::MasterPublicKey<Ristretto255>>(&serde_json::to_vec(&mpk).unwrap(), &mut rng);
    survives::<feip::FunctionKey<Ristretto255>>(&serde_json::to_vec(&key).unwrap(), &mut rng);
    survives::<feip::Ciphertext<Ristretto255>>(&serde_json::to_vec(&ct).unwrap(), &mut rng);
    let secret = msk.to_json_exposing_secret();
    for bytes in mutations(secret.as_bytes(), &mut rng, 200) {
        let _ = feip::MasterSecretKey::<Ristretto255>::from_json(&String::from_utf8_lossy(&bytes));
    }

    let (bmsk, bmpk) = febo::setup::<Ristretto255, _>(&mut rng);
    let bct = febo::encrypt(&bmpk, 9, &mut rng).unwrap();
    let bkey = febo::derive_key(&bmsk, bct.commitment(), febo::Op::Mul, 3).unwrap();
    survives::<febo::Ciphertext<Ristretto255>>(&serde_json::to_vec(&bct).unwrap(), &mut rng);
    survives::<febo::FunctionKey<Ristretto255>>(&serde_json::to_vec(&bkey).unwrap(), &mut rng);

    let (_, mmpk) = feip::setup::<Modp2048, _>(1, &mut rng).unwrap();
    let mct = feip::encrypt(&mmpk, &[3], &mut rng).unwrap();
    let valid = serde_json::to_vec(&mct).unwrap();
    for bytes in mutations(&valid, &mut rng, 40) {
        let _ = serde_json::from_slice::<feip::Ciphertext<Modp2048>>(&bytes);
    }
}

#[test]
fn encrypted_batch_decoder_never_panics() {
    let mut rng = StdRng::seed_from_u64(2);
    let authority = Authority::<Ristretto255>::new(IssueAll);
    let keys = authority.batch_keys(3, 2, &mut rng).unwrap();
    let labels = [1usize, 0];
    let samples = Samples {
        inputs: &[1, 2, 3, 4, 5, 6],
        features: 3,
        input_scale: 255.0,
        labels: Some((&labels, 2)),
    };
    let batch = Client::new(&keys)
        .unwrap()
        .encrypt(&samples, 16, &mut rng)
        .unwrap();
    survives::<EncryptedBatch<Ristretto255>>(&serde_json::to_vec(&batch).unwrap(), &mut rng);
}

#[test]
fn idx_parser_never_panics() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut valid = vec![0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    valid.extend([9u8; 8]);
    assert!(idx::parse(&valid, 3, Path::new("x")).is_ok());
    for bytes in mutations(&valid, &mut rng, 500) {
        let _ = idx::parse(&bytes, 3, Path::new("x"));
        let _ = idx::parse(&bytes, 1, Path::new("x"));
    }
}
