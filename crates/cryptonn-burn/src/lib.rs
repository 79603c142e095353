#![doc = include_str!("../README.md")]

pub mod context;
pub mod first_layer;
pub mod labels;
mod op;
pub mod quantize;
pub mod secure_conv2d;
pub mod secure_linear;
pub mod secure_projection;
#[cfg(feature = "train")]
pub mod train;

pub use context::SecureContext;
pub use cryptonn_protocol::{EncryptedBatch, EncryptedImages, EncryptedRows, Error, Result};
pub use first_layer::FirstLayer;
pub use quantize::QuantizationConfig;
pub use secure_conv2d::{SecureConv2d, SecureConv2dConfig};
pub use secure_linear::{SecureLinear, SecureLinearConfig};
pub use secure_projection::{SecureProjection, SecureProjectionConfig};
