//! Bearer tokens: 32 random bytes in hex, one role each.
//!
//! The token itself lives only in its file (mode 0600) and in the
//! requester's memory; the database keeps its SHA-256. A request's token is
//! hashed and looked up by hash, so the time the lookup takes tells nothing
//! useful about a stored token (finding a token from its hash's prefix
//! means inverting SHA-256).

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use cryptonn_protocol::wire::Role;

use crate::error::{StateError, StateResult};
use crate::kek::{fill_random, hex};

/// The longest token name.
pub const MAX_NAME_LEN: usize = 64;

/// Who a token belongs to and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The requester's name (written in the audit log).
    pub name: String,
    /// The role.
    pub role: Role,
}

/// A fresh token: 32 bytes from the system's generator, as 64 hex digits.
///
/// # Errors
/// [`StateError::Service`] if the generator fails.
pub(crate) fn generate() -> StateResult<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(&mut *bytes)?;
    Ok(Zeroizing::new(hex(&*bytes)))
}

/// The SHA-256 of a token's text, as stored.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hash of the token in an `Authorization` header value, if it is
/// `Bearer` (in any case, as RFC 9110 allows) and 64 lowercase hex digits.
pub(crate) fn from_bearer(value: &[u8]) -> Option<[u8; 32]> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    let well_formed =
        token.len() == 64 && token.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    well_formed.then(|| Sha256::digest(token).into())
}

/// Refuses a name that could not be a file name of its own: 1 to 64 ASCII
/// letters, digits, `-`, `_` or `.`, not starting with `.`.
///
/// # Errors
/// [`StateError::Token`] with the reason.
pub(crate) fn check_name(name: &str) -> StateResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.starts_with('.') {
        return Err(StateError::Token(format!(
            "name {name:?}: 1 to {MAX_NAME_LEN} characters, not starting with '.'"
        )));
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(StateError::Token(format!(
            "name {name:?}: {c:?} is not a letter, digit, '-', '_' or '.'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_hashed_only_when_well_formed() {
        let token = generate().unwrap();
        let header = format!("Bearer {}", token.as_str());
        assert_eq!(from_bearer(header.as_bytes()), Some(hash(&token)));
        assert_eq!(from_bearer(token.as_bytes()), None);
        let shouted = format!("BEARER {}", token.as_str());
        assert_eq!(from_bearer(shouted.as_bytes()), Some(hash(&token)));
        let upper_token = format!("Bearer {}", token.to_uppercase());
        assert_eq!(from_bearer(upper_token.as_bytes()), None);
        assert_eq!(from_bearer(format!("{header}0").as_bytes()), None);
        assert_eq!(from_bearer(b"Bearer "), None);
    }

    #[test]
    fn rejects_names_that_are_not_file_names() {
        assert!(check_name("server-2.b_c").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "x y", &"n".repeat(65), "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
