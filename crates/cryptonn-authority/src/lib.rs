//! The trusted authority of CryptoNN: it generates and holds every master
//! secret key, issues function keys for the vectors its [`KeyPolicy`]
//! approves, and records each one in its audit log.
//!
//! [`KeyPolicy`]: cryptonn_protocol::KeyPolicy

pub mod audit_log;
pub mod authority;
pub mod policy;

pub use audit_log::AuditLog;
pub use authority::{Authority, Requester};
pub use policy::{Caps, IssueAll, RankBudget};
