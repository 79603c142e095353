//! Errors of the authority's durable state and of its HTTPS service.

use std::path::PathBuf;

use cryptonn_fe::{GroupId, KeyId};

/// What can go wrong opening, writing or serving the authority's state.
///
/// Key requests keep answering [`cryptonn_protocol::Error`]; a failure of
/// the state reaches them as [`cryptonn_protocol::Error::Storage`] (see the
/// `From` impl), which the service answers with a 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The key-encryption key does not open this state: its check value
    /// fails to authenticate.
    #[error("wrong key-encryption key: it does not unlock this authority's state")]
    WrongKek,
    /// No key-encryption key was given.
    #[error("no key-encryption key: {0}")]
    NoKek(String),
    /// A key-encryption key that is too short, unreadable, or whose file
    /// others may read.
    #[error("key-encryption key {}: {reason}", path.display())]
    KekFile {
        /// The file (or `$CRYPTONN_KEK`).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory of the state could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// `init` on a directory that already holds something.
    #[error("{}: not empty; init needs a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    /// The database refused a statement or could not be opened.
    #[error("database: {0}")]
    Database(String),
    /// A value in the state that cannot be right: a sealed key that fails
    /// to open, a vector of the wrong length, a rank that replays differently.
    #[error("corrupt authority state: {0}")]
    Corrupt(String),
    /// The state was created for another group than the one asked for.
    #[error("the state holds keys of group {stored}, not {asked}")]
    WrongGroup {
        /// The group at init.
        stored: GroupId,
        /// The group of the caller.
        asked: GroupId,
    },
    /// A master key that the state does not hold.
    #[error("unknown master key {0}")]
    UnknownKey(KeyId),
    /// A token name or role that cannot be used.
    #[error("invalid token: {0}")]
    Token(String),
    /// The certificate or the TLS configuration could not be built or read.
    #[error("TLS: {0}")]
    Tls(String),
    /// The service could not start or stopped with an error.
    #[error("service: {0}")]
    Service(String),
    /// An error of the key-service layer.
    #[error(transparent)]
    Protocol(#[from] cryptonn_protocol::Error),
}

/// `Result` with [`StateError`].
pub type StateResult<T> = core::result::Result<T, StateError>;

impl From<rusqlite::Error> for StateError {
    fn from(e: rusqlite::Error) -> Self {
        StateError::Database(e.to_string())
    }
}

impl StateError {
    /// An [`StateError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, e: impl core::fmt::Display) -> Self {
        StateError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}

impl From<StateError> for cryptonn_protocol::Error {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Protocol(e) => e,
            StateError::UnknownKey(id) => cryptonn_protocol::Error::UnknownKey(id),
            other => cryptonn_protocol::Error::Storage(other.to_string()),
        }
    }
}
