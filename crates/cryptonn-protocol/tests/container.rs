//! The binary batch container and the batch directory: round trips, every
//! refusal of the decoder, and resuming an interrupted run.
#![allow(clippy::unwrap_used, clippy::panic)] // Helpers of tests may unwrap and panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cryptonn_fe::{Group, GroupId, Modp2048, Ristretto255, febo, feip};
use cryptonn_protocol::container::{
    self, BatchDir, Kind, LabelInfo, Manifest, decode_batch, decode_rows, encode_batch,
    encode_rows, read_header,
};
use cryptonn_protocol::{EncryptedBatch, EncryptedLabels, EncryptedRows, Error};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

// Offsets of the fixed fields (docs/FORMAT.md).
const VERSION_AT: usize = 8;
const GROUP_AT: usize = 10;
const KIND_AT: usize = 11;
const FLAGS_AT: usize = 12;
const SCALE_AT: usize = 13;
const SAMPLES_AT: usize = 21;
const FEATURES_AT: usize = 25;
const ROW_KEY_AT: usize = 29;
const ROWS_AT: usize = 45;

const LABEL_SCALE: i64 = 1000;

/// `count` FEIP ciphertexts of dimension `dim` under one fresh master key.
fn feip_cts<G: Group>(count: usize, dim: usize, rng: &mut StdRng) -> Vec<feip::Ciphertext<G>> {
    let (_, mpk) = feip::setup::<G, _>(dim, rng).unwrap();
    let enc = feip::Encryptor::new(&mpk).unwrap();
    (0..count)
        .map(|i| {
            let x: Vec<i64> = (0..dim).map(|j| ((i * dim + j) % 256) as i64).collect();
            enc.encrypt(&x, rng).unwrap()
        })
        .collect()
}

/// One-hot labels (class `i % classes` for sample i) under one FEBO key.
fn labels<G: Group>(samples: usize, classes: usize, rng: &mut StdRng) -> EncryptedLabels<G> {
    let (_, mpk) = febo::setup::<G, _>(rng);
    let entries = (0..samples * classes)
        .map(|k| {
            let hot = k % classes == (k / classes) % classes;
            febo::encrypt(&mpk, if hot { LABEL_SCALE } else { 0 }, rng).unwrap()
        })
        .collect();
    EncryptedLabels::new(classes, LABEL_SCALE, entries)
}

fn batch<G: Group>(
    seed: u64,
    [samples, features]: [usize; 2],
    classes: Option<usize>,
) -> EncryptedBatch<G> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = feip_cts(samples, features, &mut rng);
    let cols = feip_cts(features, samples, &mut rng);
    let labels = classes.map(|c| labels(samples, c, &mut rng));
    EncryptedBatch::new(255.0, rows, cols, labels).unwrap()
}

fn rows<G: Group>(
    seed: u64,
    [samples, features]: [usize; 2],
    classes: Option<usize>,
) -> EncryptedRows<G> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = feip_cts(samples, features, &mut rng);
    let labels = classes.map(|c| labels(samples, c, &mut rng));
    EncryptedRows::new(255.0, rows, labels).unwrap()
}

/// Rewrites the SHA-256 trailer after a deliberate corruption.
fn fix_checksum(bytes: &mut [u8]) {
    let body = bytes.len() - 32;
    let sum = Sha256::digest(&bytes[..body]);
    bytes[body..].copy_from_slice(&sum);
}

fn message(err: &Error) -> String {
    err.to_string()
}

/// The error of decoding `bytes` as a Ristretto255 batch, which must fail.
fn batch_err(bytes: &[u8]) -> String {
    message(&decode_batch::<Ristretto255>(bytes).unwrap_err())
}

fn assert_refused(bytes: &[u8], needle: &str) {
    let err = batch_err(bytes);
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
}

/// A small valid Ristretto255 batch with labels, encoded: 3 samples, 2
/// features, 2 classes.
fn sample_bytes() -> Vec<u8> {
    encode_batch(&batch::<Ristretto255>(1, [3, 2], Some(2))).unwrap()
}

/// Byte offsets of the column key id and of the labels section of a
/// Ristretto255 batch.
fn cols_and_labels_at(samples: usize, features: usize) -> (usize, usize) {
    let cols = ROWS_AT + samples * (features + 1) * 32;
    (cols, cols + 16 + features * (samples + 1) * 32)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn batch_round_trips(
        samples in 1..=4usize,
        features in 1..=4usize,
        classes in proptest::option::of(1..=3usize),
        seed in any::<u64>(),
    ) {
        let b = batch::<Ristretto255>(seed, [samples, features], classes);
        let bytes = encode_batch(&b).unwrap();
        let header = read_header(&bytes).unwrap();
        prop_assert_eq!(header.group, GroupId::Ristretto255);
        prop_assert_eq!(header.kind, Kind::Batch);
        prop_assert_eq!([header.samples, header.features], [samples, features]);
        prop_assert_eq!(header.labels.map(|l| l.classes), classes);
        prop_assert_eq!(header.len, bytes.len());
        prop_assert_eq!(decode_batch::<Ristretto255>(&bytes).unwrap(), b);
    }

    #[test]
    fn rows_round_trip(
        samples in 1..=4usize,
        features in 1..=4usize,
        classes in proptest::option::of(1..=3usize),
        seed in any::<u64>(),
    ) {
        let r = rows::<Ristretto255>(seed, [samples, features], classes);
        let bytes = encode_rows(&r).unwrap();
        prop_assert_eq!(read_header(&bytes).unwrap().kind, Kind::Rows);
        prop_assert_eq!(decode_rows::<Ristretto255>(&bytes).unwrap(), r);
    }
}

#[test]
fn modp2048_round_trips() {
    for classes in [None, Some(2)] {
        let b = batch::<Modp2048>(2, [2, 3], classes);
        let bytes = encode_batch(&b).unwrap();
        let expected = 13 + 16 + 16 + 2 * 4 * 256 + 16 + 3 * 3 * 256 + 32;
        let labels = classes.map_or(0, |c| 28 + 2 * c * 2 * 256);
        assert_eq!(bytes.len(), expected + labels);
        assert_eq!(decode_batch::<Modp2048>(&bytes).unwrap(), b);
        let r = rows::<Modp2048>(3, [2, 1], classes);
        assert_eq!(
            decode_rows::<Modp2048>(&encode_rows(&r).unwrap()).unwrap(),
            r
        );
    }
}

#[test]
fn encoding_is_exact_and_deterministic() {
    let b = batch::<Ristretto255>(4, [3, 2], Some(2));
    let bytes = encode_batch(&b).unwrap();
    assert_eq!(bytes, encode_batch(&b).unwrap());
    assert_eq!(&bytes[..8], b"CNNBATCH");
    assert_eq!(bytes[VERSION_AT..GROUP_AT], [1, 0]);
    assert_eq!(
        [bytes[GROUP_AT], bytes[KIND_AT], bytes[FLAGS_AT]],
        [1, 1, 1]
    );
    assert_eq!(bytes[SCALE_AT..SAMPLES_AT], 255.0f64.to_le_bytes());
    assert_eq!(bytes[SAMPLES_AT..FEATURES_AT], [3, 0, 0, 0]);
    assert_eq!(bytes[FEATURES_AT..ROW_KEY_AT], [2, 0, 0, 0]);
    assert_eq!(&bytes[ROW_KEY_AT..ROWS_AT], b.row_key().as_bytes());
    let ct = &b.rows()[0];
    assert_eq!(
        bytes[ROWS_AT..ROWS_AT + 32],
        Ristretto255::element_to_bytes(ct.commitment())
    );
    let (cols, labels) = cols_and_labels_at(3, 2);
    assert_eq!(&bytes[cols..cols + 16], b.col_key().as_bytes());
    assert_eq!(bytes[labels..labels + 4], [2, 0, 0, 0]);
    assert_eq!(bytes[labels + 4..labels + 12], LABEL_SCALE.to_le_bytes());
    let body = bytes.len() - 32;
    assert_eq!(bytes[body..], Sha256::digest(&bytes[..body])[..]);
}

#[test]
fn rejects_wrong_magic() {
    let mut bytes = sample_bytes();
    bytes[0] = b'X';
    assert_refused(&bytes, "wrong magic");
    assert_refused(b"{\"json\": true}", "wrong magic");
}

#[test]
fn rejects_unknown_version() {
    for version in [0u16, 2, 0x0100] {
        let mut bytes = sample_bytes();
        bytes[VERSION_AT..GROUP_AT].copy_from_slice(&version.to_le_bytes());
        fix_checksum(&mut bytes);
        assert_refused(&bytes, &format!("unsupported format version {version}"));
    }
}

#[test]
fn rejects_other_group() {
    let bytes = sample_bytes();
    let err = message(&decode_batch::<Modp2048>(&bytes).unwrap_err());
    assert!(
        err.contains("ristretto255 ciphertexts, modp2048 expected"),
        "{err}"
    );
    for code in [0u8, 4, 255] {
        let mut bad = bytes.clone();
        bad[GROUP_AT] = code;
        fix_checksum(&mut bad);
        assert_refused(&bad, &format!("unknown group byte {code}"));
    }
    // A MODP-3072 header over Ristretto255 data no longer adds up.
    let mut bad = bytes;
    bad[GROUP_AT] = 3;
    assert_refused(&bad, "truncated");
}

#[test]
fn rejects_wrong_or_unknown_kind() {
    let bytes = sample_bytes();
    let err = message(&decode_rows::<Ristretto255>(&bytes).unwrap_err());
    assert!(
        err.contains("kind 1 (batch), kind 2 (rows) expected"),
        "{err}"
    );
    let r = encode_rows(&rows::<Ristretto255>(5, [2, 2], None)).unwrap();
    assert_refused(&r, "kind 2 (rows), kind 1 (batch) expected");
    for code in [0u8, 3, 255] {
        let mut bad = bytes.clone();
        bad[KIND_AT] = code;
        assert_refused(&bad, &format!("unknown kind byte {code}"));
    }
}

#[test]
fn rejects_unknown_flags() {
    for flags in [2u8, 3, 0x80] {
        let mut bytes = sample_bytes();
        bytes[FLAGS_AT] = flags;
        assert_refused(&bytes, "unknown flags");
    }
}

#[test]
fn rejects_flag_and_content_disagreeing() {
    // Labels flag cleared: the labels section becomes trailing bytes.
    let mut bytes = sample_bytes();
    bytes[FLAGS_AT] = 0;
    assert_refused(&bytes, "trailing bytes");
    // Labels flag set on a batch without labels: a truncated labels section.
    let mut bytes = encode_batch(&batch::<Ristretto255>(6, [2, 2], None)).unwrap();
    bytes[FLAGS_AT] = 1;
    // (The class count is then read from the checksum: 0 or too large.)
    let err = batch_err(&bytes);
    assert!(
        err.contains("truncated") || err.contains("class count is 0"),
        "{err}"
    );
}

#[test]
fn rejects_truncated() {
    let bytes = sample_bytes();
    let (cols, labels) = cols_and_labels_at(3, 2);
    let cuts = [
        0,
        4,
        8,
        9,
        12,
        SCALE_AT + 3,
        SAMPLES_AT + 1,
        FEATURES_AT + 2,
        ROW_KEY_AT + 5,
        ROWS_AT + 40,
        cols + 8,
        labels,
        labels + 2,
        labels + 30,
        bytes.len() - 32,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let err = batch_err(&bytes[..cut]);
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
    }
}

#[test]
fn rejects_trailing_bytes() {
    let mut bytes = sample_bytes();
    bytes.push(0);
    assert_refused(&bytes, "1 trailing bytes");
    fix_checksum(&mut bytes);
    assert_refused(&bytes, "1 trailing bytes");
}

#[test]
fn rejects_flipped_byte_by_checksum() {
    let bytes = sample_bytes();
    let (cols, labels) = cols_and_labels_at(3, 2);
    for at in [
        SCALE_AT,
        ROW_KEY_AT,
        ROWS_AT + 7,
        cols + 20,
        labels + 40,
        bytes.len() - 33,
        bytes.len() - 1,
    ] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        let err = batch_err(&bad);
        assert!(err.contains("checksum mismatch"), "byte {at}: {err}");
    }
}

/// Overwrites the element at `at` with `point` and fixes the checksum.
fn with_point(bytes: &[u8], at: usize, point: &[u8]) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    bad[at..at + point.len()].copy_from_slice(point);
    fix_checksum(&mut bad);
    bad
}

#[test]
fn rejects_invalid_point() {
    let bytes = sample_bytes();
    let (cols, labels) = cols_and_labels_at(3, 2);
    let non_canonical = [0xff; 32];
    let mut negative = [0; 32];
    negative[0] = 1;
    let places = [
        (ROWS_AT, "row ciphertext 0, element 0"),
        (ROWS_AT + 4 * 32, "row ciphertext 1, element 1"),
        (cols + 16 + 5 * 32, "column ciphertext 1, element 1"),
        (labels + 28 + 3 * 32, "label entry 1, element 1"),
    ];
    for (at, what) in places {
        for point in [&non_canonical, &negative] {
            assert_refused(&with_point(&bytes, at, point), what);
        }
    }
}

#[test]
fn rejects_modp_point_out_of_group() {
    let bytes = encode_batch(&batch::<Modp2048>(7, [2, 1], Some(1))).unwrap();
    let at = ROWS_AT + 256;
    for point in [[0u8; 256], [0xff; 256]] {
        let bad = with_point(&bytes, at, &point);
        let err = message(&decode_batch::<Modp2048>(&bad).unwrap_err());
        assert!(err.contains("row ciphertext 0, element 1"), "{err}");
    }
}

/// Sets a little-endian u32 field and fixes the checksum.
fn with_u32(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
    fix_checksum(&mut bad);
    bad
}

#[test]
fn rejects_zero_counts() {
    let bytes = sample_bytes();
    assert_refused(&with_u32(&bytes, FEATURES_AT, 0), "feature count (n) is 0");
    assert_refused(&with_u32(&bytes, SAMPLES_AT, 0), "sample count is 0");
    let (_, labels) = cols_and_labels_at(3, 2);
    assert_refused(&with_u32(&bytes, labels, 0), "class count is 0");
}

#[test]
fn rejects_huge_counts_without_allocating() {
    let bytes = sample_bytes();
    for at in [SAMPLES_AT, FEATURES_AT] {
        for value in [u32::MAX, 1 << 20, 1 << 21, 1000] {
            let err = batch_err(&with_u32(&bytes, at, value));
            assert!(
                err.contains("truncated") || err.contains("must be in 1..="),
                "{value} at {at}: {err}"
            );
        }
    }
    let (_, labels) = cols_and_labels_at(3, 2);
    assert_refused(&with_u32(&bytes, labels, u32::MAX), "truncated");
}

#[test]
fn rejects_non_positive_input_scale() {
    let bytes = sample_bytes();
    for scale in [0.0, -1.0, f64::NAN, f64::INFINITY, -0.0] {
        let mut bad = bytes.clone();
        bad[SCALE_AT..SAMPLES_AT].copy_from_slice(&scale.to_le_bytes());
        fix_checksum(&mut bad);
        assert_refused(&bad, "not a finite positive number");
    }
}

#[test]
fn rejects_label_scale_out_of_range() {
    let bytes = sample_bytes();
    let (_, labels) = cols_and_labels_at(3, 2);
    for scale in [0i64, -5, (1 << 30) + 1] {
        let mut bad = bytes.clone();
        bad[labels + 4..labels + 12].copy_from_slice(&scale.to_le_bytes());
        fix_checksum(&mut bad);
        assert_refused(&bad, "labels do not match the batch");
    }
}

#[test]
fn rejects_rows_and_columns_under_one_key() {
    let bytes = sample_bytes();
    let (cols, _) = cols_and_labels_at(3, 2);
    let row_key = bytes[ROW_KEY_AT..ROWS_AT].to_vec();
    assert_refused(&with_point(&bytes, cols, &row_key), "share one master key");
}

#[test]
fn rejects_mixed_label_keys_on_encode() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut entries = labels::<Ristretto255>(2, 2, &mut rng).entries().to_vec();
    entries[3] = labels::<Ristretto255>(1, 1, &mut rng).entries()[0].clone();
    let mixed = EncryptedLabels::new(2, LABEL_SCALE, entries);
    let rows = EncryptedRows::new(1.0, feip_cts(2, 2, &mut rng), Some(mixed)).unwrap();
    let err = message(&encode_rows(&rows).unwrap_err());
    assert!(err.contains("different FEBO master keys"), "{err}");
}

#[test]
fn fuzz_harness_survives_corruptions() {
    let bytes = sample_bytes();
    for selector in 0..8u8 {
        for cut in [0, 1, 13, 45, bytes.len() / 2, bytes.len()] {
            let mut input = vec![selector];
            input.extend_from_slice(&bytes[..cut]);
            container::fuzz_decode(&input);
        }
    }
    container::fuzz_decode(&[]);
}

// The directory of batch files.

/// A fresh, empty scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("container")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn manifest(kind: Kind, batches: usize) -> Manifest {
    Manifest::new(GroupId::Ristretto255, kind, [3, 2], batches, 255.0)
        .with_labels(2, LABEL_SCALE)
        .with_source("tests/container.rs")
}

fn file_error_path(err: Error) -> PathBuf {
    match err {
        Error::File { path, .. } => path,
        other => panic!("expected Error::File, got {other:?}"),
    }
}

#[test]
fn batch_dir_round_trips_and_reopens() {
    let root = scratch("round_trip");
    let dir = BatchDir::create(&root, manifest(Kind::Batch, 2)).unwrap();
    assert_eq!(dir.missing(), [0, 1]);
    let b0 = batch::<Ristretto255>(10, [3, 2], Some(2));
    let b1 = batch::<Ristretto255>(11, [1, 2], Some(2)); // the last may be smaller
    dir.write_batch(0, &b0).unwrap();
    dir.write_batch(1, &b1).unwrap();
    assert_eq!(dir.path(1), root.join("batch-000001.cnb"));
    assert!(dir.missing().is_empty());

    let again = BatchDir::create(&root, manifest(Kind::Batch, 2)).unwrap();
    let opened = BatchDir::open(&root).unwrap();
    assert_eq!(opened.manifest(), again.manifest());
    assert_eq!(opened.read_batch::<Ristretto255>(0).unwrap(), b0);
    assert_eq!(opened.read_batch::<Ristretto255>(1).unwrap(), b1);
    let text = fs::read_to_string(root.join("manifest.json")).unwrap();
    assert!(text.contains("\"format\": \"cryptonn-batches\""), "{text}");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn batch_dir_rows_round_trip() {
    let root = scratch("rows");
    let dir = BatchDir::create(&root, manifest(Kind::Rows, 1)).unwrap();
    let r = rows::<Ristretto255>(12, [3, 2], Some(2));
    dir.write_rows(0, &r).unwrap();
    assert_eq!(dir.read_rows::<Ristretto255>(0).unwrap(), r);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn resume_lists_exactly_the_missing_files() {
    let root = scratch("resume");
    let dir = BatchDir::create(&root, manifest(Kind::Batch, 5)).unwrap();
    for i in [0, 3] {
        dir.write_batch(i, &batch::<Ristretto255>(20 + i as u64, [3, 2], Some(2)))
            .unwrap();
    }
    // An interrupted write: a partial temporary file beside the target.
    let bytes = encode_batch(&batch::<Ristretto255>(22, [3, 2], Some(2))).unwrap();
    fs::write(root.join("batch-000002.cnb.tmp-999-0"), &bytes[..100]).unwrap();

    let reopened = BatchDir::create(&root, manifest(Kind::Batch, 5)).unwrap();
    assert_eq!(reopened.missing(), [1, 2, 4]);
    assert!(reopened.is_complete(3) && !reopened.is_complete(2));
    assert!(!reopened.is_complete(5));
    assert_eq!(reopened.remove_temp_files().unwrap(), 1);
    assert_eq!(reopened.missing(), [1, 2, 4]);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_corrupted_file_by_name() {
    let root = scratch("corrupted");
    let dir = BatchDir::create(&root, manifest(Kind::Batch, 3)).unwrap();
    dir.write_batch(1, &batch::<Ristretto255>(30, [3, 2], Some(2)))
        .unwrap();
    let path = dir.path(1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[ROWS_AT + 3] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = dir.read_batch::<Ristretto255>(1).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("batch-000001.cnb") && shown.contains("checksum"),
        "{shown}"
    );
    assert_eq!(file_error_path(err), path);

    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = dir.read_batch::<Ristretto255>(1).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(file_error_path(err), path);

    let err = dir.read_batch::<Ristretto255>(2).unwrap_err();
    assert_eq!(file_error_path(err), dir.path(2));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_batch_not_matching_manifest() {
    let root = scratch("mismatch");
    let dir = BatchDir::create(&root, manifest(Kind::Batch, 2)).unwrap();
    let cases: [(EncryptedBatch<Ristretto255>, &str); 3] = [
        (batch(40, [2, 2], Some(2)), "samples"), // not the last file
        (batch(41, [3, 3], Some(2)), "samples"),
        (batch(42, [3, 2], None), "labels"),
    ];
    for (b, needle) in cases {
        let err = dir.write_batch(0, &b).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(file_error_path(err), dir.path(0));
    }
    let good = batch::<Ristretto255>(43, [3, 2], Some(2));
    assert!(dir.write_batch(2, &good).is_err());
    assert!(
        dir.write_rows(0, &rows::<Ristretto255>(44, [3, 2], Some(2)))
            .is_err()
    );
    let modp = batch::<Modp2048>(45, [3, 2], Some(2));
    assert!(dir.write_batch(0, &modp).is_err());
    dir.write_batch(0, &good).unwrap();
    assert!(dir.read_batch::<Modp2048>(0).is_err());
    assert!(dir.read_rows::<Ristretto255>(0).is_err());
    assert_eq!(dir.missing(), [1]);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_different_manifest() {
    let root = scratch("different");
    BatchDir::create(&root, manifest(Kind::Batch, 2)).unwrap();
    let err = BatchDir::create(&root, manifest(Kind::Batch, 3)).unwrap_err();
    assert_eq!(file_error_path(err), root.join("manifest.json"));
    let other = manifest(Kind::Batch, 2).with_source("elsewhere");
    assert!(BatchDir::create(&root, other).is_err());
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_invalid_manifest() {
    let root = scratch("invalid");
    let m = manifest(Kind::Batch, 2);
    for bad in [
        Manifest {
            batches: 0,
            ..m.clone()
        },
        Manifest {
            features: 0,
            ..m.clone()
        },
        Manifest {
            input_scale: f64::NAN,
            ..m.clone()
        },
        Manifest {
            version: 2,
            ..m.clone()
        },
        m.clone().with_labels(2, 0),
        m.clone().with_labels(0, 10),
    ] {
        assert!(BatchDir::create(&root, bad).is_err());
    }
    assert!(!root.join("manifest.json").exists());

    BatchDir::create(&root, m.clone()).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).unwrap()).unwrap();
    let mut unknown = good.clone();
    unknown["extra"] = 1.into();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("labels");
    let mut array_labels = good.clone();
    array_labels["labels"] = serde_json::json!([2, 1000]);
    let mut map_kind = good.clone();
    map_kind["kind"] = serde_json::json!({ "batch": null });
    let array = serde_json::Value::Array(good.as_object().unwrap().values().cloned().collect());
    for text in [
        unknown.to_string(),
        missing.to_string(),
        array_labels.to_string(),
        map_kind.to_string(),
        array.to_string(),
        good.to_string().replacen('{', "{\"batches\": 2,", 1),
        "not json".into(),
    ] {
        fs::write(root.join("manifest.json"), &text).unwrap();
        let err = BatchDir::open(&root).unwrap_err();
        assert_eq!(file_error_path(err), root.join("manifest.json"), "{text}");
    }
    fs::write(root.join("manifest.json"), good.to_string()).unwrap();
    assert_eq!(BatchDir::open(&root).unwrap().manifest(), &m);
    assert_eq!(
        m.labels,
        Some(LabelInfo {
            classes: 2,
            scale: LABEL_SCALE
        })
    );
    fs::remove_dir_all(&root).unwrap();
    let err = BatchDir::open(&root).unwrap_err();
    assert_eq!(file_error_path(err), root.join("manifest.json"));
}

/// The example manifest of docs/FORMAT.md.
#[test]
fn documented_manifest_example_opens() {
    let root = scratch("documented");
    fs::create_dir_all(&root).unwrap();
    let text = r#"{
  "format": "cryptonn-batches",
  "version": 1,
  "group": "ristretto255",
  "kind": "batch",
  "features": 784,
  "batch_size": 256,
  "batches": 24,
  "labels": { "classes": 10, "scale": 1000 },
  "input_scale": 255.0,
  "source": "MNIST train, images 0..6144, seed 42"
}"#;
    fs::write(root.join("manifest.json"), text).unwrap();
    let dir = BatchDir::open(&root).unwrap();
    let expected = Manifest::new(GroupId::Ristretto255, Kind::Batch, [256, 784], 24, 255.0)
        .with_labels(10, 1000)
        .with_source("MNIST train, images 0..6144, seed 42");
    assert_eq!(dir.manifest(), &expected);
    assert_eq!(dir.missing().len(), 24);
    // Writing the same manifest gives the documented text, up to whitespace.
    let written = serde_json::to_value(&expected).unwrap();
    assert_eq!(
        written,
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
    fs::remove_dir_all(&root).unwrap();
}

/// Release-mode timing of a full-size batch (256 MNIST images, labels):
/// `cargo test --release -p cryptonn-protocol --test container -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run in release"]
fn decode_timing_256x784() {
    let mut rng = StdRng::seed_from_u64(50);
    // Decoding cost does not depend on the values: repeat one ciphertext.
    let row = feip_cts::<Ristretto255>(1, 784, &mut rng).remove(0);
    let col = feip_cts::<Ristretto255>(1, 256, &mut rng).remove(0);
    let label = labels::<Ristretto255>(1, 1, &mut rng).entries()[0].clone();
    let b = EncryptedBatch::new(
        255.0,
        vec![row; 256],
        vec![col; 784],
        Some(EncryptedLabels::new(10, LABEL_SCALE, vec![label; 2560])),
    )
    .unwrap();
    let start = Instant::now();
    let bytes = encode_batch(&b).unwrap();
    let encode = start.elapsed();
    let start = Instant::now();
    let _ = Sha256::digest(&bytes);
    let sha = start.elapsed();
    let mut decode = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let decoded = decode_batch::<Ristretto255>(&bytes).unwrap();
        decode.push(start.elapsed());
        assert_eq!(decoded.shape(), [256, 784]);
    }
    decode.sort();
    let points = 256 * 785 + 784 * 257 + 2 * 2560;
    println!(
        "256x784 Ristretto255 batch, {} bytes, {points} points, {} threads: encode {:?}, \
         sha256 {:?}, decode min {:?} median {:?}",
        bytes.len(),
        rayon::current_num_threads(),
        encode,
        sha,
        decode[0],
        decode[2]
    );
}

/// Release-mode timing of MODP-2048 point decoding, on 64 row ciphertexts of
/// 784 features (50,240 points); a 256×784 batch holds 8 times as many.
#[test]
#[ignore = "timing, run in release"]
fn decode_timing_modp2048_rows() {
    // Full-size group elements, cheaply: g, 2g, 4g, … (g^(2^k) in MODP).
    let mut elements = vec![Modp2048::generator()];
    for _ in 0..784 + 16 {
        let last = elements.last().unwrap();
        elements.push(Modp2048::double(last));
    }
    let elements = elements.split_off(16);
    let id = cryptonn_fe::KeyId::from_bytes([7; 16]);
    let row =
        feip::Ciphertext::from_parts(id, elements[0].clone(), elements[1..].to_vec()).unwrap();
    let rows = EncryptedRows::new(255.0, vec![row; 64], None).unwrap();
    let bytes = encode_rows(&rows).unwrap();
    let start = Instant::now();
    let decoded = decode_rows::<Modp2048>(&bytes).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(decoded, rows);
    println!(
        "MODP-2048, 64x784 rows, {} bytes, 50240 points, {} threads: decode {elapsed:?} ({:?} per point)",
        bytes.len(),
        rayon::current_num_threads(),
        elapsed / 50240
    );
}
