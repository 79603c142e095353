//! The service's limits over real TLS on a loopback port, with timeouts
//! shortened for the test: half-sent requests are closed in time while
//! other clients are served, the connection bound holds, bodies that are
//! not JSON get JSON errors, −2⁶³ is refused, and the audit hashes are
//! the ones `docs/PROTOCOL.md` works out.
#![allow(clippy::unwrap_used, clippy::panic)] // Unwraps and panics are allowed in tests.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Answer, Fixture};
use cryptonn::authority::Caps;
use cryptonn::authority::service::{InitOptions, ServiceLimits};
use cryptonn::fe::GroupId;
use cryptonn::protocol::wire::{AuditPage, ErrorBody, ErrorCode, Role};
use serde_json::json;

/// The shortened timeouts: long enough for a loaded 2-core machine to
/// serve a few small requests, short enough for a fast test.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Slack on top of a timeout, for a busy machine.
const SLACK: Duration = Duration::from_secs(3);

/// The connection bound of the tests.
const MAX_CONNECTIONS: usize = 4;

/// The worked examples of `docs/PROTOCOL.md`: the FEIP vector [1, 2, 3, 4],
/// and FEBO `sub 7` on the commitment that is Ristretto255's base point.
const FEIP_EXAMPLE_SHA256: &str =
    "d29f03499e036d6613118ca663a874040fc91787ef852f0a6e0261b53fad6f24";
const FEBO_EXAMPLE_SHA256: &str =
    "d62e5e872eac89439d6a39e01add467bfaf900ecd4293fe5eb8514d25a1755f5";
const BASE_POINT_HEX: &str = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76";

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client_config(cert_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

impl Answer {
    /// The error code of a JSON error body, checked against the status.
    fn json_error(&self) -> ErrorCode {
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        self.error()
    }
}

/// This file's uses of the shared [`Fixture`]: short timeouts and a small
/// connection bound.
impl Fixture {
    fn start(tag: &str) -> Self {
        Self::start_with(tag, |_| {})
    }

    /// [`Fixture::start`] with the test's limits changed by `change`.
    fn start_with(tag: &str, change: impl FnOnce(&mut ServiceLimits)) -> Self {
        let options = InitOptions::new(GroupId::Ristretto255, Caps { rows: 3, cols: 2 }, 2);
        let mut limits = ServiceLimits::default();
        limits.handshake_timeout = TIMEOUT;
        limits.header_timeout = TIMEOUT;
        limits.body_timeout = TIMEOUT;
        limits.max_connections = MAX_CONNECTIONS;
        change(&mut limits);
        Self::spawn(&format!("limits-{tag}"), &options, limits)
    }

    /// `POST /v1{path}` with the role's token and `content_type`, if any.
    fn post(&self, path: &str, role: Role, content_type: Option<&str>, body: &[u8]) -> Answer {
        self.send(path, Some(self.token(role)), content_type, body)
    }

    fn post_json(&self, path: &str, role: Role, body: &serde_json::Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.post(path, role, Some("application/json"), &bytes)
    }

    /// Master keys for a batch of 2 samples of 4 features: (rows, labels).
    fn batch_keys(&self) -> (String, String) {
        let keys: serde_json::Value = self
            .post_json(
                "/batch-keys",
                Role::Client,
                &json!({"features": 4, "batch": 2}),
            )
            .json();
        let id = |side: &str| keys[side]["id"].as_str().unwrap().to_owned();
        (id("rows"), id("labels"))
    }

    /// A TLS connection with its handshake done, and when it was done.
    fn connect(&self) -> std::io::Result<(Tls, Instant)> {
        let mut socket = TcpStream::connect(self.addr())?;
        socket.set_read_timeout(Some(TIMEOUT + SLACK))?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let config = client_config(self.cert_pem());
        let mut tls = rustls::ClientConnection::new(config, name).unwrap();
        while tls.is_handshaking() || tls.wants_write() {
            tls.complete_io(&mut socket)?;
        }
        Ok((rustls::StreamOwned::new(tls, socket), Instant::now()))
    }

    /// Whether `GET /v1/health` is served, within 5 s of retries: the
    /// places under a bound come back as soon as the service sees closes.
    fn served_again(&self) -> bool {
        (0..50).any(|_| {
            let ok = self
                .agent
                .get(format!("{}/v1/health", self.url))
                .call()
                .is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(100));
            }
            ok
        })
    }
}

/// Sends `bytes` on `tls`, flushed.
fn send(tls: &mut Tls, bytes: &[u8]) {
    tls.write_all(bytes).unwrap();
    tls.flush().unwrap();
}

/// Reads until the service closes `tls`: what it sent and when it closed,
/// or `None` if it is still open after `wait`.
fn read_until_closed(tls: &mut Tls, wait: Duration) -> Option<(Vec<u8>, Instant)> {
    tls.sock.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Some((got, Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some((got, Instant::now())),
        }
    }
}

/// The status and body of a raw HTTP/1.1 answer.
fn parse_answer(bytes: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// How long the service held a half-sent request, checked against the timeout.
fn check_held(held: Duration) {
    assert!(
        held >= TIMEOUT.mul_f64(0.9) && held <= TIMEOUT + SLACK,
        "held {held:?}, timeout {TIMEOUT:?}"
    );
}

/// Serves other clients while `half` holds its connection, then waits for
/// the service to close `half`: its answer and when it closed.
fn served_while_held(f: &Fixture, half: &mut Tls, since: Instant) -> (Vec<u8>, Instant) {
    assert_eq!(f.get("/health", None).status, 200);
    f.batch_keys();
    let served = Instant::now();
    let (answer, closed) = read_until_closed(half, TIMEOUT + SLACK).expect("never closed");
    assert!(served < closed, "served only after the close");
    check_held(closed - since);
    (answer, closed)
}

#[test]
fn half_sent_headers_are_closed_while_others_are_served() {
    let f = Fixture::start("headers");
    let (mut half, since) = f.connect().unwrap();
    send(
        &mut half,
        b"POST /v1/feip-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
    );
    // Others are served while the half-sent request holds its connection.
    let (answer, closed) = served_while_held(&f, &mut half, since);
    assert!(answer.is_empty(), "{answer:?}");
    eprintln!("half-sent headers: closed after {:?}", closed - since);
}

#[test]
fn silent_and_http2_connections_are_closed() {
    let f = Fixture::start("silent");
    let (mut silent, silent_since) = f.connect().unwrap();
    let (mut one_byte, one_byte_since) = f.connect().unwrap();
    send(&mut one_byte, b"P");
    let (mut http2, _) = f.connect().unwrap();
    let start = Instant::now();
    send(&mut http2, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let (answer, _) = read_until_closed(&mut http2, SLACK).expect("HTTP/2 served");
    assert!(answer.is_empty() && start.elapsed() < TIMEOUT, "{answer:?}");
    assert_eq!(f.get("/health", None).status, 200);
    let served = Instant::now();
    for (tls, since) in [(&mut silent, silent_since), (&mut one_byte, one_byte_since)] {
        let (answer, closed) = read_until_closed(tls, TIMEOUT + SLACK).expect("never closed");
        assert!(answer.is_empty(), "{answer:?}");
        assert!(served < closed, "served only after the close");
        check_held(closed - since);
    }
}

#[test]
fn half_sent_body_gets_408_and_is_closed_while_others_are_served() {
    let f = Fixture::start("body");
    let (mut half, _) = f.connect().unwrap();
    let head = format!(
        "POST /v1/batch-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"features\"",
        f.token(Role::Client)
    );
    send(&mut half, head.as_bytes());
    let since = Instant::now();
    let (answer, closed) = served_while_held(&f, &mut half, since);
    let (status, head, body) = parse_answer(&answer);
    assert_eq!(status, 408, "{answer:?}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let error: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.error.code, ErrorCode::RequestTimeout);
    eprintln!("half-sent body: 408 and closed after {:?}", closed - since);
}

#[test]
fn connections_over_the_bound_are_closed_before_their_handshake() {
    let f = Fixture::start("bound");
    let held: Vec<Tls> = (0..MAX_CONNECTIONS)
        .map(|_| f.connect().unwrap().0)
        .collect();
    let start = Instant::now();
    let refused = f.connect();
    assert!(refused.is_err(), "a connection over the bound was served");
    assert!(start.elapsed() < TIMEOUT, "refused only at a timeout");
    drop(held);
    assert!(f.served_again(), "the bound was not released");
}

/// The per-peer bound of the test below, under [`MAX_CONNECTIONS`].
const PER_PEER: usize = 2;

/// Every connection of a test comes from 127.0.0.1: one peer. That other
/// peers keep their places is `tls.rs`'s unit test.
#[test]
fn connections_over_the_per_peer_bound_are_closed_while_its_others_are_served() {
    let f = Fixture::start_with("peer-bound", |l| l.max_connections_per_peer = PER_PEER);
    let mut held: Vec<Tls> = (0..PER_PEER).map(|_| f.connect().unwrap().0).collect();
    let start = Instant::now();
    let refused = f.connect();
    assert!(
        refused.is_err(),
        "a connection over the per-peer bound was served"
    );
    assert!(start.elapsed() < TIMEOUT, "refused only at a timeout");
    // The service's own bound has room: the peer's open connections are
    // served, each answering and then closing as asked.
    for tls in &mut held {
        send(
            tls,
            b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        );
        let (answer, _) = read_until_closed(tls, SLACK).expect("never closed");
        let (status, _, body) = parse_answer(&answer);
        assert_eq!(status, 200, "{body}");
    }
    drop(held);
    assert!(f.served_again(), "the peer's places were not released");
}

#[test]
fn non_json_bodies_get_415_with_a_json_error() {
    let f = Fixture::start("media");
    let body = br#"{"features": 4, "batch": 2}"#;
    let refused = [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ];
    for content_type in refused {
        let answer = f.post("/batch-keys", Role::Client, content_type, body);
        assert_eq!(
            answer.json_error(),
            ErrorCode::UnsupportedMediaType,
            "{content_type:?}"
        );
    }
    // The role is checked first.
    let wrong_role = f.post("/batch-keys", Role::Server, Some("text/plain"), body);
    assert_eq!(wrong_role.json_error(), ErrorCode::Forbidden);
    let with_charset = Some("Application/JSON; charset=utf-8");
    assert_eq!(
        f.post("/batch-keys", Role::Client, with_charset, body)
            .status,
        200
    );
}

#[test]
fn framework_errors_are_json_and_hyper_framing_errors_are_bare_400s() {
    let f = Fixture::start("errors");
    let json = Some("application/json");
    let malformed = f.post("/batch-keys", Role::Client, json, br#"{"features": 4,"#);
    assert_eq!(malformed.json_error(), ErrorCode::BadRequest);
    let missing = f.post("/batch-keys", Role::Client, json, br#"{"features": 4}"#);
    assert_eq!(missing.json_error(), ErrorCode::BadRequest);
    // Routing comes before the token: an unknown route or method is a 404.
    assert_eq!(
        f.get("/no-such-route", None).json_error(),
        ErrorCode::NotFound
    );
    assert_eq!(f.get("/feip-keys", None).json_error(), ErrorCode::NotFound);
    assert_eq!(f.get("/info", None).json_error(), ErrorCode::Unauthorized);
    let framing = [
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 18446744073709551616\r\n",
    ];
    for headers in framing {
        let (mut tls, _) = f.connect().unwrap();
        let request = format!(
            "POST /v1/batch-keys HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\n{headers}\r\n{{}}"
        );
        send(&mut tls, request.as_bytes());
        let (answer, _) = read_until_closed(&mut tls, SLACK).expect("never closed");
        let (status, _, body) = parse_answer(&answer);
        assert_eq!((status, body.as_str()), (400, ""), "{headers}");
    }
}

#[test]
fn an_entry_of_minus_2_pow_63_is_refused() {
    let f = Fixture::start("entry");
    let (rows, _) = f.batch_keys();
    let min = json!({"master_key": rows, "vectors": [[i64::MIN, 1, 1, 1]]});
    let refused = f.post_json("/feip-keys", Role::Server, &min);
    assert_eq!(refused.json_error(), ErrorCode::BadRequest);
    assert!(refused.body.contains("2^63"), "{}", refused.body);
    let edge = json!({"master_key": rows, "vectors": [[-i64::MAX, 1, 1, i64::MAX]]});
    assert_eq!(f.post_json("/feip-keys", Role::Server, &edge).status, 200);
}

#[test]
fn audit_hashes_match_the_documented_examples() {
    let f = Fixture::start("audit");
    let (rows, labels) = f.batch_keys();
    let feip = json!({"master_key": rows, "vectors": [[1, 2, 3, 4]]});
    assert_eq!(f.post_json("/feip-keys", Role::Server, &feip).status, 200);
    let request = json!({"commitment": BASE_POINT_HEX, "op": "sub", "operand": 7});
    let febo = json!({"master_key": labels, "requests": [request]});
    assert_eq!(f.post_json("/febo-keys", Role::Server, &febo).status, 200);
    let page: AuditPage = f.get("/audit", Some(f.token(Role::Operator))).json();
    let hashes: Vec<&str> = page
        .records
        .iter()
        .map(|e| e.record.vector_sha256.as_str())
        .collect();
    assert_eq!(hashes, [FEIP_EXAMPLE_SHA256, FEBO_EXAMPLE_SHA256]);
    let doc = include_str!("../docs/PROTOCOL.md");
    for hex in [FEIP_EXAMPLE_SHA256, FEBO_EXAMPLE_SHA256, BASE_POINT_HEX] {
        assert!(doc.contains(hex), "docs/PROTOCOL.md lacks {hex}");
    }
}
