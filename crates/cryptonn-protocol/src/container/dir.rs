//! A directory of batch containers with a JSON manifest ([`BatchDir`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cryptonn_fe::feip::MAX_DIM;
use cryptonn_fe::{Group, GroupId};
use serde::{Deserialize, Serialize};

use super::codec::{
    decode_batch, decode_images, decode_rows, encode_batch, encode_images, encode_rows,
};
use super::{CHECKSUM_LEN, Kind, element_len};
use crate::batch::MAX_LABEL_SCALE;
use crate::{
    EncryptedBatch, EncryptedImages, EncryptedLabels, EncryptedRows, Error, PatchGeometry, Result,
};

/// The most batch files one directory may hold (2²⁴, e.g. 4·10⁹ samples in
/// batches of 256), so that [`BatchDir::missing`] stays bounded.
pub const MAX_BATCHES: usize = 1 << 24;

/// The largest manifest read (1 MiB; a manifest is a few hundred bytes plus
/// its `source`).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Classes and scale of encrypted one-hot labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelInfo {
    /// The number of classes (≥ 1).
    pub classes: usize,
    /// Units per 1.0 of each encrypted entry (1 ..= 2³⁰).
    pub scale: i64,
}

/// `manifest.json` of a [`BatchDir`]: what every batch file of the directory
/// holds. Read strictly: unknown, missing or duplicate fields are errors
/// (`geometry` is present for kind images only, and never `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`Manifest::FORMAT`].
    pub format: String,
    /// Always [`Manifest::VERSION`].
    pub version: u16,
    /// The group of every ciphertext.
    pub group: GroupId,
    /// Batch (rows and columns), rows only, or images.
    pub kind: Kind,
    /// Features per sample (pixels per image for kind images).
    pub features: usize,
    /// The convolution's geometry: present for kind images, of `features`
    /// pixels, and absent (not `null`) for the other kinds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::optional_field::present"
    )]
    pub geometry: Option<PatchGeometry>,
    /// Samples per batch file; only the last file may hold fewer.
    pub batch_size: usize,
    /// The number of batch files, `batch-000000.cnb` to `batches − 1`.
    pub batches: usize,
    /// Classes and scale of the encrypted labels, or `null` for none.
    #[serde(deserialize_with = "required")]
    pub labels: Option<LabelInfo>,
    /// The real input is the encrypted integer divided by this.
    pub input_scale: f64,
    /// Free text: where the samples came from.
    pub source: String,
}

/// Makes an `Option` field required (present, possibly `null`).
fn required<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> core::result::Result<T, D::Error> {
    T::deserialize(d)
}

impl Manifest {
    /// The `format` of every manifest.
    pub const FORMAT: &'static str = "cryptonn-batches";
    /// The `version` this code reads and writes.
    pub const VERSION: u16 = 1;
    /// The manifest's file name inside the directory.
    pub const FILE_NAME: &'static str = "manifest.json";

    /// A manifest for `batches` files of `[batch_size, features]` samples in
    /// `group`, without labels or geometry and with an empty `source` (kind
    /// images needs [`Manifest::with_geometry`]).
    pub fn new(
        group: GroupId,
        kind: Kind,
        [batch_size, features]: [usize; 2],
        batches: usize,
        input_scale: f64,
    ) -> Self {
        Self {
            format: Self::FORMAT.into(),
            version: Self::VERSION,
            group,
            kind,
            features,
            geometry: None,
            batch_size,
            batches,
            labels: None,
            input_scale,
            source: String::new(),
        }
    }

    /// The same, with encrypted labels of `classes` classes times `scale`.
    #[must_use]
    pub fn with_labels(self, classes: usize, scale: i64) -> Self {
        Self {
            labels: Some(LabelInfo { classes, scale }),
            ..self
        }
    }

    /// The same, with the geometry of every file's images (kind images).
    #[must_use]
    pub fn with_geometry(self, geometry: PatchGeometry) -> Self {
        Self {
            geometry: Some(geometry),
            ..self
        }
    }

    /// The same, with this `source`.
    #[must_use]
    pub fn with_source(self, source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..self
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for a wrong format name or version, a count of
    /// zero or out of range (features and, for kind batch, the batch size ≤
    /// 2²⁰; batches ≤ [`MAX_BATCHES`]), labels with no class or a scale out of
    /// 1 ..= 2³⁰, an input scale that is not finite and positive, or a
    /// geometry that does not fit the kind (see [`Manifest::with_geometry`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidBatch(format!("manifest: {reason}")));
        if self.format != Self::FORMAT || self.version != Self::VERSION {
            return bad(format!(
                "format {:?} version {}, expected {:?} version {}",
                self.format,
                self.version,
                Self::FORMAT,
                Self::VERSION
            ));
        }
        let max_batch = match self.kind {
            Kind::Batch | Kind::Images => MAX_DIM,
            Kind::Rows => u32::MAX as usize,
        };
        for (what, value, max) in [
            ("features", self.features, MAX_DIM),
            ("batch_size", self.batch_size, max_batch),
            ("batches", self.batches, MAX_BATCHES),
            (
                "classes",
                self.labels.map_or(1, |l| l.classes),
                u32::MAX as usize,
            ),
        ] {
            if value == 0 || value > max {
                return bad(format!("{what} is {value}, must be in 1..={max}"));
            }
        }
        if let Some(l) = self.labels
            && !(1..=MAX_LABEL_SCALE).contains(&l.scale)
        {
            return bad(format!(
                "label scale {} outside 1..={MAX_LABEL_SCALE}",
                l.scale
            ));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return bad(format!("input scale {} is not positive", self.input_scale));
        }
        self.validate_geometry().map_or(Ok(()), bad)
    }

    /// Why the geometry does not fit the kind and shape, if it does not.
    fn validate_geometry(&self) -> Option<String> {
        match (self.kind, self.geometry) {
            (Kind::Images, None) => Some("kind images without a geometry".into()),
            (Kind::Images, Some(g)) if g.pixels() != self.features => Some(format!(
                "a geometry of {} pixels for {} features",
                g.pixels(),
                self.features
            )),
            (Kind::Images, Some(_))
                if self
                    .batch_size
                    .checked_mul(self.features)
                    .is_none_or(|d| d > MAX_DIM) =>
            {
                Some(format!(
                    "batches of {} images of {} pixels: the batch ciphertext \
                     would exceed dimension {MAX_DIM}",
                    self.batch_size, self.features
                ))
            }
            (Kind::Batch | Kind::Rows, Some(_)) => {
                Some(format!("a geometry for kind {}", self.kind.name()))
            }
            _ => None,
        }
    }

    /// Samples in batch file `i`: `batch_size`, but the last file may hold
    /// 1 ..= `batch_size`.
    fn samples_allowed(&self, i: usize, samples: usize) -> bool {
        samples == self.batch_size
            || (i + 1 == self.batches && (1..self.batch_size).contains(&samples))
    }

    /// The length of the largest container of this directory.
    fn max_file_len(&self) -> Option<u64> {
        let e = element_len(self.group);
        let (b, n) = (self.batch_size, self.features);
        let rows = 16 + b.checked_mul(n + 1)?.checked_mul(e)?;
        let cols = match self.kind {
            Kind::Batch => 16 + n.checked_mul(b + 1)?.checked_mul(e)?,
            Kind::Rows => 0,
            Kind::Images => 36 + 16 + b.checked_mul(n)?.checked_add(1)?.checked_mul(e)?,
        };
        let labels = match self.labels {
            Some(l) => 28 + b.checked_mul(l.classes)?.checked_mul(2 * e)?,
            None => 0,
        };
        let len = (13 + 16 + CHECKSUM_LEN)
            .checked_add(rows)?
            .checked_add(cols)?;
        u64::try_from(len.checked_add(labels)?).ok()
    }
}

fn file_error(path: &Path, reason: impl core::fmt::Display) -> Error {
    Error::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A directory of encrypted batch files: `manifest.json` and
/// `batch-000000.cnb`, `batch-000001.cnb`, … (see `docs/FORMAT.md`).
///
/// A batch file appears only complete, by an atomic rename of a synced
/// temporary file, so an interrupted run resumes by writing the
/// [`missing`](BatchDir::missing) files. Reading holds one batch in memory.
#[derive(Debug, Clone)]
pub struct BatchDir {
    root: PathBuf,
    manifest: Manifest,
}

impl BatchDir {
    /// Creates the directory (and its parents) with `manifest`, or reopens it
    /// if it already has the identical manifest.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] if the manifest is invalid; [`Error::File`]
    /// naming the manifest if an existing one differs or cannot be read, or
    /// naming the directory if it cannot be created or written.
    pub fn create(dir: impl AsRef<Path>, manifest: Manifest) -> Result<Self> {
        manifest.validate()?;
        let root = dir.as_ref().to_path_buf();
        fs::create_dir_all(&root)
            .map_err(|e| file_error(&root, format!("cannot create directory: {e}")))?;
        let path = root.join(Manifest::FILE_NAME);
        if path.exists() {
            let existing = read_manifest(&path)?;
            if existing != manifest {
                return Err(file_error(
                    &path,
                    format!(
                        "an existing manifest differs from the one asked for \
                         (existing {existing:?}, asked {manifest:?})"
                    ),
                ));
            }
        } else {
            let mut json = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| file_error(&path, format!("cannot serialize: {e}")))?;
            json.push(b'\n');
            write_atomic(&path, &json)?;
        }
        Ok(Self { root, manifest })
    }

    /// Opens an existing directory.
    ///
    /// # Errors
    /// [`Error::File`] naming the manifest if it is missing, unreadable,
    /// malformed or invalid.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let root = dir.as_ref().to_path_buf();
        let manifest = read_manifest(&root.join(Manifest::FILE_NAME))?;
        Ok(Self { root, manifest })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// What every batch file holds.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The path of batch file `i`: `<dir>/batch-000042.cnb`.
    pub fn path(&self, i: usize) -> PathBuf {
        self.root.join(format!("batch-{i:06}.cnb"))
    }

    /// Whether batch file `i` exists (complete files appear only by atomic
    /// rename; its content is checked when read). False for `i` out of range.
    pub fn is_complete(&self, i: usize) -> bool {
        i < self.manifest.batches && self.path(i).is_file()
    }

    /// The indices of the batch files not yet written, in order.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.manifest.batches)
            .filter(|&i| !self.is_complete(i))
            .collect()
    }

    /// Removes temporary files left by interrupted writes and returns how
    /// many. Call it only while no other process writes to the directory.
    ///
    /// # Errors
    /// [`Error::File`] if the directory cannot be listed or a file removed.
    pub fn remove_temp_files(&self) -> Result<usize> {
        let entries =
            fs::read_dir(&self.root).map_err(|e| file_error(&self.root, format!("{e}")))?;
        let mut removed = 0;
        for entry in entries {
            let path = entry.map_err(|e| file_error(&self.root, e))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_temp_name)
            {
                fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes batch file `i` atomically (temporary file in the same
    /// directory, fsync, rename, fsync of the directory); an existing file is
    /// replaced.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if `i` is out of range, the batch does
    /// not match the manifest (group, kind, shape, input scale, labels), or
    /// writing fails.
    pub fn write_batch<G: Group>(&self, i: usize, batch: &EncryptedBatch<G>) -> Result<()> {
        let [samples, features] = batch.shape();
        let found = Found {
            kind: Kind::Batch,
            samples,
            features,
            input_scale: batch.input_scale(),
            labels: batch.labels().map(label_info),
            geometry: None,
        };
        let path = self.check::<G>(i, &found)?;
        let bytes = encode_batch(batch).map_err(|e| file_error(&path, e))?;
        write_atomic(&path, &bytes)
    }

    /// Writes row-wise batch file `i` atomically, as [`BatchDir::write_batch`].
    ///
    /// # Errors
    /// As [`BatchDir::write_batch`].
    pub fn write_rows<G: Group>(&self, i: usize, rows: &EncryptedRows<G>) -> Result<()> {
        let [samples, features] = rows.shape();
        let found = Found {
            kind: Kind::Rows,
            samples,
            features,
            input_scale: rows.input_scale(),
            labels: rows.labels().map(label_info),
            geometry: None,
        };
        let path = self.check::<G>(i, &found)?;
        let bytes = encode_rows(rows).map_err(|e| file_error(&path, e))?;
        write_atomic(&path, &bytes)
    }

    /// Writes images file `i` atomically, as [`BatchDir::write_batch`].
    ///
    /// # Errors
    /// As [`BatchDir::write_batch`], the geometry included in what must
    /// match the manifest.
    pub fn write_images<G: Group>(&self, i: usize, images: &EncryptedImages<G>) -> Result<()> {
        let path = self.check::<G>(i, &images_found(images))?;
        let bytes = encode_images(images).map_err(|e| file_error(&path, e))?;
        write_atomic(&path, &bytes)
    }

    /// Reads and decodes batch file `i`.
    ///
    /// # Errors
    /// [`Error::File`] naming the file if `i` is out of range, the file is
    /// missing, unreadable, larger than any batch of the manifest, fails to
    /// decode (truncated, corrupted, …: the reason is the decoder's error), or
    /// does not match the manifest.
    pub fn read_batch<G: Group>(&self, i: usize) -> Result<EncryptedBatch<G>> {
        let path = self.check_index::<G>(i, Kind::Batch)?;
        let batch = decode_batch::<G>(&self.read_file(&path)?).map_err(|e| file_error(&path, e))?;
        let [samples, features] = batch.shape();
        self.check::<G>(
            i,
            &Found {
                kind: Kind::Batch,
                samples,
                features,
                input_scale: batch.input_scale(),
                labels: batch.labels().map(label_info),
                geometry: None,
            },
        )?;
        Ok(batch)
    }

    /// Reads and decodes row-wise batch file `i`.
    ///
    /// # Errors
    /// As [`BatchDir::read_batch`].
    pub fn read_rows<G: Group>(&self, i: usize) -> Result<EncryptedRows<G>> {
        let path = self.check_index::<G>(i, Kind::Rows)?;
        let rows = decode_rows::<G>(&self.read_file(&path)?).map_err(|e| file_error(&path, e))?;
        let [samples, features] = rows.shape();
        self.check::<G>(
            i,
            &Found {
                kind: Kind::Rows,
                samples,
                features,
                input_scale: rows.input_scale(),
                labels: rows.labels().map(label_info),
                geometry: None,
            },
        )?;
        Ok(rows)
    }

    /// Reads and decodes images file `i`.
    ///
    /// # Errors
    /// As [`BatchDir::read_batch`], the geometry included in what must match
    /// the manifest.
    pub fn read_images<G: Group>(&self, i: usize) -> Result<EncryptedImages<G>> {
        let path = self.check_index::<G>(i, Kind::Images)?;
        let images =
            decode_images::<G>(&self.read_file(&path)?).map_err(|e| file_error(&path, e))?;
        self.check::<G>(i, &images_found(&images))?;
        Ok(images)
    }

    /// The path of file `i`, if `i`, `G` and `kind` fit the manifest.
    fn check_index<G: Group>(&self, i: usize, kind: Kind) -> Result<PathBuf> {
        let path = self.path(i);
        let m = &self.manifest;
        if i >= m.batches {
            return Err(file_error(
                &path,
                format!("batch {i} out of range: the manifest has {}", m.batches),
            ));
        }
        if G::ID != m.group || kind != m.kind {
            return Err(file_error(
                &path,
                format!(
                    "{} {} asked for, the directory holds {} {}",
                    G::ID,
                    kind.name(),
                    m.group,
                    m.kind.name()
                ),
            ));
        }
        Ok(path)
    }

    /// The path of file `i`, if `found` fits the manifest.
    fn check<G: Group>(&self, i: usize, found: &Found) -> Result<PathBuf> {
        let path = self.check_index::<G>(i, found.kind)?;
        let m = &self.manifest;
        let reason = if found.features != m.features || !m.samples_allowed(i, found.samples) {
            format!(
                "[{}, {}] samples, the manifest allows [{}, {}]{}",
                found.samples,
                found.features,
                m.batch_size,
                m.features,
                if i + 1 == m.batches {
                    " or fewer samples"
                } else {
                    ""
                }
            )
        } else if found.input_scale != m.input_scale {
            format!(
                "input scale {}, the manifest says {}",
                found.input_scale, m.input_scale
            )
        } else if found.labels != m.labels {
            format!(
                "labels {:?}, the manifest says {:?}",
                found.labels, m.labels
            )
        } else if found.geometry != m.geometry {
            format!(
                "geometry {:?}, the manifest says {:?}",
                found.geometry, m.geometry
            )
        } else {
            return Ok(path);
        };
        Err(file_error(&path, reason))
    }

    /// The bytes of `path`, refusing files longer than any batch of the manifest.
    fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let max = self.manifest.max_file_len().unwrap_or(u64::MAX);
        read_capped(path, max)
    }
}

/// What a batch holds, to compare with the manifest.
struct Found {
    kind: Kind,
    samples: usize,
    features: usize,
    input_scale: f64,
    labels: Option<LabelInfo>,
    geometry: Option<PatchGeometry>,
}

fn images_found<G: Group>(images: &EncryptedImages<G>) -> Found {
    Found {
        kind: Kind::Images,
        samples: images.images(),
        features: images.geometry().pixels(),
        input_scale: images.input_scale(),
        labels: images.labels().map(label_info),
        geometry: Some(*images.geometry()),
    }
}

fn label_info<G: Group>(labels: &EncryptedLabels<G>) -> LabelInfo {
    LabelInfo {
        classes: labels.classes(),
        scale: labels.scale(),
    }
}

/// The whole file, or an error naming it if it cannot be read or is longer
/// than `max` bytes (checked before reading it all).
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| file_error(path, format!("cannot stat: {e}")))?
        .len();
    if len > max {
        return Err(file_error(
            path,
            format!("{len} bytes, more than the {max} bytes allowed here"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(file_error(
            path,
            format!("grew past {max} bytes while read"),
        ));
    }
    Ok(bytes)
}

/// Reads and checks a manifest: a JSON object, no unknown, missing or
/// duplicate field, valid values.
fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = read_capped(path, MAX_MANIFEST_BYTES)?;
    let shape: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| file_error(path, format!("not JSON: {e}")))?;
    // Serde's derive also accepts a struct written as an array.
    let labels_ok = shape
        .get("labels")
        .is_none_or(|l| l.is_object() || l.is_null());
    let geometry_ok = shape.get("geometry").is_none_or(|g| g.is_object());
    if !shape.is_object() || !labels_ok || !geometry_ok {
        return Err(file_error(
            path,
            "the manifest, its labels and its geometry must be JSON objects",
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| file_error(path, format!("invalid manifest: {e}")))?;
    manifest.validate().map_err(|e| file_error(path, e))?;
    Ok(manifest)
}

/// Temporary files are `<target name>.tmp-<pid>-<n>`.
fn is_temp_name(name: &str) -> bool {
    name.contains(".tmp-")
}

fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically and durably: a new temporary file
/// beside it, written and synced, renamed over `path`, then the directory
/// synced. On failure the temporary file is removed (best effort).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let written = (|| -> io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        sync_dir(dir.unwrap_or(Path::new(".")))
    })();
    written.map_err(|e| {
        // The temporary file may not exist (e.g. after the rename); either
        // way the error that matters is `e`.
        let _ = fs::remove_file(&tmp);
        file_error(path, format!("cannot write: {e}"))
    })
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is what
    // makes the file appear whole.
    Ok(())
}
