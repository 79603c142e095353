//! Images for a secure convolution: what a client encrypts so that a
//! server's `SecureConv2d` can decrypt every output of the convolution and
//! its kernel gradient.
//!
//! The client encrypts each image whole, once per side: one ciphertext per
//! image under the row key, and one of the whole batch under the column
//! key. The convolution's windows are the server's business: its function
//! keys are for the kernel placed on each window (`E_p·W_c`) and for the
//! errors placed on each tap (`G_j·δ_c`), so the client encrypts
//! `2·C·H·W` values per image however many positions the kernel visits,
//! and, with [`ImageClient::encrypt_labelled`], its one-hot label.

use cryptonn_fe::feip::{self, Encryptor};
use cryptonn_fe::{Group, febo};
use rand::CryptoRng;

use cryptonn_protocol::{BatchPublicKeys, EncryptedImages, Error, PatchGeometry, Result};

use crate::labels::encrypt_labels;

/// Encrypts batches of images for one convolution's [`BatchPublicKeys`]
/// (from `Authority::patch_keys`). Holds public keys only; building it
/// precomputes fixed-base tables for the row key (each of its elements
/// serves every image), not for the batch key (each serves once).
pub struct ImageClient<G: Group> {
    rows: Encryptor<G>,
    batch: feip::MasterPublicKey<G>,
    labels: febo::MasterPublicKey<G>,
    geometry: PatchGeometry,
}

impl<G: Group> ImageClient<G> {
    /// A client for one batch's keys.
    ///
    /// # Errors
    /// [`Error::Shape`] unless the row key's dimension is the geometry's
    /// pixels and the column key's a whole number of images; an FE error if
    /// a public key holds the identity.
    pub fn new(keys: &BatchPublicKeys<G>, geometry: PatchGeometry) -> Result<Self> {
        let pixels = geometry.pixels();
        let (rows, cols) = (keys.rows.dim(), keys.cols.dim());
        if rows != pixels || !cols.is_multiple_of(pixels) {
            return Err(Error::Shape {
                what: "convolution keys [row dim, column dim] (pixels, images·pixels)",
                expected: vec![pixels, pixels],
                got: vec![rows, cols],
            });
        }
        Ok(Self {
            rows: Encryptor::new(&keys.rows)?,
            batch: keys.cols.clone(),
            labels: keys.labels.clone(),
            geometry,
        })
    }

    /// Images per batch, fixed by the column key.
    pub fn images(&self) -> usize {
        self.batch.dim() / self.geometry.pixels()
    }

    /// Encrypts one batch: `pixels` is `[images, C, H, W]` integers,
    /// row-major, and the real input is `pixels / input_scale`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `pixels` is not the keys' batch of images;
    /// [`Error::InvalidBatch`] for a scale that is not positive.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &self,
        pixels: &[i64],
        input_scale: f64,
        rng: &mut R,
    ) -> Result<EncryptedImages<G>> {
        let [channels, height, width] = self.geometry.image();
        if pixels.len() != self.batch.dim() {
            return Err(Error::Shape {
                what: "images [images, C, H, W]",
                expected: vec![self.images(), channels, height, width],
                got: vec![pixels.len()],
            });
        }
        let images: Vec<Vec<i64>> = pixels
            .chunks(self.geometry.pixels())
            .map(<[i64]>::to_vec)
            .collect();
        let rows = self.rows.encrypt_many(&images, rng)?;
        let batch = feip::encrypt(&self.batch, pixels, rng)?;
        EncryptedImages::new(self.geometry, input_scale, rows, batch)
    }

    /// Encrypts one batch as [`ImageClient::encrypt`] does, and its one-hot
    /// labels (`labels[b]` is image b's class, below `classes`; each entry
    /// times `label_scale`) under the keys' FEBO master key.
    ///
    /// # Errors
    /// As [`ImageClient::encrypt`]; [`Error::Shape`] unless there is one
    /// label per image, each below `classes`; [`Error::InvalidBatch`] for no
    /// class or a label scale outside 1 ..= 2³⁰.
    pub fn encrypt_labelled<R: CryptoRng + ?Sized>(
        &self,
        pixels: &[i64],
        input_scale: f64,
        labels: &[usize],
        classes: usize,
        label_scale: i64,
        rng: &mut R,
    ) -> Result<EncryptedImages<G>> {
        let images = self.encrypt(pixels, input_scale, rng)?;
        let encrypted = encrypt_labels(
            &self.labels,
            labels,
            classes,
            images.images(),
            label_scale,
            rng,
        )?;
        images.with_labels(encrypted)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

    use std::sync::Arc;

    use super::*;
    use cryptonn_fe::{DlogConfig, DlogTable, Ristretto255};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn keys(rows: usize, cols: usize, rng: &mut StdRng) -> BatchPublicKeys<Ristretto255> {
        BatchPublicKeys {
            rows: feip::setup(rows, rng).unwrap().1,
            cols: feip::setup(cols, rng).unwrap().1,
            labels: febo::setup(rng).1,
        }
    }

    #[test]
    fn encrypts_each_image_and_the_batch() {
        let rng = &mut StdRng::seed_from_u64(1);
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap();
        let client = ImageClient::new(&keys(9, 18, rng), g).unwrap();
        assert_eq!(client.images(), 2);
        let images = client.encrypt(&[7; 18], 255.0, rng).unwrap();
        assert_eq!((images.images(), images.batch()[0].dim()), (2, 18));
        assert!(matches!(
            client.encrypt(&[7; 9], 255.0, rng),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn encrypt_labelled_decrypts_back() {
        let rng = &mut StdRng::seed_from_u64(3);
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap();
        let (row_msk, rows) = feip::setup::<Ristretto255, _>(9, rng).unwrap();
        let (batch_msk, cols) = feip::setup(18, rng).unwrap();
        let (label_msk, label_mpk) = febo::setup(rng);
        let keys = BatchPublicKeys {
            rows,
            cols,
            labels: label_mpk,
        };
        let client = ImageClient::new(&keys, g).unwrap();
        let pixels: Vec<i64> = (0..18).map(|p| p * 14).collect();
        let images = client
            .encrypt_labelled(&pixels, 255.0, &[2, 0], 3, 1000, rng)
            .unwrap();

        let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 10, 1 << 20)).unwrap());
        let dec = feip::Decryptor::new(table.clone());
        // Pixel 4 of each image, then the sum of the whole batch.
        let mut y = vec![0; 9];
        y[4] = 1;
        let key = feip::derive_key(&row_msk, &y).unwrap();
        let got: Vec<i64> = images
            .rows()
            .iter()
            .map(|ct| dec.decrypt(&key, ct).unwrap())
            .collect();
        assert_eq!(got, [4 * 14, 13 * 14]);
        let key = feip::derive_key(&batch_msk, &[1; 18]).unwrap();
        let sum = dec.decrypt(&key, &images.batch()[0]).unwrap();
        assert_eq!(sum, pixels.iter().sum::<i64>());

        let labels = images.labels().unwrap();
        assert_eq!((labels.classes(), labels.scale()), (3, 1000));
        let one_hot: Vec<i64> = labels
            .entries()
            .iter()
            .map(|ct| {
                let key = febo::derive_key(&label_msk, ct.commitment(), febo::Op::Add, 0).unwrap();
                febo::decrypt(&table, &key, ct).unwrap()
            })
            .collect();
        assert_eq!(one_hot, [0, 0, 1000, 1000, 0, 0]);
    }

    #[test]
    fn rejects_labels_that_do_not_fit() {
        let rng = &mut StdRng::seed_from_u64(4);
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap();
        let client = ImageClient::new(&keys(9, 18, rng), g).unwrap();
        let pixels = [7; 18];
        for (labels, classes, scale) in [
            (&[0, 1, 1][..], 2, 10), // one label too many
            (&[0][..], 2, 10),       // one too few
            (&[0, 2][..], 2, 10),    // class out of range
            (&[0, 1][..], 2, 0),     // scale out of range
            (&[0, 1][..], 2, (1 << 30) + 1),
        ] {
            let got = client.encrypt_labelled(&pixels, 255.0, labels, classes, scale, rng);
            assert!(got.is_err(), "{labels:?} {classes} {scale}");
        }
        let plain = client.encrypt(&pixels, 255.0, rng).unwrap();
        assert!(plain.labels().is_none());
    }

    #[test]
    fn rejects_keys_of_another_shape() {
        let rng = &mut StdRng::seed_from_u64(2);
        let g = PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap();
        for (rows, cols) in [(4, 8), (9, 10), (8, 18)] {
            assert!(
                ImageClient::new(&keys(rows, cols, rng), g).is_err(),
                "{rows} {cols}"
            );
        }
    }
}
