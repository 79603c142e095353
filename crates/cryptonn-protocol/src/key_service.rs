//! What the server may ask of the authority, and what a client needs from it.

use cryptonn_fe::febo::Op;
use cryptonn_fe::{Group, KeyId, febo, feip};
use serde::{Deserialize, Serialize};

use crate::Result;

/// What the server may ask of the authority. The server holds only a
/// `&dyn KeyService`: no path from it leads to a master secret key.
pub trait KeyService<G: Group>: Send + Sync {
    /// FEIP function keys for `ys` under the master key `instance`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`](crate::Error::UnknownKey), [`Error::KeyRefused`](crate::Error::KeyRefused) by the policy, or a
    /// length mismatch.
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>>;

    /// FEBO keys, one per request, under the FEBO master key `instance`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`](crate::Error::UnknownKey), [`Error::KeyRefused`](crate::Error::KeyRefused), or an FE error (e.g.
    /// division by zero).
    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>>;
}

/// One FEBO key request: `x op operand` on the ciphertext with commitment `commitment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
pub struct FeboKeyRequest<G: Group> {
    /// The commitment of the one ciphertext the key will work on.
    pub commitment: G::Element,
    /// The operation.
    pub op: Op,
    /// The plaintext operand.
    pub operand: i64,
}

/// The public keys a client needs for one batch: a fresh FEIP master key for
/// the rows (dimension `features`), one for the columns (dimension `batch`),
/// and a FEBO key for the labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct BatchPublicKeys<G: Group> {
    /// For the row-wise ciphertexts.
    pub rows: feip::MasterPublicKey<G>,
    /// For the column-wise ciphertexts.
    pub cols: feip::MasterPublicKey<G>,
    /// For the labels.
    pub labels: febo::MasterPublicKey<G>,
}

/// The public keys a client needs to encrypt samples row-wise only (no
/// weight gradient will be asked for, as in projection mode): a fresh FEIP
/// master key for the rows and a FEBO key for the labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RowPublicKeys<G: Group> {
    /// For the row-wise ciphertexts.
    pub rows: feip::MasterPublicKey<G>,
    /// For the labels.
    pub labels: febo::MasterPublicKey<G>,
}
