//! The encrypted input of a secure convolution.

use std::sync::Arc;

use cryptonn_fe::{Group, KeyId, feip};
use serde::{Deserialize, Serialize};

use crate::batch::check_scale_and_labels;
use crate::{EncryptedLabels, Error, PatchGeometry, Result};

/// A batch of images as a secure convolution's server receives it:
/// ciphertexts only.
///
/// It holds two FEIP encryptions of the same images X (`[images, C, H, W]`
/// integers, e.g. raw pixels 0..255):
/// - **rows**: one ciphertext per image (dimension `C·H·W`), under the
///   row-wise master key, for the forward pass: with keys for every `E_p·W_c`
///   the server decrypts each output ⟨patch(x, p), W_c⟩;
/// - **batch**: one ciphertext of the whole batch (dimension
///   `images·C·H·W`, image-major), under the column-wise master key, for the
///   kernel gradient: with keys for every `G_j·δ_c` the server decrypts each
///   entry Σ_b Σ_p δ_b,p,c · patch(x_b, p)_j;
///
/// and optionally the one-hot labels, FEBO-encrypted entry by entry, as an
/// [`EncryptedBatch`](crate::EncryptedBatch) carries them.
///
/// ([`PatchGeometry`] has `E_p` and `G_j`.) The real input is X /
/// `input_scale`. Deserialization validates every ciphertext and the shape;
/// its JSON has a `labels` field only when there are labels (never `null`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent, bound = "")]
pub struct EncryptedImages<G: Group>(ImageParts<G>);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
struct ImageParts<G: Group> {
    geometry: PatchGeometry,
    input_scale: f64,
    rows: Arc<[feip::Ciphertext<G>]>,
    batch: Arc<[feip::Ciphertext<G>]>,
    // Absent rather than `null` when there are none, so that values written
    // before labels existed read back, and each value has one encoding.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::optional_field::present"
    )]
    labels: Option<EncryptedLabels<G>>,
}

impl<G: Group> ImageParts<G> {
    fn validate(self) -> Result<EncryptedImages<G>> {
        let pixels = self.geometry.pixels();
        let images = self.rows.len();
        let batch_dim = images.checked_mul(pixels);
        let row_key = self.rows.first().map(feip::Ciphertext::id);
        let shape_ok = images > 0
            && self.batch.len() == 1
            && self
                .rows
                .iter()
                .all(|ct| ct.dim() == pixels && Some(ct.id()) == row_key)
            && Some(self.batch[0].dim()) == batch_dim;
        if !shape_ok {
            return Err(Error::Shape {
                what: "encrypted images [images, pixels] (one row key, one batch ciphertext)",
                expected: vec![images.max(1), pixels],
                got: vec![
                    images,
                    self.rows.first().map_or(0, feip::Ciphertext::dim),
                    self.batch.len(),
                ],
            });
        }
        if row_key == Some(self.batch[0].id()) {
            return Err(Error::InvalidBatch(
                "rows and batch share one master key".into(),
            ));
        }
        check_scale_and_labels(self.input_scale, self.labels.as_ref(), images)?;
        Ok(EncryptedImages(self))
    }
}

impl<'de, G: Group> Deserialize<'de> for EncryptedImages<G> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        ImageParts::deserialize(d)?
            .validate()
            .map_err(serde::de::Error::custom)
    }
}

impl<G: Group> EncryptedImages<G> {
    /// Assembles and validates encrypted images.
    ///
    /// # Errors
    /// [`Error::Shape`] unless there is at least one row, every row is an
    /// image of `geometry` under one master key, and `batch` is their
    /// concatenation's dimension; [`Error::InvalidBatch`] if both share a
    /// master key or the scale is not positive.
    pub fn new(
        geometry: PatchGeometry,
        input_scale: f64,
        rows: Vec<feip::Ciphertext<G>>,
        batch: feip::Ciphertext<G>,
    ) -> Result<Self> {
        ImageParts {
            geometry,
            input_scale,
            rows: rows.into(),
            batch: Arc::new([batch]),
            labels: None,
        }
        .validate()
    }

    /// The same images with these encrypted one-hot labels (replacing any).
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] unless the labels have at least one class, a
    /// scale in 1 ..= [`MAX_LABEL_SCALE`](crate::batch::MAX_LABEL_SCALE) and
    /// exactly `images · classes` entries.
    pub fn with_labels(self, labels: EncryptedLabels<G>) -> Result<Self> {
        ImageParts {
            labels: Some(labels),
            ..self.0
        }
        .validate()
    }

    /// The convolution's geometry, image shape included.
    pub fn geometry(&self) -> &PatchGeometry {
        &self.0.geometry
    }

    /// Images in the batch.
    pub fn images(&self) -> usize {
        self.0.rows.len()
    }

    /// The real input is the encrypted integer divided by this.
    pub fn input_scale(&self) -> f64 {
        self.0.input_scale
    }

    /// The row-wise master key (dimension: pixels).
    pub fn row_key(&self) -> KeyId {
        self.0.rows[0].id()
    }

    /// The column-wise master key (dimension: images·pixels).
    pub fn col_key(&self) -> KeyId {
        self.0.batch[0].id()
    }

    /// One ciphertext per image.
    pub fn rows(&self) -> &[feip::Ciphertext<G>] {
        &self.0.rows
    }

    /// The one ciphertext of the whole batch, shared cheaply.
    pub fn batch(&self) -> Arc<[feip::Ciphertext<G>]> {
        self.0.batch.clone()
    }

    /// The encrypted one-hot labels, if the client sent them.
    pub fn labels(&self) -> Option<&EncryptedLabels<G>> {
        self.0.labels.as_ref()
    }

    /// Bytes of the ciphertexts per image (its row, its share of the batch
    /// ciphertext, the batch's ct₀ counted whole, and its labels if any), in
    /// memory encoding size.
    pub fn ciphertext_bytes_per_image(&self) -> usize {
        let labels = self.labels().map_or(0, |l| 2 * l.classes());
        (2 * self.0.geometry.pixels() + 2 + labels) * G::ELEMENT_LEN
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

    use super::*;
    use cryptonn_fe::{Ristretto255, febo};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    type G = Ristretto255;

    fn geometry() -> PatchGeometry {
        PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap()
    }

    fn encrypt(dim: usize, copies: usize, rng: &mut StdRng) -> Vec<feip::Ciphertext<G>> {
        let (_, mpk) = feip::setup::<G, _>(dim, rng).unwrap();
        (0..copies)
            .map(|_| feip::encrypt(&mpk, &vec![1; dim], rng).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_through_json() {
        let rng = &mut StdRng::seed_from_u64(1);
        let rows = encrypt(9, 2, rng);
        let batch = encrypt(18, 1, rng).pop().unwrap();
        let images = EncryptedImages::new(geometry(), 255.0, rows, batch).unwrap();
        assert_eq!(images.images(), 2);
        let json = serde_json::to_string(&images).unwrap();
        assert_eq!(
            serde_json::from_str::<EncryptedImages<G>>(&json).unwrap(),
            images
        );
    }

    /// `images · classes` one-hot entries (class 0 for every image).
    fn labels(images: usize, classes: usize, rng: &mut StdRng) -> EncryptedLabels<G> {
        let (_, mpk) = febo::setup::<G, _>(rng);
        let entries = (0..images * classes)
            .map(|k| febo::encrypt(&mpk, if k % classes == 0 { 10 } else { 0 }, rng).unwrap())
            .collect();
        EncryptedLabels::new(classes, 10, entries)
    }

    fn two_images(rng: &mut StdRng) -> EncryptedImages<G> {
        let rows = encrypt(9, 2, rng);
        let batch = encrypt(18, 1, rng).pop().unwrap();
        EncryptedImages::new(geometry(), 255.0, rows, batch).unwrap()
    }

    #[test]
    fn labelled_round_trips_through_json() {
        let rng = &mut StdRng::seed_from_u64(3);
        let plain = two_images(rng);
        let json = serde_json::to_value(&plain).unwrap();
        // Values without labels keep the JSON they had before labels existed.
        assert!(json.get("labels").is_none(), "{json}");
        let labelled = plain.clone().with_labels(labels(2, 3, rng)).unwrap();
        assert_eq!(labelled.labels().map(EncryptedLabels::classes), Some(3));
        assert_eq!(plain.labels(), None);
        assert_eq!(
            labelled.ciphertext_bytes_per_image(),
            plain.ciphertext_bytes_per_image() + 6 * 32
        );
        let json = serde_json::to_string(&labelled).unwrap();
        assert_eq!(
            serde_json::from_str::<EncryptedImages<G>>(&json).unwrap(),
            labelled
        );
    }

    #[test]
    fn rejects_labels_that_do_not_fit() {
        let rng = &mut StdRng::seed_from_u64(4);
        let images = two_images(rng);
        for wrong in [labels(1, 3, rng), labels(3, 3, rng)] {
            let err = images.clone().with_labels(wrong).unwrap_err();
            assert!(err.to_string().contains("labels do not match"), "{err}");
        }
        let entries = labels(2, 2, rng).entries().to_vec();
        for (classes, scale) in [(2, 0), (2, crate::batch::MAX_LABEL_SCALE + 1), (0, 10)] {
            let bad = EncryptedLabels::new(classes, scale, entries.clone());
            assert!(
                images.clone().with_labels(bad).is_err(),
                "{classes} {scale}"
            );
        }
        // On the wire: too few entries, and `null` (absent is the one form of none).
        let good = images.with_labels(labels(2, 2, rng)).unwrap();
        let mut json = serde_json::to_value(&good).unwrap();
        json["labels"]["entries"].as_array_mut().unwrap().pop();
        assert!(serde_json::from_value::<EncryptedImages<G>>(json.clone()).is_err());
        json["labels"] = serde_json::Value::Null;
        assert!(serde_json::from_value::<EncryptedImages<G>>(json).is_err());
    }

    #[test]
    fn rejects_pieces_that_disagree() {
        let rng = &mut StdRng::seed_from_u64(2);
        let rows = encrypt(9, 2, rng);
        let batch = encrypt(18, 1, rng).pop().unwrap();
        let wrong_batch = encrypt(27, 1, rng).pop().unwrap();
        let wrong_rows = encrypt(8, 2, rng);
        let g = geometry();
        assert!(EncryptedImages::new(g, 255.0, rows.clone(), wrong_batch).is_err());
        assert!(EncryptedImages::new(g, 255.0, wrong_rows, batch.clone()).is_err());
        assert!(EncryptedImages::new(g, 255.0, vec![], batch.clone()).is_err());
        assert!(EncryptedImages::new(g, 0.0, rows.clone(), batch.clone()).is_err());
        // Rows under two master keys.
        let mixed = vec![rows[0].clone(), encrypt(9, 1, rng).pop().unwrap()];
        assert!(EncryptedImages::new(g, 255.0, mixed, batch.clone()).is_err());
        // The same key on both sides: only possible with one image.
        let one = encrypt(9, 2, rng);
        assert!(EncryptedImages::new(g, 255.0, vec![one[0].clone()], one[1].clone()).is_err());
        // Two batch ciphertexts on the wire.
        let mut json: serde_json::Value =
            serde_json::to_value(EncryptedImages::new(g, 255.0, rows, batch.clone()).unwrap())
                .unwrap();
        let second = serde_json::to_value(&batch).unwrap();
        json["batch"].as_array_mut().unwrap().push(second);
        assert!(serde_json::from_value::<EncryptedImages<G>>(json).is_err());
    }
}
