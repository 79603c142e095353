//! Softmax cross-entropy against FEBO-encrypted one-hot labels.
//!
//! The gradient of the mean cross-entropy with respect to the logits is
//! (softmax(z) − y) / batch. The server knows softmax(z); for each entry it
//! asks the authority for a FEBO key computing `y·s − round(p·s)` on that
//! label's ciphertext (s the label scale) and decrypts it.
//!
//! # Security
//! This is the paper's protocol, and it hands the labels to the server: it
//! knows round(p·s), so the decrypted difference reveals y exactly. The loss
//! value reported is therefore the true cross-entropy.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use cryptonn_fe::Group;
use cryptonn_protocol::EncryptedLabels;

use crate::{Error, Result};

use crate::context::SecureContext;

/// The result of [`cross_entropy_encrypted`].
#[derive(Debug)]
pub struct EncryptedLoss {
    /// A scalar whose gradient with respect to the logits is (softmax − y)/batch:
    /// call `.backward()` on it as on an ordinary loss.
    pub surrogate: Tensor<1>,
    /// The mean cross-entropy of the batch (the server can compute it; see the module docs).
    pub loss: f64,
}

/// Mean softmax cross-entropy of `logits` (`[batch, classes]`) against encrypted labels.
///
/// # Errors
/// [`Error::Shape`] if the logits do not match the labels; key refusals and
/// FE errors from decryption.
pub fn cross_entropy_encrypted<G: Group>(
    logits: Tensor<2>,
    labels: &EncryptedLabels<G>,
    ctx: &SecureContext<G>,
) -> Result<EncryptedLoss> {
    let [batch, classes] = logits.dims();
    if classes != labels.classes() || batch * classes != labels.entries().len() {
        return Err(Error::Shape {
            what: "logits for encrypted labels",
            expected: vec![
                labels.entries().len() / labels.classes().max(1),
                labels.classes(),
            ],
            got: vec![batch, classes],
        });
    }
    let log_p = log_softmax(logits.clone().detach(), 1)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| Error::TensorRead(format!("{e:?}")))?;
    let scale = labels.scale();
    let p_int: Vec<i64> = log_p
        .iter()
        .map(|&lp| (f64::from(lp).exp() * scale as f64).round() as i64)
        .collect();
    let diffs = ctx.server().subtract(labels, &p_int)?;
    let norm = scale as f64 * batch as f64;
    let grad: Vec<f32> = diffs.iter().map(|&d| (-(d as f64) / norm) as f32).collect();
    let mut loss = 0.0;
    for (b, row) in diffs.chunks(classes).enumerate() {
        for (c, &d) in row.iter().enumerate() {
            // y = (d + round(p·s)) / s, 0 or 1 up to rounding.
            if (d + p_int[b * classes + c]) * 2 > scale {
                loss -= f64::from(log_p[b * classes + c]);
            }
        }
    }
    let grad = Tensor::<2>::from_data(TensorData::new(grad, [batch, classes]), &logits.device());
    Ok(EncryptedLoss {
        surrogate: (logits * grad).sum(),
        loss: loss / batch as f64,
    })
}
