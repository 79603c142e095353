//! The IDX file format of MNIST, gzipped or raw.
//!
//! An IDX file is a 4-byte magic (two zero bytes, a type byte `0x08` for
//! unsigned bytes, and the number of dimensions), one big-endian u32 per
//! dimension, then the data. Images are `[count, rows, cols]` (magic 2051),
//! labels `[count]` (magic 2049).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Larger decompressed files are refused (a defence against gzip bombs).
const MAX_BYTES: u64 = 1 << 30;

/// Why a data file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file does not exist.
    #[error("{path}: file not found (expected the four MNIST IDX files, gzipped or raw)")]
    Missing {
        /// The path tried (without `.gz`).
        path: PathBuf,
    },
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a valid IDX file of the expected kind.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A decoded IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Parses IDX bytes; `expected_rank` is 3 for images and 1 for labels.
///
/// # Errors
/// [`DataError::Format`] for a bad magic, a wrong rank, or a length that
/// does not match the header.
pub fn parse(bytes: &[u8], expected_rank: usize, path: &Path) -> Result<Idx, DataError> {
    let bad = |reason: String| DataError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad(
            "not an IDX file of unsigned bytes (bad magic number)".into()
        ));
    }
    let rank = usize::from(bytes[3]);
    if rank != expected_rank {
        return Err(bad(format!(
            "expected {expected_rank} dimensions, found {rank}"
        )));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("dimensions overflow".into()))?;
    let data = &bytes[header..];
    if data.len() != expected {
        return Err(bad(format!(
            "header promises {expected} values, file holds {}",
            data.len()
        )));
    }
    Ok(Idx {
        dims,
        data: data.to_vec(),
    })
}

/// Reads `path`, or `path.gz` if only that exists, decompressing gzip by its magic bytes.
///
/// # Errors
/// [`DataError::Missing`], [`DataError::Io`] or [`DataError::Format`].
pub fn read(path: &Path, expected_rank: usize) -> Result<Idx, DataError> {
    let gz = path.with_file_name(format!(
        "{}.gz",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    ));
    let chosen = if path.exists() {
        path.to_path_buf()
    } else if gz.exists() {
        gz
    } else {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
        });
    };
    let io = |source| DataError::Io {
        path: chosen.clone(),
        source,
    };
    let mut raw = Vec::new();
    File::open(&chosen)
        .map_err(io)?
        .take(MAX_BYTES)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(BufReader::new(raw.as_slice()))
            .take(MAX_BYTES)
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse(&bytes, expected_rank, &chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(rank: u8, dims: &[u32], values: usize) -> Vec<u8> {
        let mut b = vec![0, 0, 8, rank];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(7u8, values));
        b
    }

    #[test]
    fn parses_valid_file() {
        let idx = parse(&file(3, &[2, 2, 3], 12), 3, Path::new("x")).unwrap();
        assert_eq!(idx.dims, vec![2, 2, 3]);
        assert_eq!(idx.data.len(), 12);
    }

    #[test]
    fn rejects_corrupt_files() {
        let p = Path::new("x");
        assert!(parse(&[], 1, p).is_err());
        assert!(
            parse(&[0, 0, 9, 1, 0, 0, 0, 0], 1, p).is_err(),
            "wrong type byte"
        );
        assert!(parse(&file(1, &[5], 5), 3, p).is_err(), "wrong rank");
        assert!(parse(&file(1, &[5], 4), 1, p).is_err(), "truncated data");
        assert!(parse(&file(1, &[5], 6), 1, p).is_err(), "trailing data");
        assert!(
            parse(&[0, 0, 8, 3, 0, 0], 3, p).is_err(),
            "truncated header"
        );
        assert!(
            parse(&file(3, &[u32::MAX, u32::MAX, u32::MAX], 0), 3, p).is_err(),
            "overflow"
        );
    }
}
