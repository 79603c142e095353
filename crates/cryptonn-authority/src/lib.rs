//! The trusted authority of CryptoNN: it generates and holds every master
//! secret key, issues function keys for the vectors its [`KeyPolicy`]
//! approves, and records each one in its audit log.
//!
//! In memory ([`Authority::new`]) it serves one process. With a [`Store`]
//! ([`Authority::open`], [`SqliteStore`]) its master keys (sealed under the
//! operator's key-encryption key, [`kek`]), budgets and audit survive
//! restarts, and [`service`] serves it over HTTPS to clients and servers
//! elsewhere: `init` a state directory, then `spawn` or `serve_blocking`.
//!
//! [`KeyPolicy`]: cryptonn_protocol::KeyPolicy

pub mod audit_log;
pub mod authority;
pub mod embedded;
mod error;
pub mod kek;
pub mod policy;
mod routes;
pub mod service;
pub mod state_dir;
pub mod store;
mod tls;
pub mod tokens;

pub use audit_log::AuditLog;
pub use authority::{Authority, Requester};
pub use cryptonn_protocol::PolicyKind;
pub use embedded::EmbeddedAuthority;
pub use error::{StateError, StateResult};
pub use kek::{Kek, KekLocation, KekSource};
pub use policy::{Caps, IssueAll, IssueAllCounted, RankBudget};
pub use service::{InitOptions, InitReport, RunningService, ServiceLimits};
pub use state_dir::StateDir;
pub use store::{SqliteStore, Store};
