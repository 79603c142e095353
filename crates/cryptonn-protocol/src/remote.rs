//! The authority seen over HTTPS: a [`KeyService`] (for the server) and the
//! public-key endpoints (for clients), as `docs/PROTOCOL.md` describes them.
//!
//! It trusts exactly one certificate, the authority's (self-signed by
//! `cryptonn authority init`), and sends a bearer token with every request.
//! Requests that fail to reach the authority are retried with backoff for
//! [`RemoteAuthority::with_retry_for`] (default 30 s), so a trainer rides
//! out an authority restart; a retried key request at worst issues the same
//! vectors twice, which costs no budget (their rank is unchanged).

use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cryptonn_fe::{Group, KeyId, febo, feip};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{
    API_PREFIX, AuditPage, BatchKeysRequest, BudgetResponse, ErrorBody, FeboKeysRequest,
    FeboKeysResponse, FeipKeysRequest, FeipKeysResponse, PatchKeysRequest, RowKeysRequest,
    ServiceInfo,
};
use crate::{
    BatchPublicKeys, Budget, Error, FeboKeyRequest, KeyService, PatchGeometry, Result,
    RowPublicKeys,
};

/// The largest response body read (64 MiB).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Time spent on requests to the authority, summed over every call.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RemoteTimings {
    /// Requests answered (retries count once).
    pub requests: u64,
    /// Wall time from sending to the decoded answer.
    pub wall: Duration,
    /// Of which the authority reported deriving keys (`Server-Timing: derive`).
    pub derive: Duration,
    /// Of which the authority reported in its database (`Server-Timing: store`).
    pub store: Duration,
}

impl RemoteTimings {
    /// What the network, TLS and JSON cost on top of the authority's own
    /// work: `wall − derive − store`.
    pub fn transport(&self) -> Duration {
        self.wall.saturating_sub(self.derive + self.store)
    }
}

/// A connection to the authority's HTTPS API.
pub struct RemoteAuthority<G: Group> {
    agent: ureq::Agent,
    base: String,
    bearer: String,
    retry_for: Duration,
    timings: Arc<Mutex<RemoteTimings>>,
    group: PhantomData<G>,
}

impl<G: Group> core::fmt::Debug for RemoteAuthority<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("RemoteAuthority")
            .field("base", &self.base)
            .field("group", &G::ID)
            .finish_non_exhaustive()
    }
}

fn transport(what: impl core::fmt::Display) -> Error {
    Error::Transport(what.to_string())
}

fn agent(ca_cert_pem: &[u8]) -> Result<ureq::Agent> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let cert = Certificate::from_pem(ca_cert_pem)
        .map_err(|e| transport(format!("the authority's certificate: {e}")))?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::new_with_certs(&[cert]))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into())
}

/// Milliseconds of `name` in a `Server-Timing` header value.
fn server_timing(header: &str, name: &str) -> Duration {
    header
        .split(',')
        .filter_map(|metric| {
            let mut parts = metric.trim().split(';');
            (parts.next()? == name).then_some(())?;
            parts.find_map(|p| p.trim().strip_prefix("dur=")?.parse::<f64>().ok())
        })
        .next()
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map_or(Duration::ZERO, |ms| Duration::from_secs_f64(ms / 1e3))
}

impl<G: Group> RemoteAuthority<G> {
    /// Connects to the authority at `url` (e.g. `https://127.0.0.1:8443`),
    /// trusting only `ca_cert_pem`, and checks that it serves group `G`.
    ///
    /// # Errors
    /// [`Error::Transport`] for a bad certificate or an unreachable service,
    /// [`Error::Unauthorized`] for a refused token, and a group mismatch.
    pub fn connect(url: &str, token: &str, ca_cert_pem: &[u8]) -> Result<Self> {
        let remote = Self {
            agent: agent(ca_cert_pem)?,
            base: format!("{}{API_PREFIX}", url.trim_end_matches('/')),
            bearer: format!("Bearer {}", token.trim()),
            retry_for: Duration::from_secs(30),
            timings: Arc::default(),
            group: PhantomData,
        };
        let info = remote.info()?;
        if info.group != G::ID {
            return Err(cryptonn_fe::Error::WrongGroup {
                expected: G::ID,
                got: info.group,
            }
            .into());
        }
        Ok(remote)
    }

    /// [`RemoteAuthority::connect`] with the token and certificate read from files.
    ///
    /// # Errors
    /// A file that cannot be read, and the errors of `connect`.
    pub fn from_files(url: &str, token_file: &Path, ca_cert_file: &Path) -> Result<Self> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::File {
                path: p.to_path_buf(),
                reason: e.to_string(),
            })
        };
        let token = String::from_utf8(read(token_file)?).map_err(|_| Error::File {
            path: token_file.to_path_buf(),
            reason: "the token is not text".into(),
        })?;
        Self::connect(url, &token, &read(ca_cert_file)?)
    }

    /// How long requests that cannot reach the authority are retried.
    #[must_use]
    pub fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// Who the authority thinks we are, and its group.
    ///
    /// # Errors
    /// Transport and authorization errors.
    pub fn info(&self) -> Result<ServiceInfo> {
        self.call(
            None,
            |a, url| a.get(url).header("Authorization", &self.bearer).call(),
            "/info",
        )
    }

    /// Fresh master keys for a batch of `batch` samples of `features` features.
    ///
    /// # Errors
    /// Transport and authorization errors; the authority's refusal of the dimensions.
    pub fn batch_keys(&self, features: usize, batch: usize) -> Result<BatchPublicKeys<G>> {
        self.post(None, "/batch-keys", &BatchKeysRequest::new(features, batch))
    }

    /// Fresh master keys for `images` images of `geometry` under a secure
    /// convolution (`Authority::patch_keys` over HTTPS): the row key
    /// encrypts each image, the column key the whole batch, and their FEIP
    /// keys come back compact ([`FeipKeysResponse::Compact`]).
    ///
    /// # Errors
    /// Transport and authorization errors; the authority's refusal of the
    /// sizes (`docs/PROTOCOL.md`, "Limits").
    pub fn patch_keys(&self, geometry: PatchGeometry, images: usize) -> Result<BatchPublicKeys<G>> {
        self.post(
            None,
            "/patch-keys",
            &PatchKeysRequest::new(geometry, images),
        )
    }

    /// Fresh master keys for samples encrypted row-wise only.
    ///
    /// # Errors
    /// Transport and authorization errors; the authority's refusal of the dimension.
    pub fn row_keys(&self, features: usize) -> Result<RowPublicKeys<G>> {
        self.post(None, "/row-keys", &RowKeysRequest::new(features))
    }

    /// The budget of master key `id`, if the authority's policy keeps one.
    ///
    /// # Errors
    /// Transport and authorization errors, [`Error::UnknownKey`].
    pub fn budget(&self, id: KeyId) -> Result<Option<Budget>> {
        let path = format!("/budgets/{id}");
        let response: BudgetResponse = self.call(
            Some(id),
            |a, url| a.get(url).header("Authorization", &self.bearer).call(),
            &path,
        )?;
        Ok(response.budget)
    }

    /// Audit records after sequence number `after`, at most `limit` (operator only).
    ///
    /// # Errors
    /// Transport and authorization errors.
    pub fn audit(&self, after: u64, limit: usize) -> Result<AuditPage> {
        let path = format!("/audit?after={after}&limit={limit}");
        self.call(
            None,
            |a, url| a.get(url).header("Authorization", &self.bearer).call(),
            &path,
        )
    }

    /// The time spent on requests so far.
    pub fn timings(&self) -> RemoteTimings {
        *self
            .timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        key: Option<KeyId>,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(transport)?;
        self.call(
            key,
            |a, url| {
                a.post(url)
                    .header("Authorization", &self.bearer)
                    .content_type("application/json")
                    .send(&body[..])
            },
            path,
        )
    }

    /// Sends with retries while the authority is unreachable, decodes the
    /// answer or its [`ErrorBody`], and adds the time to the timings.
    fn call<T: DeserializeOwned>(
        &self,
        key: Option<KeyId>,
        send: impl Fn(
            &ureq::Agent,
            &str,
        ) -> core::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        path: &str,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let start = Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut response = loop {
            match send(&self.agent, &url) {
                Ok(r) => break r,
                Err(e) if start.elapsed() + wait < self.retry_for && unreachable(&e) => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(transport(format!("{url}: {e}"))),
            }
        };
        let status = response.status().as_u16();
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES);
        let decoded = if status == 200 {
            body.read_json::<T>()
                .map_err(|e| transport(format!("{url}: {e}")))
        } else {
            Err(match body.read_json::<ErrorBody>() {
                Ok(error) => error.into_error(key),
                Err(_) => transport(format!("{url}: HTTP {status}")),
            })
        };
        let mut timings = self
            .timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        timings.requests += 1;
        timings.wall += start.elapsed();
        timings.derive += server_timing(&timing, "derive");
        timings.store += server_timing(&timing, "store");
        decoded
    }
}

/// Errors worth retrying: the authority could not be reached or dropped
/// the connection (e.g. while it restarts).
fn unreachable(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
    )
}

impl<G: Group> KeyService<G> for RemoteAuthority<G> {
    fn feip_keys(&self, instance: KeyId, ys: &[Vec<i64>]) -> Result<Vec<feip::FunctionKey<G>>> {
        let request = FeipKeysRequest::new(instance, ys.to_vec());
        let response: FeipKeysResponse<G> = self.post(Some(instance), "/feip-keys", &request)?;
        // Whole keys are checked against ys; a convolution's compact ones
        // are rebuilt from ys, so they are for exactly the equations asked.
        response.into_keys(instance, ys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> Result<Vec<febo::FunctionKey<G>>> {
        let request = FeboKeysRequest::new(instance, requests.to_vec());
        let response: FeboKeysResponse<G> = self.post(Some(instance), "/febo-keys", &request)?;
        check_count(response.keys.len(), requests.len())?;
        let same = |(k, r): (&febo::FunctionKey<G>, &FeboKeyRequest<G>)| {
            k.op() == r.op && k.operand() == r.operand
        };
        if !response.keys.iter().zip(requests).all(same) {
            return Err(transport(
                "the authority answered keys for other operations",
            ));
        }
        Ok(response.keys)
    }
}

/// One key per request.
fn check_count(answered: usize, asked: usize) -> Result<()> {
    if answered == asked {
        Ok(())
    } else {
        Err(transport(format!(
            "the authority answered {answered} keys for {asked} requests"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_timing() {
        let h = "derive;dur=12.5, store;dur=0.25";
        assert_eq!(server_timing(h, "derive"), Duration::from_micros(12_500));
        assert_eq!(server_timing(h, "store"), Duration::from_micros(250));
        assert_eq!(server_timing(h, "other"), Duration::ZERO);
        assert_eq!(server_timing("derive;dur=-1", "derive"), Duration::ZERO);
        assert_eq!(server_timing("", "derive"), Duration::ZERO);
    }
}
