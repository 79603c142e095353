//! What the runner asks of a model: plaintext logits for rows of inputs,
//! and, for a model whose first layer is secure, logits from the
//! ciphertexts its client writes.

use burn::tensor::Tensor;
use cryptonn_burn::train::Trainable;
use cryptonn_burn::{EncryptedBatch, EncryptedImages, SecureContext};
use cryptonn_fe::Group;

use super::lenet::LeNet;
use super::mlp::Mlp;
use super::reader::BatchFile;

/// A model the runner trains and tests.
pub trait JobModel: Trainable {
    /// Logits for inputs given as rows (`[n, features]`: pixels in [0, 1],
    /// or the features of projection mode).
    fn logits(&self, rows: Tensor<2>) -> Tensor<2>;
}

/// A model whose first layer reads ciphertexts.
pub trait SecureModel<G: Group>: JobModel {
    /// What its client writes, one file per batch.
    type Input: BatchFile<G>;

    /// Logits for one encrypted batch.
    ///
    /// # Errors
    /// The secure layer's errors (a refused key, a value out of bound).
    fn logits_encrypted(
        &self,
        input: &Self::Input,
        ctx: &SecureContext<G>,
    ) -> cryptonn_burn::Result<Tensor<2>>;
}

impl JobModel for Mlp {
    fn logits(&self, rows: Tensor<2>) -> Tensor<2> {
        self.forward_plain(rows)
    }
}

impl<G: Group> SecureModel<G> for Mlp {
    type Input = EncryptedBatch<G>;

    fn logits_encrypted(
        &self,
        input: &EncryptedBatch<G>,
        ctx: &SecureContext<G>,
    ) -> cryptonn_burn::Result<Tensor<2>> {
        self.forward_encrypted(input, ctx)
    }
}

impl JobModel for LeNet {
    fn logits(&self, rows: Tensor<2>) -> Tensor<2> {
        let [n, pixels] = rows.dims();
        let side = pixels.isqrt();
        self.forward_plain(rows.reshape([n, 1, side, side]))
    }
}

impl<G: Group> SecureModel<G> for LeNet {
    type Input = EncryptedImages<G>;

    fn logits_encrypted(
        &self,
        input: &EncryptedImages<G>,
        ctx: &SecureContext<G>,
    ) -> cryptonn_burn::Result<Tensor<2>> {
        self.forward_encrypted(input, ctx)
    }
}
