//! The server's context inside Burn: the role's [`Server`] plus what the
//! secure layers need to quantize and to report errors from a backward pass.

use std::sync::{Arc, Mutex};

use burn::tensor::{Gradients, Tensor};
use cryptonn_fe::feip::Decryptor;
use cryptonn_fe::multiexp::Engine;
use cryptonn_fe::{DlogConfig, DlogTable, Group};
use cryptonn_protocol::KeyService;

use crate::{Error, Result};
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
    /// A builder of the context that asks `keys` for function keys: the
    /// discrete-log table and the quantization have defaults.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use cryptonn_authority::{Authority, IssueAll};
    /// # use cryptonn_burn::{QuantizationConfig, SecureContext};
    /// # use cryptonn_fe::Ristretto255;
    /// let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    /// let ctx = SecureContext::builder(authority)
    ///     .quantization(QuantizationConfig::new().with_weight_bits(8))
    ///     .build()?;
    /// # Ok::<(), cryptonn_burn::Error>(())
    /// ```
    pub fn builder(keys: Arc<dyn KeyService<G>>) -> SecureContextBuilder<G> {
        SecureContextBuilder {
            keys,
            quantization: QuantizationConfig::new(),
            dlog: DlogConfig::default(),
            table: None,
            engine: Engine::default(),
        }
    }

    /// A context around an existing [`Server`] (its key service, decryptor
    /// and phase clocks).
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

    /// `loss.backward()`, checked: the gradients, or the error a secure
    /// backward pass hit (whose weight gradient is then void: discard the
    /// step). Use it instead of `loss.backward()` whenever a secure layer is
    /// in the graph; a step that calls `loss.backward()` directly and hits
    /// an error gets [`Error::Backward`] from its next secure forward pass.
    ///
    /// # Errors
    /// [`Error::Backward`] with the first error of the backward pass.
    pub fn backward(&self, loss: Tensor<1>) -> Result<Gradients> {
        let grads = loss.backward();
        self.take_backward_error()?;
        Ok(grads)
    }

    pub(crate) fn record_backward_error(&self, error: Error) {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(error);
    }

    /// The error a backward pass recorded and nobody took yet, as
    /// [`Error::Backward`]; the slot is empty afterwards.
    pub(crate) fn take_backward_error(&self) -> Result<()> {
        let mut slot = self
            .backward_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.take()
            .map_or(Ok(()), |e| Err(Error::Backward(Box::new(e))))
    }
}

/// Assembles a [`SecureContext`]: see [`SecureContext::builder`].
#[must_use = "a builder does nothing until .build()"]
pub struct SecureContextBuilder<G: Group> {
    keys: Arc<dyn KeyService<G>>,
    quantization: QuantizationConfig,
    dlog: DlogConfig,
    table: Option<Arc<DlogTable<G>>>,
    engine: Engine,
}

impl<G: Group> SecureContextBuilder<G> {
    /// The quantization of weights and errors (default: `QuantizationConfig::new()`).
    pub fn quantization(mut self, quantization: QuantizationConfig) -> Self {
        self.quantization = quantization;
        self
    }

    /// The bound of the discrete-log table built for this context (default:
    /// `DlogConfig::default()`); ignored with [`Self::table`].
    pub fn dlog(mut self, dlog: DlogConfig) -> Self {
        self.dlog = dlog;
        self
    }

    /// A discrete-log table already built (it is large: share one between
    /// contexts of the same group).
    pub fn table(mut self, table: Arc<DlogTable<G>>) -> Self {
        self.table = Some(table);
        self
    }

    /// The multi-exponentiation engine of decryption (default:
    /// `Engine::default()`; every engine gives the same results).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The context.
    ///
    /// # Errors
    /// A discrete-log configuration the table refuses.
    pub fn build(self) -> Result<SecureContext<G>> {
        let table = match self.table {
            Some(table) => table,
            None => Arc::new(DlogTable::<G>::new(self.dlog)?),
        };
        let server = Server::new(self.keys, Decryptor::new(table).with_engine(self.engine));
        Ok(SecureContext::with_server(server, self.quantization))
    }
}
