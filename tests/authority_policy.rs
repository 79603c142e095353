//! The authority's rank budget through its HTTPS API: a request is judged by
//! the vectors its keys reveal in pixel space, not by the vectors it names,
//! and no master key reaches full rank whatever the caps (issue #19).
#![allow(clippy::unwrap_used, clippy::panic)] // Unwraps and panics are allowed in tests.

mod common;

use common::{Answer, Fixture};
use cryptonn::authority::Caps;
use cryptonn::authority::service::{self, InitOptions, ServiceLimits};
use cryptonn::fe::{GroupId, KeyId, Ristretto255};
use cryptonn::protocol::wire::{
    AuditPage, BudgetResponse, ErrorBody, ErrorCode, FeipKeysResponse, Role,
};
use cryptonn::protocol::{BatchPublicKeys, Budget};

type G = Ristretto255;

/// `cryptonn authority init`'s defaults.
const CAPS: Caps = Caps {
    rows: 128,
    cols: 128,
};
const MIN_SUPPORT: usize = 8;

impl Answer {
    /// The policy's refusal: 409, `key_refused`, and its message.
    fn refusal(&self) -> String {
        let body: ErrorBody = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("status {} ({e}): {}", self.status, self.body));
        assert_eq!(
            (self.status, body.error.code),
            (409, ErrorCode::KeyRefused),
            "{}",
            self.body
        );
        body.error.message
    }
}

/// This file's uses of the shared [`Fixture`]: a fresh state with the
/// default policy.
impl Fixture {
    fn start(tag: &str) -> Self {
        let options = InitOptions::new(GroupId::Ristretto255, CAPS, MIN_SUPPORT);
        Self::spawn(&format!("policy-{tag}"), &options, ServiceLimits::default())
    }

    fn post(&self, path: &str, role: Role, body: &serde_json::Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(
            path,
            Some(self.token(role)),
            Some("application/json"),
            &bytes,
        )
    }

    fn batch_keys(&self, body: serde_json::Value) -> BatchPublicKeys<G> {
        self.post("/batch-keys", Role::Client, &body).json()
    }

    fn feip_keys(&self, id: KeyId, vectors: &[Vec<i64>]) -> Answer {
        let body = serde_json::json!({ "master_key": id, "vectors": vectors });
        self.post("/feip-keys", Role::Server, &body)
    }

    fn budget(&self, id: KeyId) -> Budget {
        let path = format!("/budgets/{id}");
        let response: BudgetResponse = self.get(&path, Some(self.token(Role::Server))).json();
        response.budget.unwrap()
    }

    /// The number of audit records (every issued key has one).
    fn audit_len(&self) -> usize {
        let operator = Some(self.token(Role::Operator));
        let page: AuditPage = self.get("/audit?limit=10000", operator).json();
        assert_eq!(page.next, None, "more than one page");
        page.records.len()
    }
}

/// `/v1/batch-keys` for 2 images of 1×6×6 under a 3×3 kernel with `padding`.
fn conv_batch(padding: usize) -> serde_json::Value {
    serde_json::json!({
        "features": 36,
        "batch": 2,
        "patches": {"image": [1, 6, 6], "kernel": [3, 3], "stride": [1, 1], "padding": [padding, padding]},
    })
}

#[test]
fn a_padded_kernel_that_reveals_single_pixels_is_refused() {
    let f = Fixture::start("padded");
    let keys = f.batch_keys(conv_batch(2));
    let id = keys.rows.id();
    assert_eq!(keys.rows.dim(), 36);
    // Dense: 9 non-zeros, more than the minimum of 8. At padding 2 it lands
    // on 64 windows, 48 of which hold fewer than 8 pixels, the first one.
    let kernel = vec![3, -1, 2, 5, -4, 1, 1, 2, 7];
    let why = f.feip_keys(id, std::slice::from_ref(&kernel)).refusal();
    assert!(
        why.contains("48 of the 64 pixel-space vectors")
            && why.contains("kernel 0 at position 0")
            && why.contains("has 1 non-zero entry, fewer than 8"),
        "{why}"
    );
    // Nothing derived, spent or audited.
    let budget = f.budget(id);
    assert_eq!((budget.rank, budget.limit, budget.dim), (0, 35, 36));
    assert_eq!(f.audit_len(), 0);

    // The same kernel without padding: 16 windows on the image, served.
    let keys = f.batch_keys(conv_batch(0));
    let ys = std::slice::from_ref(&kernel);
    let response: FeipKeysResponse<G> = f.feip_keys(keys.rows.id(), ys).json();
    assert_eq!(response.into_keys(keys.rows.id(), ys).unwrap().len(), 16);
    assert_eq!(f.budget(keys.rows.id()).rank, 16);
    assert_ne!(f.audit_len(), 0);
}

/// `dim` independent dense vectors: J + diag(1, …, dim).
fn independent(dim: usize) -> Vec<Vec<i64>> {
    (0..dim)
        .map(|i| {
            (0..dim)
                .map(|j| 1 + i64::from(i == j) * (i as i64 + 1))
                .collect()
        })
        .collect()
}

#[test]
fn a_master_key_under_the_caps_never_reaches_full_rank() {
    let mut f = Fixture::start("full-rank");
    let keys = f.batch_keys(serde_json::json!({"features": 10, "batch": 4}));
    let id = keys.rows.id();
    let before = f.budget(id);
    assert_eq!((before.rank, before.limit, before.dim), (0, 9, 10));
    // Ten independent vectors would solve every image: refused whole.
    let ys = independent(10);
    let why = f.feip_keys(id, &ys).refusal();
    assert!(
        why.contains("at most 9") && why.contains("dimension 10"),
        "{why}"
    );
    assert_eq!((f.budget(id), f.audit_len()), (before, 0));
    // Nine are served; the tenth is refused on its own.
    let response: FeipKeysResponse<G> = f.feip_keys(id, &ys[..9]).json();
    assert_eq!(response.into_keys(id, &ys[..9]).unwrap().len(), 9);
    assert_eq!(f.budget(id).rank, 9);
    f.feip_keys(id, &ys[9..]).refusal();
    let spent = f.budget(id);
    assert_eq!((spent.rank, spent.limit, spent.dim), (9, 9, 10));
    assert_eq!(f.audit_len(), 9);

    // A restart replays the budget where it was.
    f.stop();
    let authority = service::open_authority::<G>(&f.dir).unwrap();
    assert_eq!(authority.budget(id), Some(spent));
}
