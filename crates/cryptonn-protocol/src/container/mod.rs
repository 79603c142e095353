//! Encrypted batches on disk: a compact, versioned, checksummed binary
//! container (`.cnb`), and a directory of them with a JSON manifest.
//!
//! Clients encrypt to disk once; training reads the files back one batch at a
//! time, so memory stays per batch. The layout is specified byte by byte in
//! `docs/FORMAT.md` ("Encrypted batch files (binary container)"); in short:
//!
//! ```text
//! magic "CNNBATCH" | version u16 = 1 | group u8 | kind u8 | flags u8
//! input scale f64 | samples u32 | features u32
//! row key id [16] | samples × (ct0 ‖ ct1 … ctn)
//! (kind 1) column key id [16] | features × (ct0 ‖ ct1 … ct_samples)
//! (kind 3) geometry 9 × u32 | batch key id [16] | ct0 ‖ ct1 … ct_(samples·features)
//! (flag 1) classes u32 | label scale i64 | FEBO key id [16] | samples·classes × (cmt ‖ ct)
//! SHA-256 of everything before it [32]
//! ```
//!
//! Integers are little-endian; every group element takes exactly
//! `G::ELEMENT_LEN` bytes in its canonical (for Ristretto255, compressed)
//! encoding.
//!
//! # Security
//! The SHA-256 trailer detects torn writes and accidental corruption, not
//! tampering: whoever can write the file can recompute it. Every point is
//! still validated on the way in, so a forged file yields a refused decode or
//! ciphertexts of garbage, never a panic.
//!
//! ```
//! use cryptonn_protocol::container::{decode_rows, encode_rows};
//! use cryptonn_protocol::EncryptedRows;
//! use cryptonn_fe::{feip, Ristretto255};
//! # fn main() -> cryptonn_protocol::Result<()> {
//! let mut rng = rand::rng();
//! let (_msk, mpk) = feip::setup::<Ristretto255, _>(3, &mut rng)?;
//! let row = feip::encrypt(&mpk, &[1, 2, 3], &mut rng)?;
//! let rows = EncryptedRows::new(255.0, vec![row], None)?;
//! let bytes = encode_rows(&rows)?;
//! assert_eq!(decode_rows::<Ristretto255>(&bytes)?, rows);
//! # Ok(())
//! # }
//! ```

mod codec;
mod dir;

use cryptonn_fe::{Group, GroupId, Modp2048, Modp3072, Ristretto255};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PatchGeometry;

pub use codec::{
    decode_batch, decode_images, decode_rows, encode_batch, encode_images, encode_rows, read_header,
};
pub use dir::{BatchDir, LabelInfo, MAX_BATCHES, Manifest};

/// The first 8 bytes of every container.
pub const MAGIC: [u8; 8] = *b"CNNBATCH";

/// The container format version this code reads and writes.
pub const VERSION: u16 = 1;

/// Flag bit 0: the container holds encrypted labels. Every other bit of the
/// flags byte must be zero.
pub const FLAG_LABELS: u8 = 1;

/// Length of the SHA-256 trailer.
pub const CHECKSUM_LEN: usize = 32;

/// What a container holds, its kind byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An [`EncryptedBatch`](crate::EncryptedBatch): row-wise and
    /// column-wise ciphertexts (kind byte 1, manifest name `"batch"`).
    Batch,
    /// An [`EncryptedRows`](crate::EncryptedRows): row-wise ciphertexts only
    /// (kind byte 2, manifest name `"rows"`).
    Rows,
    /// An [`EncryptedImages`](crate::EncryptedImages): row-wise ciphertexts
    /// of whole images, one batch ciphertext and the convolution's geometry
    /// (kind byte 3, manifest name `"images"`).
    Images,
}

impl Kind {
    /// Every kind, in kind-byte order.
    pub const ALL: [Kind; 3] = [Kind::Batch, Kind::Rows, Kind::Images];

    /// The kind byte.
    pub const fn code(self) -> u8 {
        match self {
            Kind::Batch => 1,
            Kind::Rows => 2,
            Kind::Images => 3,
        }
    }

    /// The kind with this byte, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Kind::Batch),
            2 => Some(Kind::Rows),
            3 => Some(Kind::Images),
            _ => None,
        }
    }

    /// The manifest name, `"batch"`, `"rows"` or `"images"`.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Batch => "batch",
            Kind::Rows => "rows",
            Kind::Images => "images",
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        // A string only: not serde's map form of a unit variant.
        let name = String::deserialize(d)?;
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown kind {name:?} (\"batch\", \"rows\" or \"images\")"
                ))
            })
    }
}

/// The group byte of a container: 1 = Ristretto255, 2 = MODP-2048,
/// 3 = MODP-3072 (0 and 4–255 are unassigned and refused).
pub const fn group_code(group: GroupId) -> u8 {
    match group {
        GroupId::Ristretto255 => 1,
        GroupId::Modp2048 => 2,
        GroupId::Modp3072 => 3,
    }
}

/// The group with this container byte, if any (see [`group_code`]).
pub const fn group_from_code(code: u8) -> Option<GroupId> {
    match code {
        1 => Some(GroupId::Ristretto255),
        2 => Some(GroupId::Modp2048),
        3 => Some(GroupId::Modp3072),
        _ => None,
    }
}

/// Bytes of one encoded element of `group` (32, 256 or 384).
pub const fn element_len(group: GroupId) -> usize {
    match group {
        GroupId::Ristretto255 => Ristretto255::ELEMENT_LEN,
        GroupId::Modp2048 => Modp2048::ELEMENT_LEN,
        GroupId::Modp3072 => Modp3072::ELEMENT_LEN,
    }
}

/// What a container says about itself, read without decoding any point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    /// The group of every element.
    pub group: GroupId,
    /// Batch (rows and columns), rows only, or images.
    pub kind: Kind,
    /// The real input is the encrypted integer divided by this.
    pub input_scale: f64,
    /// Samples (row ciphertexts).
    pub samples: usize,
    /// Features per sample (the dimension of each row ciphertext).
    pub features: usize,
    /// Classes and scale of the encrypted labels, if the container has them.
    pub labels: Option<LabelInfo>,
    /// The convolution's geometry, for kind images only (its pixels are
    /// `features`).
    pub geometry: Option<PatchGeometry>,
    /// The exact length of the container in bytes, checksum included.
    pub len: usize,
}

/// The SHA-256 trailer of `body`.
fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::digest(body).into()
}

/// The harness of the `container` fuzz target (`fuzz/fuzz_targets/container.rs`).
///
/// The first byte picks the decoder: bit 1 the group (Ristretto255 or
/// MODP-2048), bit 3 images, else bit 0 rows or batch; if its bit 2 is set, the last 32 bytes of the rest are replaced by the
/// correct checksum first, so the fuzzer reaches the point decoders. Must
/// return without panicking for every input.
#[doc(hidden)]
pub fn fuzz_decode(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if which & 4 != 0
        && let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN)
    {
        let sum = checksum(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&sum);
    }
    let _ = read_header(&bytes);
    match (which & 8 != 0, which % 4) {
        (false, 0) => drop(decode_batch::<Ristretto255>(&bytes)),
        (false, 1) => drop(decode_rows::<Ristretto255>(&bytes)),
        (false, 2) => drop(decode_batch::<Modp2048>(&bytes)),
        (false, _) => drop(decode_rows::<Modp2048>(&bytes)),
        (true, 0 | 1) => drop(decode_images::<Ristretto255>(&bytes)),
        (true, _) => drop(decode_images::<Modp2048>(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_kind_bytes_round_trip() {
        for group in GroupId::ALL {
            assert_eq!(group_from_code(group_code(group)), Some(group));
        }
        for kind in Kind::ALL {
            assert_eq!(Kind::from_code(kind.code()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), kind);
        }
        assert_eq!(element_len(GroupId::Modp3072), 384);
    }

    #[test]
    fn rejects_unassigned_bytes_and_kind_names() {
        for code in [0u8, 4, 255] {
            assert_eq!(group_from_code(code), None);
        }
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(4), None);
        for text in [
            r#""Batch""#,
            r#"{"batch":null}"#,
            "1",
            r#""row""#,
            r#""image""#,
        ] {
            assert!(serde_json::from_str::<Kind>(text).is_err(), "{text}");
        }
    }
}
