//! One-hot labels, FEBO-encrypted entry by entry: what [`Client`](crate::Client)
//! and [`ImageClient`](crate::ImageClient) send beside their ciphertexts.

use cryptonn_fe::{Group, febo};
use rand::CryptoRng;
use rayon::prelude::*;

use cryptonn_protocol::{EncryptedLabels, Error, Result};

/// Encrypts the one-hot rows of `labels` (`samples` class indices below
/// `classes`), each entry times `scale`, row-major `[samples, classes]`.
///
/// # Errors
/// [`Error::Shape`] unless there are `samples` labels, each below
/// `classes`; an FE error if the public key is the identity.
pub(crate) fn encrypt_labels<G: Group, R: CryptoRng + ?Sized>(
    mpk: &febo::MasterPublicKey<G>,
    labels: &[usize],
    classes: usize,
    samples: usize,
    scale: i64,
    rng: &mut R,
) -> Result<EncryptedLabels<G>> {
    if labels.len() != samples || labels.iter().any(|&l| l >= classes) {
        return Err(Error::Shape {
            what: "labels",
            expected: vec![samples],
            got: vec![labels.len()],
        });
    }
    let one_hot: Vec<i64> = labels
        .iter()
        .flat_map(|&l| (0..classes).map(move |c| if c == l { scale } else { 0 }))
        .collect();
    // Seeds drawn in order keep a seeded rng reproducible under rayon.
    let seeds: Vec<[u8; 32]> = one_hot
        .iter()
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    let entries = one_hot
        .par_iter()
        .zip(seeds)
        .map(|(&y, seed)| {
            febo::encrypt(
                mpk,
                y,
                &mut <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed),
            )
        })
        .collect::<cryptonn_fe::Result<Vec<_>>>()?;
    Ok(EncryptedLabels::new(classes, scale, entries))
}
