//! The authority's durable state: a [`Store`] trait, so that another
//! database (e.g. a replicated one) can stand in later, and [`SqliteStore`].
//!
//! What is stored, and why:
//! - `settings`: the group, the policy (rank budget or issue-all; caps,
//!   minimum support, maximum share), where the KEK lives, the Argon2id salt and costs, the KEK's
//!   check value, and the rank budget's prime, sealed.
//! - `master_keys`: every master secret key, sealed under the KEK, with its
//!   scheme, side, dimension and current rank.
//! - `issued_vectors`: every FEIP key vector issued, per master key, so that
//!   replaying them through [`KeyPolicy::restore`] rebuilds the rank budget
//!   exactly after a restart.
//! - `audit`: one [`AuditRecord`] per issued key, numbered 1, 2, 3, … in
//!   commit order.
//! - `tokens`: the SHA-256 of each bearer token, its name and role.
//!
//! The issued vectors, the audit records and the new rank of one request
//! are one transaction: a key is handed out only after it commits.
//!
//! [`KeyPolicy::restore`]: cryptonn_protocol::KeyPolicy::restore

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cryptonn_fe::{GroupId, KeyId};
use cryptonn_protocol::audit::{AuditRecord, Scheme, now_unix_ms};
use cryptonn_protocol::wire::{AuditEntry, AuditPage, Role};
use cryptonn_protocol::{KeyPolicy, PatchGeometry, PolicyKind, Side};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::{StateError, StateResult};
use crate::kek::{KdfParams, Kek, KekLocation, Sealed, Sealer};
use crate::policy::{Caps, IssueAll, RankBudget};
use crate::tokens::TokenEntry;

/// The schema version in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 4;

const MIGRATE_1_TO_2: &str =
    "ALTER TABLE master_keys ADD COLUMN patches TEXT CHECK (patches IS NULL OR side = 'rows');";

/// The `master_keys` table of version 3, under a given name.
macro_rules! master_keys_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    id TEXT PRIMARY KEY,
    scheme TEXT NOT NULL CHECK (scheme IN ('feip', 'febo')),
    side TEXT CHECK (side IN ('rows', 'columns')),
    dim INTEGER NOT NULL CHECK (dim > 0),
    sealed BLOB NOT NULL,
    nonce BLOB NOT NULL CHECK (length(nonce) = 24),
    rank INTEGER,
    created_unix_ms INTEGER NOT NULL,
    patches TEXT CHECK (patches IS NULL OR scheme = 'feip'),
    CHECK ((scheme = 'feip') = (side IS NOT NULL))
) STRICT;"
        )
    };
}

/// Version 3 lets column keys carry a convolution's geometry too: SQLite
/// cannot drop a CHECK, so the table is rebuilt (foreign keys off meanwhile).
/// Row keys of version 2's im2col layout (dimension `patch_len`) keep their
/// budget but can no longer be served: their key requests fail on length.
const MIGRATE_2_TO_3: &str = concat!(
    master_keys_table!("master_keys_v3"),
    "
INSERT INTO master_keys_v3 (id, scheme, side, dim, sealed, nonce, rank, created_unix_ms, patches)
    SELECT id, scheme, side, dim, sealed, nonce, rank, created_unix_ms, patches FROM master_keys;
DROP TABLE master_keys;
ALTER TABLE master_keys_v3 RENAME TO master_keys;"
);

/// Version 4 records the policy chosen at init; every state before it ran
/// a rank budget.
const MIGRATE_3_TO_4: &str = "ALTER TABLE settings ADD COLUMN policy TEXT NOT NULL DEFAULT 'budget'
    CHECK (policy IN ('budget', 'issue-all'));";

const SCHEMA: &str = concat!(
    "
CREATE TABLE settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    grp TEXT NOT NULL,
    row_cap INTEGER NOT NULL,
    col_cap INTEGER NOT NULL,
    min_support INTEGER NOT NULL,
    max_share REAL NOT NULL,
    kek_source TEXT NOT NULL CHECK (kek_source IN ('state', 'file', 'env')),
    kek_file TEXT,
    kdf_salt BLOB NOT NULL,
    kdf_m_kib INTEGER NOT NULL,
    kdf_t INTEGER NOT NULL,
    kdf_p INTEGER NOT NULL,
    kek_check_nonce BLOB NOT NULL,
    kek_check BLOB NOT NULL,
    rank_prime_nonce BLOB NOT NULL,
    rank_prime BLOB NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    policy TEXT NOT NULL DEFAULT 'budget' CHECK (policy IN ('budget', 'issue-all'))
) STRICT;
",
    master_keys_table!("master_keys"),
    "
CREATE TABLE issued_vectors (
    seq INTEGER PRIMARY KEY,
    master_key TEXT NOT NULL REFERENCES master_keys(id),
    vector BLOB NOT NULL
) STRICT;
CREATE INDEX issued_vectors_by_key ON issued_vectors(master_key, seq);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    time_unix_ms INTEGER NOT NULL,
    requester TEXT NOT NULL,
    scheme TEXT NOT NULL CHECK (scheme IN ('feip', 'febo')),
    master_key TEXT NOT NULL REFERENCES master_keys(id),
    vector_sha256 TEXT NOT NULL,
    rank_after INTEGER
) STRICT;
CREATE TABLE tokens (
    hash BLOB PRIMARY KEY CHECK (length(hash) = 32),
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('client', 'server', 'operator')),
    created_unix_ms INTEGER NOT NULL
) STRICT;
"
);

/// The state's key policy: which one, and what its [`RankBudget`] allows
/// (kept, but unused, under [`PolicyKind::IssueAll`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicySettings {
    /// Which policy the authority runs.
    pub kind: PolicyKind,
    /// Caps per side.
    pub caps: Caps,
    /// Fewest non-zero entries of a key vector.
    pub min_support: usize,
    /// Largest share of a vector's ℓ₁ norm in one entry (1.0: no limit).
    pub max_share: f64,
}

/// The state's settings, fixed at init. Nothing in them is secret: the rank
/// prime and the check value are sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The group of every key.
    pub group: GroupId,
    /// The policy.
    pub policy: PolicySettings,
    /// Where the KEK lives.
    pub kek: KekLocation,
    /// How the KEK becomes the sealing key.
    pub kdf: KdfParams,
    /// Opens under the right KEK only.
    pub kek_check: Sealed,
    /// The rank budget's prime (8 bytes, little-endian), sealed.
    pub rank_prime: Sealed,
    /// When the state was created.
    pub created_unix_ms: u64,
}

/// What a master key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An FEIP key for one side of a batch.
    Feip(Side),
    /// A FEBO key (dimension 1).
    Febo,
}

impl KeyKind {
    /// Its scheme.
    pub fn scheme(self) -> Scheme {
        match self {
            KeyKind::Feip(_) => Scheme::Feip,
            KeyKind::Febo => Scheme::Febo,
        }
    }
}

/// A master secret key as stored: sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMasterKey {
    /// Its name.
    pub id: KeyId,
    /// Scheme and side.
    pub kind: KeyKind,
    /// Its dimension (1 for FEBO).
    pub dim: usize,
    /// For the rows of a convolution's patches, their geometry.
    pub patches: Option<PatchGeometry>,
    /// The key's JSON, sealed under [`master_key_aad`].
    pub sealed: Sealed,
    /// The rank of the vectors issued under it, when the policy keeps one.
    pub rank: Option<usize>,
    /// When it was created.
    pub created_unix_ms: u64,
}

/// The associated data that binds a sealed master key to its row: the
/// group, scheme, side, dimension, id and patch geometry (so that a row
/// edited to drop its geometry, and with it the pixel-space budget, no
/// longer unseals).
pub fn master_key_aad(
    group: GroupId,
    id: KeyId,
    kind: KeyKind,
    dim: usize,
    patches: Option<&PatchGeometry>,
) -> Vec<u8> {
    let (scheme, side) = match kind {
        KeyKind::Feip(side) => ("feip", side_name(side)),
        KeyKind::Febo => ("febo", "-"),
    };
    let mut aad = format!("cryptonn-authority/msk/v1/{group}/{scheme}/{side}/{dim}/{id}");
    if let Some(g) = patches {
        aad.push_str("/patches/");
        aad.push_str(&patches_json(g));
    }
    aad.into_bytes()
}

fn patches_json(g: &PatchGeometry) -> String {
    serde_json::to_string(g).unwrap_or_default() // plain arrays of integers: cannot fail
}

const RANK_PRIME_AAD: &[u8] = b"cryptonn-authority/rank-prime/v1";

/// One granted request, written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct IssueRecord<'a> {
    /// The master key.
    pub master_key: KeyId,
    /// The FEIP vectors issued (empty for FEBO).
    pub vectors: &'a [Vec<i64>],
    /// One record per key.
    pub audit: &'a [AuditRecord],
    /// The master key's rank after the request, if the policy keeps one.
    pub rank_after: Option<usize>,
}

/// Durable storage of the authority's state.
///
/// Implementations are opened with the KEK and hold the [`Sealer`]; they
/// are `Sync` and serialize their own writes.
pub trait Store: Send + Sync {
    /// The settings, read when the store was opened.
    fn settings(&self) -> &Settings;

    /// The sealing key, checked against the state when it was opened.
    fn sealer(&self) -> &Sealer;

    /// Every master key, oldest first.
    ///
    /// # Errors
    /// A storage error or a malformed row.
    fn master_keys(&self) -> StateResult<Vec<StoredMasterKey>>;

    /// The vectors requested under `master_key`, in issue order, each of
    /// length `len` (the key's `MasterKey::request_len`).
    ///
    /// # Errors
    /// A storage error or a vector of another length.
    fn issued_vectors(&self, master_key: KeyId, len: usize) -> StateResult<Vec<Vec<i64>>>;

    /// Stores new master keys, all or none, committed on return.
    ///
    /// # Errors
    /// A storage error (e.g. a duplicate id); nothing is stored.
    fn insert_master_keys(&self, keys: &[StoredMasterKey]) -> StateResult<()>;

    /// Stores one granted request (vectors, audit records, rank) in one
    /// transaction, committed on return.
    ///
    /// # Errors
    /// [`StateError::UnknownKey`] or a storage error; nothing is stored.
    fn record_issue(&self, issue: &IssueRecord<'_>) -> StateResult<()>;

    /// How many audit records there are (the last sequence number).
    ///
    /// # Errors
    /// A storage error.
    fn audit_len(&self) -> StateResult<u64>;

    /// At most `limit` audit records after sequence number `after`.
    ///
    /// # Errors
    /// A storage error or a malformed row.
    fn audit_page(&self, after: u64, limit: usize) -> StateResult<AuditPage>;

    /// The requester of the token with SHA-256 `hash`, if any.
    ///
    /// # Errors
    /// A storage error.
    fn token(&self, hash: &[u8; 32]) -> StateResult<Option<TokenEntry>>;
}

/// The policy the settings describe: [`IssueAll`], or the rank budget with
/// the state's own prime, so that replayed vectors give exactly the ranks
/// they gave before.
///
/// # Errors
/// [`StateError::Corrupt`] if the sealed prime does not open or is not prime.
pub fn policy(store: &dyn Store) -> StateResult<Box<dyn KeyPolicy>> {
    match store.settings().policy.kind {
        PolicyKind::IssueAll => Ok(Box::new(IssueAll)),
        // A kind added to the protocol later falls back to the budget,
        // which refuses more, never less.
        _ => Ok(Box::new(rank_budget(store)?)),
    }
}

/// The rank budget of the settings, with the state's own prime.
///
/// # Errors
/// [`StateError::Corrupt`] if the sealed prime does not open or is not prime.
pub fn rank_budget(store: &dyn Store) -> StateResult<RankBudget> {
    let settings = store.settings();
    let bytes = store.sealer().open(&settings.rank_prime, RANK_PRIME_AAD)?;
    let prime = <[u8; 8]>::try_from(bytes.as_slice())
        .map(u64::from_le_bytes)
        .map_err(|_| StateError::Corrupt("the rank prime is not 8 bytes".into()))?;
    let p = &settings.policy;
    RankBudget::with_prime(p.caps, p.min_support, p.max_share, prime)
        .ok_or_else(|| StateError::Corrupt("the rank prime is not a 62-bit prime".into()))
}

/// The SQLite store: one file in WAL mode with `synchronous = FULL`, so
/// that a commit survives a power loss, and foreign keys on. One connection
/// writes, one reads (WAL lets reads run beside a write).
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    settings: Settings,
    sealer: Sealer,
}

impl core::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("group", &self.settings.group)
            .finish_non_exhaustive()
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A connection is left consistent by a panic: an open transaction rolls
    // back when dropped.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens `path` with the pragmas every connection needs, checking that they took.
pub(crate) fn connect(path: &Path) -> StateResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StateError::Database(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StateError::Database(format!(
            "journal mode is {mode}, not WAL"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    let fk: i64 = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    if sync != 2 || fk != 1 {
        return Err(StateError::Database(format!(
            "synchronous = {sync} (FULL is 2), foreign_keys = {fk}"
        )));
    }
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 1 {
        // Version 2 added the patch geometry of convolution keys.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATE_1_TO_2)?;
        tx.pragma_update(None, "user_version", 2)?;
        tx.commit()?;
        version = 2;
    }
    if version == 2 {
        migrate_2_to_3(&mut conn)?;
        version = 3;
    }
    if version == 3 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATE_3_TO_4)?;
        tx.pragma_update(None, "user_version", 4)?;
        tx.commit()?;
        version = 4;
    }
    if version != SCHEMA_VERSION && version != 0 {
        return Err(StateError::Database(format!(
            "schema version {version}; this build reads {SCHEMA_VERSION}"
        )));
    }
    Ok(conn)
}

/// Rebuilds `master_keys` without version 2's rows-only geometry check.
fn migrate_2_to_3(conn: &mut Connection) -> StateResult<()> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATE_2_TO_3)?;
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = dangling {
            return Err(StateError::Corrupt(format!(
                "migration to schema 3: {table} refers to a missing master key"
            )));
        }
        tx.pragma_update(None, "user_version", 3)?;
        tx.commit()?;
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

impl SqliteStore {
    /// Creates a new database at `path` (which must not exist, mode 0600)
    /// for keys of `group`, sealed under `kek`, and opens it.
    ///
    /// # Errors
    /// [`StateError::Io`] if the file exists or cannot be created, a
    /// database error, or a failure of the system's generator.
    pub fn create(
        path: &Path,
        kek: &Kek,
        group: GroupId,
        policy: PolicySettings,
        kek_location: KekLocation,
    ) -> StateResult<Self> {
        // An empty file of mode 0600 first: SQLite gives its WAL the same mode.
        crate::state_dir::write_new_file(path, b"", crate::state_dir::SECRET_MODE)?;
        let kdf = KdfParams::generate()?;
        let sealer = Sealer::derive(kek, &kdf)?;
        let prime = crate::policy::random_prime(&mut rand::rng());
        let settings = Settings {
            group,
            policy,
            kek: kek_location,
            kek_check: sealer.check_value()?,
            rank_prime: sealer.seal(&prime.to_le_bytes(), RANK_PRIME_AAD)?,
            kdf,
            created_unix_ms: now_unix_ms(),
        };
        let mut conn = connect(path)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        insert_settings(&tx, &settings)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Self::from_parts(path, conn, settings, sealer)
    }

    /// Opens the database at `path` with `kek`.
    ///
    /// # Errors
    /// [`StateError::WrongKek`] if `kek` is not the state's, and database errors.
    pub fn open(path: &Path, kek: &Kek) -> StateResult<Self> {
        let conn = connect(path)?;
        let settings = read_settings(&conn)?;
        let sealer = Sealer::unlock(kek, &settings.kdf, &settings.kek_check)?;
        Self::from_parts(path, conn, settings, sealer)
    }

    /// The settings of the database at `path`, without the KEK (to find
    /// where the KEK lives).
    ///
    /// # Errors
    /// Database errors.
    pub fn read_settings(path: &Path) -> StateResult<Settings> {
        read_settings(&connect(path)?)
    }

    fn from_parts(
        path: &Path,
        writer: Connection,
        settings: Settings,
        sealer: Sealer,
    ) -> StateResult<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            reader: Mutex::new(connect(path)?),
            writer: Mutex::new(writer),
            settings,
            sealer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Adds a token's hash to the database at `path` (the KEK is not needed:
/// tokens are not sealed).
///
/// # Errors
/// [`StateError::Token`] if the name is taken, and database errors.
pub(crate) fn insert_token(
    path: &Path,
    hash: &[u8; 32],
    name: &str,
    role: Role,
) -> StateResult<()> {
    let conn = connect(path)?;
    let taken: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StateError::Token(format!("the name {name:?} is taken")));
    }
    conn.execute(
        "INSERT INTO tokens (hash, name, role, created_unix_ms) VALUES (?1, ?2, ?3, ?4)",
        params![&hash[..], name, role.name(), to_i64(now_unix_ms())?],
    )?;
    Ok(())
}

fn insert_settings(conn: &Connection, s: &Settings) -> StateResult<()> {
    let (kek_source, kek_file) = match &s.kek {
        KekLocation::StateDir => ("state", None),
        KekLocation::File(path) => ("file", Some(path_text(path)?)),
        KekLocation::Env => ("env", None),
    };
    let p = &s.policy;
    conn.execute(
        "INSERT INTO settings (id, grp, row_cap, col_cap, min_support, max_share, kek_source,
            kek_file, kdf_salt, kdf_m_kib, kdf_t, kdf_p, kek_check_nonce, kek_check,
            rank_prime_nonce, rank_prime, created_unix_ms, policy)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            s.group.name(),
            to_i64(p.caps.rows)?,
            to_i64(p.caps.cols)?,
            to_i64(p.min_support)?,
            p.max_share,
            kek_source,
            kek_file,
            &s.kdf.salt[..],
            s.kdf.m_kib,
            s.kdf.t,
            s.kdf.p,
            &s.kek_check.nonce[..],
            &s.kek_check.ciphertext,
            &s.rank_prime.nonce[..],
            &s.rank_prime.ciphertext,
            to_i64(s.created_unix_ms)?,
            p.kind.name(),
        ],
    )?;
    Ok(())
}

fn read_settings(conn: &Connection) -> StateResult<Settings> {
    conn.query_row("SELECT * FROM settings WHERE id = 1", [], |r| {
        Ok(settings_row(r))
    })
    .optional()?
    .ok_or_else(|| StateError::Corrupt("no settings: was this state initialized?".into()))?
}

fn settings_row(r: &Row<'_>) -> StateResult<Settings> {
    let group: String = r.get("grp")?;
    let group = group
        .parse::<GroupId>()
        .map_err(|_| StateError::Corrupt(format!("unknown group {group:?}")))?;
    let kek = match (
        r.get::<_, String>("kek_source")?.as_str(),
        r.get::<_, Option<String>>("kek_file")?,
    ) {
        ("state", _) => KekLocation::StateDir,
        ("file", Some(path)) => KekLocation::File(PathBuf::from(path)),
        ("env", _) => KekLocation::Env,
        _ => return Err(StateError::Corrupt("KEK source without its file".into())),
    };
    let policy: String = r.get("policy")?;
    let kind = policy
        .parse::<PolicyKind>()
        .map_err(|_| StateError::Corrupt(format!("unknown policy {policy:?}")))?;
    Ok(Settings {
        group,
        policy: PolicySettings {
            kind,
            caps: Caps {
                rows: to_usize(r.get("row_cap")?)?,
                cols: to_usize(r.get("col_cap")?)?,
            },
            min_support: to_usize(r.get("min_support")?)?,
            max_share: r.get("max_share")?,
        },
        kek,
        kdf: KdfParams {
            salt: fixed(r.get("kdf_salt")?, "the Argon2 salt")?,
            m_kib: r.get("kdf_m_kib")?,
            t: r.get("kdf_t")?,
            p: r.get("kdf_p")?,
        },
        kek_check: Sealed {
            nonce: fixed(r.get("kek_check_nonce")?, "a nonce")?,
            ciphertext: r.get("kek_check")?,
        },
        rank_prime: Sealed {
            nonce: fixed(r.get("rank_prime_nonce")?, "a nonce")?,
            ciphertext: r.get("rank_prime")?,
        },
        created_unix_ms: to_u64(r.get("created_unix_ms")?)?,
    })
}

impl Store for SqliteStore {
    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn master_keys(&self) -> StateResult<Vec<StoredMasterKey>> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare(
            "SELECT id, scheme, side, dim, sealed, nonce, rank, created_unix_ms, patches
             FROM master_keys ORDER BY created_unix_ms, id",
        )?;
        let rows = stmt.query_map([], |r| Ok(master_key_row(r)))?;
        rows.map(|row| row?).collect()
    }

    fn issued_vectors(&self, master_key: KeyId, dim: usize) -> StateResult<Vec<Vec<i64>>> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT vector FROM issued_vectors WHERE master_key = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([master_key.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|blob| decode_vector(&blob?, dim, master_key))
            .collect()
    }

    fn insert_master_keys(&self, keys: &[StoredMasterKey]) -> StateResult<()> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO master_keys
                 (id, scheme, side, dim, sealed, nonce, rank, created_unix_ms, patches)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for key in keys {
                let side = match key.kind {
                    KeyKind::Feip(side) => Some(side_name(side)),
                    KeyKind::Febo => None,
                };
                stmt.execute(params![
                    key.id.to_string(),
                    scheme_name(key.kind.scheme()),
                    side,
                    to_i64(key.dim)?,
                    &key.sealed.ciphertext,
                    &key.sealed.nonce[..],
                    key.rank.map(to_i64).transpose()?,
                    to_i64(key.created_unix_ms)?,
                    key.patches.as_ref().map(patches_json),
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn record_issue(&self, issue: &IssueRecord<'_>) -> StateResult<()> {
        let id = issue.master_key.to_string();
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let known = tx.execute(
            "UPDATE master_keys SET rank = coalesce(?2, rank) WHERE id = ?1",
            params![id, issue.rank_after.map(to_i64).transpose()?],
        )?;
        if known != 1 {
            return Err(StateError::UnknownKey(issue.master_key));
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO issued_vectors (master_key, vector) VALUES (?1, ?2)",
            )?;
            for vector in issue.vectors {
                stmt.execute(params![id, encode_vector(vector)])?;
            }
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (time_unix_ms, requester, scheme, master_key, vector_sha256, rank_after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for record in issue.audit {
                stmt.execute(params![
                    to_i64(record.time_unix_ms)?,
                    record.requester,
                    scheme_name(record.scheme),
                    record.master_key.to_string(),
                    record.vector_sha256,
                    record.rank_after.map(to_i64).transpose()?,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn audit_len(&self) -> StateResult<u64> {
        let conn = lock(&self.reader);
        let len: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?;
        to_u64(len)
    }

    fn audit_page(&self, after: u64, limit: usize) -> StateResult<AuditPage> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(
            "SELECT seq, time_unix_ms, requester, scheme, master_key, vector_sha256, rank_after
             FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        // One more than asked, to know whether there is a next page.
        let asked = to_i64(limit)?.saturating_add(1);
        let rows = stmt.query_map(params![to_i64(after)?, asked], |r| Ok(audit_row(r)))?;
        let mut records = rows
            .map(|row| row?)
            .collect::<StateResult<Vec<AuditEntry>>>()?;
        let more = records.len() > limit;
        records.truncate(limit);
        let next = more.then(|| records.last().map_or(after, |e| e.seq));
        Ok(AuditPage::new(records, next))
    }

    fn token(&self, hash: &[u8; 32]) -> StateResult<Option<TokenEntry>> {
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached("SELECT name, role FROM tokens WHERE hash = ?1")?;
        let row = stmt
            .query_row([&hash[..]], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        row.map(|(name, role)| {
            let role = role
                .parse::<Role>()
                .map_err(|_| StateError::Corrupt(format!("token role {role:?}")))?;
            Ok(TokenEntry { name, role })
        })
        .transpose()
    }
}

fn master_key_row(r: &Row<'_>) -> StateResult<StoredMasterKey> {
    let id = key_id(&r.get::<_, String>(0)?)?;
    let kind = match (
        r.get::<_, String>(1)?.as_str(),
        r.get::<_, Option<String>>(2)?.as_deref(),
    ) {
        ("feip", Some("rows")) => KeyKind::Feip(Side::Rows),
        ("feip", Some("columns")) => KeyKind::Feip(Side::Columns),
        ("febo", None) => KeyKind::Febo,
        _ => {
            return Err(StateError::Corrupt(format!(
                "master key {id}: scheme or side"
            )));
        }
    };
    Ok(StoredMasterKey {
        id,
        kind,
        dim: to_usize(r.get(3)?)?,
        sealed: Sealed {
            ciphertext: r.get(4)?,
            nonce: fixed(r.get(5)?, "a nonce")?,
        },
        rank: r.get::<_, Option<i64>>(6)?.map(to_usize).transpose()?,
        created_unix_ms: to_u64(r.get(7)?)?,
        patches: r
            .get::<_, Option<String>>(8)?
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| StateError::Corrupt(format!("master key {id}: patches: {e}")))?,
    })
}

fn audit_row(r: &Row<'_>) -> StateResult<AuditEntry> {
    let scheme = match r.get::<_, String>(3)?.as_str() {
        "feip" => Scheme::Feip,
        "febo" => Scheme::Febo,
        other => return Err(StateError::Corrupt(format!("audit scheme {other:?}"))),
    };
    Ok(AuditEntry::new(
        to_u64(r.get(0)?)?,
        AuditRecord {
            time_unix_ms: to_u64(r.get(1)?)?,
            requester: r.get(2)?,
            scheme,
            master_key: key_id(&r.get::<_, String>(4)?)?,
            vector_sha256: r.get(5)?,
            rank_after: r.get::<_, Option<i64>>(6)?.map(to_usize).transpose()?,
        },
    ))
}

/// Little-endian i64s, 8 bytes each.
fn encode_vector(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|e| e.to_le_bytes()).collect()
}

fn decode_vector(blob: &[u8], dim: usize, key: KeyId) -> StateResult<Vec<i64>> {
    if blob.len() != dim.saturating_mul(8) {
        return Err(StateError::Corrupt(format!(
            "a vector of master key {key} has {} bytes, not {} × 8",
            blob.len(),
            dim
        )));
    }
    Ok(blob
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            i64::from_le_bytes(b)
        })
        .collect())
}

fn key_id(text: &str) -> StateResult<KeyId> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| StateError::Corrupt(format!("master key id {text:?}")))
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Rows => "rows",
        Side::Columns => "columns",
    }
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Feip => "feip",
        Scheme::Febo => "febo",
    }
}

fn fixed<const N: usize>(bytes: Vec<u8>, what: &str) -> StateResult<[u8; N]> {
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| StateError::Corrupt(format!("{what} of {} bytes, not {N}", bytes.len())))
}

fn path_text(path: &Path) -> StateResult<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| StateError::io(path, "the path is not UTF-8"))
}

fn to_i64<T: TryInto<i64>>(v: T) -> StateResult<i64> {
    v.try_into()
        .map_err(|_| StateError::Database("a number beyond SQLite's 64-bit integers".into()))
}

fn to_u64(v: i64) -> StateResult<u64> {
    u64::try_from(v).map_err(|_| StateError::Corrupt(format!("negative number {v}")))
}

fn to_usize(v: i64) -> StateResult<usize> {
    usize::try_from(v).map_err(|_| StateError::Corrupt(format!("number {v} out of range")))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use cryptonn_fe::Ristretto255;
    use cryptonn_fe::febo::Op;
    use cryptonn_protocol::{FeboKeyRequest, KeyService};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::Authority;
    use crate::state_dir::create_private_dir;
    use crate::state_dir::tests::temp_path;

    const POLICY: PolicySettings = PolicySettings {
        kind: PolicyKind::RankBudget,
        caps: Caps { rows: 3, cols: 2 },
        min_support: 2,
        max_share: 1.0,
    };

    /// A new store in a fresh directory, and a copy of its KEK.
    pub(crate) fn new_store(tag: &str) -> (PathBuf, SqliteStore, Kek) {
        let dir = temp_path(tag);
        create_private_dir(&dir).unwrap();
        let kek = Kek::generate().unwrap();
        let copy = Kek::from_text(kek.as_bytes(), Path::new("test")).unwrap();
        let store = SqliteStore::create(
            &dir.join("authority.db"),
            &kek,
            GroupId::Ristretto255,
            POLICY,
            KekLocation::StateDir,
        )
        .unwrap();
        (dir, store, copy)
    }

    fn open(store: SqliteStore) -> Arc<Authority<Ristretto255>> {
        let policy = policy(&store).unwrap();
        Arc::new(Authority::open(Arc::new(store), policy).unwrap())
    }

    #[test]
    fn store_round_trip() {
        let (dir, store, kek) = new_store("round-trip");
        let db = store.path().to_path_buf();
        let rng = &mut StdRng::seed_from_u64(1);
        let authority = open(store);
        let keys = authority.batch_keys(4, 3, rng).unwrap();
        let server = authority.requester("server-1");
        let ys = vec![vec![1, 2, 0, 0], vec![2, 4, 0, 0], vec![0, 1, 1, 0]];
        let issued = server.feip_keys(keys.rows.id(), &ys).unwrap();
        server.feip_keys(keys.cols.id(), &[vec![1, 1, 1]]).unwrap();
        let label_ct = cryptonn_fe::febo::encrypt(&keys.labels, 5, rng).unwrap();
        let label = FeboKeyRequest {
            commitment: *label_ct.commitment(),
            op: Op::Sub,
            operand: 2,
        };
        server.febo_keys(keys.labels.id(), &[label]).unwrap();
        let refused = server.feip_keys(keys.rows.id(), &[vec![1, 0, 0, 1], vec![0, 0, 1, 1]]);
        assert!(refused.is_err(), "a fourth dimension over the row cap of 3");
        let budgets = |a: &Authority<Ristretto255>| {
            [keys.rows.id(), keys.cols.id(), keys.labels.id()].map(|id| a.budget_of(id).unwrap())
        };
        let before = budgets(&authority);
        assert_eq!(before[0].map(|b| b.rank), Some(2));
        let reader = open_reader(&db, &kek);
        let audit = reader.audit_page(0, 100).unwrap();
        assert_eq!(audit.records.len(), 5);
        assert_eq!(authority.keys_issued(), 5);
        drop((server, authority, reader));

        let authority = open(SqliteStore::open(&db, &kek).unwrap());
        assert_eq!(budgets(&authority), before);
        assert_eq!(authority.keys_issued(), 5);
        let reader = open_reader(&db, &kek);
        assert_eq!(reader.audit_page(0, 100).unwrap(), audit);
        // The same master secret key: the same function keys.
        assert_eq!(authority.feip_keys(keys.rows.id(), &ys).unwrap(), issued);
        // The budget resumed, with its caps: one more dimension, then no more.
        authority
            .feip_keys(keys.rows.id(), &[vec![0, 0, 1, 1]])
            .unwrap();
        assert!(
            authority
                .feip_keys(keys.rows.id(), &[vec![1, 0, 0, 1]])
                .is_err()
        );
        let page = reader.audit_page(5, 100).unwrap();
        let seqs: Vec<u64> = page.records.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (6..=9).collect::<Vec<_>>());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn patch_keys_keep_their_pixel_space_budget_across_restarts() {
        let (dir, store, kek) = new_store("patches");
        let db = store.path().to_path_buf();
        let authority = open(store);
        // 1×2×4 images, 2×2 kernel at stride [1, 2]: 2 positions, 8 pixels.
        let g = PatchGeometry::new([1, 2, 4], [2, 2], [1, 2], [0, 0]).unwrap();
        let rng = &mut StdRng::seed_from_u64(4);
        let keys = authority.patch_keys(g, 3, rng).unwrap();
        assert_eq!((keys.rows.dim(), keys.cols.dim()), (8, 24));
        authority
            .feip_keys(keys.rows.id(), &[vec![1, 1, 1, 1]])
            .unwrap();
        let budget = authority.budget_of(keys.rows.id()).unwrap().unwrap();
        assert_eq!((budget.rank, budget.limit, budget.dim), (2, 3, 8));
        drop(authority);

        let authority = open(SqliteStore::open(&db, &kek).unwrap());
        let budget = authority.budget_of(keys.rows.id()).unwrap().unwrap();
        assert_eq!((budget.rank, budget.dim), (2, 8));
        // The column key kept its geometry too: an error vector over the 3
        // images' 2 positions is one key per tap, 4 equations on the batch,
        // over the column cap of 2.
        let gradient = authority.feip_keys(keys.cols.id(), &[vec![1, -2, 3, 1, 2, -1]]);
        let Err(cryptonn_protocol::Error::KeyRefused(why)) = gradient else {
            panic!("4 gradient equations issued under a column cap of 2");
        };
        assert!(why.contains("4 equations on the batch"), "{why}");
        let budget = authority.budget_of(keys.cols.id()).unwrap().unwrap();
        assert_eq!((budget.rank, budget.dim), (0, 24));
        // A second kernel is two more equations per image: over the cap of 3.
        let refused = authority.feip_keys(keys.rows.id(), &[vec![1, 2, 3, 4]]);
        assert!(matches!(
            refused,
            Err(cryptonn_protocol::Error::KeyRefused(_))
        ));
        drop(authority);

        // Dropping the geometry from the row would drop the pixel-space
        // budget: the sealed key no longer opens.
        let conn = Connection::open(&db).unwrap();
        conn.execute("UPDATE master_keys SET patches = NULL", [])
            .unwrap();
        drop(conn);
        let policy = policy(&SqliteStore::open(&db, &kek).unwrap()).unwrap();
        let reopened = Authority::<Ristretto255>::open(
            Arc::new(SqliteStore::open(&db, &kek).unwrap()),
            policy,
        );
        assert!(reopened.is_err(), "a key without its geometry was loaded");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn migrates_a_version_2_state_without_losing_keys() {
        let (dir, store, kek) = new_store("migrate-2");
        let db = store.path().to_path_buf();
        let rng = &mut StdRng::seed_from_u64(6);
        let authority = open(store);
        let keys = authority.batch_keys(4, 3, rng).unwrap();
        authority
            .feip_keys(keys.rows.id(), &[vec![1, 2, 3, 4]])
            .unwrap();
        drop(authority);
        // Back to version 2: geometry on row keys only.
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE v2 (id TEXT PRIMARY KEY, scheme TEXT NOT NULL, side TEXT,
                 dim INTEGER NOT NULL, sealed BLOB NOT NULL, nonce BLOB NOT NULL, rank INTEGER,
                 created_unix_ms INTEGER NOT NULL,
                 patches TEXT CHECK (patches IS NULL OR side = 'rows')) STRICT;
             INSERT INTO v2 SELECT * FROM master_keys;
             DROP TABLE master_keys;
             ALTER TABLE v2 RENAME TO master_keys;
             ALTER TABLE settings DROP COLUMN policy;
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(conn);

        let authority = open(SqliteStore::open(&db, &kek).unwrap());
        assert_eq!(authority.budget(keys.rows.id()).map(|b| b.rank), Some(1));
        assert_eq!(authority.keys_issued(), 1);
        // Version 3: a column key may now carry a convolution's geometry.
        let g = PatchGeometry::new([1, 2, 2], [2, 2], [1, 1], [0, 0]).unwrap();
        authority.patch_keys(g, 2, rng).unwrap();
        let conn = Connection::open(&db).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_state_from_before_the_policy_choice_opens_as_a_rank_budget() {
        let (dir, store, kek) = new_store("migrate-3");
        let db = store.path().to_path_buf();
        let authority = open(store);
        let keys = authority
            .batch_keys(4, 3, &mut StdRng::seed_from_u64(7))
            .unwrap();
        authority
            .feip_keys(keys.rows.id(), &[vec![1, 2, 3, 4]])
            .unwrap();
        drop(authority);
        // Back to version 3: no policy column.
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("ALTER TABLE settings DROP COLUMN policy; PRAGMA user_version = 3;")
            .unwrap();
        drop(conn);

        let store = SqliteStore::open(&db, &kek).unwrap();
        assert_eq!(store.settings().policy, POLICY);
        let authority = open(store);
        assert_eq!(authority.budget(keys.rows.id()).map(|b| b.rank), Some(1));
        // Still the caps of 3 per row key.
        let more = [vec![0, 1, 1, 0], vec![0, 0, 1, 1], vec![1, 0, 0, 1]];
        assert!(authority.feip_keys(keys.rows.id(), &more).is_err());
        let version: i64 = Connection::open(&db)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_issue_all_state_issues_past_every_cap_after_a_restart() {
        let dir = temp_path("issue-all");
        create_private_dir(&dir).unwrap();
        let kek = Kek::generate().unwrap();
        let db = dir.join("authority.db");
        let settings = PolicySettings {
            kind: PolicyKind::IssueAll,
            ..POLICY
        };
        let store = SqliteStore::create(
            &db,
            &kek,
            GroupId::Ristretto255,
            settings,
            KekLocation::StateDir,
        )
        .unwrap();
        drop(store);
        let store = SqliteStore::open(&db, &kek).unwrap();
        assert_eq!(store.settings().policy.kind, PolicyKind::IssueAll);
        let authority = open(store);
        let keys = authority
            .batch_keys(4, 3, &mut StdRng::seed_from_u64(8))
            .unwrap();
        // Full rank on both sides, and a unit vector: all issued.
        let rows: Vec<Vec<i64>> = (0..4)
            .map(|i| (0..4).map(|j| i64::from(i == j)).collect())
            .collect();
        assert_eq!(authority.feip_keys(keys.rows.id(), &rows).unwrap().len(), 4);
        let cols = [vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 1]];
        assert_eq!(authority.feip_keys(keys.cols.id(), &cols).unwrap().len(), 3);
        assert_eq!(authority.budget(keys.rows.id()), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rejects_patch_batches_of_the_wrong_shape() {
        let authority = Authority::<Ristretto255>::new(crate::IssueAll);
        let g = PatchGeometry::new([1, 2, 4], [2, 2], [1, 2], [0, 0]).unwrap();
        let rng = &mut StdRng::seed_from_u64(5);
        // Features must be the image's pixels (8), not a patch's length (4).
        assert!(authority.batch_keys_timed(4, 6, Some(g), rng).is_err());
        assert!(authority.batch_keys_timed(9, 3, Some(g), rng).is_err());
        assert!(
            authority
                .batch_keys_timed(8, usize::MAX, Some(g), rng)
                .is_err()
        );
        let keys = authority.batch_keys_timed(8, 3, Some(g), rng).unwrap().0;
        assert_eq!((keys.rows.dim(), keys.cols.dim()), (8, 24));
    }

    fn open_reader(db: &Path, kek: &Kek) -> SqliteStore {
        SqliteStore::open(db, kek).unwrap()
    }

    #[test]
    fn audit_pages_name_the_next_one() {
        let (dir, store, kek) = new_store("pages");
        let db = store.path().to_path_buf();
        let authority = open(store);
        let keys = authority
            .batch_keys(4, 2, &mut StdRng::seed_from_u64(2))
            .unwrap();
        let ys: Vec<Vec<i64>> = (0..5).map(|_| vec![1, 1, 0, 0]).collect();
        authority.feip_keys(keys.rows.id(), &ys).unwrap();
        let reader = open_reader(&db, &kek);
        let page = |after| {
            let page = reader.audit_page(after, 2).unwrap();
            let seqs: Vec<u64> = page.records.iter().map(|e| e.seq).collect();
            (seqs, page.next)
        };
        assert_eq!(page(0), (vec![1, 2], Some(2)));
        assert_eq!(page(2), (vec![3, 4], Some(4)));
        assert_eq!(page(4), (vec![5], None));
        assert_eq!(page(5), (vec![], None));
        assert_eq!(reader.audit_len().unwrap(), 5);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rejects_sealed_key_moved_to_another_row() {
        let (dir, store, kek) = new_store("moved");
        let db = store.path().to_path_buf();
        let keys = open(store)
            .row_keys(4, &mut StdRng::seed_from_u64(3))
            .unwrap();
        let conn = connect(&db).unwrap();
        let other = KeyId::random(&mut StdRng::seed_from_u64(4)).to_string();
        // The row keeps its sealed value but claims another id.
        conn.execute("PRAGMA foreign_keys = OFF", []).unwrap();
        conn.execute(
            "UPDATE master_keys SET id = ?1 WHERE id = ?2",
            params![other, keys.rows.id().to_string()],
        )
        .unwrap();
        drop(conn);
        let store = Arc::new(SqliteStore::open(&db, &kek).unwrap());
        let policy = policy(store.as_ref()).unwrap();
        let opened = Authority::<Ristretto255>::open(store, policy);
        assert!(matches!(opened, Err(StateError::Corrupt(_))), "{opened:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Commits nothing: every issue fails as a full disk would.
    struct FailingStore(SqliteStore);

    impl Store for FailingStore {
        fn settings(&self) -> &Settings {
            self.0.settings()
        }
        fn sealer(&self) -> &Sealer {
            self.0.sealer()
        }
        fn master_keys(&self) -> StateResult<Vec<StoredMasterKey>> {
            self.0.master_keys()
        }
        fn issued_vectors(&self, id: KeyId, dim: usize) -> StateResult<Vec<Vec<i64>>> {
            self.0.issued_vectors(id, dim)
        }
        fn insert_master_keys(&self, keys: &[StoredMasterKey]) -> StateResult<()> {
            self.0.insert_master_keys(keys)
        }
        fn record_issue(&self, _: &IssueRecord<'_>) -> StateResult<()> {
            Err(StateError::Database("disk full".into()))
        }
        fn audit_len(&self) -> StateResult<u64> {
            self.0.audit_len()
        }
        fn audit_page(&self, after: u64, limit: usize) -> StateResult<AuditPage> {
            self.0.audit_page(after, limit)
        }
        fn token(&self, hash: &[u8; 32]) -> StateResult<Option<TokenEntry>> {
            self.0.token(hash)
        }
    }

    #[test]
    fn no_key_without_a_commit() {
        let (dir, store, kek) = new_store("no-commit");
        let db = store.path().to_path_buf();
        let store = Arc::new(FailingStore(store));
        let policy = policy(store.as_ref()).unwrap();
        let authority = Authority::<Ristretto255>::open(store, policy).unwrap();
        let keys = authority
            .batch_keys(4, 2, &mut StdRng::seed_from_u64(5))
            .unwrap();
        let err = authority
            .feip_keys(keys.rows.id(), &[vec![1, 1, 0, 0]])
            .unwrap_err();
        assert!(matches!(err, cryptonn_protocol::Error::Storage(_)), "{err}");
        assert_eq!(authority.keys_issued(), 0);
        // Conservative: the approval stays counted in memory...
        assert_eq!(authority.budget(keys.rows.id()).map(|b| b.rank), Some(1));
        drop(authority);
        // ...and the state, which issued nothing, says so after a restart.
        let authority = open(SqliteStore::open(&db, &kek).unwrap());
        assert_eq!(authority.budget(keys.rows.id()).map(|b| b.rank), Some(0));
        assert_eq!(open_reader(&db, &kek).audit_len().unwrap(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rejects_wrong_kek() {
        let (dir, store, _) = new_store("wrong-kek");
        let db = store.path().to_path_buf();
        drop(store);
        let wrong = Kek::generate().unwrap();
        assert!(matches!(
            SqliteStore::open(&db, &wrong),
            Err(StateError::WrongKek)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
