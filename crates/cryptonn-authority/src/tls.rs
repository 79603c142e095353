//! The service's TLS: a self-signed certificate made at init, and the
//! rustls server configuration built from it by hand, on the ring provider.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{StateError, StateResult};

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

#[cfg(test)]
mod tests {
    use super::*;

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
