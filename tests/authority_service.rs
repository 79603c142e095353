//! The authority's HTTPS service end to end, over real TLS on a loopback
//! port: who may call what, which bodies are refused, and that a refused
//! request changes nothing; then many servers at once, after which the
//! audit is gapless, matches the keys handed out, and no master key went
//! over its cap, as served and as reopened from disk.
#![allow(clippy::unwrap_used, clippy::panic)] // Unwraps and panics are allowed in tests.

mod common;

use std::time::Instant;

use common::{Answer, Fixture, agent};
use cryptonn::authority::service::{self, InitOptions, ServiceLimits};
use cryptonn::authority::{Caps, StateDir, Store};
use cryptonn::fe::{GroupId, KeyId, Ristretto255};
use cryptonn::protocol::wire::{
    AuditEntry, AuditPage, BudgetResponse, ErrorCode, FeboKeysResponse, FeipKeysResponse,
    MAX_BODY_BYTES, Role, ServiceInfo,
};
use cryptonn::protocol::{BatchPublicKeys, Budget};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

type G = Ristretto255;

/// This file's uses of the shared [`Fixture`].
impl Fixture {
    fn start(tag: &str, caps: Caps, min_support: usize) -> Self {
        let options = InitOptions::new(GroupId::Ristretto255, caps, min_support);
        Self::spawn(
            &format!("service-{tag}"),
            &options,
            ServiceLimits::default(),
        )
    }

    fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
        post(&self.agent, &self.url, path, token, body)
    }

    fn batch_keys(&self, features: usize, batch: usize) -> BatchPublicKeys<G> {
        let body = format!(r#"{{"features": {features}, "batch": {batch}}}"#);
        self.post(
            "/batch-keys",
            Some(self.token(Role::Client)),
            body.as_bytes(),
        )
        .json()
    }

    /// The whole audit, page by page.
    fn audit(&self) -> Vec<AuditEntry> {
        let mut entries = Vec::new();
        let mut after = 0;
        loop {
            let path = format!("/audit?after={after}&limit=500");
            let page: AuditPage = self.get(&path, Some(self.token(Role::Operator))).json();
            entries.extend(page.records);
            match page.next {
                Some(next) => after = next,
                None => return entries,
            }
        }
    }

    fn budget(&self, id: KeyId) -> Option<Budget> {
        let answer = self.get(&format!("/budgets/{id}"), Some(self.token(Role::Server)));
        let response: BudgetResponse = answer.json();
        assert_eq!(response.master_key, id);
        response.budget
    }
}

/// A JSON POST with its own agent (one per server thread).
fn post(agent: &ureq::Agent, url: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
    common::post(agent, url, path, token, Some("application/json"), body)
}

fn feip_body(id: KeyId, vectors: &[Vec<i64>]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "master_key": id, "vectors": vectors })).unwrap()
}

/// The keys of a whole-key answer (a master key without a convolution).
fn whole_keys(response: FeipKeysResponse<G>) -> Vec<cryptonn::fe::feip::FunctionKey<G>> {
    match response {
        FeipKeysResponse::Keys(keys) => keys,
        FeipKeysResponse::Compact(_) => panic!("a compact answer for an ordinary master key"),
    }
}

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    audit: Vec<AuditEntry>,
    budgets: Vec<Option<Budget>>,
}

fn snapshot(f: &Fixture, keys: &[KeyId]) -> Snapshot {
    Snapshot {
        audit: f.audit(),
        budgets: keys.iter().map(|&id| f.budget(id)).collect(),
    }
}

/// A fixture with one batch of master keys (4 features, batch of 4) and one
/// granted FEIP request.
fn with_one_batch(tag: &str) -> (Fixture, BatchPublicKeys<G>, Vec<KeyId>) {
    let f = Fixture::start(tag, Caps { rows: 3, cols: 2 }, 2);
    let keys = f.batch_keys(4, 4);
    let ids = vec![keys.rows.id(), keys.cols.id()];
    let granted = f.post(
        "/feip-keys",
        Some(f.token(Role::Server)),
        &feip_body(keys.rows.id(), &[vec![1, 2, 0, 0]]),
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    (f, keys, ids)
}

#[test]
fn serves_health_info_and_key_timings() {
    let (f, keys, _) = with_one_batch("info");
    assert_eq!(f.get("/health", None).status, 200);
    for role in [Role::Client, Role::Server, Role::Operator] {
        let info: ServiceInfo = f.get("/info", Some(f.token(role))).json();
        assert_eq!((info.group, info.role), (GroupId::Ristretto255, role));
        assert_eq!(info.requester, role.name());
    }
    let answer = f.post(
        "/feip-keys",
        Some(f.token(Role::Server)),
        &feip_body(keys.rows.id(), &[vec![3, 1, 0, 0]]),
    );
    let keys = whole_keys(answer.json());
    assert_eq!(keys.len(), 1);
    let timing = answer.timing.unwrap();
    assert!(
        timing.starts_with("derive;dur=") && timing.contains(", store;dur="),
        "{timing}"
    );
    let audit = f.audit();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].record.requester, "server");
    assert_eq!(audit[1].record.rank_after, Some(2));
    assert_eq!(f.get("/no-such-route", None).error(), ErrorCode::NotFound);
}

#[test]
fn serves_convolution_keys_one_per_equation() {
    // A row cap of 4 leaves the column key room: with the row key's 4
    // equations per image, 2·(16 − 4) − 1 = 23 per pixel across the batch.
    let f = Fixture::start("conv", Caps { rows: 4, cols: 32 }, 1);
    let geometry =
        r#""patches": {"image": [1, 4, 4], "kernel": [3, 3], "stride": [1, 1], "padding": [0, 0]}"#;
    let client = Some(f.token(Role::Client));
    // Features are the image's pixels (16), not the kernel's taps (9).
    let wrong = format!(r#"{{"features": 9, "batch": 8, {geometry}}}"#);
    let answer = f.post("/batch-keys", client, wrong.as_bytes());
    assert_eq!(answer.error(), ErrorCode::BadRequest);
    let body = format!(r#"{{"features": 16, "batch": 2, {geometry}}}"#);
    let keys: BatchPublicKeys<G> = f.post("/batch-keys", client, body.as_bytes()).json();
    assert_eq!((keys.rows.dim(), keys.cols.dim()), (16, 32));

    let server = Some(f.token(Role::Server));
    // A kernel: one key per position (2×2), each for the kernel on its
    // window, sent compact (one scalar each) and rebuilt from the kernel.
    let kernel = vec![1, -2, 3, 0, 5, -1, 2, 2, -3];
    let ys = std::slice::from_ref(&kernel);
    let answer = f.post("/feip-keys", server, &feip_body(keys.rows.id(), ys));
    assert!(answer.body.starts_with(r#"{"compact":"#), "{}", answer.body);
    let response: FeipKeysResponse<G> = answer.json();
    let rebuilt = response.into_keys(keys.rows.id(), ys).unwrap();
    assert_eq!(rebuilt.len(), 4);
    assert!(rebuilt.iter().all(|k| k.y().len() == 16));
    assert_eq!(
        f.budget(keys.rows.id()).map(|b| (b.rank, b.dim)),
        Some((4, 16))
    );
    // An error vector over 2 images × 4 positions: one key per tap.
    let delta = vec![3, -1, 2, 5, -4, 1, 1, 2];
    let ys = std::slice::from_ref(&delta);
    let answer = f.post("/feip-keys", server, &feip_body(keys.cols.id(), ys));
    let response: FeipKeysResponse<G> = answer.json();
    let rebuilt = response.into_keys(keys.cols.id(), ys).unwrap();
    assert_eq!(rebuilt.len(), 9);
    assert!(rebuilt.iter().all(|k| k.y().len() == 32));
    // A vector of the key's dimension is not a kernel: refused, nothing spent.
    let before = snapshot(&f, &[keys.rows.id(), keys.cols.id()]);
    let answer = f.post(
        "/feip-keys",
        server,
        &feip_body(keys.rows.id(), &[vec![1; 16]]),
    );
    assert_eq!(answer.error(), ErrorCode::BadRequest);
    assert_eq!(snapshot(&f, &[keys.rows.id(), keys.cols.id()]), before);
}

#[test]
fn serves_febo_keys_and_refuses_bad_ones() {
    let (f, keys, ids) = with_one_batch("febo");
    let server = Some(f.token(Role::Server));
    let label =
        cryptonn::fe::febo::encrypt(&keys.labels, 3, &mut StdRng::seed_from_u64(2)).unwrap();
    let cmt = serde_json::to_value(label.commitment()).unwrap();
    let body = |id: KeyId, request: serde_json::Value| {
        serde_json::to_vec(&serde_json::json!({ "master_key": id, "requests": [request] })).unwrap()
    };
    let sub = serde_json::json!({ "commitment": cmt, "op": "sub", "operand": 1 });
    let answer = f.post("/febo-keys", server, &body(keys.labels.id(), sub.clone()));
    let response: FeboKeysResponse<G> = answer.json();
    assert_eq!(response.keys.len(), 1);
    assert!(answer.timing.is_some());
    assert_eq!(f.budget(keys.labels.id()), None, "FEBO keys keep no budget");
    let before = snapshot(&f, &ids);
    let division = serde_json::json!({ "commitment": cmt, "op": "div", "operand": 0 });
    let as_array = serde_json::json!([cmt, "sub", 1]);
    for bad in [division, as_array] {
        let answer = f.post("/febo-keys", server, &body(keys.labels.id(), bad));
        assert_eq!(answer.error(), ErrorCode::BadRequest, "{}", answer.body);
    }
    let answer = f.post("/febo-keys", server, &body(keys.rows.id(), sub));
    assert_eq!(
        answer.error(),
        ErrorCode::NotFound,
        "a FEIP key is no FEBO key"
    );
    assert_eq!(snapshot(&f, &ids), before);
    assert_eq!(
        before.audit.last().unwrap().record.scheme,
        cryptonn::protocol::audit::Scheme::Febo
    );
}

#[test]
fn rejects_missing_unknown_and_malformed_tokens() {
    let (f, keys, ids) = with_one_batch("unauthorized");
    let before = snapshot(&f, &ids);
    let body = feip_body(keys.rows.id(), &[vec![0, 1, 1, 0]]);
    let unknown = format!("{:064x}", 7);
    for token in [None, Some(unknown.as_str()), Some("not-hex"), Some("")] {
        assert_eq!(
            f.post("/feip-keys", token, &body).error(),
            ErrorCode::Unauthorized
        );
        assert_eq!(f.get("/info", token).error(), ErrorCode::Unauthorized);
        assert_eq!(f.get("/audit", token).error(), ErrorCode::Unauthorized);
    }
    // Only the hash is stored: the hash itself is not a token.
    let stored_hash = cryptonn::authority::tokens::hash(f.token(Role::Server));
    let hex: String = stored_hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        f.post("/feip-keys", Some(&hex), &body).error(),
        ErrorCode::Unauthorized
    );
    assert_eq!(snapshot(&f, &ids), before);
}

#[test]
fn rejects_roles_the_route_does_not_grant() {
    let (f, keys, ids) = with_one_batch("forbidden");
    let before = snapshot(&f, &ids);
    let body = feip_body(keys.rows.id(), &[vec![0, 1, 1, 0]]);
    let client = Some(f.token(Role::Client));
    let server = Some(f.token(Role::Server));
    let operator = Some(f.token(Role::Operator));
    assert_eq!(
        f.post("/feip-keys", client, &body).error(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        f.post("/feip-keys", operator, &body).error(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        f.post("/febo-keys", client, &body).error(),
        ErrorCode::Forbidden
    );
    assert_eq!(f.get("/audit", server).error(), ErrorCode::Forbidden);
    assert_eq!(f.get("/audit", client).error(), ErrorCode::Forbidden);
    let budget = format!("/budgets/{}", keys.rows.id());
    assert_eq!(f.get(&budget, client).error(), ErrorCode::Forbidden);
    let batch = br#"{"features": 4, "batch": 4}"#;
    assert_eq!(
        f.post("/batch-keys", server, batch).error(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        f.post("/row-keys", operator, br#"{"features": 4}"#).error(),
        ErrorCode::Forbidden
    );
    assert_eq!(snapshot(&f, &ids), before);
}

#[test]
fn rejects_oversized_and_malformed_bodies() {
    let (f, keys, ids) = with_one_batch("bad-bodies");
    let before = snapshot(&f, &ids);
    let server = Some(f.token(Role::Server));
    let id = keys.rows.id();
    let oversized = vec![b' '; MAX_BODY_BYTES + 1];
    assert_eq!(
        f.post("/feip-keys", server, &oversized).error(),
        ErrorCode::PayloadTooLarge
    );
    let unknown_field =
        format!(r#"{{"master_key": "{id}", "vectors": [[1, 1, 1, 1]], "extra": 1}}"#);
    let bad_bodies: Vec<Vec<u8>> = vec![
        br#"{"master_key": "#.to_vec(),
        b"not json".to_vec(),
        unknown_field.into_bytes(),
        format!(r#"["{id}", [[1, 1, 1, 1]]]"#).into_bytes(),
        format!(r#"{{"master_key": "{id}", "vectors": [[1, 1, 1, 1]]}} {{}}"#).into_bytes(),
        format!(
            r#"{{"master_key": "{}", "vectors": []}}"#,
            &id.to_string()[..30]
        )
        .into_bytes(),
        feip_body(id, &[vec![1, 1, 1, 1], vec![1, 1, 1]]),
        feip_body(id, &[vec![1, 1, 1, 1, 1]]),
    ];
    for body in &bad_bodies {
        let answer = f.post("/feip-keys", server, body);
        assert_eq!(
            answer.error(),
            ErrorCode::BadRequest,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let client = Some(f.token(Role::Client));
    assert_eq!(
        f.post("/batch-keys", client, br#"{"features": 0, "batch": 4}"#)
            .error(),
        ErrorCode::BadRequest
    );
    assert_eq!(
        f.post("/row-keys", client, br#"{"features": 4, "x": 1}"#)
            .error(),
        ErrorCode::BadRequest
    );
    let stranger = KeyId::random(&mut StdRng::seed_from_u64(1));
    let unknown_key = feip_body(stranger, &[vec![1, 1, 1, 1]]);
    assert_eq!(
        f.post("/feip-keys", server, &unknown_key).error(),
        ErrorCode::NotFound
    );
    assert_eq!(
        f.get(&format!("/budgets/{stranger}"), server).error(),
        ErrorCode::NotFound
    );
    assert_eq!(f.get("/budgets/xyz", server).error(), ErrorCode::BadRequest);
    let operator = Some(f.token(Role::Operator));
    assert_eq!(
        f.get("/audit?limit=10001", operator).error(),
        ErrorCode::BadRequest
    );
    assert_eq!(
        f.get("/audit?after=-1", operator).error(),
        ErrorCode::BadRequest
    );
    assert_eq!(
        f.get("/audit?page=2", operator).error(),
        ErrorCode::BadRequest
    );
    // A unit vector is degenerate: the policy refuses it.
    let degenerate = feip_body(id, &[vec![0, 0, 5, 0]]);
    assert_eq!(
        f.post("/feip-keys", server, &degenerate).error(),
        ErrorCode::KeyRefused
    );
    assert_eq!(snapshot(&f, &ids), before);
}

/// The row cap of the concurrency test.
const CAP: usize = 8;
const DIM: usize = 16;

/// One server thread: `requests` FEIP requests for random vectors (and now
/// and then a vector it was already granted, which costs no rank) under
/// random master keys. Returns the number of keys received.
fn hammer(f: &Fixture, ids: &[KeyId], seed: u64, requests: usize) -> usize {
    let agent = agent(f.cert_pem());
    let token = Some(f.token(Role::Server));
    let rng = &mut StdRng::seed_from_u64(seed);
    let mut granted: Vec<(KeyId, Vec<i64>)> = Vec::new();
    let mut received = 0;
    for _ in 0..requests {
        let (id, vectors) = match granted.len() {
            n if n > 0 && rng.random_range(0..8) == 0 => {
                let (id, y) = granted[rng.random_range(0..n)].clone();
                (id, vec![y])
            }
            _ => {
                let id = ids[rng.random_range(0..ids.len())];
                let count = rng.random_range(1..=2);
                let random = |rng: &mut StdRng| -> Vec<i64> {
                    (0..DIM)
                        .map(|_| rng.random_range(1..=5) * if rng.random() { 1 } else { -1 })
                        .collect()
                };
                (id, (0..count).map(|_| random(rng)).collect())
            }
        };
        let answer = post(
            &agent,
            &f.url,
            "/feip-keys",
            token,
            &feip_body(id, &vectors),
        );
        match answer.status {
            200 => {
                let keys = whole_keys(answer.json());
                assert_eq!(keys.len(), vectors.len());
                received += keys.len();
                granted.extend(vectors.into_iter().map(|y| (id, y)));
            }
            _ => assert_eq!(answer.error(), ErrorCode::KeyRefused, "{}", answer.body),
        }
    }
    received
}

#[test]
fn concurrent_servers_keep_the_audit_gapless_and_the_caps() {
    let mut f = Fixture::start(
        "concurrent",
        Caps {
            rows: CAP,
            cols: CAP,
        },
        4,
    );
    let ids: Vec<KeyId> = (0..3)
        .flat_map(|_| {
            let keys = f.batch_keys(DIM, DIM);
            [keys.rows.id(), keys.cols.id()]
        })
        .collect();
    let start = Instant::now();
    let received: usize = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (f, ids) = (&f, &ids);
                s.spawn(move || hammer(f, ids, t, 500))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    eprintln!(
        "8 × 500 requests in {:.1} s, {received} keys issued",
        start.elapsed().as_secs_f64()
    );

    let audit = f.audit();
    let seqs: Vec<u64> = audit.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=received as u64).collect::<Vec<_>>(),
        "gapless, in order"
    );
    let served: Vec<Budget> = ids.iter().map(|&id| f.budget(id).unwrap()).collect();
    for budget in &served {
        assert!(budget.rank <= CAP && budget.limit == CAP, "{budget:?}");
    }
    assert!(
        served.iter().any(|b| b.rank == CAP),
        "the caps were reached"
    );
    // Approval and commit are one step: in seq order, each key's rank only grows.
    for (id, budget) in ids.iter().zip(&served) {
        let ranks: Vec<usize> = audit
            .iter()
            .filter(|e| e.record.master_key == *id)
            .map(|e| e.record.rank_after.unwrap())
            .collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
        assert_eq!(ranks.last().copied().unwrap_or(0), budget.rank);
    }

    f.stop();
    let authority = service::open_authority::<G>(&f.dir).unwrap();
    let reopened: Vec<Budget> = ids
        .iter()
        .map(|&id| authority.budget(id).unwrap())
        .collect();
    assert_eq!(reopened, served);
    assert_eq!(authority.keys_issued(), received as u64);
    let store = service::open_store(&f.dir).unwrap();
    assert_eq!(store.audit_len().unwrap(), received as u64);
    assert!(StateDir::new(&f.dir).db().is_file());
}
