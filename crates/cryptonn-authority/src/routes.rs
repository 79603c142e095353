//! The HTTP API under `/v1`, as `cryptonn_protocol::wire` documents it.
//!
//! Every request is checked in the same order, and a failed check changes
//! nothing: the route (404, before any token), the bearer token (401), its
//! role (403), a POST's `Content-Type` (415), the body's size (413), its
//! arrival in time (408) and form (400), then the authority's answer (404
//! for an unknown master key, 409 for a policy refusal, 500 for storage).
//! Errors become an [`ErrorBody`] in one place, [`ApiError`]; a storage
//! failure answers a bare message and its detail goes to stderr.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cryptonn_fe::{Group, KeyId};
use cryptonn_protocol::PatchGeometry;
use cryptonn_protocol::wire::{
    API_PREFIX, BatchKeysRequest, BudgetResponse, ErrorBody, ErrorCode, ErrorDetail,
    FeboKeysRequest, FeboKeysResponse, FeipKeysRequest, FeipKeysResponse, MAX_BODY_BYTES,
    MAX_VECTORS_PER_REQUEST, PatchKeysRequest, Role, RowKeysRequest, ServiceInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::authority::{Authority, Timings};
use crate::error::StateError;
use crate::store::Store;
use crate::tokens::{self, TokenEntry};

/// The largest dimension of a master key the service generates: far above
/// MNIST's 784 features or a batch of 256, far below what would tie the
/// authority up for minutes (the FE layer alone allows 2²⁰).
pub const MAX_SERVED_DIM: usize = 1 << 16;

/// The most audit records one page may ask for.
pub const MAX_AUDIT_PAGE: usize = 10_000;

/// The page size when the request names none.
const DEFAULT_AUDIT_PAGE: usize = 1_000;

/// A body over [`MAX_BODY_BYTES`] is still read, and dropped, up to this
/// many bytes, so that the client gets its 413 on a connection it can read;
/// beyond it the connection is closed.
const DRAIN_LIMIT: usize = 4 * MAX_BODY_BYTES;

/// What the handlers share.
pub(crate) struct Service<G: Group> {
    pub(crate) authority: Arc<Authority<G>>,
    pub(crate) store: Arc<dyn Store>,
    /// How long a body may take to arrive, from the end of the token
    /// lookup (for a refused request too).
    pub(crate) body_timeout: Duration,
}

/// An error response: the [`ErrorCode`] sets the status.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A failure of our own: logged in full, answered without detail.
    fn internal(detail: &dyn core::fmt::Display) -> Self {
        eprintln!("cryptonn authority: {detail}");
        Self::new(
            ErrorCode::Storage,
            "the authority's state could not be read or written; nothing was issued",
        )
    }
}

impl From<cryptonn_protocol::Error> for ApiError {
    fn from(e: cryptonn_protocol::Error) -> Self {
        match ErrorCode::of(&e) {
            ErrorCode::Storage => Self::internal(&e),
            code => Self::new(code, e.to_string()),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        cryptonn_protocol::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = self.code;
        let body = ErrorBody::new(ErrorDetail::new(code, self.message));
        let mut response = json_response(status, &body);
        let headers = response.headers_mut();
        if code == ErrorCode::Unauthorized {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if code == ErrorCode::RequestTimeout {
            // The rest of the body may still come: the connection cannot be reused.
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The router of the service for group `G`.
pub(crate) fn app<G: Group>(service: Arc<Service<G>>) -> Router {
    let v1 = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(&v1("/health"), get(health))
        .route(&v1("/info"), get(info::<G>))
        .route(&v1("/batch-keys"), post(batch_keys::<G>))
        .route(&v1("/row-keys"), post(row_keys::<G>))
        .route(&v1("/patch-keys"), post(patch_keys::<G>))
        .route(&v1("/feip-keys"), post(feip_keys::<G>))
        .route(&v1("/febo-keys"), post(febo_keys::<G>))
        .route(&v1("/budgets/{master_key}"), get(budget::<G>))
        .route(&v1("/audit"), get(audit::<G>))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .with_state(service)
}

/// JSON with `status`; serializing our own types cannot fail, but if it
/// did the client gets a 500 rather than a panic.
fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn ok<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

/// A key response with `Server-Timing: derive;dur=…, store;dur=…` (ms).
fn keys_response<T: Serialize>(body: &T, timings: Timings) -> Response {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut response = ok(body);
    let timing = format!(
        "derive;dur={:.3}, store;dur={:.3}",
        ms(timings.derive),
        ms(timings.store)
    );
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// Runs `f` on the blocking pool: key derivation and SQLite must not stall
/// the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(&format!("a request's task failed: {e}")))?
}

/// The caller behind the bearer token, if its role is one of `allowed`.
async fn authorize<G: Group>(
    service: &Service<G>,
    headers: &HeaderMap,
    allowed: &[Role],
) -> ApiResult<TokenEntry> {
    let unauthorized = |m: &str| ApiError::new(ErrorCode::Unauthorized, m);
    let hash = headers
        .get(AUTHORIZATION)
        .and_then(|v| tokens::from_bearer(v.as_bytes()))
        .ok_or_else(|| {
            unauthorized("send `Authorization: Bearer <token>` with a 64-hex-digit token")
        })?;
    let store = service.store.clone();
    let caller = blocking(move || Ok(store.token(&hash)?))
        .await?
        .ok_or_else(|| unauthorized("unknown token"))?;
    if !allowed.contains(&caller.role) {
        let roles: Vec<&str> = allowed.iter().map(|r| r.name()).collect();
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "the {} role may not call this endpoint (only {})",
                caller.role.name(),
                roles.join(", ")
            ),
        ));
    }
    Ok(caller)
}

/// [`authorize`], [`check_json`], then [`read_body`]. A refused caller's
/// body is drained all the same, without keeping any of it (up to
/// [`DRAIN_LIMIT`], within the body timeout): hyper closes a connection
/// whose request body was left unread, and a client reusing it would see
/// its next request fail.
async fn authorize_body<G: Group>(
    service: &Service<G>,
    parts: &Parts,
    body: Body,
    allowed: &[Role],
) -> ApiResult<(TokenEntry, Vec<u8>)> {
    let checked = match authorize(service, &parts.headers, allowed).await {
        Ok(caller) => check_json(&parts.headers).map(|()| caller),
        Err(refused) => Err(refused),
    };
    let timeout = service.body_timeout;
    match checked {
        Ok(caller) => {
            let bytes = read_body(&parts.headers, body, Keep::Body, timeout).await?;
            Ok((caller, bytes))
        }
        Err(refused) => {
            let _ = read_body(&parts.headers, body, Keep::Nothing, timeout).await;
            Err(refused)
        }
    }
}

/// 415 unless `Content-Type` is `application/json` (parameters such as
/// `charset=utf-8` allowed).
fn check_json(headers: &HeaderMap) -> ApiResult<()> {
    let declared = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let essence = declared
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or("").trim());
    if essence.is_some_and(|t| t.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        match declared {
            Some(t) => format!("Content-Type {t:?}: the body must be application/json"),
            None => "no Content-Type: the body must be application/json".to_owned(),
        },
    ))
}

/// What [`read_whole_body`] keeps of a body it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Up to [`MAX_BODY_BYTES`], for a request that will be served.
    Body,
    /// Nothing: a refused request's body is counted and dropped, so that
    /// unauthenticated callers cannot make the service hold their bodies.
    Nothing,
}

/// [`read_whole_body`] within `timeout`, counted from this call (after
/// the token lookup); 408 if the body is not all there by then.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    keep: Keep,
    timeout: Duration,
) -> ApiResult<Vec<u8>> {
    tokio::time::timeout(timeout, read_whole_body(headers, body, keep))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the body did not all arrive within {} s",
                    timeout.as_secs_f64()
                ),
            ))
        })
}

/// The body, at most [`MAX_BODY_BYTES`] of it, or nothing for
/// [`Keep::Nothing`]. A longer one is drained (up to [`DRAIN_LIMIT`]) and
/// refused with 413; nothing past the limit is kept, and a body declared
/// over [`DRAIN_LIMIT`] is refused unread.
async fn read_whole_body(headers: &HeaderMap, mut body: Body, keep: Keep) -> ApiResult<Vec<u8>> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if keep == Keep::Body && seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(kept)
}

/// Parses a JSON object (not an array in its place), refusing unknown
/// fields and trailing bytes.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed body: {e}")))
}

/// [`parse_json`] for FEBO requests, whose nested requests must be objects
/// too (serde's derive would also take each as an array of its fields).
/// Parsed twice: typed first, which refuses duplicate fields, then as a
/// value for the shape.
fn parse_febo<G: Group>(bytes: &[u8]) -> ApiResult<FeboKeysRequest<G>> {
    let request: FeboKeysRequest<G> = parse_json(bytes)?;
    let value: serde_json::Value = parse_json(bytes)?;
    let all_objects = value
        .get("requests")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|requests| requests.iter().all(serde_json::Value::is_object));
    if !all_objects {
        return Err(ApiError::bad_request(
            "each FEBO request must be a JSON object",
        ));
    }
    Ok(request)
}

/// A geometry must be a JSON object too, not the array of its fields
/// (which serde's derive would also take); absent or null passes.
fn check_geometry_object(bytes: &[u8], field: &str) -> ApiResult<()> {
    let value: serde_json::Value = parse_json(bytes)?;
    match value.get(field) {
        None | Some(serde_json::Value::Null | serde_json::Value::Object(_)) => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field} must be a JSON object"
        ))),
    }
}

fn check_count(count: usize) -> ApiResult<()> {
    if count > MAX_VECTORS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "{count} keys asked in one request; at most {MAX_VECTORS_PER_REQUEST}"
        )));
    }
    Ok(())
}

/// |entry| < 2⁶³, as documented: −2⁶³ is the one `i64` outside it.
/// (`Authority::issue_feip` checks it too; here it keeps the 400 ahead of the 404/409.)
fn check_entries(vectors: &[Vec<i64>]) -> ApiResult<()> {
    for (i, vector) in vectors.iter().enumerate() {
        if let Some(j) = vector.iter().position(|&e| e == i64::MIN) {
            return Err(ApiError::bad_request(format!(
                "vectors[{i}][{j}] = -2^63: every entry must have |entry| < 2^63"
            )));
        }
    }
    Ok(())
}

fn check_dim(what: &str, dim: usize) -> ApiResult<()> {
    if dim == 0 || dim > MAX_SERVED_DIM {
        return Err(ApiError::bad_request(format!(
            "{what} = {dim}; the service serves 1 to {MAX_SERVED_DIM}"
        )));
    }
    Ok(())
}

async fn health() -> Response {
    ok(&serde_json::json!({ "status": "ok" }))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no endpoint {method} {}", uri.path()),
    )
}

async fn info<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let all = [Role::Client, Role::Server, Role::Operator];
    let caller = authorize(&svc, &headers, &all).await?;
    let policy = svc.store.settings().policy.kind;
    Ok(ok(&ServiceInfo::new(
        G::ID,
        caller.name,
        caller.role,
        policy,
    )))
}

/// A POST for `roles`: authorizes the token, reads the body, then runs
/// `work` with the caller's name and the body on a blocking thread (key
/// derivation and the database are CPU and disk work).
async fn authorized_post<G: Group>(
    svc: Arc<Service<G>>,
    req: Request,
    roles: &[Role],
    work: impl FnOnce(&Service<G>, String, Vec<u8>) -> ApiResult<Response> + Send + 'static,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let (caller, bytes) = authorize_body(&svc, &parts, body, roles).await?;
    blocking(move || work(&svc, caller.name, bytes)).await
}

async fn batch_keys<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    req: Request,
) -> ApiResult<Response> {
    authorized_post(svc, req, &[Role::Client], |svc, _, bytes| {
        let request: BatchKeysRequest = parse_json(&bytes)?;
        check_geometry_object(&bytes, "patches")?;
        check_dim("features", request.features)?;
        check_dim("batch", request.batch)?;
        if request.patches.is_some() {
            check_dim(
                "batch·features",
                request.batch.saturating_mul(request.features),
            )?;
        }
        let (keys, timings) = svc.authority.batch_keys_timed(
            request.features,
            request.batch,
            request.patches,
            &mut rand::rng(),
        )?;
        Ok(keys_response(&keys, timings))
    })
    .await
}

/// A convolution's two master keys: each image's pixels (the row key) and
/// the batch's (the column key) within [`MAX_SERVED_DIM`].
fn check_patch_dims(geometry: &PatchGeometry, images: usize) -> ApiResult<()> {
    check_dim("images", images)?;
    check_dim("pixels per image", geometry.pixels())?;
    check_dim("images·pixels", images.saturating_mul(geometry.pixels()))
}

async fn patch_keys<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    req: Request,
) -> ApiResult<Response> {
    authorized_post(svc, req, &[Role::Client], |svc, _, bytes| {
        let request: PatchKeysRequest = parse_json(&bytes)?;
        check_geometry_object(&bytes, "geometry")?;
        let (geometry, images) = (request.geometry, request.images);
        check_patch_dims(&geometry, images)?;
        let (keys, timings) = svc.authority.batch_keys_timed(
            geometry.pixels(),
            images,
            Some(geometry),
            &mut rand::rng(),
        )?;
        Ok(keys_response(&keys, timings))
    })
    .await
}

async fn row_keys<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    req: Request,
) -> ApiResult<Response> {
    authorized_post(svc, req, &[Role::Client], |svc, _, bytes| {
        let request: RowKeysRequest = parse_json(&bytes)?;
        check_dim("features", request.features)?;
        let (keys, timings) = svc
            .authority
            .row_keys_timed(request.features, &mut rand::rng())?;
        Ok(keys_response(&keys, timings))
    })
    .await
}

async fn feip_keys<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    req: Request,
) -> ApiResult<Response> {
    authorized_post(svc, req, &[Role::Server], |svc, caller, bytes| {
        let request: FeipKeysRequest = parse_json(&bytes)?;
        check_count(request.vectors.len())?;
        check_entries(&request.vectors)?;
        let (master, keys, timings) =
            svc.authority
                .issue_feip(&caller, request.master_key, &request.vectors)?;
        // A convolution's keys go out without their dense pixel-space vectors.
        let response = FeipKeysResponse::<G>::for_master(&master, keys);
        Ok(keys_response(&response, timings))
    })
    .await
}

async fn febo_keys<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    req: Request,
) -> ApiResult<Response> {
    authorized_post(svc, req, &[Role::Server], |svc, caller, bytes| {
        let request: FeboKeysRequest<G> = parse_febo(&bytes)?;
        check_count(request.requests.len())?;
        let (keys, timings) =
            svc.authority
                .issue_febo(&caller, request.master_key, &request.requests)?;
        Ok(keys_response(&FeboKeysResponse::<G>::new(keys), timings))
    })
    .await
}

async fn budget<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    headers: HeaderMap,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Response> {
    authorize(&svc, &headers, &[Role::Server, Role::Operator]).await?;
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id: KeyId = serde_json::from_value(serde_json::Value::String(text))
        .map_err(|e| ApiError::bad_request(format!("master key: {e}")))?;
    blocking(move || {
        let budget = svc.authority.budget_of(id)?;
        Ok(ok(&BudgetResponse::new(id, budget)))
    })
    .await
}

/// `after` and `limit` of `GET /v1/audit`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

async fn audit<G: Group>(
    State(svc): State<Arc<Service<G>>>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Response> {
    authorize(&svc, &headers, &[Role::Operator]).await?;
    let Query(query) = Query::<AuditQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit = {limit}; 1 to {MAX_AUDIT_PAGE}"
        )));
    }
    let after = query.after.unwrap_or(0);
    let store = svc.store.clone();
    blocking(move || Ok(ok(&store.audit_page(after, limit)?))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_length: Option<usize>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(n) = content_length {
            headers.insert(axum::http::header::CONTENT_LENGTH, n.into());
        }
        headers
    }

    async fn read(body: Vec<u8>, declared: Option<usize>, keep: Keep) -> ApiResult<Vec<u8>> {
        read_whole_body(&headers(declared), Body::from(body), keep).await
    }

    fn code(read: ApiResult<Vec<u8>>) -> Option<ErrorCode> {
        read.err().map(|e| e.code)
    }

    #[tokio::test]
    async fn a_refused_body_is_drained_without_being_kept() {
        let body = b"{\"features\": 4}".to_vec();
        let n = body.len();
        let kept = read(body.clone(), Some(n), Keep::Body).await.ok();
        assert_eq!(kept, Some(body.clone()));
        let dropped = read(body, Some(n), Keep::Nothing).await.ok();
        assert_eq!(dropped, Some(Vec::new()));
        let over = vec![b' '; MAX_BODY_BYTES + 1];
        for keep in [Keep::Body, Keep::Nothing] {
            let drained = read(over.clone(), None, keep).await;
            assert_eq!(code(drained), Some(ErrorCode::PayloadTooLarge), "{keep:?}");
            // Declared over the drain limit: refused before a byte is read.
            let unread = read(Vec::new(), Some(DRAIN_LIMIT + 1), keep).await;
            assert_eq!(code(unread), Some(ErrorCode::PayloadTooLarge), "{keep:?}");
        }
    }
}
