//! The data owner of CryptoNN: encrypts its samples under the authority's
//! public keys. It holds public keys only.

use cryptonn_fe::Group;
use cryptonn_fe::febo;
use cryptonn_fe::feip::Encryptor;
use rand::CryptoRng;

use cryptonn_protocol::{
    BatchPublicKeys, EncryptedBatch, EncryptedLabels, EncryptedRows, Error, Result, RowPublicKeys,
};

pub mod batch_files;
pub mod batches;
pub mod dataset;
pub mod idx;
pub mod images;
mod labels;
pub use batch_files::{EncryptionJob, EncryptionStats, Layout, encrypt_to_dir};
pub use cryptonn_protocol::PIXEL_SCALE;
pub use dataset::{Dataset, Split};
pub use images::ImageClient;
use labels::encrypt_labels;

/// Encrypts batches for one set of [`BatchPublicKeys`] (or [`RowPublicKeys`]).
/// Holds public keys only; building it precomputes fixed-base tables for
/// every public key.
pub struct Client<G: Group> {
    rows: Encryptor<G>,
    cols: Option<Encryptor<G>>,
    labels: febo::MasterPublicKey<G>,
}

/// Plaintext samples as a client holds them.
#[derive(Clone, Debug)]
pub struct Samples<'a> {
    /// Row-major `[batch, features]` integers, e.g. raw pixels 0..255.
    pub inputs: &'a [i64],
    /// Features per sample.
    pub features: usize,
    /// The real input is `inputs / input_scale` (255 for pixels in [0, 1]).
    pub input_scale: f64,
    /// Class indices, one per sample, with the number of classes; `None` keeps labels out of the batch.
    pub labels: Option<(&'a [usize], usize)>,
}

impl<G: Group> Client<G> {
    /// A client for one batch's public keys.
    ///
    /// # Errors
    /// An FE error if a public key holds the identity.
    pub fn new(keys: &BatchPublicKeys<G>) -> Result<Self> {
        Ok(Self {
            rows: Encryptor::new(&keys.rows)?,
            cols: Some(Encryptor::new(&keys.cols)?),
            labels: keys.labels.clone(),
        })
    }

    /// A client that encrypts samples row-wise only ([`Client::encrypt_rows`]).
    ///
    /// # Errors
    /// An FE error if a public key holds the identity.
    pub fn for_rows(keys: &RowPublicKeys<G>) -> Result<Self> {
        Ok(Self {
            rows: Encryptor::new(&keys.rows)?,
            cols: None,
            labels: keys.labels.clone(),
        })
    }

    /// Encrypts samples row-wise only, and their one-hot labels (each entry
    /// times `label_scale`): what projection mode sends.
    ///
    /// # Errors
    /// [`Error::Shape`] if the inputs are not whole samples of the key's
    /// dimension, or a label is out of range.
    pub fn encrypt_rows<R: CryptoRng + ?Sized>(
        &self,
        samples: &Samples<'_>,
        label_scale: i64,
        rng: &mut R,
    ) -> Result<EncryptedRows<G>> {
        let features = self.rows.public_key().dim();
        let batch = samples.inputs.len() / features;
        if samples.features != features || samples.inputs.len() != batch * features || batch == 0 {
            return Err(Error::Shape {
                what: "client samples",
                expected: vec![batch.max(1), features],
                got: vec![batch, samples.features],
            });
        }
        let row_cts = self.encrypt_samples(samples, rng)?;
        let labels = self.labels_of(samples, batch, label_scale, rng)?;
        EncryptedRows::new(samples.input_scale, row_cts, labels)
    }

    /// Encrypts a batch row-wise and column-wise, and its one-hot labels
    /// (each entry times `label_scale`).
    ///
    /// # Errors
    /// [`Error::Shape`] if the inputs do not fill `[batch, features]` for the
    /// keys' dimensions, or a label is out of range.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &self,
        samples: &Samples<'_>,
        label_scale: i64,
        rng: &mut R,
    ) -> Result<EncryptedBatch<G>> {
        let cols_key = self.cols.as_ref().ok_or_else(|| {
            Error::InvalidBatch("this client holds row keys only: use encrypt_rows".into())
        })?;
        let features = self.rows.public_key().dim();
        let batch = cols_key.public_key().dim();
        if samples.features != features || samples.inputs.len() != batch * features {
            return Err(Error::Shape {
                what: "client samples",
                expected: vec![batch, features],
                got: vec![
                    samples.inputs.len() / samples.features.max(1),
                    samples.features,
                ],
            });
        }
        let cols: Vec<Vec<i64>> = (0..features)
            .map(|i| {
                (0..batch)
                    .map(|b| samples.inputs[b * features + i])
                    .collect()
            })
            .collect();
        let row_cts = self.encrypt_samples(samples, rng)?;
        let col_cts = cols_key.encrypt_many(&cols, rng)?;
        let labels = self.labels_of(samples, batch, label_scale, rng)?;
        EncryptedBatch::new(samples.input_scale, row_cts, col_cts, labels)
    }

    /// One row-wise ciphertext per sample (the shape is checked by the caller).
    fn encrypt_samples<R: CryptoRng + ?Sized>(
        &self,
        samples: &Samples<'_>,
        rng: &mut R,
    ) -> Result<Vec<cryptonn_fe::feip::Ciphertext<G>>> {
        let rows: Vec<Vec<i64>> = samples
            .inputs
            .chunks(samples.features)
            .map(<[i64]>::to_vec)
            .collect();
        Ok(self.rows.encrypt_many(&rows, rng)?)
    }

    /// The samples' labels, encrypted, if they carry any.
    fn labels_of<R: CryptoRng + ?Sized>(
        &self,
        samples: &Samples<'_>,
        batch: usize,
        scale: i64,
        rng: &mut R,
    ) -> Result<Option<EncryptedLabels<G>>> {
        samples
            .labels
            .map(|(labels, classes)| {
                encrypt_labels(&self.labels, labels, classes, batch, scale, rng)
            })
            .transpose()
    }
}
