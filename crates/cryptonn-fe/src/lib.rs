#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[doc(hidden)]
pub mod bench;
pub mod dlog;
pub mod encoding;
mod error;
pub mod febo;
pub mod feip;
pub mod group;
pub mod ipfe;
mod key_id;
pub mod lanes;
pub mod multiexp;
pub mod rlwe;
mod wire;

pub use dlog::{DlogConfig, DlogTable};
pub use encoding::{FixedPoint, inner_product_bound};
pub use error::{Error, Result};
pub use group::{ForGroup, Group, GroupId, Modp2048, Modp3072, Ristretto255};
pub use key_id::KeyId;
