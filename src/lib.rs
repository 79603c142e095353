#![doc = include_str!("../README.md")]
//!
//! # Crates
//! This facade re-exports the member crates:
//! - [`fe`]: the FE math (`cryptonn-fe`), free of Burn.
//! - [`nn`]: the Burn glue (`cryptonn-burn`): roles, encrypted batches, `SecureLinear`.

pub use cryptonn_burn as nn;
pub use cryptonn_fe as fe;

pub mod attack;
pub mod mnist;
