//! The JSON bodies of the authority's HTTPS API (`docs/PROTOCOL.md`).
//!
//! Every request body refuses unknown fields; every error is an
//! [`ErrorBody`] with a stable [`ErrorCode`] and the status that code maps to.

use cryptonn_fe::{Group, GroupId, KeyId, febo, feip};
use derive_new::new;
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::key_service::FeboKeyRequest;
use crate::{Budget, Error, PolicyKind};

/// Every path starts with this.
pub const API_PREFIX: &str = "/v1";

/// The largest request body the service reads (8 MiB): a step's 64 key
/// vectors of 784 entries are about 0.4 MB of JSON.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// The most key vectors (or FEBO requests) one request may carry.
pub const MAX_VECTORS_PER_REQUEST: usize = 1 << 16;

/// What a requester may do, fixed when its token is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A data owner: may fetch fresh public keys.
    Client,
    /// The training server: may request function keys and read the budget
    /// of a master key.
    Server,
    /// The authority's operator: may read every budget and the audit log.
    Operator,
}

/// `POST /v1/batch-keys` (client): fresh master keys for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct BatchKeysRequest {
    /// Features per sample (the row key's dimension).
    pub features: usize,
    /// Samples in the batch (the column key's dimension).
    pub batch: usize,
    /// For the images of a convolution: its geometry, with `features` the
    /// image's pixels and `batch` the images. The row key then encrypts each
    /// image and a request for a kernel gives one key per position; the
    /// column key (dimension `batch·features`) encrypts the whole batch and
    /// a request for an error vector gives one key per kernel tap
    /// ([`crate::MasterKey::equations`]). Absent for ordinary batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[new(default)]
    pub patches: Option<crate::PatchGeometry>,
}

/// `POST /v1/patch-keys` (client): fresh master keys for `images` images
/// of `geometry` under a secure convolution, as
/// [`BatchKeysRequest`] with `patches` gives them (row key of dimension
/// `geometry.pixels()`, column key of `images·pixels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct PatchKeysRequest {
    /// The convolution.
    pub geometry: crate::PatchGeometry,
    /// Images in the batch.
    pub images: usize,
}

/// `POST /v1/row-keys` (client): fresh master keys for samples encrypted
/// row-wise only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct RowKeysRequest {
    /// Features per sample.
    pub features: usize,
}

/// `POST /v1/feip-keys` (server): inner-product keys for `vectors` under one
/// master key, all approved or all refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct FeipKeysRequest {
    /// The master key.
    pub master_key: KeyId,
    /// The key vectors, each of the master key's dimension (for a
    /// convolution's keys, a kernel or an error vector: see
    /// [`crate::MasterKey::request_len`]), with |entry| < 2⁶³: the
    /// service refuses −2⁶³ (`i64::MIN`) with 400.
    pub vectors: Vec<Vec<i64>>,
}

/// The answer to [`FeipKeysRequest`], in order: one key per vector, or
/// for a convolution's master key one per equation each vector gives.
#[derive(Clone, Serialize, Deserialize, new)]
#[serde(bound = "", deny_unknown_fields)]
pub struct FeipKeysResponse<G: Group> {
    /// The function keys.
    pub keys: Vec<feip::FunctionKey<G>>,
}

/// `POST /v1/febo-keys` (server): basic-operation keys under one FEBO master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(bound = "", deny_unknown_fields)]
pub struct FeboKeysRequest<G: Group> {
    /// The FEBO master key.
    pub master_key: KeyId,
    /// One request per key.
    pub requests: Vec<FeboKeyRequest<G>>,
}

/// The answer to [`FeboKeysRequest`], one key per request, in order.
#[derive(Clone, Serialize, Deserialize, new)]
#[serde(bound = "", deny_unknown_fields)]
pub struct FeboKeysResponse<G: Group> {
    /// The function keys.
    pub keys: Vec<febo::FunctionKey<G>>,
}

/// `GET /v1/budgets/{master_key}` (server, operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct BudgetResponse {
    /// The master key.
    pub master_key: KeyId,
    /// Its budget, if the policy keeps one.
    pub budget: Option<Budget>,
}

/// One audit record with its position in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// 1, 2, 3, … in commit order, without gaps.
    pub seq: u64,
    /// The record.
    pub record: AuditRecord,
}

/// `GET /v1/audit?after=SEQ&limit=N` (operator): records after `after`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    /// At most `limit` records.
    pub records: Vec<AuditEntry>,
    /// The `after` of the next page, if there are more records.
    pub next: Option<u64>,
}

/// `GET /v1/info` (any valid token): what the service serves and who asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct ServiceInfo {
    /// The group of every key.
    pub group: GroupId,
    /// The requester's name.
    pub requester: String,
    /// The requester's role.
    pub role: Role,
    /// The key policy, fixed at init (absent from authorities older than
    /// the choice, which all ran a rank budget).
    #[serde(default)]
    pub policy: PolicyKind,
}

/// The kind of an error, with the HTTP status it is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a body that is not the documented JSON, or values the FE layer refuses.
    BadRequest,
    /// 401: no bearer token, or one the authority does not know.
    Unauthorized,
    /// 403: a valid token whose role may not call this endpoint.
    Forbidden,
    /// 404: an unknown master key or path.
    NotFound,
    /// 408: the request's body did not arrive in time; the connection is closed.
    RequestTimeout,
    /// 409: the key policy refused the request (e.g. a spent budget).
    KeyRefused,
    /// 413: a body over [`MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// 415: a POST body whose `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// 500: the authority's state could not be written; nothing was issued.
    Storage,
}

impl Role {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
            Role::Operator => "operator",
        }
    }
}

impl core::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "client" => Ok(Role::Client),
            "server" => Ok(Role::Server),
            "operator" => Ok(Role::Operator),
            other => Err(Error::Transport(format!(
                "unknown role {other:?} (client, server or operator)"
            ))),
        }
    }
}

impl ErrorCode {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::KeyRefused => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Storage => 500,
        }
    }

    /// The code of a protocol error, as the service reports it.
    pub fn of(error: &Error) -> Self {
        match error {
            Error::UnknownKey(_) => ErrorCode::NotFound,
            Error::KeyRefused(_) => ErrorCode::KeyRefused,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::AuditLog(_) | Error::Storage(_) => ErrorCode::Storage,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Every error response: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, new)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable, for programs.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl ErrorBody {
    /// The protocol error a client reports for this body (`master_key` names
    /// the key a 404 was about).
    pub fn into_error(self, master_key: Option<KeyId>) -> Error {
        let ErrorDetail { code, message } = self.error;
        match (code, master_key) {
            (ErrorCode::NotFound, Some(id)) => Error::UnknownKey(id),
            (ErrorCode::KeyRefused, _) => Error::KeyRefused(message),
            (ErrorCode::Unauthorized | ErrorCode::Forbidden, _) => Error::Unauthorized(message),
            (ErrorCode::Storage, _) => Error::Storage(message),
            _ => Error::Transport(format!("{} {code:?}: {message}", code.status())),
        }
    }
}
