//! What the HTTPS tests of the authority share: a fresh state directory, an
//! agent trusting only the service's certificate, a running service with
//! its first tokens, and its answers.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use cryptonn::authority::service::{self, InitOptions, RunningService, ServiceLimits};
use cryptonn::protocol::wire::{ErrorBody, ErrorCode, Role};

/// A fresh directory name under the system's temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "cryptonn-{tag}-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// An HTTPS agent trusting only `cert_pem`, reading error statuses as answers.
pub fn agent(cert_pem: &str) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let cert = Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&[cert]))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

/// One answer: status, `Content-Type`, `Server-Timing` and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub timing: Option<String>,
    pub body: String,
}

impl Answer {
    /// The answer to a request that reached the service.
    pub fn of(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Self {
        let mut response = response.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (content_type, timing) = (header("content-type"), header("server-timing"));
        Self {
            status: response.status().as_u16(),
            content_type,
            timing,
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    /// The body of a 200.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_str(&self.body).unwrap()
    }

    /// The error code, checking that the status is the one it maps to.
    pub fn error(&self) -> ErrorCode {
        let body: ErrorBody = serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} without an ErrorBody ({e}): {}",
                self.status, self.body
            )
        });
        assert_eq!(body.error.code.status(), self.status, "{}", self.body);
        body.error.code
    }
}

/// `POST {url}/v1{path}` with `token` and `content_type`, if any.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Answer {
    let mut request = agent.post(format!("{url}/v1{path}"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    Answer::of(request.send(body))
}

/// A service running on a fresh state, with its first token of each role;
/// stopped (its shutdown checked) and removed when dropped.
pub struct Fixture {
    pub dir: PathBuf,
    pub service: Option<RunningService>,
    pub agent: ureq::Agent,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    tokens: [String; 3],
}

impl Fixture {
    /// Inits a state in a fresh directory named after `tag` and serves it
    /// on a free loopback port.
    pub fn spawn(tag: &str, options: &InitOptions, limits: ServiceLimits) -> Self {
        let dir = temp_dir(tag);
        service::init(&dir, options).unwrap();
        let service = service::spawn_with(&dir, ([127, 0, 0, 1], 0).into(), limits).unwrap();
        let token = |role| {
            let text = std::fs::read_to_string(service::token_path(&dir, role)).unwrap();
            text.trim().to_owned()
        };
        Self {
            tokens: [
                token(Role::Client),
                token(Role::Server),
                token(Role::Operator),
            ],
            agent: agent(service.cert_pem()),
            url: service.url().to_owned(),
            service: Some(service),
            dir,
        }
    }

    pub fn token(&self, role: Role) -> &str {
        match role {
            Role::Client => &self.tokens[0],
            Role::Server => &self.tokens[1],
            Role::Operator => &self.tokens[2],
        }
    }

    /// The certificate the service presents.
    pub fn cert_pem(&self) -> &str {
        self.service.as_ref().unwrap().cert_pem()
    }

    /// `host:port` of the service.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    /// `GET /v1{path}` with `token`, if any.
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.agent.get(format!("{}/v1{path}", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Answer::of(request.call())
    }

    /// `POST /v1{path}` with `token` and `content_type`, if any.
    pub fn send(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Answer {
        post(&self.agent, &self.url, path, token, content_type, body)
    }

    /// Shuts the service down, checking that it stopped cleanly.
    pub fn stop(&mut self) {
        if let Some(mut service) = self.service.take() {
            service.shutdown().unwrap();
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut service) = self.service.take() {
            let stopped = service.shutdown();
            // A second panic while a test fails would abort the run.
            if !std::thread::panicking() {
                stopped.unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
