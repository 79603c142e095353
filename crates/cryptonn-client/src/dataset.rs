//! A data owner's labelled images: MNIST, or any dataset in the same
//! four-file IDX layout.

use std::path::Path;

use crate::idx::{self, DataError};

/// Which half of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`.
    Train,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`.
    Test,
}

/// Images and labels of one split.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Row-major `[count, features]` pixels, 0..255.
    pub images: Vec<u8>,
    /// One class index per image.
    pub labels: Vec<u8>,
    /// Pixels per image.
    pub features: usize,
}

impl Dataset {
    /// Loads a split from `dir`.
    ///
    /// # Errors
    /// A missing or corrupt file, mismatched counts, or a label ≥ `classes`.
    pub fn load(dir: &Path, split: Split, classes: usize) -> Result<Self, DataError> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let images_path = dir.join(format!("{prefix}-images-idx3-ubyte"));
        let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte"));
        let images = idx::read(&images_path, 3)?;
        let labels = idx::read(&labels_path, 1)?;
        let bad = |reason: String| DataError::Format {
            path: labels_path.clone(),
            reason,
        };
        if images.dims[0] != labels.dims[0] {
            return Err(bad(format!(
                "{} labels for {} images",
                labels.dims[0], images.dims[0]
            )));
        }
        if let Some(l) = labels.data.iter().find(|&&l| usize::from(l) >= classes) {
            return Err(bad(format!("label {l} outside 0..{classes}")));
        }
        Ok(Self {
            features: images.dims[1] * images.dims[2],
            images: images.data,
            labels: labels.data,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` images (all if there are fewer).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * self.features);
        self.labels.truncate(n);
        self
    }

    /// The pixels of images `indices`, row-major, as integers.
    pub fn pixels(&self, indices: &[usize]) -> Vec<i64> {
        indices
            .iter()
            .flat_map(|&i| {
                self.images[i * self.features..(i + 1) * self.features]
                    .iter()
                    .map(|&p| i64::from(p))
            })
            .collect()
    }

    /// The mean image, pixel by pixel, in [0, 1] (zeros if there are no images).
    pub fn mean_image(&self) -> Vec<f32> {
        let mut sum = vec![0u64; self.features];
        for image in self.images.chunks_exact(self.features.max(1)) {
            sum.iter_mut()
                .zip(image)
                .for_each(|(s, &p)| *s += u64::from(p));
        }
        let n = (self.len().max(1) * 255) as f32;
        sum.into_iter().map(|s| s as f32 / n).collect()
    }

    /// The labels of images `indices`.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<usize> {
        indices
            .iter()
            .map(|&i| usize::from(self.labels[i]))
            .collect()
    }
}
