//! MNIST as the runs see it: the client's [`Dataset`] (IDX files, pixels,
//! labels), the fixed batches, and the same images as Burn tensors for the
//! plaintext runs and the test accuracy.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cryptonn_burn::train::TestSet;
use cryptonn_client::{PIXEL_SCALE, batches};

use super::config::{TrainError, TrainingConfig};
pub use cryptonn_client::dataset::{Dataset, Split};
pub use cryptonn_client::idx::DataError;

/// Images and labels of a [`Dataset`] as tensors.
pub trait Tensors {
    /// Images `indices` as a `[len, features]` tensor scaled to [0, 1].
    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<2>;

    /// The labels of images `indices` as a `[len]` tensor of class indices.
    fn targets(&self, indices: &[usize], device: &Device) -> Tensor<1, Int>;
}

impl Tensors for Dataset {
    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let x: Vec<f32> = self
            .pixels(indices)
            .iter()
            .map(|&p| (p as f64 / PIXEL_SCALE) as f32)
            .collect();
        Tensor::from_data(TensorData::new(x, [indices.len(), self.features]), device)
    }

    fn targets(&self, indices: &[usize], device: &Device) -> Tensor<1, Int> {
        let y: Vec<i64> = self.labels_of(indices).iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(y, [indices.len()]), device)
    }
}

/// Images as the Learner's test set.
struct TestImages(Arc<Dataset>);

impl TestSet for TestImages {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn items(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        self.0.inputs(indices, device)
    }

    fn classes(&self, indices: &[usize]) -> Vec<usize> {
        self.0.labels_of(indices)
    }
}

/// `images` as the test set the Learner validates on.
pub fn test_set(images: &Arc<Dataset>) -> Arc<dyn TestSet> {
    Arc::new(TestImages(images.clone()))
}

/// The fixed batches of a run: lists of training-image indices.
pub type Batches = Arc<[Vec<usize>]>;

/// What every run trains and tests on, shared with the Learner's steps.
#[derive(Debug, Clone)]
pub struct Data {
    /// The first `train_size` training images.
    pub train: Arc<Dataset>,
    /// The first `test_size` test images.
    pub test: Arc<Dataset>,
    /// The fixed batches of the training images.
    pub batches: Batches,
}

impl Data {
    /// The training and test images in `data_dir`, and the fixed batches.
    ///
    /// # Errors
    /// Missing or corrupt files, images of another width than the model's,
    /// or too few images for one batch.
    pub fn load(config: &TrainingConfig, data_dir: &Path) -> Result<Self, TrainError> {
        let classes = config.model.classes;
        let train = Dataset::load(data_dir, Split::Train, classes)?.truncate(config.train_size);
        let test = Dataset::load(data_dir, Split::Test, classes)?.truncate(config.test_size);
        if train.features != config.model.d_input {
            return Err(TrainError::Config(format!(
                "the data has {} features, the model expects {}",
                train.features, config.model.d_input
            )));
        }
        let batches = train_batches(config, train.len());
        if batches.is_empty() {
            return Err(TrainError::Config(format!(
                "{} training images make no batch of {}",
                train.len(),
                config.batch_size
            )));
        }
        Ok(Self {
            train: Arc::new(train),
            test: Arc::new(test),
            batches: batches.into(),
        })
    }
}

/// Fixed batch compositions: the first `available` training images shuffled
/// once by the seed (the client's and the trainer's alike).
pub fn train_batches(config: &TrainingConfig, available: usize) -> Vec<Vec<usize>> {
    batches::shuffled(config.seed, available, config.batch_size)
}

/// The encrypted test images: the first `secure_test_size`, in whole batches.
pub fn test_batches(config: &TrainingConfig, test: &Dataset) -> Vec<Vec<usize>> {
    batches::leading(config.secure_test_size.min(test.len()), config.batch_size)
}
