//! The one error type of the protocol and its roles.

use cryptonn_fe::KeyId;

/// Everything that can go wrong on the secure paths: FE failures, shapes that
/// do not match, and keys the authority refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The FE layer refused an input or a result was outside its bound.
    #[error(transparent)]
    Fe(#[from] cryptonn_fe::Error),
    /// A tensor or batch of the wrong shape.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// The expected dimensions.
        expected: Vec<usize>,
        /// The dimensions that were supplied.
        got: Vec<usize>,
    },
    /// An encrypted batch that contradicts itself (mixed master keys, wrong
    /// ciphertext dimensions, …).
    #[error("invalid encrypted batch: {0}")]
    InvalidBatch(String),
    /// The authority has no master key of that name.
    #[error("unknown master key {0}")]
    UnknownKey(KeyId),
    /// The authority's key policy refused a request.
    #[error("key request refused: {0}")]
    KeyRefused(String),
    /// An encrypted loss was asked of a batch without encrypted labels.
    #[error("the batch carries no encrypted labels")]
    MissingLabels,
    /// The audit log could not be written, so no key was handed out.
    #[error("audit log: {0}")]
    AuditLog(String),
    /// The key service could not be reached, or answered outside the protocol.
    #[error("key service: {0}")]
    Transport(String),
    /// The key service refused the requester's credential or role.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// A file that is missing, truncated or corrupt, named.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The authority's durable state could not be read or written.
    #[error("authority state: {0}")]
    Storage(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
