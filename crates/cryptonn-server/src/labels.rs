//! FEBO-encrypted one-hot labels, seen from the server.
//!
//! # Security
//! The paper's protocol hands the labels to the server: to compute the
//! output error it asks for y·s − round(p·s) with round(p·s) known, which
//! reveals y exactly. [`Server::decrypt_labels`] takes them once.

use cryptonn_fe::Group;
use cryptonn_fe::febo::{self, Op};
use cryptonn_protocol::{EncryptedLabels, Error, FeboKeyRequest, Result};
use rayon::prelude::*;

use crate::server::{Phase, Server};

impl<G: Group> Server<G> {
    /// Decrypts `y·s − operand` for every label entry, one FEBO key each.
    ///
    /// # Errors
    /// [`Error::MissingLabels`] for no entries; key refusals and FE errors
    /// from decryption.
    pub fn subtract(&self, labels: &EncryptedLabels<G>, operands: &[i64]) -> Result<Vec<i64>> {
        let entries = labels.entries();
        let requests: Vec<FeboKeyRequest<G>> = entries
            .iter()
            .zip(operands)
            .map(|(ct, &p)| FeboKeyRequest {
                commitment: ct.commitment().clone(),
                op: Op::Sub,
                operand: p,
            })
            .collect();
        let instance = entries
            .first()
            .map(febo::Ciphertext::id)
            .ok_or(Error::MissingLabels)?;
        let keys = self.timed(Phase::KeyDerivation, || {
            self.keys().febo_keys(instance, &requests)
        })?;
        let table = self.decryptor().table();
        self.timed(Phase::Decryption, || {
            keys.par_iter()
                .zip(entries)
                .map(|(key, ct)| febo::decrypt(table, key, ct))
                .collect::<cryptonn_fe::Result<Vec<i64>>>()
        })
        .map_err(Into::into)
    }

    /// The class indices of encrypted one-hot labels, decrypted once (a FEBO
    /// key for `y·s − 0` per entry).
    ///
    /// Projection mode trains every layer after the first in the clear for
    /// many epochs, so it takes the labels once rather than through a FEBO
    /// subtraction per step; the server learns them either way (see the
    /// module docs).
    ///
    /// # Errors
    /// Key refusals and FE errors from decryption; [`Error::InvalidBatch`] if
    /// a row is not one-hot.
    pub fn decrypt_labels(&self, labels: &EncryptedLabels<G>) -> Result<Vec<usize>> {
        let values = self.subtract(labels, &vec![0; labels.entries().len()])?;
        values
            .chunks(labels.classes())
            .map(|row| {
                let hot: Vec<usize> = (0..row.len()).filter(|&c| row[c] != 0).collect();
                match hot.as_slice() {
                    [c] if row[*c] == labels.scale() => Ok(*c),
                    _ => Err(Error::InvalidBatch("a label is not one-hot".into())),
                }
            })
            .collect()
    }
}
