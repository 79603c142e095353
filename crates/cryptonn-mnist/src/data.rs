//! MNIST as the runs see it: the client's [`Dataset`] (IDX files, pixels,
//! labels), and the same images as Burn tensors for the plaintext runs and
//! the test accuracy.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cryptonn_burn::train::TestSet;
use cryptonn_client::PIXEL_SCALE;
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
