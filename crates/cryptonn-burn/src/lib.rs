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
pub mod server;

pub use audit_log::{AuditLog, AuditRecord};
pub use authority::{
    Authority, BatchPublicKeys, Budget, IssueAll, KeyPolicy, KeyService, Requester,
};
pub use batch::EncryptedBatch;
pub use client::{Client, Samples};
pub use error::{Error, Result};
pub use first_layer::FirstLayer;
pub use policy::RankBudget;
pub use quantize::QuantizationConfig;
pub use secure_linear::{SecureLinear, SecureLinearConfig};
pub use server::{PhaseTimes, SecureContext};
