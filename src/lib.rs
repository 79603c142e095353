#![doc = include_str!("../README.md")]
//!
//! # Crates
//! This facade re-exports the member crates, one per concern:
//! - [`fe`]: the FE math (`cryptonn-fe`), free of Burn.
//! - [`protocol`]: the vocabulary every party shares (`cryptonn-protocol`): key service, key
//!   requests, budgets, encrypted batches, audit records.
//! - [`authority`], [`client`], [`server`]: the three parties (`cryptonn-authority`,
//!   `cryptonn-client`, `cryptonn-server`), each Burn-free and none importing another.
//! - [`nn`]: the Burn glue (`cryptonn-burn`): `SecureLinear`, `SecureConv2d`,
//!   `SecureProjection`, the encrypted loss.
//!
//! The main job's application (`cryptonn-mnist`) and the leakage audit's attacks
//! (`cryptonn-audit`) are crates of their own; `docs/ARCHITECTURE.md` draws the arrows.

pub use cryptonn_authority as authority;
pub use cryptonn_burn as nn;
pub use cryptonn_client as client;
pub use cryptonn_fe as fe;
pub use cryptonn_protocol as protocol;
pub use cryptonn_server as server;
