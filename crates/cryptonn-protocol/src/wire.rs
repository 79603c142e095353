//! The JSON bodies of the authority's HTTPS API (`docs/PROTOCOL.md`).
//!
//! Every request body refuses unknown fields; every error is an
//! [`ErrorBody`] with a stable [`ErrorCode`] and the status that code maps to.

use cryptonn_fe::{Group, GroupId, KeyId, febo, feip};
use derive_new::new;
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::key_service::FeboKeyRequest;
use crate::{Budget, Error, MasterKey, PatchGeometry, PolicyKind, Side};

/// Every path starts with this.
pub const API_PREFIX: &str = "/v1";

/// The largest request body the service reads (8 MiB): a step's 64 key
/// vectors of 784 entries are about 0.4 MB of JSON.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// The most key vectors (or FEBO requests) one request may carry.
pub const MAX_VECTORS_PER_REQUEST: usize = 1 << 16;

/// What a requester may do, fixed when its token is issued (with the
/// `clap` feature, a command-line value too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

/// The answer to [`FeipKeysRequest`]: an object with exactly one field,
/// which names its form, so that one form is never read as the other.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "", rename_all = "snake_case")]
pub enum FeipKeysResponse<G: Group> {
    /// `{"keys": [...]}`: one whole key (y and sk) per requested vector, in
    /// order; for every master key without a convolution's geometry.
    Keys(Vec<feip::FunctionKey<G>>),
    /// `{"compact": {...}}`: for a convolution's master key, whose keys
    /// are for the vectors [`crate::MasterKey::equations`] gives, which the
    /// receiver rebuilds from the geometry instead of reading them.
    Compact(CompactFeipKeys<G>),
}

/// A convolution's FEIP keys without their pixel-space vectors: `sk[i][j]`
/// is sk of equation j of requested vector i (position j of a kernel on
/// the rows, tap j of an error vector on the columns), in the order of
/// [`crate::MasterKey::equations`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound = "", deny_unknown_fields)]
pub struct CompactFeipKeys<G: Group> {
    /// The group of every scalar.
    pub group: GroupId,
    /// The master key.
    pub master_key: KeyId,
    /// Its side.
    pub side: Side,
    /// Its dimension: `pixels` on the rows, `images·pixels` on the columns.
    pub dim: usize,
    /// Its convolution.
    pub geometry: PatchGeometry,
    /// One list per requested vector, of `keys_per_request` scalars each.
    pub sk: Vec<Vec<G::Scalar>>,
}

impl<G: Group> FeipKeysResponse<G> {
    /// The answer for `keys`, issued under `master` for one request, in
    /// order: compact for a convolution's master key, else whole keys.
    pub fn for_master(master: &MasterKey, keys: Vec<feip::FunctionKey<G>>) -> Self {
        let Some(geometry) = master.patches else {
            return Self::Keys(keys);
        };
        let per = master.keys_per_request().max(1);
        let sk = keys
            .chunks(per)
            .map(|chunk| chunk.iter().map(|k| k.sk().clone()).collect())
            .collect();
        Self::Compact(CompactFeipKeys {
            group: G::ID,
            master_key: master.id,
            side: master.side,
            dim: master.dim,
            geometry,
            sk,
        })
    }

    /// The keys for `ys` under master key `instance`, as
    /// [`crate::KeyService::feip_keys`] returns them: whole keys checked
    /// against the request, or compact ones rebuilt.
    ///
    /// # Errors
    /// [`Error::Transport`] for an answer that does not fit the request:
    /// another master key or group, a key count other than one per vector
    /// (or `keys_per_request` per vector), keys for other vectors, or a
    /// geometry that does not fit the dimension or the vectors' length.
    pub fn into_keys(
        self,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> crate::Result<Vec<feip::FunctionKey<G>>> {
        match self {
            Self::Keys(keys) => check_whole_keys(keys, instance, ys),
            Self::Compact(compact) => compact.into_keys(instance, ys),
        }
    }
}

fn answer_error(what: impl core::fmt::Display) -> Error {
    Error::Transport(format!("the authority's FEIP answer: {what}"))
}

fn check_whole_keys<G: Group>(
    keys: Vec<feip::FunctionKey<G>>,
    instance: KeyId,
    ys: &[Vec<i64>],
) -> crate::Result<Vec<feip::FunctionKey<G>>> {
    if keys.len() != ys.len() {
        return Err(answer_error(format!(
            "{} keys for {} vectors",
            keys.len(),
            ys.len()
        )));
    }
    if keys.iter().any(|k| k.id() != instance) {
        return Err(answer_error("keys of another master key"));
    }
    if keys.iter().zip(ys).any(|(k, y)| k.y() != y.as_slice()) {
        return Err(answer_error("keys for other vectors"));
    }
    Ok(keys)
}

impl<G: Group> CompactFeipKeys<G> {
    /// The master key as the answer describes it, if the geometry fits
    /// the dimension and side.
    fn master(&self) -> crate::Result<MasterKey> {
        let pixels = self.geometry.pixels();
        let fits = match self.side {
            Side::Rows => self.dim == pixels,
            Side::Columns => self.dim >= pixels && self.dim.is_multiple_of(pixels),
        };
        if !fits {
            return Err(answer_error(format!(
                "a {} key of dimension {} for images of {pixels} pixels",
                self.side, self.dim
            )));
        }
        Ok(MasterKey {
            id: self.master_key,
            side: self.side,
            dim: self.dim,
            patches: Some(self.geometry),
        })
    }

    /// Rebuilds every key: the vectors from `ys` and the geometry, each
    /// with its scalar.
    ///
    /// # Errors
    /// As [`FeipKeysResponse::into_keys`].
    pub fn into_keys(
        self,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> crate::Result<Vec<feip::FunctionKey<G>>> {
        if self.group != G::ID {
            return Err(answer_error(format!(
                "scalars of group {}, not {}",
                self.group,
                G::ID
            )));
        }
        if self.master_key != instance {
            return Err(answer_error("keys of another master key"));
        }
        let master = self.master()?;
        if let Some(y) = ys.iter().find(|y| y.len() != master.request_len()) {
            return Err(answer_error(format!(
                "its geometry takes vectors of {} entries, not {}",
                master.request_len(),
                y.len()
            )));
        }
        let per = master.keys_per_request();
        if self.sk.len() != ys.len() || self.sk.iter().any(|s| s.len() != per) {
            let counts: Vec<usize> = self.sk.iter().map(Vec::len).collect();
            return Err(answer_error(format!(
                "scalars {counts:?} for {} vectors of {per} keys each",
                ys.len()
            )));
        }
        master
            .equations(ys)
            .zip(self.sk.into_iter().flatten())
            .map(|(v, sk)| Ok(feip::FunctionKey::from_parts(instance, v.into_owned(), sk)?))
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use cryptonn_fe::Ristretto255;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    type G = Ristretto255;

    /// A convolution key of `side` (2 images of 1×4×4 under a 3×3 kernel:
    /// 4 positions, 9 taps), its keys for `ys` derived as the authority
    /// does, and the answer it would send.
    fn answer(side: Side, ys: &[Vec<i64>]) -> (MasterKey, Vec<feip::FunctionKey<G>>, String) {
        let g = PatchGeometry::new([1, 4, 4], [3, 3], [1, 1], [0, 0]).unwrap();
        let dim = match side {
            Side::Rows => 16,
            Side::Columns => 32,
        };
        let (msk, _) = feip::setup::<G, _>(dim, &mut StdRng::seed_from_u64(1)).unwrap();
        let master = MasterKey {
            id: msk.id(),
            side,
            dim,
            patches: Some(g),
        };
        let keys: Vec<_> = master
            .equations(ys)
            .map(|v| feip::derive_key(&msk, &v).unwrap())
            .collect();
        let json = serde_json::to_string(&FeipKeysResponse::for_master(&master, keys.clone()));
        (master, keys, json.unwrap())
    }

    fn read(json: &str) -> serde_json::Result<FeipKeysResponse<G>> {
        serde_json::from_str(json)
    }

    fn kernels() -> Vec<Vec<i64>> {
        vec![vec![1, -2, 3, 0, 5, -1, 2, 2, -3], vec![4; 9]]
    }

    #[test]
    fn compact_answers_rebuild_the_derived_keys() {
        let (master, keys, json) = answer(Side::Rows, &kernels());
        assert!(
            json.starts_with(r#"{"compact":{"group":"ristretto255","#),
            "{json}"
        );
        assert!(
            !json.contains(r#""y""#),
            "no pixel-space vector on the wire"
        );
        let rebuilt = read(&json).unwrap().into_keys(master.id, &kernels());
        assert_eq!(rebuilt.unwrap(), keys);
        assert_eq!(keys.len(), 2 * 4);

        let errors = vec![vec![3, -1, 2, 5, -4, 1, 1, 2]];
        let (master, keys, json) = answer(Side::Columns, &errors);
        let rebuilt = read(&json).unwrap().into_keys(master.id, &errors);
        assert_eq!(rebuilt.unwrap(), keys);
        assert_eq!((keys.len(), keys[0].y().len()), (9, 32));
    }

    #[test]
    fn whole_keys_keep_todays_form() {
        let (msk, _) = feip::setup::<G, _>(4, &mut StdRng::seed_from_u64(2)).unwrap();
        let ys = vec![vec![1, 2, 3, 4]];
        let keys = vec![feip::derive_key(&msk, &ys[0]).unwrap()];
        let master = MasterKey {
            id: msk.id(),
            side: Side::Rows,
            dim: 4,
            patches: None,
        };
        let json = serde_json::to_string(&FeipKeysResponse::for_master(&master, keys.clone()));
        let json = json.unwrap();
        assert!(
            json.starts_with(r#"{"keys":[{"group":"ristretto255","#),
            "{json}"
        );
        assert_eq!(read(&json).unwrap().into_keys(msk.id(), &ys).unwrap(), keys);
        // Keys for another vector, or one key too few.
        assert!(
            read(&json)
                .unwrap()
                .into_keys(msk.id(), &[vec![1, 2, 3, 5]])
                .is_err()
        );
        assert!(
            read(&json)
                .unwrap()
                .into_keys(msk.id(), &[ys[0].clone(), ys[0].clone()])
                .is_err()
        );
    }

    #[test]
    fn rejects_malformed_compact_answers() {
        let (master, _, json) = answer(Side::Rows, &kernels());
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let compact = &value["compact"];
        let edited = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut v = compact.clone();
            change(&mut v);
            serde_json::json!({ "compact": v }).to_string()
        };
        // Shapes serde refuses: two forms at once, an unknown form or field.
        let keys_too = serde_json::json!({ "compact": compact, "keys": [] }).to_string();
        let unknown_form = serde_json::json!({ "dense": compact }).to_string();
        let unknown_field = edited(&|v| v["y"] = serde_json::json!([1]));
        let no_geometry = edited(&|v| {
            v.as_object_mut().unwrap().remove("geometry");
        });
        for bad in [&keys_too, &unknown_form, &unknown_field, &no_geometry] {
            assert!(read(bad).is_err(), "{bad}");
        }
        // Shapes that parse but do not fit the request.
        let one_short = edited(&|v| {
            v["sk"][1].as_array_mut().unwrap().pop();
        });
        let one_vector = edited(&|v| {
            v["sk"].as_array_mut().unwrap().pop();
        });
        let other_group = edited(&|v| v["group"] = "modp2048".into());
        let other_dim = edited(&|v| v["dim"] = 17.into());
        let other_side = edited(&|v| v["side"] = "columns".into());
        let kernels = kernels();
        for bad in [
            &one_short,
            &one_vector,
            &other_group,
            &other_dim,
            &other_side,
        ] {
            let rebuilt = read(bad).unwrap().into_keys(master.id, &kernels);
            assert!(matches!(rebuilt, Err(Error::Transport(_))), "{bad}");
        }
        let other_key = KeyId::random(&mut StdRng::seed_from_u64(3));
        assert!(read(&json).unwrap().into_keys(other_key, &kernels).is_err());
        // A kernel of the wrong length for the geometry.
        assert!(
            read(&json)
                .unwrap()
                .into_keys(master.id, &[vec![1; 8], vec![1; 9]])
                .is_err()
        );
    }
}
