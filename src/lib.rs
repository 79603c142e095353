#![doc = include_str!("../README.md")]
//!
//! # Crates
//! This facade re-exports the member crates, one per concern:
//! - [`fe`]: the FE math (`cryptonn-fe`), free of Burn.
//! - [`protocol`]: the vocabulary every party shares (`cryptonn-protocol`): key service, key
//!   requests, budgets, encrypted batches, audit records.
//! - [`authority`], [`client`], [`server`]: the three parties (`cryptonn-authority`,
//!   `cryptonn-client`, `cryptonn-server`), each Burn-free and none importing another.
//! - [`nn`]: the Burn glue (`cryptonn-burn`): `SecureLinear`, `SecureProjection`, the encrypted loss.

pub use cryptonn_authority as authority;
pub use cryptonn_burn as nn;
pub use cryptonn_client as client;
pub use cryptonn_fe as fe;
pub use cryptonn_protocol as protocol;
pub use cryptonn_server as server;

pub mod attack;
pub mod equivalence;
pub mod mnist;
