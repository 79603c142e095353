//! The one error type of this crate.

use crate::group::GroupId;

/// Everything that can go wrong on an untrusted path: decoding, mismatched
/// keys and ciphertexts, and discrete logs outside their bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes or text that are not a valid encoding of the expected object.
    #[error("invalid encoding: {0}")]
    InvalidEncoding(&'static str),
    /// A group element or scalar whose bytes are well formed but not canonical.
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// The identity element where it would be unsafe (for example `g^r` with `r = 0`).
    #[error("identity element not allowed: {0}")]
    Identity(&'static str),
    /// A vector of the wrong length.
    #[error("length mismatch: expected {expected}, got {got}")]
    LengthMismatch {
        /// The length the key or public key requires.
        expected: usize,
        /// The length that was supplied.
        got: usize,
    },
    /// Objects from two different groups were combined.
    #[error("wrong group: expected {expected}, got {got}")]
    WrongGroup {
        /// The group this code path works in.
        expected: GroupId,
        /// The group named by the input.
        got: GroupId,
    },
    /// A key and a ciphertext that belong to different master keys (or, for
    /// FEBO, a key bound to another ciphertext).
    #[error("key does not match ciphertext: {0}")]
    KeyMismatch(&'static str),
    /// The decrypted value lies outside `[-bound, bound]`, the range the
    /// discrete-log search covers.
    #[error("result outside the discrete-log bound ±{bound}")]
    OutOfBound {
        /// The bound that was searched.
        bound: u64,
    },
    /// A fixed-point value does not fit the integer range it must be encoded in.
    #[error("fixed-point overflow: {value} does not fit in ±{bound} at scale {scale}")]
    FixedPointOverflow {
        /// The value that was to be encoded.
        value: f64,
        /// The scale (integer units per 1.0).
        scale: f64,
        /// The largest allowed magnitude of the encoded integer.
        bound: i64,
    },
    /// FEBO division by an operand that does not divide the plaintext exactly
    /// (or by zero).
    #[error("division is not exact: {0}")]
    InexactDivision(&'static str),
    /// A Ring-LWE decryption whose noise exceeds the scheme's correctness
    /// bound: the key or the ciphertext was not made by the scheme (or was
    /// altered), so the rounded value would not be trustworthy.
    #[error("decryption noise beyond the correctness bound")]
    NoiseBound,
    /// A parameter outside the range this implementation supports.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
