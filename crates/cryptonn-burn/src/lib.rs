#![doc = include_str!("../README.md")]

mod autodiff_node;
pub mod context;
pub mod encrypted_loss;
mod error;
pub mod first_conv;
pub mod first_layer;
pub mod prelude;
pub mod quantize;
pub mod secure_conv2d;
pub mod secure_linear;
pub mod secure_projection;
#[cfg(feature = "train")]
pub mod train;

pub use context::{SecureContext, SecureContextBuilder};
pub use cryptonn_protocol::{EncryptedBatch, EncryptedImages, EncryptedRows};
pub use error::{Error, Result};
pub use first_conv::FirstConv;
pub use first_layer::FirstLayer;
pub use quantize::QuantizationConfig;
pub use secure_conv2d::{SecureConv2d, SecureConv2dConfig};
pub use secure_linear::{SecureLinear, SecureLinearConfig};
pub use secure_projection::{SecureProjection, SecureProjectionConfig};
