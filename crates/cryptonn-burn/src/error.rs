//! The one error type of the Burn glue.

/// What can go wrong in a secure layer, a secure loss or a secure step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protocol failed: the authority refused a key, a value was outside
    /// the discrete-log bound, the key service could not be reached, an
    /// encrypted batch contradicts itself.
    #[error(transparent)]
    Protocol(#[from] cryptonn_protocol::Error),
    /// A tensor, weight or batch of the wrong shape for the layer.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// The expected dimensions.
        expected: Vec<usize>,
        /// The dimensions that were supplied.
        got: Vec<usize>,
    },
    /// Burn could not read a tensor back to the host.
    #[error("could not read tensor data: {0}")]
    TensorRead(String),
    /// A configuration or a layer that cannot serve the request (a plain
    /// layer given ciphertexts, a projection wider than its input).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A secure backward pass failed, so the weight gradient it registered
    /// is zero and the step must be discarded. Returned by
    /// [`SecureContext::backward`](crate::SecureContext::backward), and by
    /// the next secure forward pass if a step called `loss.backward()`
    /// directly and never looked.
    #[error("the secure backward pass failed (its weight gradient is void): {0}")]
    Backward(Box<Error>),
}

impl From<cryptonn_fe::Error> for Error {
    fn from(e: cryptonn_fe::Error) -> Self {
        Self::Protocol(e.into())
    }
}

impl Error {
    /// The authority's reason if this is a refused key (a spent budget, a
    /// vector its policy does not approve), also inside a failed backward
    /// pass: a reason to stop training cleanly rather than a broken run.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Protocol(cryptonn_protocol::Error::KeyRefused(why)) => Some(why),
            Self::Backward(inner) => inner.refusal(),
            _ => None,
        }
    }
}

/// The Burn glue's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
