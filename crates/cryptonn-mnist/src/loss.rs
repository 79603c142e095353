//! A step's loss: cross-entropy against plaintext targets, or against the
//! FEBO-encrypted labels a batch file carries.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Gradients, Int, Tensor};
use cryptonn_burn::SecureContext;
use cryptonn_burn::encrypted_loss::cross_entropy_encrypted;
use cryptonn_fe::Group;

use super::config::TrainError;
use super::reader::BatchFile;
use super::secure_model::SecureModel;

/// A batch's cross-entropy against `targets`: its value and the loss to
/// differentiate.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> (f64, Tensor<1>) {
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets);
    (f64::from(loss.clone().into_scalar::<f32>()), loss)
}

/// A plaintext batch's cross-entropy against `targets`, and its gradients.
pub fn cross_entropy_step(logits: Tensor<2>, targets: Tensor<1, Int>) -> (f64, Gradients) {
    let (value, loss) = cross_entropy(logits, targets);
    (value, loss.backward())
}

/// One secure training step on an encrypted batch: the first layer
/// decrypted with function keys, the loss against `targets` or, without
/// them, the batch's FEBO-encrypted labels, and the gradients through the
/// secure layer's node (checked: a failed backward pass is the step's error).
///
/// # Errors
/// A refused key, a value out of the discrete-log bound, a batch without
/// encrypted labels when `targets` is `None`.
pub fn encrypted_step<G: Group, M: SecureModel<G>>(
    model: &M,
    input: &M::Input,
    ctx: &SecureContext<G>,
    targets: Option<Tensor<1, Int>>,
) -> Result<(f64, Gradients), TrainError> {
    let logits = model.logits_encrypted(input, ctx)?;
    match (targets, input.labels()) {
        (Some(targets), _) => {
            let (value, loss) = cross_entropy(logits, targets);
            Ok((value, ctx.backward(loss)?))
        }
        (None, Some(labels)) => {
            let out = cross_entropy_encrypted(logits, labels, ctx)?;
            Ok((out.loss, ctx.backward(out.surrogate)?))
        }
        (None, None) => Err(TrainError::Config(
            "the batch holds no encrypted labels and no plaintext ones were given".into(),
        )),
    }
}
