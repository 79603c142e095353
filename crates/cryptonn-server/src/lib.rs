//! The training server of CryptoNN, without Burn: it asks a [`KeyService`]
//! for function keys, decrypts inner products and basic operations, and
//! decodes them. No type here can reach a master secret key or a plaintext
//! input.
//!
//! [`KeyService`]: cryptonn_protocol::KeyService

pub mod labels;
pub mod quantize;
pub mod server;

pub use quantize::{Quantized, quantize_columns};
pub use server::{PhaseTimes, Server};
