//! The service's policy choice and its convolution keys, over real TLS on
//! a loopback port, with the client and server roles each holding their
//! own `RemoteAuthority`: issue-all issues past every cap, projection
//! mode's caps hold, patch keys are served, and a convolution's compact
//! FEIP answers rebuild exactly the keys the in-process authority derives.
#![allow(clippy::unwrap_used, clippy::panic)] // Unwraps and panics are allowed in tests.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cryptonn_authority::service::{self, InitOptions, RunningService};
use cryptonn_authority::{Authority, Caps};
use cryptonn_fe::{GroupId, Ristretto255};
use cryptonn_protocol::wire::{FeipKeysResponse, Role};
use cryptonn_protocol::{
    Error, KeyService, MasterKey, PatchGeometry, PolicyKind, RemoteAuthority, Side,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

type G = Ristretto255;

/// A served state and one connection per role; the directory goes with it.
struct Served {
    dir: PathBuf,
    service: RunningService,
    client: RemoteAuthority<G>,
    server: RemoteAuthority<G>,
}

impl Served {
    fn start(tag: &str, options: &InitOptions) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "cryptonn-service-conv-{tag}-{}-{nanos}",
            std::process::id()
        ));
        service::init(&dir, options).unwrap();
        let service = service::spawn(&dir, ([127, 0, 0, 1], 0).into()).unwrap();
        let connect = |role| connect(&dir, &service, role);
        Self {
            client: connect(Role::Client),
            server: connect(Role::Server),
            dir,
            service,
        }
    }

    /// Stops the service, then opens its state in-process (same master keys).
    fn stop_and_open(mut self) -> (std::sync::Arc<Authority<G>>, PathBuf) {
        self.service.shutdown().unwrap();
        let dir = self.dir.clone();
        drop(self);
        (service::open_authority::<G>(&dir).unwrap(), dir)
    }
}

fn connect(dir: &Path, service: &RunningService, role: Role) -> RemoteAuthority<G> {
    let token = std::fs::read_to_string(service::token_path(dir, role)).unwrap();
    RemoteAuthority::connect(service.url(), &token, service.cert_pem().as_bytes()).unwrap()
}

/// Dense vectors, independent: J + diag(1, …, n), `count` of them.
fn independent(dim: usize, count: usize) -> Vec<Vec<i64>> {
    (0..count)
        .map(|i| {
            (0..dim)
                .map(|j| 1 + i64::from(i == j) * (i as i64 + 1))
                .collect()
        })
        .collect()
}

fn unit_vectors(dim: usize) -> Vec<Vec<i64>> {
    (0..dim)
        .map(|i| (0..dim).map(|j| i64::from(i == j)).collect())
        .collect()
}

#[test]
fn issue_all_is_reported_and_issues_past_every_cap() {
    let options = InitOptions::new(GroupId::Ristretto255, Caps { rows: 1, cols: 1 }, 8)
        .with_policy(PolicyKind::IssueAll);
    let served = Served::start("issue-all", &options);
    assert_eq!(served.server.info().unwrap().policy, PolicyKind::IssueAll);
    let keys = served.client.batch_keys(6, 3).unwrap();
    // Full rank on both sides, in unit vectors (support 1 < 8): all issued.
    let rows = served
        .server
        .feip_keys(keys.rows.id(), &unit_vectors(6))
        .unwrap();
    assert_eq!(rows.len(), 6);
    let cols = served
        .server
        .feip_keys(keys.cols.id(), &unit_vectors(3))
        .unwrap();
    assert_eq!(cols.len(), 3);
    // Nothing is counted, so no budget is kept.
    assert_eq!(served.server.budget(keys.rows.id()).unwrap(), None);
    let (authority, dir) = served.stop_and_open();
    assert_eq!(authority.keys_issued(), 9);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn projection_caps_give_k_equations_per_image_and_no_gradient_key() {
    const K: usize = 3;
    let options = InitOptions::new(GroupId::Ristretto255, Caps { rows: K, cols: 0 }, 1);
    let served = Served::start("projection", &options);
    assert_eq!(served.server.info().unwrap().policy, PolicyKind::RankBudget);
    let (client, server) = (&served.client, &served.server);
    let keys = client.row_keys(8).unwrap();
    let ys = independent(8, K + 1);
    assert_eq!(server.feip_keys(keys.rows.id(), &ys[..K]).unwrap().len(), K);
    // Asking again within the span costs nothing; the K+1-th dimension is refused.
    assert_eq!(server.feip_keys(keys.rows.id(), &ys[..1]).unwrap().len(), 1);
    let refused = server.feip_keys(keys.rows.id(), &ys[K..]);
    assert!(matches!(refused, Err(Error::KeyRefused(_))), "{refused:?}");
    let budget = server.budget(keys.rows.id()).unwrap().unwrap();
    assert_eq!((budget.rank, budget.limit), (K, K));
    // A batch's column key has a limit of 0: no gradient key, of any vector.
    let batch = client.batch_keys(8, 4).unwrap();
    for delta in [vec![1, 1, 1, 1], vec![5, -3, 2, 7]] {
        let refused = server.feip_keys(batch.cols.id(), &[delta]);
        assert!(matches!(refused, Err(Error::KeyRefused(_))), "{refused:?}");
    }
    let budget = server.budget(batch.cols.id()).unwrap().unwrap();
    assert_eq!((budget.rank, budget.limit), (0, 0));
    let (_, dir) = served.stop_and_open();
    std::fs::remove_dir_all(dir).unwrap();
}

/// `count` kernels of `len` taps with entries in [-127, 127], none zero.
fn kernels(count: usize, len: usize, seed: u64) -> Vec<Vec<i64>> {
    let rng = &mut StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| match rng.random_range(-127..=126) {
                    0 => 127,
                    v => v,
                })
                .collect()
        })
        .collect()
}

#[test]
fn patch_keys_and_compact_answers_equal_the_in_process_keys() {
    // 2 images of 1×6×6 under a 3×3 kernel: 16 positions, 9 taps. A row
    // cap of 20 leaves the column key 2·(36 − 20) − 1 = 31 equations.
    let options = InitOptions::new(GroupId::Ristretto255, Caps { rows: 20, cols: 31 }, 1);
    let served = Served::start("patches", &options);
    let g = PatchGeometry::new([1, 6, 6], [3, 3], [1, 1], [0, 0]).unwrap();
    let keys = served.client.patch_keys(g, 2).unwrap();
    assert_eq!((keys.rows.dim(), keys.cols.dim()), (36, 72));
    // Only a client may ask, and not for absurd sizes.
    let refused = served.server.patch_keys(g, 2);
    assert!(
        matches!(refused, Err(Error::Unauthorized(_))),
        "{refused:?}"
    );
    for images in [0, 2000] {
        let refused = served.client.patch_keys(g, images);
        assert!(
            matches!(&refused, Err(Error::Transport(m)) if m.contains("400")),
            "{images}"
        );
    }

    let kernel = kernels(1, 9, 1);
    let rows = served.server.feip_keys(keys.rows.id(), &kernel).unwrap();
    assert_eq!((rows.len(), rows[0].y().len()), (16, 36));
    let errors = kernels(2, 2 * 16, 2);
    let cols = served.server.feip_keys(keys.cols.id(), &errors).unwrap();
    assert_eq!((cols.len(), cols[0].y().len()), (18, 72));

    // The same requests in-process, on the same master keys (asking again
    // costs no rank): the very same keys.
    let (authority, dir) = served.stop_and_open();
    assert_eq!(authority.feip_keys(keys.rows.id(), &kernel).unwrap(), rows);
    assert_eq!(authority.feip_keys(keys.cols.id(), &errors).unwrap(), cols);
    std::fs::remove_dir_all(dir).unwrap();
}

/// LeNet-5's first convolution (1×28×28, 5×5, 6 kernels): 3,456 keys on
/// 784 pixels. With kernel entries in [-127, 127] (3 to 4 characters),
/// measured: dense 6,046,282 bytes (1,750 a key: 784 entries, mostly
/// `0,`), compact 231,756 bytes (67 a key: one hex scalar), 26 times less
/// (`docs/PROTOCOL.md`, "Compact answers").
#[test]
fn a_lenet_sized_answer_is_compact_and_rebuilds_the_keys() {
    let options = InitOptions::new(GroupId::Ristretto255, Caps { rows: 1, cols: 1 }, 8)
        .with_policy(PolicyKind::IssueAll);
    let served = Served::start("lenet", &options);
    let g = PatchGeometry::new([1, 28, 28], [5, 5], [1, 1], [0, 0]).unwrap();
    let keys = served.client.patch_keys(g, 1).unwrap();
    let ys = kernels(6, 25, 3);
    let remote = served.server.feip_keys(keys.rows.id(), &ys).unwrap();
    assert_eq!((remote.len(), remote[0].y().len()), (6 * 576, 784));

    let (authority, dir) = served.stop_and_open();
    let local = authority.feip_keys(keys.rows.id(), &ys).unwrap();
    assert!(local == remote, "rebuilt keys differ from the derived ones");
    // The bodies the service writes for each form (`serde_json::to_vec`).
    let master = MasterKey {
        id: keys.rows.id(),
        side: Side::Rows,
        dim: 784,
        patches: Some(g),
    };
    let bytes = |response: &FeipKeysResponse<G>| serde_json::to_vec(response).unwrap().len();
    let dense = bytes(&FeipKeysResponse::Keys(local.clone()));
    let compact = bytes(&FeipKeysResponse::for_master(&master, local));
    eprintln!("LeNet conv1, 6 kernels: dense {dense} bytes, compact {compact} bytes");
    assert!(compact * 20 < dense, "dense {dense}, compact {compact}");
    assert!(compact < 6 * 576 * 70, "{compact}");
    std::fs::remove_dir_all(dir).unwrap();
}
