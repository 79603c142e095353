//! What a model author needs in one `use cryptonn_burn::prelude::*`: the
//! secure layers and their configurations, the context and its builder, the
//! encrypted inputs they read, the error, and the group most runs use.

pub use crate::context::{SecureContext, SecureContextBuilder};
pub use crate::encrypted_loss::cross_entropy_encrypted;
pub use crate::first_conv::FirstConv;
pub use crate::first_layer::FirstLayer;
pub use crate::quantize::QuantizationConfig;
pub use crate::secure_conv2d::{SecureConv2d, SecureConv2dConfig};
pub use crate::secure_linear::{SecureLinear, SecureLinearConfig};
pub use crate::secure_projection::{SecureProjection, SecureProjectionConfig};
pub use crate::{Error, Result};
pub use cryptonn_fe::{Group, Ristretto255};
pub use cryptonn_protocol::{EncryptedBatch, EncryptedImages, EncryptedRows, KeyService};
