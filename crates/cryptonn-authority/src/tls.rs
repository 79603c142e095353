//! The service's TLS: a self-signed certificate made at init, the rustls
//! server configuration built from it by hand, on the ring provider, and
//! the acceptor that bounds the connections open at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

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

/// The TLS acceptor with a bound on the connections open at once (in
/// handshake or served). One over the bound is closed at once, before its
/// handshake: waiting would hold a socket per excess connection with no
/// bound at all, and a client retries a closed connection anyway.
#[derive(Clone)]
pub(crate) struct BoundedAcceptor {
    tls: RustlsAcceptor,
    open: Arc<Semaphore>,
    header_timeout: Duration,
    /// Whether the bound was hit: logged once, not per connection.
    warned: Arc<AtomicBool>,
}

impl BoundedAcceptor {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>, limits: &ServiceLimits) -> Self {
        let tls = RustlsAcceptor::new(RustlsConfig::from_config(config))
            .handshake_timeout(limits.handshake_timeout);
        Self {
            tls,
            open: Arc::new(Semaphore::new(limits.max_connections)),
            header_timeout: limits.header_timeout,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }
}

type Accepted<S> = <RustlsAcceptor as Accept<TcpStream, S>>::Stream;

impl<S: Send + 'static> Accept<TcpStream, S> for BoundedAcceptor {
    type Stream = Guarded<Accepted<S>>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let permit = self.open.clone().try_acquire_owned();
        if permit.is_err() && !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "cryptonn authority: connection bound reached; connections over it are closed \
                 (logged once)"
            );
        }
        // Dropping this future unpolled drops the socket: the close.
        let handshake = self.tls.accept(stream, service);
        let header_timeout = self.header_timeout;
        Box::pin(async move {
            let permit = permit.map_err(|_| io::Error::other("connection bound reached"))?;
            let (stream, service) = handshake.await?;
            let opening = Opening {
                first: None,
                deadline: Box::pin(tokio::time::sleep(header_timeout)),
            };
            let guarded = Guarded {
                stream,
                opening: Some(opening),
                _permit: permit,
            };
            Ok((guarded, service))
        })
    }
}

/// A connection holding its place under the bound until it is dropped,
/// and guarding its first bytes ([`Opening`]).
pub(crate) struct Guarded<T> {
    stream: T,
    opening: Option<Opening>,
    _permit: OwnedSemaphorePermit,
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
    fn generated_certificate_makes_a_server_config() {
        let (cert, key) = generate().unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server_config(cert.as_bytes(), key.as_bytes()).is_ok());
        let (_, other_key) = generate().unwrap();
        assert!(server_config(cert.as_bytes(), other_key.as_bytes()).is_err());
        assert!(server_config(b"", key.as_bytes()).is_err());
    }
}
