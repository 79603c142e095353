//! The trusted authority: holds every master secret key and answers key requests.
//!
//! An authority is either in memory ([`Authority::new`]) or backed by a
//! [`Store`] ([`Authority::open`]). A stored authority persists every new
//! master key (sealed) before handing out its public key, and answers a key
//! request in this order: policy approval, key derivation, one transaction
//! with the issued vectors, the audit records and the new rank, commit, and
//! only then the keys. If the commit fails no key is returned, but the
//! in-memory policy keeps the approval: until the next restart the budget
//! counts the refused-by-storage vectors as issued, which errs on the side
//! of issuing less, never more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptonn_fe::{Group, KeyId, febo, feip};
use cryptonn_protocol::audit::{AuditRecord, Scheme, hash_words, now_unix_ms};
use cryptonn_protocol::{
    BatchPublicKeys, Budget, Error, FeboKeyRequest, KeyPolicy, KeyService, MasterKey,
    PatchGeometry, Result, RowPublicKeys, Side,
};
use rand::CryptoRng;
use rayon::prelude::*;

use crate::audit_log::AuditLog;
use crate::error::{StateError, StateResult};
use crate::store::{IssueRecord, KeyKind, Store, StoredMasterKey, master_key_aad};

struct State<G: Group> {
    feip: HashMap<KeyId, (MasterKey, feip::MasterSecretKey<G>)>,
    febo: HashMap<KeyId, febo::MasterSecretKey<G>>,
    policy: Box<dyn KeyPolicy>,
    issued: u64,
    log: Option<AuditLog>,
}

/// Where the time of one request went, for the service's `Server-Timing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Timings {
    /// Deriving keys (or generating master keys).
    pub(crate) derive: Duration,
    /// Sealing and the database transaction.
    pub(crate) store: Duration,
}

/// A master key just generated, before it is stored.
enum NewKey<'a, G: Group> {
    Feip(MasterKey, &'a feip::MasterSecretKey<G>),
    Febo(&'a febo::MasterSecretKey<G>),
}

/// The authority. Master secret keys never leave it; it is `Sync`, so one
/// instance serves the clients and the server at once.
pub struct Authority<G: Group> {
    state: Mutex<State<G>>,
    store: Option<Arc<dyn Store>>,
}

impl<G: Group> core::fmt::Debug for Authority<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authority")
            .field("group", &G::ID)
            .field("stored", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl<G: Group> Authority<G> {
    /// An in-memory authority applying `policy` to every FEIP key request.
    pub fn new(policy: impl KeyPolicy + 'static) -> Self {
        Self {
            state: Mutex::new(State {
                feip: HashMap::new(),
                febo: HashMap::new(),
                policy: Box::new(policy),
                issued: 0,
                log: None,
            }),
            store: None,
        }
    }

    /// The authority whose state is `store`: every master key is unsealed,
    /// and the vectors issued under each FEIP key are replayed through
    /// [`KeyPolicy::restore`], so budgets resume where they were.
    ///
    /// # Errors
    /// [`StateError::WrongGroup`] if the state is of another group,
    /// [`StateError::Corrupt`] for a key that does not unseal or a rank
    /// that does not replay to its stored value, and storage errors.
    pub fn open(store: Arc<dyn Store>, policy: impl KeyPolicy + 'static) -> StateResult<Self> {
        let stored = store.settings().group;
        if stored != G::ID {
            return Err(StateError::WrongGroup {
                stored,
                asked: G::ID,
            });
        }
        let authority = Self::new(policy);
        {
            let mut state = authority.lock();
            for key in store.master_keys()? {
                load_key(&mut state, store.as_ref(), &key)?;
            }
            state.issued = store.audit_len()?;
        }
        Ok(Self {
            store: Some(store),
            ..authority
        })
    }

    /// Records every issued key in `log` from now on (see [`AuditLog`]),
    /// besides the store's audit table if there is one.
    #[must_use]
    pub fn with_audit_log(self, log: AuditLog) -> Self {
        self.lock().log = Some(log);
        self
    }

    /// A key service that names its requests `requester` in the audit log.
    pub fn requester(self: &Arc<Self>, requester: &str) -> Requester<G> {
        Requester {
            authority: self.clone(),
            name: requester.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<G>> {
        // A panic while holding the lock cannot leave the maps half-updated
        // (inserts are single calls), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fresh master keys for one batch of `batch` samples with `features` features.
    ///
    /// # Errors
    /// An FE error for a zero or oversized dimension;
    /// [`Error::Storage`] if a stored authority cannot persist them (then
    /// none is kept).
    pub fn batch_keys<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        batch: usize,
        rng: &mut R,
    ) -> Result<BatchPublicKeys<G>> {
        self.batch_keys_timed(features, batch, None, rng)
            .map(|(keys, _)| keys)
    }

    /// Fresh master keys for `images` images of `geometry` under a secure
    /// convolution: the rows encrypt each image (dimension: pixels), the
    /// columns the whole batch (dimension: images·pixels). A request for a
    /// kernel then gives one key per position, one for an error vector one
    /// key per kernel tap ([`MasterKey::equations`]), and the policy counts
    /// exactly those.
    ///
    /// # Errors
    /// As [`Authority::batch_keys`].
    pub fn patch_keys<R: CryptoRng + ?Sized>(
        &self,
        geometry: PatchGeometry,
        images: usize,
        rng: &mut R,
    ) -> Result<BatchPublicKeys<G>> {
        self.batch_keys_timed(geometry.pixels(), images, Some(geometry), rng)
            .map(|(keys, _)| keys)
    }

    pub(crate) fn batch_keys_timed<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        batch: usize,
        patches: Option<PatchGeometry>,
        rng: &mut R,
    ) -> Result<(BatchPublicKeys<G>, Timings)> {
        let col_dim = match patches {
            None => batch,
            Some(g) if features == g.pixels() => {
                batch.checked_mul(features).ok_or(Error::Shape {
                    what: "images of a convolution batch",
                    expected: vec![usize::MAX],
                    got: vec![batch, features],
                })?
            }
            Some(g) => {
                return Err(Error::Shape {
                    what: "convolution batch [features, images] (features: the image's pixels)",
                    expected: vec![g.pixels(), batch],
                    got: vec![features, batch],
                });
            }
        };
        let start = Instant::now();
        let (row_msk, rows) = feip::setup::<G, _>(features, rng)?;
        let (col_msk, cols) = feip::setup::<G, _>(col_dim, rng)?;
        let (label_msk, labels) = febo::setup::<G, _>(rng);
        let derive = start.elapsed();
        let row = MasterKey {
            patches,
            ..described(&row_msk, Side::Rows)
        };
        let col = MasterKey {
            patches,
            ..described(&col_msk, Side::Columns)
        };
        let store = self.persist(&[
            NewKey::Feip(row, &row_msk),
            NewKey::Feip(col, &col_msk),
            NewKey::Febo(&label_msk),
        ])?;
        let mut state = self.lock();
        state.feip.insert(row.id, (row, row_msk));
        state.feip.insert(col.id, (col, col_msk));
        state.febo.insert(label_msk.id(), label_msk);
        Ok((
            BatchPublicKeys { rows, cols, labels },
            Timings { derive, store },
        ))
    }

    /// Fresh master keys for samples of `features` features encrypted
    /// row-wise only, and their labels.
    ///
    /// # Errors
    /// An FE error for a zero or oversized dimension;
    /// [`Error::Storage`] if a stored authority cannot persist them.
    pub fn row_keys<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        rng: &mut R,
    ) -> Result<RowPublicKeys<G>> {
        self.row_keys_timed(features, rng).map(|(keys, _)| keys)
    }

    pub(crate) fn row_keys_timed<R: CryptoRng + ?Sized>(
        &self,
        features: usize,
        rng: &mut R,
    ) -> Result<(RowPublicKeys<G>, Timings)> {
        let start = Instant::now();
        let (row_msk, rows) = feip::setup::<G, _>(features, rng)?;
        let (label_msk, labels) = febo::setup::<G, _>(rng);
        let derive = start.elapsed();
        let row = described(&row_msk, Side::Rows);
        let store = self.persist(&[NewKey::Feip(row, &row_msk), NewKey::Febo(&label_msk)])?;
        let mut state = self.lock();
        state.feip.insert(row.id, (row, row_msk));
        state.febo.insert(label_msk.id(), label_msk);
        Ok((RowPublicKeys { rows, labels }, Timings { derive, store }))
    }

    /// Seals and stores new master keys, committed, if there is a store.
    fn persist(&self, keys: &[NewKey<'_, G>]) -> Result<Duration> {
        let Some(store) = &self.store else {
            return Ok(Duration::ZERO);
        };
        let start = Instant::now();
        let created_unix_ms = now_unix_ms();
        let stored = keys
            .iter()
            .map(|key| {
                let (id, kind, dim, patches, json) = match key {
                    NewKey::Feip(master, msk) => (
                        master.id,
                        KeyKind::Feip(master.side),
                        master.dim,
                        master.patches,
                        msk.to_json_exposing_secret(),
                    ),
                    NewKey::Febo(msk) => (
                        msk.id(),
                        KeyKind::Febo,
                        1,
                        None,
                        msk.to_json_exposing_secret(),
                    ),
                };
                let aad = master_key_aad(G::ID, id, kind, dim, patches.as_ref());
                Ok(StoredMasterKey {
                    id,
                    kind,
                    dim,
                    patches,
                    sealed: store.sealer().seal(json.as_bytes(), &aad)?,
                    rank: None,
                    created_unix_ms,
                })
            })
            .collect::<StateResult<Vec<_>>>()?;
        store.insert_master_keys(&stored)?;
        Ok(start.elapsed())
    }

    /// How many function keys (FEIP and FEBO) have been issued (for a stored
    /// authority, since the state was created).
    pub fn keys_issued(&self) -> u64 {
        self.lock().issued
    }

    /// The budget of FEIP master key `instance`, if the policy keeps one.
    pub fn budget(&self, instance: KeyId) -> Option<Budget> {
        self.budget_of(instance).ok().flatten()
    }

    /// The budget of master key `instance`: `None` for a FEBO key or a
    /// policy that keeps none.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the authority holds no such key.
    pub fn budget_of(&self, instance: KeyId) -> Result<Option<Budget>> {
        let state = self.lock();
        if let Some((master, _)) = state.feip.get(&instance) {
            return Ok(state.policy.budget(master));
        }
        if state.febo.contains_key(&instance) {
            return Ok(None);
        }
        Err(Error::UnknownKey(instance))
    }

    /// The keys for `ys` under `instance`, with the master key as the
    /// policy saw it (its geometry shapes the service's answer).
    pub(crate) fn issue_feip(
        &self,
        requester: &str,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> Result<(MasterKey, Vec<feip::FunctionKey<G>>, Timings)> {
        let mut state = self.lock();
        let state = &mut *state;
        let (master, msk) = state
            .feip
            .get(&instance)
            .ok_or(Error::UnknownKey(instance))?;
        let master = *master;
        check_derived_size(&master, ys.len())?;
        if let Some(y) = ys.iter().find(|y| y.len() != master.request_len()) {
            return Err(cryptonn_fe::Error::LengthMismatch {
                expected: master.request_len(),
                got: y.len(),
            }
            .into());
        }
        // |entry| < 2⁶³ in-process too, as the HTTPS API enforces.
        if ys.iter().flatten().any(|&e| e == i64::MIN) {
            return Err(cryptonn_fe::Error::InvalidParameter(
                "a key vector entry of -2^63: every entry must have |entry| < 2^63".into(),
            )
            .into());
        }
        // The only path to a FEIP key: the policy judges the very
        // equations derived below, before anything is derived or recorded.
        state.policy.approve(&master, ys)?;
        let start = Instant::now();
        // One key per equation: the vectors themselves, or a convolution's
        // kernels at every position and errors at every tap.
        let equations: Vec<_> = master.equations(ys).collect();
        let keys = equations
            .par_iter()
            .map(|y| feip::derive_key(msk, y))
            .collect::<cryptonn_fe::Result<Vec<_>>>()?;
        let derive = start.elapsed();
        let rank_after = state.policy.budget(&master).map(|b| b.rank);
        let hashes = ys.iter().map(|y| hash_words(b"feip", y)).collect();
        let issue = Issue {
            requester,
            scheme: Scheme::Feip,
            instance,
            rank_after,
            vectors: ys,
            hashes,
        };
        let store = self.record(&mut state.log, &issue)?;
        state.issued += keys.len() as u64;
        Ok((master, keys, Timings { derive, store }))
    }

    pub(crate) fn issue_febo(
        &self,
        requester: &str,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<(Vec<febo::FunctionKey<G>>, Timings)> {
        let mut state = self.lock();
        let state = &mut *state;
        let msk = state
            .febo
            .get(&instance)
            .ok_or(Error::UnknownKey(instance))?;
        let start = Instant::now();
        let batch: Vec<_> = requests
            .iter()
            .map(|r| (&r.commitment, r.op, r.operand))
            .collect();
        let keys = febo::derive_keys(msk, &batch)?;
        let derive = start.elapsed();
        let hashes = requests
            .iter()
            .map(|r| {
                let mut prefix = format!("febo {:?} ", r.op).into_bytes();
                prefix.extend(G::element_to_bytes(&r.commitment));
                hash_words(&prefix, &[r.operand])
            })
            .collect();
        let issue = Issue {
            requester,
            scheme: Scheme::Febo,
            instance,
            rank_after: None,
            vectors: &[],
            hashes,
        };
        let store = self.record(&mut state.log, &issue)?;
        state.issued += keys.len() as u64;
        Ok((keys, Timings { derive, store }))
    }

    /// Commits `issue` to the store, then appends it to the log: the keys
    /// go out only if both succeed. Returns the time it took.
    fn record(&self, log: &mut Option<AuditLog>, issue: &Issue<'_>) -> Result<Duration> {
        let start = Instant::now();
        if issue.hashes.is_empty() || (self.store.is_none() && log.is_none()) {
            return Ok(Duration::ZERO);
        }
        let time_unix_ms = now_unix_ms();
        let records: Vec<AuditRecord> = issue
            .hashes
            .iter()
            .map(|vector_sha256| AuditRecord {
                time_unix_ms,
                requester: issue.requester.into(),
                scheme: issue.scheme,
                master_key: issue.instance,
                vector_sha256: vector_sha256.clone(),
                rank_after: issue.rank_after,
            })
            .collect();
        if let Some(store) = &self.store {
            store.record_issue(&IssueRecord {
                master_key: issue.instance,
                vectors: issue.vectors,
                audit: &records,
                rank_after: issue.rank_after,
            })?;
        }
        if let Some(log) = log {
            log.write(&records)?;
        }
        Ok(start.elapsed())
    }
}

/// What one granted request adds to the audit trail.
struct Issue<'a> {
    requester: &'a str,
    scheme: Scheme,
    instance: KeyId,
    rank_after: Option<usize>,
    vectors: &'a [Vec<i64>],
    hashes: Vec<String>,
}

/// Unseals one stored master key into `state` and replays its vectors.
fn load_key<G: Group>(
    state: &mut State<G>,
    store: &dyn Store,
    key: &StoredMasterKey,
) -> StateResult<()> {
    let corrupt = |what: &str| StateError::Corrupt(format!("master key {}: {what}", key.id));
    let aad = master_key_aad(G::ID, key.id, key.kind, key.dim, key.patches.as_ref());
    let json = store.sealer().open(&key.sealed, &aad)?;
    let text = std::str::from_utf8(&json).map_err(|_| corrupt("not UTF-8"))?;
    match key.kind {
        KeyKind::Feip(side) => {
            let msk =
                feip::MasterSecretKey::<G>::from_json(text).map_err(|e| corrupt(&e.to_string()))?;
            if msk.id() != key.id || msk.dim() != key.dim {
                return Err(corrupt("id or dimension differs from its row"));
            }
            let master = MasterKey {
                id: key.id,
                side,
                dim: key.dim,
                patches: key.patches,
            };
            let ys = store.issued_vectors(key.id, master.request_len())?;
            state.policy.restore(&master, &ys);
            let replayed = state.policy.budget(&master).map(|b| b.rank);
            if let (Some(stored), Some(replayed)) = (key.rank, replayed)
                && stored != replayed
            {
                return Err(corrupt(&format!(
                    "stored rank {stored}, but its issued vectors replay to {replayed}"
                )));
            }
            state.feip.insert(key.id, (master, msk));
        }
        KeyKind::Febo => {
            let msk =
                febo::MasterSecretKey::<G>::from_json(text).map_err(|e| corrupt(&e.to_string()))?;
            if msk.id() != key.id {
                return Err(corrupt("id differs from its row"));
            }
            state.febo.insert(key.id, msk);
        }
    }
    Ok(())
}

/// The most key-vector entries one request may make the authority derive:
/// a convolution's request names short vectors but is answered with dense
/// keys (LeNet-5's forward pass: 3,456 keys of 784 entries, 2.7 million).
pub const MAX_DERIVED_ENTRIES: usize = 1 << 27;

/// Refuses a request whose keys would hold more than [`MAX_DERIVED_ENTRIES`]
/// entries, before anything is derived or spent.
fn check_derived_size(master: &MasterKey, vectors: usize) -> Result<()> {
    let keys = vectors.saturating_mul(master.keys_per_request());
    if keys.saturating_mul(master.dim) > MAX_DERIVED_ENTRIES {
        return Err(Error::Shape {
            what: "keys one request derives [keys, dimension] (at most 2^27 entries)",
            expected: vec![MAX_DERIVED_ENTRIES / master.dim.max(1), master.dim],
            got: vec![keys, master.dim],
        });
    }
    Ok(())
}

/// How a policy sees a new master key of `side` (no patches).
fn described<G: Group>(msk: &feip::MasterSecretKey<G>, side: Side) -> MasterKey {
    MasterKey {
        id: msk.id(),
        side,
        dim: msk.dim(),
        patches: None,
    }
}

/// Requests from unnamed callers are logged as `"unnamed"`.
impl<G: Group> KeyService<G> for Authority<G> {
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>> {
        self.issue_feip("unnamed", instance, ys)
            .map(|(_, keys, _)| keys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        self.issue_febo("unnamed", instance, requests)
            .map(|(keys, _)| keys)
    }
}

/// A named handle on the authority: what a server holds to ask for keys.
/// It reaches only [`KeyService`], never a master secret key.
#[derive(Debug, Clone)]
pub struct Requester<G: Group> {
    authority: Arc<Authority<G>>,
    name: Arc<str>,
}

impl<G: Group> Requester<G> {
    /// The budget of FEIP master key `instance`, if the policy keeps one.
    pub fn budget(&self, instance: KeyId) -> Option<Budget> {
        self.authority.budget(instance)
    }
}

impl<G: Group> KeyService<G> for Requester<G> {
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>> {
        self.authority
            .issue_feip(&self.name, instance, ys)
            .map(|(_, keys, _)| keys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        self.authority
            .issue_febo(&self.name, instance, requests)
            .map(|(keys, _)| keys)
    }
}

#[cfg(test)]
mod tests {
    use cryptonn_fe::Ristretto255;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::IssueAll;
    use crate::store::tests::new_store;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn sealed_master_key_does_not_contain_the_secret() {
        let (dir, store, _) = new_store("sealed");
        let db = store.path().to_path_buf();
        let policy = crate::store::policy(&store).unwrap();
        let authority = Authority::<Ristretto255>::open(Arc::new(store), policy).unwrap();
        let keys = authority
            .batch_keys(8, 4, &mut StdRng::seed_from_u64(9))
            .unwrap();
        let json = authority.lock().feip[&keys.rows.id()]
            .1
            .to_json_exposing_secret();
        let scalars: Vec<String> = serde_json::from_str::<serde_json::Value>(&json).unwrap()["s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(scalars.len(), 8);
        // Everything SQLite wrote: the database and its write-ahead log.
        let mut written = std::fs::read(&db).unwrap();
        written.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
        assert!(
            contains(&written, keys.rows.id().to_string().as_bytes()),
            "the id is in the clear"
        );
        for scalar in &scalars {
            assert!(
                !contains(&written, scalar.as_bytes()),
                "hex of a secret scalar"
            );
            assert!(
                !contains(&written, &hex_bytes(scalar)),
                "bytes of a secret scalar"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_convolution_request_too_large_to_derive() {
        // 1×1024×1024 images under a 1×1 kernel: each kernel would be 2²⁰
        // keys of 2²⁰ entries.
        let g = PatchGeometry::new([1, 1024, 1024], [1, 1], [1, 1], [0, 0]).unwrap();
        let key = MasterKey {
            id: KeyId::random(&mut rand::rng()),
            side: Side::Rows,
            dim: 1 << 20,
            patches: Some(g),
        };
        assert!(matches!(
            check_derived_size(&key, 1),
            Err(Error::Shape { .. })
        ));
        // LeNet-5's forward and backward requests fit.
        let lenet = PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
        let rows = MasterKey {
            dim: 784,
            patches: Some(lenet),
            ..key
        };
        assert!(check_derived_size(&rows, 6).is_ok());
        let cols = MasterKey {
            side: Side::Columns,
            dim: 32 * 784,
            ..rows
        };
        assert!(check_derived_size(&cols, 6).is_ok());
        assert!(check_derived_size(&cols, usize::MAX).is_err());
    }

    #[test]
    fn refuses_an_entry_of_minus_two_to_the_63_in_process() {
        let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
        let mut rng = StdRng::seed_from_u64(3);
        let keys = authority.batch_keys(4, 2, &mut rng).unwrap();
        let server = authority.requester("server");
        let refused = server.feip_keys(keys.rows.id(), &[vec![1, 2, i64::MIN, 4]]);
        assert!(matches!(
            refused,
            Err(Error::Fe(cryptonn_fe::Error::InvalidParameter(_)))
        ));
        let bound = i64::MIN + 1;
        assert!(
            server
                .feip_keys(keys.rows.id(), &[vec![1, 2, bound, 4]])
                .is_ok()
        );
    }
}
