//! The server's context inside Burn: the role's [`Server`] plus what the
//! secure layers need to quantize and to report errors from a backward pass.

use std::sync::{Arc, Mutex};

use cryptonn_fe::Group;
use cryptonn_fe::feip::Decryptor;
use cryptonn_protocol::{Error, KeyService, Result};
use cryptonn_server::{PhaseTimes, Server};

use crate::quantize::QuantizationConfig;

/// What every secure layer and step of one server shares.
///
/// Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct SecureContext<G: Group> {
    server: Server<G>,
    quantization: QuantizationConfig,
    /// An error raised inside Burn's backward pass, which cannot return one.
    backward_error: Arc<Mutex<Option<Error>>>,
}

impl<G: Group> core::fmt::Debug for SecureContext<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureContext")
            .field("group", &G::ID)
            .field("quantization", &self.quantization)
            .finish_non_exhaustive()
    }
}

impl<G: Group> SecureContext<G> {
    /// A context asking `keys` for function keys and decrypting with `decryptor`.
    pub fn new(
        keys: Arc<dyn KeyService<G>>,
        decryptor: Decryptor<G>,
        quantization: QuantizationConfig,
    ) -> Self {
        Self::with_server(Server::new(keys, decryptor), quantization)
    }

    /// A context around an existing [`Server`].
    pub fn with_server(server: Server<G>, quantization: QuantizationConfig) -> Self {
        Self {
            server,
            quantization,
            backward_error: Arc::default(),
        }
    }

    /// The server role: key service, decryptor and phase times.
    pub fn server(&self) -> &Server<G> {
        &self.server
    }

    /// The quantization settings.
    pub fn quantization(&self) -> &QuantizationConfig {
        &self.quantization
    }

    /// The time spent so far in each phase.
    pub fn phase_times(&self) -> PhaseTimes {
        self.server.phase_times()
    }

    pub(crate) fn record_backward_error(&self, error: Error) {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    /// Call after `loss.backward()`: the first error a secure backward pass
    /// hit (its gradient was then zero, so the step must be discarded).
    ///
    /// # Errors
    /// That error.
    pub fn check_backward(&self) -> Result<()> {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.take().map_or(Ok(()), Err)
    }
}
