#![doc = include_str!("../README.md")]

pub mod audit_log;
pub mod authority;
pub mod batch;
pub mod client;
pub mod equivalence;
mod error;
pub mod first_layer;
pub mod labels;
mod op;
pub mod policy;
pub mod quantize;
pub mod secure_linear;
pub mod secure_projection;
pub mod server;

pub use audit_log::{AuditLog, AuditRecord};
pub use authority::{
    Authority, BatchPublicKeys, Budget, IssueAll, KeyPolicy, KeyService, MasterKey, Requester,
    RowPublicKeys, Side,
};
pub use batch::{EncryptedBatch, EncryptedRows};
pub use client::{Client, Samples};
pub use error::{Error, Result};
pub use first_layer::FirstLayer;
pub use policy::{Caps, RankBudget};
pub use quantize::QuantizationConfig;
pub use secure_linear::{SecureLinear, SecureLinearConfig};
pub use secure_projection::{SecureProjection, SecureProjectionConfig};
pub use server::{PhaseTimes, SecureContext};
