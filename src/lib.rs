#![doc = include_str!("../README.md")]
//!
//! # Crates
//! This facade re-exports the member crates:
//! - [`fe`]: the FE math (`cryptonn-fe`), free of Burn.

pub use cryptonn_fe as fe;
