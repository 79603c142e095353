//! Audit records: one per issued function key.
//!
//! A record names who asked, when, under which master key, a SHA-256 of the
//! key vector (not the vector: the log must not become a second copy of what
//! the server learned) and the rank of everything issued under that master
//! key once the request was granted.

use std::time::{SystemTime, UNIX_EPOCH};

use cryptonn_fe::KeyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which scheme a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// An inner-product key.
    Feip,
    /// A basic-operation key.
    Febo,
}

/// One issued key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub time_unix_ms: u64,
    /// The name the key service was opened under.
    pub requester: String,
    /// FEIP or FEBO.
    pub scheme: Scheme,
    /// The master key the function key belongs to.
    pub master_key: KeyId,
    /// SHA-256 (hex) of the key vector: its length and entries as
    /// little-endian i64 (FEIP), or the operation, operand and commitment (FEBO).
    pub vector_sha256: String,
    /// Rank of all vectors issued under `master_key` after this request, when
    /// the policy tracks it.
    pub rank_after: Option<usize>,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// SHA-256 in hex of the length-prefixed little-endian encoding of `words`.
pub fn hash_words(prefix: &[u8], words: &[i64]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prefix);
    hasher.update((words.len() as u64).to_le_bytes());
    for w in words {
        hasher.update(w.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
