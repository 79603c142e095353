//! The vocabulary every CryptoNN role shares and no role owns: what the
//! server may ask of the authority ([`KeyService`]), the public keys a client
//! encrypts under, budgets and the policies that keep them ([`KeyPolicy`]),
//! the encrypted batches clients send, and audit records.
//!
//! The roles (`cryptonn-authority`, `cryptonn-client`, `cryptonn-server`)
//! each depend on this crate and never on each other; it depends on no role
//! and not on Burn.

pub mod audit;
pub mod batch;
pub mod budget;
pub mod container;
mod error;
pub mod images;
pub mod key_service;
mod optional_field;
pub mod patches;
pub mod remote;
pub mod wire;

pub use batch::{EncryptedBatch, EncryptedLabels, EncryptedRows};
pub use budget::{Budget, KeyPolicy, MasterKey, PolicyKind, Side};
pub use error::{Error, Result};
pub use images::EncryptedImages;
pub use key_service::{BatchPublicKeys, FeboKeyRequest, KeyService, RowPublicKeys};
pub use patches::PatchGeometry;
pub use remote::{RemoteAuthority, RemoteTimings};

/// The input scale of 8-bit pixels: a pixel p ∈ {0, …, 255} stands for the
/// real input p / 255 ∈ [0, 1]. Clients encrypt the integers, manifests and
/// batches record this scale, and the plaintext runs divide by it.
pub const PIXEL_SCALE: f64 = 255.0;
