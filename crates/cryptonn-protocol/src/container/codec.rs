//! The container codec: [`encode_batch`], [`decode_batch`], their row-only
//! twins and their image twins.

use cryptonn_fe::feip::MAX_DIM;
use cryptonn_fe::{Group, GroupId, KeyId, febo, feip};
use rayon::prelude::*;

use super::{
    CHECKSUM_LEN, FLAG_LABELS, Header, Kind, LabelInfo, MAGIC, VERSION, checksum, element_len,
    group_code, group_from_code,
};
use crate::{
    EncryptedBatch, EncryptedImages, EncryptedLabels, EncryptedRows, Error, PatchGeometry, Result,
};

/// magic, version, group, kind, flags.
const PREFIX_LEN: usize = 8 + 2 + 1 + 1 + 1;
/// input scale, samples, features.
const SHAPE_LEN: usize = 8 + 4 + 4;
const KEY_ID_LEN: usize = 16;
/// classes, label scale, FEBO key id.
const LABELS_HEAD_LEN: usize = 4 + 8 + KEY_ID_LEN;
/// C, H, W, kh, kw, sh, sw, ph, pw.
const GEOMETRY_LEN: usize = 9 * 4;

fn bad(reason: impl core::fmt::Display) -> Error {
    Error::InvalidBatch(format!("batch container: {reason}"))
}

/// `a · b · c`, or an error if it overflows.
fn product(a: usize, b: usize, c: usize) -> Result<usize> {
    a.checked_mul(b)
        .and_then(|ab| ab.checked_mul(c))
        .ok_or_else(|| bad("section sizes overflow"))
}

/// Byte offsets of the sections of one container, from its counts alone.
#[derive(Debug, Clone, Copy)]
struct Layout {
    element: usize,
    samples: usize,
    /// Start of the row key id.
    rows: usize,
    /// Start of the kind's second section: the column key id (kind batch),
    /// the geometry (kind images), or the labels (kind rows).
    cols: usize,
    /// Start of the labels section (= end of the column section).
    labels: usize,
}

impl Layout {
    fn new(group: GroupId, kind: Kind, samples: usize, features: usize) -> Result<Self> {
        let element = element_len(group);
        let rows = PREFIX_LEN + SHAPE_LEN;
        let row_bytes = product(samples, features.saturating_add(1), element)?;
        let cols = add(rows, KEY_ID_LEN + row_bytes)?;
        let second = match kind {
            Kind::Batch => add(
                KEY_ID_LEN,
                product(features, samples.saturating_add(1), element)?,
            )?,
            Kind::Rows => 0,
            Kind::Images => {
                let batch_dim = product(samples, features, 1)?;
                add(
                    GEOMETRY_LEN + KEY_ID_LEN,
                    product(add(batch_dim, 1)?, element, 1)?,
                )?
            }
        };
        let labels = add(cols, second)?;
        Ok(Self {
            element,
            samples,
            rows,
            cols,
            labels,
        })
    }

    /// The total length, checksum included, for `classes` label columns.
    fn total(&self, classes: Option<usize>) -> Result<usize> {
        let labels = match classes {
            Some(c) => add(LABELS_HEAD_LEN, product(self.samples, c, 2 * self.element)?)?,
            None => 0,
        };
        add(add(self.labels, labels)?, CHECKSUM_LEN)
    }
}

fn add(a: usize, b: usize) -> Result<usize> {
    a.checked_add(b)
        .ok_or_else(|| bad("section sizes overflow"))
}

/// A cursor over the container that reports where it ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let field = self
            .pos
            .checked_add(N)
            .and_then(|end| self.bytes.get(self.pos..end))
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| {
                bad(format!(
                    "truncated: {} bytes end inside the {what} (bytes {}..{})",
                    self.bytes.len(),
                    self.pos,
                    self.pos.saturating_add(N)
                ))
            })?;
        self.pos += N;
        Ok(field)
    }

    fn u32(&mut self, what: &str) -> Result<usize> {
        usize::try_from(u32::from_le_bytes(self.take(what)?))
            .map_err(|_| bad(format!("{what} does not fit this platform")))
    }
}

/// A count of 1 ..= `max`.
fn count(value: usize, max: usize, what: &str) -> Result<usize> {
    if value == 0 || value > max {
        return Err(bad(format!("{what} is {value}, must be in 1..={max}")));
    }
    Ok(value)
}

/// Reads and checks everything of a container but its checksum and its
/// points: magic, version, group, kind, flags, input scale, counts, the
/// geometry (kind images) and the exact length (nothing is allocated).
///
/// # Errors
/// [`Error::InvalidBatch`] naming the first problem: a wrong magic, an
/// unknown version, group, kind or flag, an input scale that is not finite
/// and positive, a zero or oversized count, a geometry that is invalid or
/// not of n pixels, a truncated container or trailing bytes.
pub fn read_header(bytes: &[u8]) -> Result<Header> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take::<8>("magic")? != MAGIC {
        return Err(bad("not a CryptoNN batch file (wrong magic)"));
    }
    let version = u16::from_le_bytes(r.take("format version")?);
    if version != VERSION {
        return Err(bad(format!(
            "unsupported format version {version} (this reader knows {VERSION})"
        )));
    }
    let [code] = r.take("group byte")?;
    let group = group_from_code(code).ok_or_else(|| bad(format!("unknown group byte {code}")))?;
    let [code] = r.take("kind byte")?;
    let kind = Kind::from_code(code).ok_or_else(|| bad(format!("unknown kind byte {code}")))?;
    let [flags] = r.take("flags byte")?;
    if flags & !FLAG_LABELS != 0 {
        return Err(bad(format!("unknown flags 0x{flags:02x}")));
    }
    let input_scale = f64::from_le_bytes(r.take("input scale")?);
    if !(input_scale.is_finite() && input_scale > 0.0) {
        return Err(bad(format!(
            "input scale {input_scale} is not a finite positive number"
        )));
    }
    let max_samples = match kind {
        Kind::Batch | Kind::Images => MAX_DIM,
        Kind::Rows => u32::MAX as usize,
    };
    let samples = count(r.u32("sample count")?, max_samples, "the sample count")?;
    let features = count(r.u32("feature count")?, MAX_DIM, "the feature count (n)")?;
    let layout = Layout::new(group, kind, samples, features)?;
    let geometry = match kind {
        Kind::Images => Some(geometry_of(bytes, &layout, features)?),
        Kind::Batch | Kind::Rows => None,
    };
    let labels = if flags & FLAG_LABELS == 0 {
        None
    } else {
        Some(label_head(bytes, &layout)?)
    };
    let len = layout.total(labels.map(|l| l.classes))?;
    if bytes.len() < len {
        return Err(bad(format!(
            "truncated: {} bytes, the header describes {len}",
            bytes.len()
        )));
    }
    if bytes.len() > len {
        return Err(bad(format!(
            "{} trailing bytes after the checksum (the header describes {len} bytes)",
            bytes.len() - len
        )));
    }
    Ok(Header {
        group,
        kind,
        input_scale,
        samples,
        features,
        labels,
        geometry,
        len,
    })
}

/// The geometry section of kind images, which starts at `layout.cols`: a
/// geometry [`PatchGeometry::new`] accepts, of `features` pixels, whose batch
/// ciphertext (`samples · features`) is within FEIP's dimensions.
fn geometry_of(bytes: &[u8], layout: &Layout, features: usize) -> Result<PatchGeometry> {
    let batch_dim = layout.samples.checked_mul(features);
    if batch_dim.is_none_or(|d| d > MAX_DIM) {
        return Err(bad(format!(
            "{} images of {features} pixels: the batch ciphertext would exceed \
             dimension {MAX_DIM}",
            layout.samples
        )));
    }
    let mut r = Reader {
        bytes,
        pos: layout.cols,
    };
    let mut field = [0usize; 9];
    for value in &mut field {
        *value = r.u32("geometry")?;
    }
    let [c, h, w, kh, kw, sh, sw, ph, pw] = field;
    let geometry = PatchGeometry::new([c, h, w], [kh, kw], [sh, sw], [ph, pw])
        .map_err(|e| bad(format!("geometry: {e}")))?;
    if geometry.pixels() != features {
        return Err(bad(format!(
            "geometry of {} pixels, the header says {features} features",
            geometry.pixels()
        )));
    }
    Ok(geometry)
}

/// Classes and scale of the labels section, which starts at `layout.labels`.
fn label_head(bytes: &[u8], layout: &Layout) -> Result<LabelInfo> {
    if bytes.len() < layout.labels {
        return Err(bad(format!(
            "truncated: {} bytes end before the labels section at byte {}",
            bytes.len(),
            layout.labels
        )));
    }
    let mut r = Reader {
        bytes,
        pos: layout.labels,
    };
    let classes = count(
        r.u32("label class count")?,
        u32::MAX as usize,
        "the class count",
    )?;
    let scale = i64::from_le_bytes(r.take("label scale")?);
    Ok(LabelInfo { classes, scale })
}

/// The checked header, the checksum verified, and the layout to decode with.
fn open<G: Group>(bytes: &[u8], kind: Kind) -> Result<(Header, Layout)> {
    let header = read_header(bytes)?;
    if header.group != G::ID {
        return Err(bad(format!(
            "the file holds {} ciphertexts, {} expected",
            header.group,
            G::ID
        )));
    }
    if header.kind != kind {
        return Err(bad(format!(
            "the file holds kind {} ({}), kind {} ({}) expected",
            header.kind.code(),
            header.kind.name(),
            kind.code(),
            kind.name()
        )));
    }
    let body_len = header.len - CHECKSUM_LEN;
    if checksum(&bytes[..body_len]) != bytes[body_len..] {
        return Err(bad("checksum mismatch: the file is corrupted"));
    }
    let layout = Layout::new(header.group, kind, header.samples, header.features)?;
    Ok((header, layout))
}

fn key_id(bytes: &[u8], at: usize) -> Result<KeyId> {
    at.checked_add(KEY_ID_LEN)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| <[u8; KEY_ID_LEN]>::try_from(s).ok())
        .map(KeyId::from_bytes)
        .ok_or_else(|| bad("truncated key id"))
}

/// `bytes[start..start + len]`, or an error (the header check makes this
/// infallible in practice).
fn section(bytes: &[u8], start: usize, len: usize) -> Result<&[u8]> {
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or_else(|| bad("truncated section"))
}

fn point<G: Group>(bytes: &[u8], what: &str, i: usize, j: usize) -> Result<G::Element> {
    G::element_from_bytes(bytes).map_err(|e| bad(format!("{what} {i}, element {j}: {e}")))
}

/// `count` FEIP ciphertexts of dimension `dim` under the key id at `start`,
/// decoded in parallel, across ciphertexts and within each (an images
/// container has one ciphertext of the whole batch).
fn decode_feip<G: Group>(
    bytes: &[u8],
    start: usize,
    count: usize,
    dim: usize,
    what: &str,
) -> Result<Vec<feip::Ciphertext<G>>> {
    let id = key_id(bytes, start)?;
    let ct_len = product(dim + 1, G::ELEMENT_LEN, 1)?;
    let body = section(bytes, start + KEY_ID_LEN, product(count, ct_len, 1)?)?;
    body.par_chunks_exact(ct_len)
        .enumerate()
        .map(|(i, ct)| {
            // Validated in batches, decoded when first needed; on failure the
            // element-by-element decoding names the bad element.
            feip::Ciphertext::from_encoding(id, ct.into())
                .or_else(|_| decode_ciphertext::<G>(id, ct, what, i))
        })
        .collect()
}

/// One ciphertext decoded element by element, with the position of the
/// first element that does not decode in the error.
fn decode_ciphertext<G: Group>(
    id: KeyId,
    ct: &[u8],
    what: &str,
    i: usize,
) -> Result<feip::Ciphertext<G>> {
    let (ct0, rest) = ct
        .split_at_checked(G::ELEMENT_LEN)
        .ok_or_else(|| bad(format!("{what} {i} is empty")))?;
    let ct0 = point::<G>(ct0, what, i, 0)?;
    let elements = rest
        .par_chunks_exact(G::ELEMENT_LEN)
        .enumerate()
        .map(|(j, p)| point::<G>(p, what, i, j + 1))
        .collect::<Result<Vec<_>>>()?;
    feip::Ciphertext::from_parts_encoded(id, ct0, elements, ct.into())
        .map_err(|e| bad(format!("{what} {i}: {e}")))
}

/// The labels section at `layout.labels`, decoded in parallel.
fn decode_labels<G: Group>(
    bytes: &[u8],
    layout: &Layout,
    info: LabelInfo,
) -> Result<EncryptedLabels<G>> {
    let id = key_id(bytes, layout.labels + 12)?;
    let entry = 2 * G::ELEMENT_LEN;
    let len = product(layout.samples, info.classes, entry)?;
    let body = section(bytes, layout.labels + LABELS_HEAD_LEN, len)?;
    let entries = body
        .par_chunks_exact(entry)
        .enumerate()
        .map(|(i, e)| {
            let (cmt, ct) = e
                .split_at_checked(G::ELEMENT_LEN)
                .ok_or_else(|| bad("truncated label entry"))?;
            let what = "label entry";
            Ok(febo::Ciphertext::from_parts(
                id,
                point::<G>(cmt, what, i, 0)?,
                point::<G>(ct, what, i, 1)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EncryptedLabels::new(info.classes, info.scale, entries))
}

/// The labels of `header`, if any.
fn labels_of<G: Group>(
    bytes: &[u8],
    header: &Header,
    layout: &Layout,
) -> Result<Option<EncryptedLabels<G>>> {
    header
        .labels
        .map(|info| decode_labels(bytes, layout, info))
        .transpose()
}

/// Decodes an [`EncryptedBatch`] written by [`encode_batch`].
///
/// The header, lengths and checksum are checked before any allocation; then
/// every point is validated (canonical, in the group), in parallel; then the
/// batch is assembled by [`EncryptedBatch::new`].
///
/// # Errors
/// [`Error::InvalidBatch`] for every problem [`read_header`] reports, a group
/// other than `G`, a container of kind rows, a checksum mismatch, or an
/// invalid or non-canonical point (naming the ciphertext and element); and
/// whatever [`EncryptedBatch::new`] refuses ([`Error::Shape`] or
/// [`Error::InvalidBatch`]), e.g. rows and columns under one master key.
pub fn decode_batch<G: Group>(bytes: &[u8]) -> Result<EncryptedBatch<G>> {
    let (header, layout) = open::<G>(bytes, Kind::Batch)?;
    let (samples, features) = (header.samples, header.features);
    let (rows, cols) = rayon::join(
        || decode_feip::<G>(bytes, layout.rows, samples, features, "row ciphertext"),
        || decode_feip::<G>(bytes, layout.cols, features, samples, "column ciphertext"),
    );
    let labels = labels_of(bytes, &header, &layout)?;
    EncryptedBatch::new(header.input_scale, rows?, cols?, labels)
}

/// Decodes an [`EncryptedImages`] written by [`encode_images`].
///
/// # Errors
/// As [`decode_batch`], with kind images expected (its geometry checked by
/// [`read_header`]), and whatever [`EncryptedImages::new`] and
/// [`EncryptedImages::with_labels`] refuse.
pub fn decode_images<G: Group>(bytes: &[u8]) -> Result<EncryptedImages<G>> {
    let (header, layout) = open::<G>(bytes, Kind::Images)?;
    let geometry = header
        .geometry
        .ok_or_else(|| bad("an images container without geometry"))?;
    let (images, pixels) = (header.samples, header.features);
    let batch_at = add(layout.cols, GEOMETRY_LEN)?;
    let batch_dim = product(images, pixels, 1)?;
    let (rows, batch) = rayon::join(
        || decode_feip::<G>(bytes, layout.rows, images, pixels, "row ciphertext"),
        || decode_feip::<G>(bytes, batch_at, 1, batch_dim, "batch ciphertext"),
    );
    let labels = labels_of(bytes, &header, &layout)?;
    let batch = batch?.pop().ok_or_else(|| bad("no batch ciphertext"))?;
    let decoded = EncryptedImages::new(geometry, header.input_scale, rows?, batch)?;
    match labels {
        Some(labels) => decoded.with_labels(labels),
        None => Ok(decoded),
    }
}

/// Decodes an [`EncryptedRows`] written by [`encode_rows`].
///
/// # Errors
/// As [`decode_batch`], with kind rows expected, and whatever
/// [`EncryptedRows::new`] refuses.
pub fn decode_rows<G: Group>(bytes: &[u8]) -> Result<EncryptedRows<G>> {
    let (header, layout) = open::<G>(bytes, Kind::Rows)?;
    let rows = decode_feip::<G>(
        bytes,
        layout.rows,
        header.samples,
        header.features,
        "row ciphertext",
    )?;
    let labels = labels_of(bytes, &header, &layout)?;
    EncryptedRows::new(header.input_scale, rows, labels)
}

/// The pieces of a container, borrowed.
struct Parts<'a, G: Group> {
    kind: Kind,
    input_scale: f64,
    rows: &'a [feip::Ciphertext<G>],
    /// The column ciphertexts (kind batch) or the one batch ciphertext
    /// (kind images).
    cols: &'a [feip::Ciphertext<G>],
    geometry: Option<&'a PatchGeometry>,
    labels: Option<&'a EncryptedLabels<G>>,
}

fn to_u32(value: usize, what: &str) -> Result<[u8; 4]> {
    u32::try_from(value)
        .map(u32::to_le_bytes)
        .map_err(|_| bad(format!("{what} {value} does not fit in 32 bits")))
}

/// Writes one element into `dst`, which must be exactly its length.
fn put<G: Group>(dst: &mut [u8], element: &G::Element) -> Result<()> {
    let bytes = G::element_to_bytes(element);
    if bytes.len() != dst.len() {
        return Err(bad(format!(
            "{} encoded an element in {} bytes instead of {}",
            G::ID,
            bytes.len(),
            dst.len()
        )));
    }
    dst.copy_from_slice(&bytes);
    Ok(())
}

/// Appends the key id and the ciphertexts (all of dimension `dim`), encoded
/// in parallel, across ciphertexts and within each.
fn put_feip<G: Group>(out: &mut Vec<u8>, cts: &[feip::Ciphertext<G>], dim: usize) -> Result<()> {
    let id = cts
        .first()
        .map(feip::Ciphertext::id)
        .ok_or_else(|| bad("no ciphertexts"))?;
    out.extend_from_slice(id.as_bytes());
    let ct_len = product(dim + 1, G::ELEMENT_LEN, 1)?;
    let start = out.len();
    out.resize(add(start, product(cts.len(), ct_len, 1)?)?, 0);
    out[start..]
        .par_chunks_exact_mut(ct_len)
        .zip(cts.par_iter())
        .try_for_each(|(dst, ct)| {
            if ct.id() != id || ct.dim() != dim {
                return Err(bad("ciphertexts of one section differ in key or dimension"));
            }
            if let Some(encoded) = ct.encoding().filter(|e| e.len() == dst.len()) {
                dst.copy_from_slice(encoded);
                return Ok(());
            }
            let (ct0, rest) = dst.split_at_mut(G::ELEMENT_LEN);
            put::<G>(ct0, ct.commitment())?;
            rest.par_chunks_exact_mut(G::ELEMENT_LEN)
                .zip(ct.elements().par_iter())
                .try_for_each(|(d, p)| put::<G>(d, p))
        })
}

/// Appends the labels section.
fn put_labels<G: Group>(out: &mut Vec<u8>, labels: &EncryptedLabels<G>) -> Result<()> {
    let entries = labels.entries();
    let id = entries
        .first()
        .map(febo::Ciphertext::id)
        .ok_or_else(|| bad("no label entries"))?;
    if entries.iter().any(|e| e.id() != id) {
        return Err(bad("label entries under different FEBO master keys"));
    }
    out.extend_from_slice(&to_u32(labels.classes(), "class count")?);
    out.extend_from_slice(&labels.scale().to_le_bytes());
    out.extend_from_slice(id.as_bytes());
    let entry = 2 * G::ELEMENT_LEN;
    let start = out.len();
    out.resize(add(start, product(entries.len(), entry, 1)?)?, 0);
    out[start..]
        .par_chunks_exact_mut(entry)
        .zip(entries.par_iter())
        .try_for_each(|(dst, e)| {
            let (cmt, ct) = dst.split_at_mut(G::ELEMENT_LEN);
            put::<G>(cmt, e.commitment())?;
            put::<G>(ct, e.value())
        })
}

/// Appends the geometry section: C, H, W, kh, kw, sh, sw, ph, pw.
fn put_geometry(out: &mut Vec<u8>, geometry: &PatchGeometry) -> Result<()> {
    let fields = [
        &geometry.image()[..],
        &geometry.kernel(),
        &geometry.stride(),
        &geometry.padding(),
    ];
    for value in fields.concat() {
        out.extend_from_slice(&to_u32(value, "geometry field")?);
    }
    Ok(())
}

fn encode<G: Group>(parts: &Parts<'_, G>) -> Result<Vec<u8>> {
    let samples = parts.rows.len();
    let features = parts.rows.first().map_or(0, feip::Ciphertext::dim);
    let layout = Layout::new(G::ID, parts.kind, samples, features)?;
    let len = layout.total(parts.labels.map(|l| l.classes()))?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(group_code(G::ID));
    out.push(parts.kind.code());
    out.push(if parts.labels.is_some() {
        FLAG_LABELS
    } else {
        0
    });
    out.extend_from_slice(&parts.input_scale.to_le_bytes());
    out.extend_from_slice(&to_u32(samples, "sample count")?);
    out.extend_from_slice(&to_u32(features, "feature count")?);
    put_feip(&mut out, parts.rows, features)?;
    match (parts.kind, parts.geometry) {
        (Kind::Batch, _) => put_feip(&mut out, parts.cols, samples)?,
        (Kind::Images, Some(geometry)) => {
            put_geometry(&mut out, geometry)?;
            put_feip(&mut out, parts.cols, product(samples, features, 1)?)?;
        }
        (Kind::Images, None) => return Err(bad("images without geometry")),
        (Kind::Rows, _) => {}
    }
    if let Some(labels) = parts.labels {
        put_labels(&mut out, labels)?;
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    if out.len() != len {
        return Err(bad(format!("encoded {} bytes, expected {len}", out.len())));
    }
    Ok(out)
}

/// Encodes a batch as a container of kind batch (layout in `docs/FORMAT.md`).
/// Points are encoded in parallel.
///
/// # Errors
/// [`Error::InvalidBatch`] if a count does not fit in 32 bits, or the label
/// entries are under different FEBO master keys (the container names one).
pub fn encode_batch<G: Group>(batch: &EncryptedBatch<G>) -> Result<Vec<u8>> {
    let cols = batch.cols();
    encode(&Parts {
        kind: Kind::Batch,
        input_scale: batch.input_scale(),
        rows: batch.rows(),
        cols: &cols,
        geometry: None,
        labels: batch.labels(),
    })
}

/// Encodes row-wise ciphertexts as a container of kind rows.
///
/// # Errors
/// As [`encode_batch`].
pub fn encode_rows<G: Group>(rows: &EncryptedRows<G>) -> Result<Vec<u8>> {
    encode(&Parts {
        kind: Kind::Rows,
        input_scale: rows.input_scale(),
        rows: rows.rows(),
        cols: &[],
        geometry: None,
        labels: rows.labels(),
    })
}

/// Encodes images as a container of kind images: the rows, the geometry,
/// the one batch ciphertext, and the labels if any.
///
/// # Errors
/// As [`encode_batch`].
pub fn encode_images<G: Group>(images: &EncryptedImages<G>) -> Result<Vec<u8>> {
    let batch = images.batch();
    encode(&Parts {
        kind: Kind::Images,
        input_scale: images.input_scale(),
        rows: images.rows(),
        cols: &batch,
        geometry: Some(images.geometry()),
        labels: images.labels(),
    })
}
