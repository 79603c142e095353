//! The authority as a service: `init` a state directory, add tokens, and
//! serve it over HTTPS (`docs/PROTOCOL.md`, `cryptonn_protocol::wire`).
//!
//! | route | role | answer |
//! | --- | --- | --- |
//! | `GET /v1/health` | none | `{"status":"ok"}` |
//! | `GET /v1/info` | any | `ServiceInfo` |
//! | `POST /v1/batch-keys`, `POST /v1/row-keys`, `POST /v1/patch-keys` | client | public keys |
//! | `POST /v1/feip-keys`, `POST /v1/febo-keys` | server | function keys (a convolution's compact), with `Server-Timing` |
//! | `GET /v1/budgets/{master_key}` | server, operator | `BudgetResponse` |
//! | `GET /v1/audit?after=&limit=` | operator | `AuditPage` (limit 1 to 10 000, default 1 000) |
//!
//! Errors: 401 without a known token, 403 for a role the route does not
//! grant, 415 for a POST body that is not `application/json`, 413 for a
//! body over `MAX_BODY_BYTES`, 408 for a body that does not arrive in
//! time, 400 for a body that is not the documented JSON, 404 for an
//! unknown master key or route, 409 for a policy refusal, 500 for a
//! storage failure; each is an `ErrorBody`. None issues or records
//! anything; only a 500 leaves a trace, the request's rank counted as
//! spent in memory until a restart (`docs/PROTOCOL.md`, "Errors").
//!
//! Slow or idle clients are bounded by [`ServiceLimits`]: timeouts on the
//! handshake, the headers and the body, and bounds on open connections, in
//! all and per peer address.
//!
//! The group is fixed at init; `serve` dispatches on it once.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cryptonn_fe::{Group, GroupId, Modp2048, Modp3072, Ristretto255};
use cryptonn_protocol::PolicyKind;
use cryptonn_protocol::wire::Role;
use hyper_util::rt::TokioTimer;
use zeroize::Zeroizing;

use crate::authority::Authority;
use crate::error::{StateError, StateResult};
use crate::kek::{Kek, KekLocation, KekSource};
use crate::policy::Caps;
use crate::routes::{self, Service};
use crate::state_dir::{
    PUBLIC_MODE, SECRET_MODE, StateDir, check_private, create_empty_dir, create_private_dir,
    write_new_file,
};
use crate::store::{self, PolicySettings, SqliteStore, Store};
use crate::{tls, tokens};

pub use crate::routes::{MAX_AUDIT_PAGE, MAX_SERVED_DIM};

/// How long a shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(10);

/// A TLS handshake is two round trips: 10 s is axum-server's default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers are a few hundred bytes sent in one write. Hyper also runs this
/// clock while a kept-alive connection waits for its next request, so it
/// is the idle limit too (ureq keeps idle connections 15 s and probes one
/// before reusing it).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest body, 8 MiB, at 2.2 Mbit/s; a training step's 0.4 MB at
/// 110 kbit/s.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A trainer holds a few connections (one per thread); each costs a file
/// descriptor, a task and rustls's buffers, and 256 stay far below the
/// usual limit of 1024 descriptors.
pub const MAX_CONNECTIONS: usize = 256;

/// A trainer's few connections, times a few processes behind one address
/// (one host, or a NAT); one address alone holds at most an eighth of
/// [`MAX_CONNECTIONS`], so a single client cannot hold them all.
pub const MAX_CONNECTIONS_PER_PEER: usize = 32;

/// The longest timeout [`ServiceLimits`] takes: hyper adds the header
/// timeout to the clock, which overflows (a panic) near `Duration::MAX`.
pub const MAX_LIMIT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The most connections [`ServiceLimits`] takes, in all or per peer:
/// far past any descriptor limit already.
pub const MAX_LIMIT_CONNECTIONS: usize = 1 << 16;

/// What a slow or idle client may hold (`docs/PROTOCOL.md`, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceLimits {
    /// From accepting a connection to the end of its TLS handshake.
    pub handshake_timeout: Duration,
    /// From the end of the previous answer to the last byte of a request's
    /// headers; a connection's first request must send its first two bytes
    /// within this of the handshake, and its headers within this of them.
    /// Then the connection is closed.
    pub header_timeout: Duration,
    /// From the end of the token lookup (after the headers, once a
    /// blocking thread has checked the token) to the last byte of the
    /// body; then a 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Connections open at once, handshakes included; one more is closed
    /// at once, before its handshake.
    pub max_connections: usize,
    /// Connections open at once from one IP address, handshakes included;
    /// one more from it is closed at once, before its handshake.
    pub max_connections_per_peer: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_peer: MAX_CONNECTIONS_PER_PEER,
        }
    }
}

impl ServiceLimits {
    /// A zero timeout or bound would refuse every client; a huge timeout
    /// would overflow hyper's clock, a huge bound no longer bounds.
    fn check(&self) -> StateResult<()> {
        let timeouts = [
            self.handshake_timeout,
            self.header_timeout,
            self.body_timeout,
        ];
        let time = Duration::from_nanos(1)..=MAX_LIMIT_TIMEOUT;
        let count = 1..=MAX_LIMIT_CONNECTIONS;
        let bounds = [self.max_connections, self.max_connections_per_peer];
        if !timeouts.iter().all(|t| time.contains(t)) || !bounds.iter().all(|b| count.contains(b)) {
            return Err(StateError::Service(format!(
                "limits {self:?}: timeouts must be positive and at most {} s, the connection \
                 bounds 1 to {MAX_LIMIT_CONNECTIONS}",
                MAX_LIMIT_TIMEOUT.as_secs()
            )));
        }
        Ok(())
    }
}

/// What `init` sets up.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InitOptions {
    /// The group of every key, fixed for the life of the state.
    pub group: GroupId,
    /// The key policy (default: the rank budget of `caps`, `min_support`
    /// and `max_share`). [`PolicyKind::IssueAll`] issues every key and
    /// ignores those three (they are stored all the same).
    pub policy: PolicyKind,
    /// The rank caps per side.
    pub caps: Caps,
    /// Fewest non-zero entries of a key vector.
    pub min_support: usize,
    /// Largest share of a key vector's ℓ₁ norm in one entry (default 1.0: no limit).
    pub max_share: f64,
    /// Where the KEK comes from (default: generated into `STATE_DIR/kek`).
    pub kek: KekSource,
}

impl InitOptions {
    /// Options for a rank budget of `group` with these caps and minimum
    /// support, no share limit, and a generated KEK.
    pub fn new(group: GroupId, caps: Caps, min_support: usize) -> Self {
        Self {
            group,
            policy: PolicyKind::RankBudget,
            caps,
            min_support,
            max_share: 1.0,
            kek: KekSource::Generate,
        }
    }

    /// The same options with the KEK from `kek`.
    #[must_use]
    pub fn with_kek(mut self, kek: KekSource) -> Self {
        self.kek = kek;
        self
    }

    /// The same options under `policy`. [`PolicyKind::IssueAll`] is the
    /// paper's: every key is issued, so a server may gather keys until it
    /// solves every value encrypted under a master key, and the master key
    /// itself.
    #[must_use]
    pub fn with_policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    /// The same options with a share limit.
    #[must_use]
    pub fn with_max_share(mut self, max_share: f64) -> Self {
        self.max_share = max_share;
        self
    }
}

/// What `init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The database.
    pub db: PathBuf,
    /// The certificate clients must trust.
    pub cert: PathBuf,
    /// Where the KEK lives.
    pub kek: KekLocation,
    /// The first token of each role, by role.
    pub tokens: Vec<(Role, PathBuf)>,
}

/// The file of the first token of `role` in `state_dir`.
pub fn token_path(state_dir: &Path, role: Role) -> PathBuf {
    StateDir::new(state_dir).token(role.name())
}

/// The certificate of the service in `state_dir`.
pub fn cert_path(state_dir: &Path) -> PathBuf {
    StateDir::new(state_dir).cert()
}

/// Creates a new state in `state_dir` (new or empty): the database with the
/// settings, the KEK file unless the KEK is the operator's, a self-signed
/// certificate for `localhost` and `127.0.0.1`, and one token per role.
///
/// # Errors
/// [`StateError::NotEmpty`] for a directory that holds anything, KEK errors
/// (a file others may read, `$CRYPTONN_KEK` unset or too short), a
/// `max_share` outside (0, 1], and I/O, database and TLS errors. A failed
/// init may leave files behind; remove the directory before trying again.
pub fn init(state_dir: &Path, options: &InitOptions) -> StateResult<InitReport> {
    if !(options.max_share > 0.0 && options.max_share <= 1.0) {
        return Err(StateError::Service(format!(
            "max share {}: must be in (0, 1]",
            options.max_share
        )));
    }
    let dir = StateDir::new(state_dir);
    // The KEK first, so that a bad one stops init before anything is written.
    let (kek, location) = match &options.kek {
        KekSource::Generate => (Kek::generate()?, KekLocation::StateDir),
        KekSource::File(path) => {
            let absolute = std::path::absolute(path).map_err(|e| StateError::io(path, e))?;
            (Kek::from_file(&absolute)?, KekLocation::File(absolute))
        }
        KekSource::Env => (
            Kek::from_env()?
                .ok_or_else(|| StateError::NoKek(format!("${} is not set", crate::kek::KEK_ENV)))?,
            KekLocation::Env,
        ),
    };
    create_empty_dir(state_dir)?;
    if location == KekLocation::StateDir {
        let mut text = Zeroizing::new(kek.as_bytes().to_vec());
        text.push(b'\n');
        write_new_file(&dir.kek(), &text, SECRET_MODE)?;
    }
    let policy = PolicySettings {
        kind: options.policy,
        caps: options.caps,
        min_support: options.min_support,
        max_share: options.max_share,
    };
    drop(SqliteStore::create(
        &dir.db(),
        &kek,
        options.group,
        policy,
        location.clone(),
    )?);
    let (cert, key) = tls::generate()?;
    write_new_file(&dir.cert(), cert.as_bytes(), PUBLIC_MODE)?;
    write_new_file(&dir.key(), key.as_bytes(), SECRET_MODE)?;
    create_private_dir(&dir.tokens())?;
    let tokens = [Role::Client, Role::Server, Role::Operator]
        .into_iter()
        .map(|role| Ok((role, add_token(state_dir, role, role.name())?)))
        .collect::<StateResult<Vec<_>>>()?;
    Ok(InitReport {
        state_dir: state_dir.to_path_buf(),
        db: dir.db(),
        cert: dir.cert(),
        kek: location,
        tokens,
    })
}

/// Adds a token for `role` named `name` (written in the audit log), in
/// `STATE_DIR/tokens/NAME.token` (mode 0600); the database keeps its hash.
/// A running service accepts it at once.
///
/// # Errors
/// [`StateError::Token`] for a name that is not 1 to 64 of `[A-Za-z0-9._-]`
/// (not starting with `.`) or is taken, and I/O and database errors.
pub fn add_token(state_dir: &Path, role: Role, name: &str) -> StateResult<PathBuf> {
    tokens::check_name(name)?;
    let dir = StateDir::new(state_dir);
    let db = dir.db();
    if !db.is_file() {
        return Err(StateError::io(
            &db,
            "no authority state here; run init first",
        ));
    }
    let path = dir.token(name);
    if path.exists() {
        return Err(StateError::Token(format!("the name {name:?} is taken")));
    }
    let token = tokens::generate()?;
    let mut text = Zeroizing::new(token.as_bytes().to_vec());
    text.push(b'\n');
    write_new_file(&path, &text, SECRET_MODE)?;
    if let Err(e) = store::insert_token(&db, &tokens::hash(&token), name, role) {
        // The hash is not stored, so the file would name a dead token.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Opens the database of `state_dir` with its KEK: `$CRYPTONN_KEK` if set,
/// else the file recorded at init.
///
/// # Errors
/// KEK errors ([`StateError::WrongKek`] among them) and database errors.
pub fn open_store(state_dir: &Path) -> StateResult<SqliteStore> {
    let dir = StateDir::new(state_dir);
    let settings = SqliteStore::read_settings(&dir.db())?;
    let kek = settings.kek.load(&dir)?;
    SqliteStore::open(&dir.db(), &kek)
}

/// The authority of `state_dir`, with the policy recorded at init and every
/// budget replayed: for inspection, or for serving in-process while no
/// service runs on the state.
///
/// # Errors
/// [`StateError::Service`] while a service serves the state (two
/// authorities on one state would each keep their own budgets, and could
/// issue past the caps), [`StateError::WrongGroup`] if `G` is not the
/// state's group, and the errors of [`open_store`] and [`Authority::open`].
pub fn open_authority<G: Group>(state_dir: &Path) -> StateResult<Arc<Authority<G>>> {
    drop(lock_state(&StateDir::new(state_dir))?);
    let store: Arc<dyn Store> = Arc::new(open_store(state_dir)?);
    let policy = store::policy(store.as_ref())?;
    Ok(Arc::new(Authority::open(store, policy)?))
}

/// Locks the state for one service: a second authority on the same state
/// would keep budgets of its own, and the two together could issue past
/// the caps. The lock lasts as long as the returned file is open.
fn lock_state(dir: &StateDir) -> StateResult<File> {
    let path = dir.root().join("serve.lock");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, SECRET_MODE);
    let file = options.open(&path).map_err(|e| StateError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StateError::Service(format!(
            "another authority is serving {}",
            dir.root().display()
        ))),
        Err(TryLockError::Error(e)) => Err(StateError::io(&path, e)),
    }
}

fn service<G: Group>(store: Arc<dyn Store>, body_timeout: Duration) -> StateResult<axum::Router> {
    let policy = store::policy(store.as_ref())?;
    let authority = Arc::new(Authority::<G>::open(store.clone(), policy)?);
    Ok(routes::app(Arc::new(Service {
        authority,
        store,
        body_timeout,
    })))
}

/// Everything `serve` needs, made before the first request: errors surface
/// to the caller, not in a background thread.
struct Prepared {
    lock: File,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    url: String,
    cert_pem: String,
    group: GroupId,
}

fn prepare(state_dir: &Path, listen: SocketAddr, body_timeout: Duration) -> StateResult<Prepared> {
    let dir = StateDir::new(state_dir);
    if !dir.db().is_file() {
        return Err(StateError::io(
            &dir.db(),
            "no authority state here; run init first",
        ));
    }
    let lock = lock_state(&dir)?;
    let store: Arc<dyn Store> = Arc::new(open_store(state_dir)?);
    let group = store.settings().group;
    let app = match group {
        GroupId::Ristretto255 => service::<Ristretto255>(store, body_timeout)?,
        GroupId::Modp2048 => service::<Modp2048>(store, body_timeout)?,
        GroupId::Modp3072 => service::<Modp3072>(store, body_timeout)?,
    };
    let cert_path = dir.cert();
    let cert_pem =
        std::fs::read_to_string(&cert_path).map_err(|e| StateError::io(&cert_path, e))?;
    let key_path = dir.key();
    let metadata = std::fs::metadata(&key_path).map_err(|e| StateError::io(&key_path, e))?;
    check_private(&key_path, &metadata).map_err(|e| StateError::io(&key_path, e))?;
    let key_pem =
        Zeroizing::new(std::fs::read(&key_path).map_err(|e| StateError::io(&key_path, e))?);
    let tls = tls::server_config(cert_pem.as_bytes(), &key_pem)?;
    let listener = TcpListener::bind(listen)
        .map_err(|e| StateError::Service(format!("listening on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StateError::Service(format!("listening on {listen}: {e}")))?;
    // The certificate names 127.0.0.1: a wildcard bind is reached there.
    let host = if bound.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bound.ip()
    };
    Ok(Prepared {
        lock,
        listener,
        tls,
        app,
        url: format!("https://{}", SocketAddr::new(host, bound.port())),
        cert_pem,
        group,
    })
}

/// A service running on a background thread; it stops on
/// [`RunningService::shutdown`] or when dropped.
pub struct RunningService {
    url: String,
    cert_pem: String,
    group: GroupId,
    handle: axum_server::Handle,
    thread: Option<JoinHandle<StateResult<()>>>,
    /// Released after the thread has stopped (fields drop after `drop`).
    _lock: File,
}

impl core::fmt::Debug for RunningService {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunningService")
            .field("url", &self.url)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Serves the state in `state_dir` on `listen` (port 0: any free port) from
/// a tokio runtime on a background thread; returns once the port is bound.
///
/// # Errors
/// The errors of opening the state ([`open_store`], [`Authority::open`]),
/// an unreadable certificate or key, and a port that cannot be bound.
pub fn spawn(state_dir: &Path, listen: SocketAddr) -> StateResult<RunningService> {
    start(state_dir, listen, false, ServiceLimits::default())
}

/// [`spawn`] with other limits than the defaults (e.g. short timeouts for
/// a test).
///
/// # Errors
/// The errors of [`spawn`], and [`StateError::Service`] for a timeout or
/// connection bound that is zero or over [`MAX_LIMIT_TIMEOUT`] or
/// [`MAX_LIMIT_CONNECTIONS`].
pub fn spawn_with(
    state_dir: &Path,
    listen: SocketAddr,
    limits: ServiceLimits,
) -> StateResult<RunningService> {
    start(state_dir, listen, false, limits)
}

/// Serves the state in `state_dir` on `listen` until Ctrl-C or SIGTERM,
/// then lets requests in flight finish (up to 10 s).
///
/// # Errors
/// The errors of [`spawn`], and a server that fails while running.
pub fn serve_blocking(state_dir: &Path, listen: SocketAddr) -> StateResult<()> {
    let mut service = start(state_dir, listen, true, ServiceLimits::default())?;
    // On stdout, first line: scripts and tests read the bound port from it.
    println!(
        "cryptonn authority: serving {} at {} (certificate: {})",
        service.group,
        service.url,
        cert_path(state_dir).display()
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    service.join()
}

fn start(
    state_dir: &Path,
    listen: SocketAddr,
    on_signal: bool,
    limits: ServiceLimits,
) -> StateResult<RunningService> {
    limits.check()?;
    let prepared = prepare(state_dir, listen, limits.body_timeout)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cryptonn-authority")
        .build()
        .map_err(|e| StateError::Service(format!("starting the runtime: {e}")))?;
    let handle = axum_server::Handle::new();
    let server_handle = handle.clone();
    let Prepared {
        lock,
        listener,
        tls,
        app,
        url,
        cert_pem,
        group,
    } = prepared;
    let thread = std::thread::Builder::new()
        .name("cryptonn-authority".into())
        .spawn(move || {
            let served = runtime.block_on(async move {
                if on_signal {
                    tokio::spawn(stop_on_signal(server_handle.clone()));
                }
                let acceptor = tls::BoundedAcceptor::new(tls, &limits);
                let mut server = axum_server::from_tcp(listener)
                    .acceptor(acceptor)
                    .handle(server_handle);
                // Without a timer hyper silently ignores its header timeout.
                server
                    .http_builder()
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout);
                server.serve(app.into_make_service()).await
            });
            runtime.shutdown_timeout(GRACE);
            served.map_err(|e| StateError::Service(e.to_string()))
        })
        .map_err(|e| StateError::Service(format!("starting the service thread: {e}")))?;
    Ok(RunningService {
        url,
        cert_pem,
        group,
        handle,
        thread: Some(thread),
        _lock: lock,
    })
}

/// Starts a graceful shutdown on Ctrl-C or SIGTERM.
async fn stop_on_signal(handle: axum_server::Handle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("cryptonn authority: stopping");
    handle.graceful_shutdown(Some(GRACE));
}

impl RunningService {
    /// The base URL, `https://127.0.0.1:PORT` with the port really bound.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The certificate the service presents (PEM): the one to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The group of every key it serves.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// Stops accepting, lets requests in flight finish (up to 10 s), and
    /// waits for the thread. Calling it again does nothing.
    ///
    /// # Errors
    /// [`StateError::Service`] if the server had failed.
    pub fn shutdown(&mut self) -> StateResult<()> {
        if self.thread.is_some() {
            self.handle.graceful_shutdown(Some(GRACE));
        }
        self.join()
    }

    fn join(&mut self) -> StateResult<()> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| StateError::Service("the service thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        // Nobody is left to hear an error; the thread is stopped either way.
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dir::tests::temp_path;

    fn options() -> InitOptions {
        InitOptions::new(GroupId::Ristretto255, Caps { rows: 4, cols: 2 }, 2)
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn init_writes_private_files_and_refuses_a_used_dir() {
        let dir = temp_path("init");
        let report = init(&dir, &options()).unwrap();
        let state = StateDir::new(&dir);
        assert_eq!(report.kek, KekLocation::StateDir);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&state.kek()), 0o600);
        assert_eq!(mode(&state.key()), 0o600);
        assert_eq!(mode(&state.db()), 0o600);
        assert_eq!(mode(&state.cert()), 0o644);
        let store = open_store(&dir).unwrap();
        assert_eq!(store.settings().policy.caps, Caps { rows: 4, cols: 2 });
        let db = std::fs::read(state.db()).unwrap();
        for (role, path) in &report.tokens {
            assert_eq!(path, &token_path(&dir, *role));
            assert_eq!(mode(path), 0o600);
            let token = std::fs::read_to_string(path).unwrap();
            let token = token.trim_end();
            assert_eq!(token.len(), 64);
            let entry = store.token(&tokens::hash(token)).unwrap().unwrap();
            assert_eq!((entry.name.as_str(), entry.role), (role.name(), *role));
            assert!(
                !db.windows(64).any(|w| w == token.as_bytes()),
                "a token in the clear"
            );
        }
        assert!(matches!(
            init(&dir, &options()),
            Err(StateError::NotEmpty(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn add_token_refuses_a_taken_name() {
        let dir = temp_path("tokens");
        init(&dir, &options()).unwrap();
        assert!(add_token(&dir, Role::Server, "server").is_err());
        assert!(add_token(&dir, Role::Server, "../escape").is_err());
        let path = add_token(&dir, Role::Server, "server-2").unwrap();
        assert_eq!(path, StateDir::new(&dir).token("server-2"));
        let token = std::fs::read_to_string(&path).unwrap();
        let entry = open_store(&dir)
            .unwrap()
            .token(&tokens::hash(token.trim_end()))
            .unwrap();
        assert_eq!(entry.map(|e| e.role), Some(Role::Server));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn init_refuses_a_kek_file_others_can_read() {
        let outside = temp_path("kek-outside");
        create_private_dir(&outside).unwrap();
        let kek = outside.join("kek");
        write_new_file(&kek, b"0123456789abcdef0123456789abcdef", 0o644).unwrap();
        let dir = temp_path("kek-refused");
        let refused = init(&dir, &options().with_kek(KekSource::File(kek.clone())));
        assert!(
            matches!(refused, Err(StateError::KekFile { .. })),
            "{refused:?}"
        );
        assert!(
            !dir.exists(),
            "nothing is written before the KEK is accepted"
        );
        std::fs::remove_dir_all(outside).unwrap();
    }

    #[test]
    fn one_service_per_state() {
        let dir = temp_path("one-service");
        init(&dir, &options()).unwrap();
        let mut first = spawn(&dir, ([127, 0, 0, 1], 0).into()).unwrap();
        assert!(first.url().starts_with("https://127.0.0.1:"));
        assert!(!first.url().ends_with(":0"));
        let second = spawn(&dir, ([127, 0, 0, 1], 0).into());
        assert!(matches!(second, Err(StateError::Service(_))), "{second:?}");
        assert!(open_authority::<Ristretto255>(&dir).is_err());
        first.shutdown().unwrap();
        first.shutdown().unwrap();
        drop(first);
        assert!(open_authority::<Ristretto255>(&dir).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn spawn_with_refuses_zero_limits() {
        let dir = temp_path("zero-limits");
        init(&dir, &options()).unwrap();
        let no_connections = ServiceLimits {
            max_connections: 0,
            ..ServiceLimits::default()
        };
        let no_time = ServiceLimits {
            body_timeout: Duration::ZERO,
            ..ServiceLimits::default()
        };
        for limits in [no_connections, no_time] {
            let refused = spawn_with(&dir, ([127, 0, 0, 1], 0).into(), limits);
            assert!(
                matches!(refused, Err(StateError::Service(_))),
                "{refused:?}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn limits_are_bounded_above() {
        let with = |change: fn(&mut ServiceLimits)| {
            let mut limits = ServiceLimits::default();
            change(&mut limits);
            limits.check()
        };
        assert!(with(|_| {}).is_ok());
        assert!(
            with(|l| {
                l.header_timeout = MAX_LIMIT_TIMEOUT;
                l.max_connections = MAX_LIMIT_CONNECTIONS;
                l.max_connections_per_peer = MAX_LIMIT_CONNECTIONS;
            })
            .is_ok()
        );
        let refused: [fn(&mut ServiceLimits); 6] = [
            |l| l.header_timeout = Duration::MAX,
            |l| l.handshake_timeout = MAX_LIMIT_TIMEOUT + Duration::from_nanos(1),
            |l| l.body_timeout = Duration::from_secs(u64::MAX),
            |l| l.max_connections = MAX_LIMIT_CONNECTIONS + 1,
            |l| l.max_connections = usize::MAX,
            |l| l.max_connections_per_peer = 0,
        ];
        for change in refused {
            let checked = with(change);
            assert!(
                matches!(&checked, Err(StateError::Service(m)) if m.contains("at most 3600 s")),
                "{checked:?}"
            );
        }
    }

    #[test]
    fn open_refuses_a_replaced_kek() {
        let dir = temp_path("replaced-kek");
        init(&dir, &options()).unwrap();
        let kek = StateDir::new(&dir).kek();
        std::fs::remove_file(&kek).unwrap();
        write_new_file(&kek, b"fedcba9876543210fedcba9876543210\n", SECRET_MODE).unwrap();
        assert!(matches!(open_store(&dir), Err(StateError::WrongKek)));
        assert!(matches!(
            spawn(&dir, ([127, 0, 0, 1], 0).into()),
            Err(StateError::WrongKek)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
