//! The encrypted-input tensor type.

use std::sync::Arc;

use cryptonn_fe::{Group, KeyId, febo, feip};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A batch of samples as the server receives it: ciphertexts only.
///
/// Shape `[batch, features]`. It holds two FEIP encryptions of the same
/// integer matrix X (e.g. raw pixels 0..255):
/// - **rows**: one ciphertext per sample (dimension `features`), under the
///   row-wise master key, for the forward pass z = X·W;
/// - **cols**: one ciphertext per feature (dimension `batch`), the rows of
///   Xᵀ, under the column-wise master key, for the weight gradient Xᵀ·δ;
///
/// and optionally the one-hot labels, FEBO-encrypted entry by entry.
///
/// The real input is X / `input_scale`. Deserialization validates every
/// ciphertext and the shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent, bound = "")]
pub struct EncryptedBatch<G: Group>(Parts<G>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct Parts<G: Group> {
    batch: usize,
    features: usize,
    input_scale: f64,
    rows: Arc<[feip::Ciphertext<G>]>,
    cols: Arc<[feip::Ciphertext<G>]>,
    labels: Option<EncryptedLabels<G>>,
}

/// The largest label scale a batch may declare: the loss computes with
/// y·scale and softmax·scale in i64, so this keeps every sum far from overflow.
pub const MAX_LABEL_SCALE: i64 = 1 << 30;

/// One-hot labels, `[batch, classes]` FEBO ciphertexts of yᵢⱼ·scale, row-major.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
pub struct EncryptedLabels<G: Group> {
    classes: usize,
    scale: i64,
    entries: Vec<febo::Ciphertext<G>>,
}

impl<G: Group> EncryptedLabels<G> {
    /// Assembles labels; they are checked against their batch when the
    /// batch is assembled.
    pub fn new(classes: usize, scale: i64, entries: Vec<febo::Ciphertext<G>>) -> Self {
        Self {
            classes,
            scale,
            entries,
        }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Units per 1.0 of the encrypted one-hot entries.
    pub fn scale(&self) -> i64 {
        self.scale
    }

    /// The ciphertexts, row-major `[batch, classes]`.
    pub fn entries(&self) -> &[febo::Ciphertext<G>] {
        &self.entries
    }
}

fn one_key<G: Group>(cts: &[feip::Ciphertext<G>], dim: usize, what: &str) -> Result<KeyId> {
    let id = cts
        .first()
        .map(feip::Ciphertext::id)
        .ok_or_else(|| Error::InvalidBatch(format!("no {what} ciphertexts")))?;
    for ct in cts {
        if ct.id() != id {
            return Err(Error::InvalidBatch(format!(
                "{what} ciphertexts under different master keys"
            )));
        }
        if ct.dim() != dim {
            return Err(Error::InvalidBatch(format!(
                "{what} ciphertext of dimension {} instead of {dim}",
                ct.dim()
            )));
        }
    }
    Ok(id)
}

/// A positive, finite input scale, and labels (if any) that fit `batch` samples.
pub(crate) fn check_scale_and_labels<G: Group>(
    input_scale: f64,
    labels: Option<&EncryptedLabels<G>>,
    batch: usize,
) -> Result<()> {
    if !(input_scale.is_finite() && input_scale > 0.0) {
        return Err(Error::InvalidBatch(format!(
            "input scale {input_scale} is not positive"
        )));
    }
    let fits = |l: &EncryptedLabels<G>| {
        l.classes > 0
            && (1..=MAX_LABEL_SCALE).contains(&l.scale)
            && l.entries.len() == batch * l.classes
    };
    if !labels.is_none_or(fits) {
        return Err(Error::InvalidBatch("labels do not match the batch".into()));
    }
    Ok(())
}

impl<G: Group> Parts<G> {
    fn validate(self) -> Result<EncryptedBatch<G>> {
        if self.rows.len() != self.batch || self.cols.len() != self.features {
            return Err(Error::Shape {
                what: "encrypted batch",
                expected: vec![self.batch, self.features],
                got: vec![self.rows.len(), self.cols.len()],
            });
        }
        let row_key = one_key(&self.rows, self.features, "row")?;
        let col_key = one_key(&self.cols, self.batch, "column")?;
        if row_key == col_key {
            return Err(Error::InvalidBatch(
                "rows and columns share one master key".into(),
            ));
        }
        check_scale_and_labels(self.input_scale, self.labels.as_ref(), self.batch)?;
        Ok(EncryptedBatch(self))
    }
}

impl<'de, G: Group> Deserialize<'de> for EncryptedBatch<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        Parts::deserialize(d)?
            .validate()
            .map_err(serde::de::Error::custom)
    }
}

/// Samples encrypted row-wise only, as projection mode needs them: one
/// ciphertext per sample under one master key, and optionally the labels.
/// No weight-gradient key can ever be asked for them.
#[derive(Clone, Debug, PartialEq)]
pub struct EncryptedRows<G: Group> {
    input_scale: f64,
    rows: Arc<[feip::Ciphertext<G>]>,
    labels: Option<EncryptedLabels<G>>,
}

impl<G: Group> EncryptedRows<G> {
    /// Assembles and validates row-wise ciphertexts.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for no rows, rows under different master keys
    /// or of different dimensions, a non-positive scale, or labels that do
    /// not match.
    pub fn new(
        input_scale: f64,
        rows: Vec<feip::Ciphertext<G>>,
        labels: Option<EncryptedLabels<G>>,
    ) -> Result<Self> {
        let dim = rows.first().map_or(0, feip::Ciphertext::dim);
        one_key(&rows, dim, "row")?;
        check_scale_and_labels(input_scale, labels.as_ref(), rows.len())?;
        Ok(Self {
            input_scale,
            rows: rows.into(),
            labels,
        })
    }

    /// `[samples, features]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows.len(), self.rows[0].dim()]
    }

    /// The real input is the encrypted integer divided by this.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// The row-wise master key.
    pub fn row_key(&self) -> KeyId {
        self.rows[0].id()
    }

    /// One ciphertext per sample.
    pub fn rows(&self) -> &[feip::Ciphertext<G>] {
        &self.rows
    }

    /// The encrypted one-hot labels, if the client sent them.
    pub fn labels(&self) -> Option<&EncryptedLabels<G>> {
        self.labels.as_ref()
    }

    /// Bytes of the ciphertexts per sample (row and labels), in memory
    /// encoding size (`G::ELEMENT_LEN` per element).
    pub fn ciphertext_bytes_per_sample(&self) -> usize {
        let [_, n] = self.shape();
        let labels = self.labels().map_or(0, |l| 2 * l.classes);
        (n + 1 + labels) * G::ELEMENT_LEN
    }
}

impl<G: Group> EncryptedBatch<G> {
    /// Assembles and validates a batch.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::InvalidBatch`] when the pieces disagree.
    pub fn new(
        input_scale: f64,
        rows: Vec<feip::Ciphertext<G>>,
        cols: Vec<feip::Ciphertext<G>>,
        labels: Option<EncryptedLabels<G>>,
    ) -> Result<Self> {
        let (batch, features) = (rows.len(), cols.len());
        Parts {
            batch,
            features,
            input_scale,
            rows: rows.into(),
            cols: cols.into(),
            labels,
        }
        .validate()
    }

    /// `[batch, features]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.0.batch, self.0.features]
    }

    /// The real input is the encrypted integer divided by this.
    pub fn input_scale(&self) -> f64 {
        self.0.input_scale
    }

    /// The group of every ciphertext.
    pub fn group(&self) -> cryptonn_fe::GroupId {
        G::ID
    }

    /// The row-wise master key (dimension `features`).
    pub fn row_key(&self) -> KeyId {
        self.0.rows[0].id()
    }

    /// The column-wise master key (dimension `batch`).
    pub fn col_key(&self) -> KeyId {
        self.0.cols[0].id()
    }

    /// One ciphertext per sample.
    pub fn rows(&self) -> &[feip::Ciphertext<G>] {
        &self.0.rows
    }

    /// One ciphertext per feature (the rows of Xᵀ), shared cheaply.
    pub fn cols(&self) -> Arc<[feip::Ciphertext<G>]> {
        self.0.cols.clone()
    }

    /// The encrypted one-hot labels, if the client sent them.
    pub fn labels(&self) -> Option<&EncryptedLabels<G>> {
        self.0.labels.as_ref()
    }

    /// Bytes of the ciphertexts per sample (rows + columns + labels), in memory
    /// encoding size (`G::ELEMENT_LEN` per element).
    pub fn ciphertext_bytes_per_sample(&self) -> usize {
        let [b, n] = self.shape();
        let feip_elements = b * (n + 1) + n * (b + 1);
        let label_elements = self.labels().map_or(0, |l| 2 * l.entries.len());
        (feip_elements + label_elements) * G::ELEMENT_LEN / b.max(1)
    }
}
