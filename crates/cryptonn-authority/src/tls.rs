//! The service's TLS: a self-signed certificate made at init, the rustls
//! server configuration built from it by hand, on the ring provider, and
//! the acceptor that bounds the connections open at once, in all and per
//! peer address.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::Zeroizing;

use crate::error::{StateError, StateResult};
use crate::service::ServiceLimits;

/// The names the certificate is valid for: clients connect to the loopback.
pub const CERT_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A fresh self-signed certificate for [`CERT_NAMES`] (ECDSA P-256) and its
/// private key, both PEM.
///
/// # Errors
/// [`StateError::Tls`] if rcgen fails.
pub(crate) fn generate() -> StateResult<(String, Zeroizing<String>)> {
    let names: Vec<String> = CERT_NAMES.iter().map(|&n| n.to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| StateError::Tls(format!("generating the certificate: {e}")))?;
    Ok((
        certified.cert.pem(),
        Zeroizing::new(certified.signing_key.serialize_pem()),
    ))
}

/// The rustls server configuration for `cert_pem` and `key_pem`: ring's
/// provider, TLS 1.2 and 1.3 with its safe defaults, no client
/// certificates, HTTP/1.1 by ALPN.
///
/// # Errors
/// [`StateError::Tls`] for unreadable PEM or a key that does not fit.
pub(crate) fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> StateResult<Arc<rustls::ServerConfig>> {
    let tls = |what: &str, e: &dyn core::fmt::Display| StateError::Tls(format!("{what}: {e}"));
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls("the certificate", &e))?;
    if certs.is_empty() {
        return Err(StateError::Tls("no certificate in cert.pem".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| tls("the private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls("protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls("certificate and key", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How often at most a bound's warning is logged: a flood after the first
/// is still seen, without a line per refused connection.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The TLS acceptor with bounds on the connections open at once (in
/// handshake or served), in all and per peer IP address. One over either
/// bound is closed at once, before its handshake: waiting would hold a
/// socket per excess connection with no bound at all, and a client
/// retries a closed connection anyway. The per-peer bound keeps one
/// client, e.g. with silent sockets reopened as the header timeout closes
/// them, from holding every place.
#[derive(Clone)]
pub(crate) struct BoundedAcceptor {
    tls: RustlsAcceptor,
    open: Arc<Semaphore>,
    peers: Arc<Peers>,
    per_peer: usize,
    header_timeout: Duration,
    /// A peer at its bound, and the service at its bound: each logged at
    /// most once per [`WARN_EVERY`].
    peer_warning: Arc<Warning>,
    bound_warning: Arc<Warning>,
}

impl BoundedAcceptor {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>, limits: &ServiceLimits) -> Self {
        let tls = RustlsAcceptor::new(RustlsConfig::from_config(config))
            .handshake_timeout(limits.handshake_timeout);
        Self {
            tls,
            open: Arc::new(Semaphore::new(limits.max_connections)),
            peers: Arc::default(),
            per_peer: limits.max_connections_per_peer,
            header_timeout: limits.header_timeout,
            peer_warning: Arc::default(),
            bound_warning: Arc::default(),
        }
    }

    /// A place for a connection from `stream`'s peer, or why there is none.
    fn place(&self, stream: &TcpStream) -> io::Result<Place> {
        // An IPv4 peer on a dual-stack socket counts as itself.
        let ip = stream.peer_addr()?.ip().to_canonical();
        let Some(peer) = Peers::take(&self.peers, ip, self.per_peer) else {
            let why = format!("{ip} holds {} connections, its bound", self.per_peer);
            self.peer_warning.hit(Instant::now(), &why);
            return Err(io::Error::other("per-peer connection bound reached"));
        };
        let Ok(permit) = self.open.clone().try_acquire_owned() else {
            self.bound_warning
                .hit(Instant::now(), "the connection bound is reached");
            return Err(io::Error::other("connection bound reached"));
        };
        Ok(Place {
            _permit: permit,
            _peer: peer,
        })
    }
}

type Accepted<S> = <RustlsAcceptor as Accept<TcpStream, S>>::Stream;

impl<S: Send + 'static> Accept<TcpStream, S> for BoundedAcceptor {
    type Stream = Guarded<Accepted<S>>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = self.place(&stream);
        // Dropping this future unpolled drops the socket: the close.
        let handshake = self.tls.accept(stream, service);
        let header_timeout = self.header_timeout;
        Box::pin(async move {
            let place = place?;
            let (stream, service) = handshake.await?;
            let opening = Opening {
                first: None,
                deadline: Box::pin(tokio::time::sleep(header_timeout)),
            };
            let guarded = Guarded {
                stream,
                opening: Some(opening),
                _place: place,
            };
            Ok((guarded, service))
        })
    }
}

/// The connections open per peer address; an address leaves the map with
/// its last connection, so it holds at most one entry per open connection.
#[derive(Default)]
struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Peers {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A count stays consistent even if a holder panicked.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for one more connection from `ip`, if it holds fewer than
    /// `bound`.
    fn take(peers: &Arc<Self>, ip: IpAddr, bound: usize) -> Option<PeerPlace> {
        let mut open = peers.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= bound {
            return None;
        }
        *count += 1;
        Some(PeerPlace {
            peers: peers.clone(),
            ip,
        })
    }
}

/// One connection's count in [`Peers`], given back when dropped.
struct PeerPlace {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Drop for PeerPlace {
    fn drop(&mut self) {
        let mut open = self.peers.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection's place under both bounds, given back when dropped.
struct Place {
    _permit: OwnedSemaphorePermit,
    _peer: PeerPlace,
}

/// A warning logged at most once per [`WARN_EVERY`], with the number of
/// connections closed since the last time it was.
#[derive(Default)]
struct Warning {
    /// When it was last logged, and the connections closed since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Warning {
    /// Counts one closed connection, and logs `why` if it is time.
    fn hit(&self, now: Instant, why: &str) {
        if let Some(closed) = self.due(now) {
            eprintln!(
                "cryptonn authority: {why}: more connections are closed ({closed} closed since \
                 this was last logged; it is logged at most once per {} s)",
                WARN_EVERY.as_secs()
            );
        }
    }

    /// The connections closed since the last warning, this one included,
    /// if a warning is due at `now`.
    fn due(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, closed) = &mut *state;
        *closed += 1;
        if last.is_some_and(|at| now.saturating_duration_since(at) < WARN_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(closed))
    }
}

/// A connection holding its place under the bounds until it is dropped,
/// and guarding its first bytes ([`Opening`]).
pub(crate) struct Guarded<T> {
    stream: T,
    opening: Option<Opening>,
    _place: Place,
}

/// The first two bytes of a connection. axum-server's hyper-util reads
/// them to tell HTTP/1 from HTTP/2's preface before hyper's header timeout
/// starts, so a silent client would be held forever; and HTTP/2 has no
/// header timeout at all. Two bytes decide: the preface starts with `PR`,
/// and after any other two hyper serves HTTP/1 with its timeout.
struct Opening {
    first: Option<u8>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Opening {
    /// `Ok(true)` once two bytes have come and they are not `PR`.
    fn admit(&mut self, bytes: &[u8]) -> io::Result<bool> {
        for &byte in bytes {
            match self.first {
                None => self.first = Some(byte),
                Some(first) if [first, byte] == *b"PR" => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "HTTP/2 is not served",
                    ));
                }
                Some(_) => return Ok(true),
            }
        }
        Ok(false)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(opening) = &mut this.opening else {
            return polled;
        };
        match polled {
            Poll::Pending => match opening.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Ready(Ok(())) => {
                if opening.admit(&buf.filled()[before..])? {
                    this.opening = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_opening_refuses_http2_and_admits_http1_after_two_bytes() {
        let opening = || Opening {
            first: None,
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
        };
        let mut split = opening();
        assert!(!split.admit(b"P").unwrap());
        assert!(split.admit(b"OST /v1/feip-keys").unwrap());
        assert!(opening().admit(b"GET /").unwrap());
        assert!(opening().admit(b"PRI * HTTP/2.0").is_err());
        let mut slow = opening();
        assert!(!slow.admit(b"").unwrap());
        assert!(!slow.admit(b"P").unwrap());
        assert!(slow.admit(b"R").is_err());
    }

    #[test]
    fn a_peer_holds_at_most_its_bound_and_gets_places_back() {
        let peers = Arc::new(Peers::default());
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let held: Vec<PeerPlace> = (0..3).map(|_| Peers::take(&peers, a, 3).unwrap()).collect();
        assert!(Peers::take(&peers, a, 3).is_none(), "over the bound");
        let other = Peers::take(&peers, b, 3).expect("another peer is served");
        drop(held);
        assert_eq!(peers.lock().get(&a), None, "released on drop");
        assert!(Peers::take(&peers, a, 3).is_some());
        drop(other);
        assert!(peers.lock().is_empty());
    }

    #[test]
    fn a_warning_is_logged_at_most_once_per_period_with_a_count() {
        let warning = Warning::default();
        let start = Instant::now();
        assert_eq!(warning.due(start), Some(1));
        assert_eq!(warning.due(start + Duration::from_secs(1)), None);
        assert_eq!(warning.due(start + WARN_EVERY / 2), None);
        assert_eq!(warning.due(start + WARN_EVERY), Some(3));
        assert_eq!(warning.due(start + WARN_EVERY * 3), Some(1));
    }

    #[test]
    fn generated_certificate_makes_a_server_config() {
        let (cert, key) = generate().unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server_config(cert.as_bytes(), key.as_bytes()).is_ok());
        let (_, other_key) = generate().unwrap();
        assert!(server_config(cert.as_bytes(), other_key.as_bytes()).is_err());
        assert!(server_config(b"", key.as_bytes()).is_err());
    }
}
