//! The authority's HTTPS key service on loopback, measured:
//! `cargo run --release --example key_service_bench -- --json`.
//!
//! Starts an authority in this process (fresh state, the real database and
//! TLS), then `--requesters` threads each send `--requests` batched FEIP key
//! requests of `--vectors` vectors of `--dim` entries (a training step's
//! forward pass: 64 × 784), each under a fresh row master key, and reports
//! requests per second and the p50/p99 latency, next to the time the same
//! keys take to derive in process.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use cryptonn::authority::service::{self, InitOptions};
use cryptonn::authority::{Authority, Caps, IssueAll};
use cryptonn::fe::bench::{median_seconds, print_results};
use cryptonn::fe::{GroupId, Ristretto255};
use cryptonn::protocol::wire::Role;
use cryptonn::protocol::{KeyService, RemoteAuthority};
use rand::RngExt;

/// Key requests per second and latency of the authority's HTTPS API.
#[derive(Debug, Parser)]
struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Concurrent requesters (one connection each).
    #[arg(long, default_value_t = 8)]
    requesters: usize,
    /// Requests per requester.
    #[arg(long, default_value_t = 25)]
    requests: usize,
    /// Vectors per request.
    #[arg(long, default_value_t = 64)]
    vectors: usize,
    /// Entries per vector.
    #[arg(long, default_value_t = 784)]
    dim: usize,
}

type Remote = RemoteAuthority<Ristretto255>;

fn random_vectors(count: usize, dim: usize) -> Vec<Vec<i64>> {
    let mut rng = rand::rng();
    (0..count)
        .map(|_| (0..dim).map(|_| rng.random_range(-127..=127)).collect())
        .collect()
}

/// One requester's latencies, in seconds: a fresh master key and one
/// request per iteration.
fn requester(client: &Remote, server: &Remote, args: &Args) -> Vec<f64> {
    (0..args.requests)
        .map(|_| {
            let keys = client.batch_keys(args.dim, 2).expect("batch keys");
            let ys = random_vectors(args.vectors, args.dim);
            let start = Instant::now();
            server
                .feip_keys(keys.rows.id(), &ys)
                .expect("function keys");
            start.elapsed().as_secs_f64()
        })
        .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let state = std::env::temp_dir().join(format!("cryptonn-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let caps = Caps {
        rows: args.dim,
        cols: 2,
    };
    service::init(&state, &InitOptions::new(GroupId::Ristretto255, caps, 1))?;
    let running = service::spawn(&state, ([127, 0, 0, 1], 0).into())?;
    let connect = |role| {
        RemoteAuthority::<Ristretto255>::from_files(
            running.url(),
            &service::token_path(&state, role),
            &service::cert_path(&state),
        )
    };
    let pairs = (0..args.requesters)
        .map(|_| Ok((connect(Role::Client)?, connect(Role::Server)?)))
        .collect::<Result<Vec<_>, cryptonn::protocol::Error>>()?;
    let start = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .iter()
            .map(|(client, server)| scope.spawn(|| requester(client, server, &args)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let timings = pairs.iter().map(|(_, s)| s.timings());
    let (derive, store) = timings.fold((0.0, 0.0), |(d, s), t| {
        (d + t.derive.as_secs_f64(), s + t.store.as_secs_f64())
    });
    let n = latencies.len() as f64;

    // The same request in process: the authority's own derivation, no network, no database.
    let local = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let mut rng = rand::rng();
    let keys = local.batch_keys(args.dim, 2, &mut rng)?;
    let ys = random_vectors(args.vectors, args.dim);
    let in_process = median_seconds(9, || local.feip_keys(keys.rows.id(), &ys));

    print_results(
        &[
            ("requests", n),
            ("requests_per_s", n / wall),
            ("latency_p50_ms", 1e3 * percentile(&latencies, 0.5)),
            ("latency_p99_ms", 1e3 * percentile(&latencies, 0.99)),
            ("server_derive_ms_mean", 1e3 * derive / n),
            ("server_store_ms_mean", 1e3 * store / n),
            ("in_process_ms_median", 1e3 * in_process),
        ],
        args.json,
    );
    drop(running);
    let _ = std::fs::remove_dir_all(&state);
    Ok(())
}
