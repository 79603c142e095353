//! The binary batch container and the batch directory: round trips, every
//! refusal of the decoder, and resuming an interrupted run; for batches,
//! rows and images.
#![allow(clippy::unwrap_used, clippy::panic)] // Helpers of tests may unwrap and panic.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cryptonn_fe::{Group, GroupId, Modp2048, Ristretto255, febo, feip};
use cryptonn_protocol::container::{
    self, BatchDir, Kind, LabelInfo, Manifest, decode_batch, decode_images, decode_rows,
    encode_batch, encode_images, encode_rows, read_header,
};
use cryptonn_protocol::{
    EncryptedBatch, EncryptedImages, EncryptedLabels, EncryptedRows, Error, PatchGeometry,
};
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
    for code in [0u8, 4, 255] {
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
    let images = image_bytes();
    for selector in 0..16u8 {
        for bytes in [&bytes, &images] {
            for cut in [0, 1, 13, 45, bytes.len() / 2, bytes.len()] {
                let mut input = vec![selector];
                input.extend_from_slice(&bytes[..cut]);
                container::fuzz_decode(&input);
            }
        }
    }
    container::fuzz_decode(&[]);
}

// Images (kind 3).

/// The geometry of the image tests: 1 × 3 × 3 images, 2 × 2 kernel.
fn small_geometry() -> PatchGeometry {
    PatchGeometry::new([1, 3, 3], [2, 2], [1, 1], [0, 0]).unwrap()
}

fn images<G: Group>(
    seed: u64,
    geometry: PatchGeometry,
    count: usize,
    classes: Option<usize>,
) -> EncryptedImages<G> {
    let mut rng = StdRng::seed_from_u64(seed);
    let pixels = geometry.pixels();
    let rows = feip_cts(count, pixels, &mut rng);
    let batch = feip_cts(1, count * pixels, &mut rng).remove(0);
    let plain = EncryptedImages::new(geometry, 255.0, rows, batch).unwrap();
    match classes {
        Some(c) => plain.with_labels(labels(count, c, &mut rng)).unwrap(),
        None => plain,
    }
}

/// A small valid Ristretto255 images container with labels: 2 images of
/// 9 pixels, 2 classes.
fn image_bytes() -> Vec<u8> {
    encode_images(&images::<Ristretto255>(60, small_geometry(), 2, Some(2))).unwrap()
}

/// Byte offsets of the geometry, the batch key id and the labels section of
/// a Ristretto255 images container.
fn geometry_batch_labels_at(count: usize, pixels: usize) -> (usize, usize, usize) {
    let geometry = ROWS_AT + count * (pixels + 1) * 32;
    let batch = geometry + 36;
    (geometry, batch, batch + 16 + (count * pixels + 1) * 32)
}

fn images_err(bytes: &[u8]) -> String {
    message(&decode_images::<Ristretto255>(bytes).unwrap_err())
}

fn assert_images_refused(bytes: &[u8], needle: &str) {
    let err = images_err(bytes);
    assert!(err.contains(needle), "expected {needle:?} in {err:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn images_round_trip(
        count in 1..=3usize,
        channels in 1..=2usize,
        side in 2..=4usize,
        classes in proptest::option::of(1..=3usize),
        seed in any::<u64>(),
    ) {
        let geometry = PatchGeometry::new([channels, side, side], [2, 2], [1, 1], [0, 0]).unwrap();
        let im = images::<Ristretto255>(seed, geometry, count, classes);
        let bytes = encode_images(&im).unwrap();
        let header = read_header(&bytes).unwrap();
        prop_assert_eq!(header.kind, Kind::Images);
        prop_assert_eq!([header.samples, header.features], [count, geometry.pixels()]);
        prop_assert_eq!(header.geometry, Some(geometry));
        prop_assert_eq!(header.labels.map(|l| l.classes), classes);
        prop_assert_eq!(header.len, bytes.len());
        prop_assert_eq!(decode_images::<Ristretto255>(&bytes).unwrap(), im);
    }
}

#[test]
fn modp2048_images_round_trip() {
    for classes in [None, Some(2)] {
        let im = images::<Modp2048>(61, small_geometry(), 2, classes);
        let bytes = encode_images(&im).unwrap();
        let expected = 45 + 2 * 10 * 256 + 36 + 16 + 19 * 256 + 32;
        let labels = classes.map_or(0, |c| 28 + 2 * c * 2 * 256);
        assert_eq!(bytes.len(), expected + labels);
        assert_eq!(decode_images::<Modp2048>(&bytes).unwrap(), im);
    }
}

#[test]
fn images_encoding_is_exact_and_deterministic() {
    let geometry = PatchGeometry::new([2, 3, 4], [2, 3], [1, 2], [1, 0]).unwrap();
    let im = images::<Ristretto255>(62, geometry, 2, Some(2));
    let bytes = encode_images(&im).unwrap();
    assert_eq!(bytes, encode_images(&im).unwrap());
    assert_eq!(
        [bytes[GROUP_AT], bytes[KIND_AT], bytes[FLAGS_AT]],
        [1, 3, 1]
    );
    assert_eq!(bytes[SAMPLES_AT..FEATURES_AT], [2, 0, 0, 0]);
    assert_eq!(bytes[FEATURES_AT..ROW_KEY_AT], [24, 0, 0, 0]);
    assert_eq!(&bytes[ROW_KEY_AT..ROWS_AT], im.row_key().as_bytes());
    let (at, batch, labels) = geometry_batch_labels_at(2, 24);
    let fields: Vec<u32> = bytes[at..batch]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(fields, [2, 3, 4, 2, 3, 1, 2, 1, 0]);
    assert_eq!(&bytes[batch..batch + 16], im.col_key().as_bytes());
    let ct = &im.batch()[0];
    assert_eq!(
        bytes[batch + 16..batch + 48],
        Ristretto255::element_to_bytes(ct.commitment())
    );
    assert_eq!(bytes[labels..labels + 4], [2, 0, 0, 0]);
    assert_eq!(bytes.len(), labels + 28 + 2 * 2 * 64 + 32);
    let body = bytes.len() - 32;
    assert_eq!(bytes[body..], Sha256::digest(&bytes[..body])[..]);
}

/// The size example of docs/FORMAT.md: 64 MNIST images, 10 classes.
#[test]
fn documented_images_length() {
    let geometry = PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
    let mut bytes = vec![0; 45];
    bytes[..8].copy_from_slice(b"CNNBATCH");
    bytes[VERSION_AT] = 1;
    bytes[GROUP_AT] = 1;
    bytes[KIND_AT] = 3;
    bytes[FLAGS_AT] = 1;
    bytes[SCALE_AT..SAMPLES_AT].copy_from_slice(&255.0f64.to_le_bytes());
    bytes[SAMPLES_AT..FEATURES_AT].copy_from_slice(&64u32.to_le_bytes());
    bytes[FEATURES_AT..ROW_KEY_AT].copy_from_slice(&784u32.to_le_bytes());
    let (at, _, labels) = geometry_batch_labels_at(64, 784);
    bytes.resize(labels + 4, 0);
    for (k, v) in [1u32, 28, 28, 5, 5, 1, 1, 0, 0].into_iter().enumerate() {
        bytes[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_le_bytes());
    }
    bytes[labels..].copy_from_slice(&10u32.to_le_bytes());
    bytes.resize(3_254_461, 0);
    let header = read_header(&bytes).unwrap();
    assert_eq!(header.geometry, Some(geometry));
    assert_eq!(header.len, 3_254_461);
}

#[test]
fn rejects_images_of_wrong_kind() {
    let bytes = image_bytes();
    let err = message(&decode_batch::<Ristretto255>(&bytes).unwrap_err());
    assert!(
        err.contains("kind 3 (images), kind 1 (batch) expected"),
        "{err}"
    );
    let err = message(&decode_rows::<Ristretto255>(&bytes).unwrap_err());
    assert!(
        err.contains("kind 3 (images), kind 2 (rows) expected"),
        "{err}"
    );
    assert_images_refused(&sample_bytes(), "kind 1 (batch), kind 3 (images) expected");
    let r = encode_rows(&rows::<Ristretto255>(63, [2, 9], None)).unwrap();
    assert_images_refused(&r, "kind 2 (rows), kind 3 (images) expected");
    let err = message(&decode_images::<Modp2048>(&bytes).unwrap_err());
    assert!(
        err.contains("ristretto255 ciphertexts, modp2048 expected"),
        "{err}"
    );
    for code in [0u8, 4, 255] {
        let mut bad = bytes.clone();
        bad[KIND_AT] = code;
        assert_images_refused(&bad, &format!("unknown kind byte {code}"));
    }
    // The kind bytes of other containers relabelled: the sections no longer add up.
    for (mut bad, code) in [(bytes.clone(), 1), (bytes, 2), (sample_bytes(), 3)] {
        bad[KIND_AT] = code;
        fix_checksum(&mut bad);
        let err = if code == 3 {
            images_err(&bad)
        } else {
            batch_err(&bad) + &message(&decode_rows::<Ristretto255>(&bad).unwrap_err())
        };
        assert!(
            ["truncated", "trailing bytes", "geometry"]
                .iter()
                .any(|n| err.contains(n)),
            "kind {code}: {err}"
        );
    }
}

#[test]
fn rejects_truncated_images() {
    let bytes = image_bytes();
    let (geometry, batch, labels) = geometry_batch_labels_at(2, 9);
    for cut in [
        0,
        12,
        FEATURES_AT + 2,
        ROWS_AT + 40,
        geometry,
        geometry + 3,
        geometry + 20,
        batch,
        batch + 10,
        batch + 16 + 100,
        labels,
        labels + 30,
        bytes.len() - 32,
        bytes.len() - 1,
    ] {
        let err = images_err(&bytes[..cut]);
        assert!(err.contains("truncated"), "cut at {cut}: {err}");
    }
}

#[test]
fn rejects_images_trailing_bytes() {
    let mut bytes = image_bytes();
    bytes.extend_from_slice(&[0; 3]);
    assert_images_refused(&bytes, "3 trailing bytes");
    fix_checksum(&mut bytes);
    assert_images_refused(&bytes, "3 trailing bytes");
}

#[test]
fn rejects_images_geometry_mismatch() {
    let bytes = image_bytes();
    let (at, _, _) = geometry_batch_labels_at(2, 9);
    // Two channels of 3 × 3: 18 pixels for rows of 9.
    assert_images_refused(
        &with_u32(&bytes, at, 2),
        "geometry of 18 pixels, the header says 9 features",
    );
    // A 3 × 3 image of the same 9 pixels, but no longer a valid geometry.
    for (field, value) in [(0, 0), (3, 0), (3, 4), (5, 0), (7, 4)] {
        let bad = with_u32(&bytes, at + 4 * field, value);
        assert_images_refused(&bad, "geometry: shape mismatch");
    }
    // More pixels in the header than the geometry has (the geometry is then
    // read from elsewhere).
    let err = images_err(&with_u32(&bytes, FEATURES_AT, 10));
    assert!(
        err.contains("geometry") || err.contains("truncated"),
        "{err}"
    );
    // The batch ciphertext would exceed FEIP's dimension.
    let bad = with_u32(&bytes, SAMPLES_AT, 1 << 17);
    assert_images_refused(&bad, "would exceed dimension");
    let bad = with_u32(&bytes, SAMPLES_AT, (1 << 20) + 1);
    assert_images_refused(&bad, "sample count is 1048577");
}

#[test]
fn rejects_images_labels_mismatch() {
    let bytes = image_bytes();
    let (_, _, labels) = geometry_batch_labels_at(2, 9);
    // A class count the entries do not fill, or overfill.
    assert_images_refused(&with_u32(&bytes, labels, 3), "truncated");
    assert_images_refused(&with_u32(&bytes, labels, 1), "trailing bytes");
    assert_images_refused(&with_u32(&bytes, labels, 0), "class count is 0");
    // The flag cleared: the labels become trailing bytes.
    let mut bad = bytes.clone();
    bad[FLAGS_AT] = 0;
    assert_images_refused(&bad, "trailing bytes");
    for scale in [0i64, 1 << 31] {
        let mut bad = bytes.clone();
        bad[labels + 4..labels + 12].copy_from_slice(&scale.to_le_bytes());
        fix_checksum(&mut bad);
        assert_images_refused(&bad, "labels do not match the batch");
    }
}

#[test]
fn rejects_images_invalid_point() {
    let bytes = image_bytes();
    let (_, batch, labels) = geometry_batch_labels_at(2, 9);
    let mut negative = [0; 32];
    negative[0] = 1;
    let places = [
        (ROWS_AT + 12 * 32, "row ciphertext 1, element 2"),
        (batch + 16, "batch ciphertext 0, element 0"),
        (batch + 16 + 17 * 32, "batch ciphertext 0, element 17"),
        (labels + 28 + 6 * 32, "label entry 3, element 0"),
    ];
    for (at, what) in places {
        for point in [&[0xff; 32], &negative] {
            assert_images_refused(&with_point(&bytes, at, point), what);
        }
    }
    let modp = encode_images(&images::<Modp2048>(64, small_geometry(), 1, None)).unwrap();
    let (_, batch, _) = geometry_batch_labels_at(1, 9);
    let batch = batch + 10 * (256 - 32); // MODP elements are 256 bytes
    let bad = with_point(&modp, batch + 16 + 3 * 256, &[0; 256]);
    let err = message(&decode_images::<Modp2048>(&bad).unwrap_err());
    assert!(err.contains("batch ciphertext 0, element 3"), "{err}");
}

#[test]
fn rejects_images_flipped_byte_and_shared_key() {
    let bytes = image_bytes();
    let (geometry, batch, labels) = geometry_batch_labels_at(2, 9);
    for at in [batch + 3, batch + 40, labels + 50, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert_images_refused(&bad, "checksum mismatch");
    }
    // The geometry is header: checked before the checksum.
    let mut bad = bytes.clone();
    bad[geometry + 1] ^= 0x10;
    assert_images_refused(&bad, "geometry of 36873 pixels");
    let row_key = bytes[ROW_KEY_AT..ROWS_AT].to_vec();
    assert_images_refused(
        &with_point(&bytes, batch, &row_key),
        "rows and batch share one master key",
    );
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

fn images_manifest(batches: usize, classes: Option<usize>) -> Manifest {
    let g = small_geometry();
    let m = Manifest::new(GroupId::Ristretto255, Kind::Images, [2, 9], batches, 255.0)
        .with_geometry(g)
        .with_source("tests/container.rs");
    match classes {
        Some(c) => m.with_labels(c, LABEL_SCALE),
        None => m,
    }
}

#[test]
fn images_dir_round_trips_with_and_without_labels() {
    for classes in [Some(2), None] {
        let root = scratch(&format!("images_{classes:?}"));
        let dir = BatchDir::create(&root, images_manifest(2, classes)).unwrap();
        let i0 = images::<Ristretto255>(70, small_geometry(), 2, classes);
        let i1 = images::<Ristretto255>(71, small_geometry(), 1, classes); // the last may be smaller
        dir.write_images(0, &i0).unwrap();
        dir.write_images(1, &i1).unwrap();
        assert!(dir.missing().is_empty());
        let opened = BatchDir::open(&root).unwrap();
        assert_eq!(opened.manifest(), &images_manifest(2, classes));
        assert_eq!(opened.read_images::<Ristretto255>(0).unwrap(), i0);
        assert_eq!(opened.read_images::<Ristretto255>(1).unwrap(), i1);
        let text = fs::read_to_string(root.join("manifest.json")).unwrap();
        assert!(text.contains("\"kind\": \"images\""), "{text}");
        assert!(text.contains("\"geometry\""), "{text}");
        fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn images_dir_modp2048_round_trips() {
    let root = scratch("images_modp");
    let m = Manifest {
        group: GroupId::Modp2048,
        ..images_manifest(1, Some(2))
    };
    let dir = BatchDir::create(&root, m).unwrap();
    let im = images::<Modp2048>(72, small_geometry(), 2, Some(2));
    dir.write_images(0, &im).unwrap();
    assert_eq!(dir.read_images::<Modp2048>(0).unwrap(), im);
    assert!(dir.read_images::<Ristretto255>(0).is_err());
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_images_not_matching_manifest() {
    let root = scratch("images_mismatch");
    let dir = BatchDir::create(&root, images_manifest(2, Some(2))).unwrap();
    // The same 9 pixels under another kernel.
    let other = PatchGeometry::new([1, 3, 3], [3, 3], [1, 1], [0, 0]).unwrap();
    let nine = PatchGeometry::new([1, 9, 1], [2, 1], [1, 1], [0, 0]).unwrap();
    let cases: [(EncryptedImages<Ristretto255>, &str); 6] = [
        (images(80, other, 2, Some(2)), "geometry"),
        (images(81, nine, 2, Some(2)), "geometry"),
        (images(82, small_geometry(), 1, Some(2)), "samples"), // not the last file
        (images(83, small_geometry(), 2, None), "labels"),
        (images(84, small_geometry(), 2, Some(3)), "labels"),
        (
            images(
                85,
                PatchGeometry::new([1, 2, 2], [2, 2], [1, 1], [0, 0]).unwrap(),
                2,
                Some(2),
            ),
            "samples",
        ),
    ];
    for (im, needle) in cases {
        let err = dir.write_images(0, &im).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(file_error_path(err), dir.path(0));
    }
    let good = images::<Ristretto255>(86, small_geometry(), 2, Some(2));
    assert!(dir.write_images(2, &good).is_err());
    assert!(
        dir.write_batch(0, &batch::<Ristretto255>(87, [2, 9], Some(2)))
            .is_err()
    );
    dir.write_images(0, &good).unwrap();
    assert!(dir.read_batch::<Ristretto255>(0).is_err());
    assert!(dir.read_rows::<Ristretto255>(0).is_err());
    // A file of other images (another geometry, same length) in its place.
    let foreign = encode_images(&images::<Ristretto255>(88, other, 2, Some(2))).unwrap();
    fs::write(dir.path(0), foreign).unwrap();
    let err = dir.read_images::<Ristretto255>(0).unwrap_err();
    assert!(err.to_string().contains("geometry"), "{err}");
    assert_eq!(file_error_path(err), dir.path(0));
    // A batch file (small enough to be read) is refused by its kind.
    let batch_file = encode_batch(&batch::<Ristretto255>(89, [1, 9], None)).unwrap();
    fs::write(dir.path(1), batch_file).unwrap();
    let err = dir.read_images::<Ristretto255>(1).unwrap_err();
    assert!(err.to_string().contains("kind 1 (batch)"), "{err}");
    // Truncated on disk.
    let bytes = encode_images(&good).unwrap();
    fs::write(dir.path(1), &bytes[..bytes.len() - 40]).unwrap();
    let err = dir.read_images::<Ristretto255>(1).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn rejects_images_manifest_geometry_mismatch() {
    let root = scratch("images_manifest");
    let m = images_manifest(2, None);
    let mut no_geometry = m.clone();
    no_geometry.geometry = None;
    let batch_with_geometry = manifest(Kind::Batch, 2).with_geometry(small_geometry());
    let rows_with_geometry = manifest(Kind::Rows, 2).with_geometry(small_geometry());
    let wrong_pixels = Manifest {
        features: 10,
        ..m.clone()
    };
    let too_large = Manifest {
        batch_size: (1 << 20) / 9 + 1,
        ..m.clone()
    };
    for bad in [
        no_geometry,
        batch_with_geometry,
        rows_with_geometry,
        wrong_pixels,
        too_large,
    ] {
        let err = BatchDir::create(&root, bad.clone()).unwrap_err();
        assert!(err.to_string().contains("manifest"), "{bad:?}: {err}");
    }
    assert!(!root.join("manifest.json").exists());

    BatchDir::create(&root, m.clone()).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).unwrap()).unwrap();
    let mut null = good.clone();
    null["geometry"] = serde_json::Value::Null;
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("geometry");
    let mut array = good.clone();
    array["geometry"] = serde_json::json!([[1, 3, 3], [2, 2], [1, 1], [0, 0]]);
    let mut invalid = good.clone();
    invalid["geometry"]["kernel"] = serde_json::json!([4, 4]);
    let mut unknown = good.clone();
    unknown["geometry"]["dilation"] = serde_json::json!([1, 1]);
    for text in [null, missing, array, invalid, unknown] {
        fs::write(root.join("manifest.json"), text.to_string()).unwrap();
        let err = BatchDir::open(&root).unwrap_err();
        assert_eq!(file_error_path(err), root.join("manifest.json"), "{text}");
    }
    fs::write(root.join("manifest.json"), good.to_string()).unwrap();
    assert_eq!(BatchDir::open(&root).unwrap().manifest(), &m);
    fs::remove_dir_all(&root).unwrap();
}

/// The images manifest example of docs/FORMAT.md.
#[test]
fn documented_images_manifest_example_opens() {
    let root = scratch("documented_images");
    fs::create_dir_all(&root).unwrap();
    let text = r#"{
  "format": "cryptonn-batches",
  "version": 1,
  "group": "ristretto255",
  "kind": "images",
  "features": 784,
  "geometry": { "image": [1, 28, 28], "kernel": [5, 5], "stride": [1, 1], "padding": [0, 0] },
  "batch_size": 64,
  "batches": 94,
  "labels": { "classes": 10, "scale": 1000 },
  "input_scale": 255.0,
  "source": "MNIST train, images 0..6000, seed 42"
}"#;
    fs::write(root.join("manifest.json"), text).unwrap();
    let dir = BatchDir::open(&root).unwrap();
    let geometry = PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
    let expected = Manifest::new(GroupId::Ristretto255, Kind::Images, [64, 784], 94, 255.0)
        .with_geometry(geometry)
        .with_labels(10, 1000)
        .with_source("MNIST train, images 0..6000, seed 42");
    assert_eq!(dir.manifest(), &expected);
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
