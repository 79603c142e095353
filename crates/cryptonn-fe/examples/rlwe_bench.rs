//! Ring-LWE IPFE micro-benchmark for one training step's shape (issue #22):
//! `cargo run --release -p cryptonn-fe --example rlwe_bench -- [--json]`.
//!
//! Flags: `--batch B` (256), `--hidden H` (64), `--reps R` (5), `--json`,
//! `--help`. Prints medians of R runs, each measured once on one thread and
//! once on all threads (`_t1`, `_tN`). The step: a forward ciphertext holds
//! the batch (l = 785, B slots), a backward one its transpose (l = B,
//! 784 slots); H keys of each shape per step.

use std::time::Instant;

use cryptonn_fe::bench::{print_results, thread_cpu_seconds};
use cryptonn_fe::rlwe::ntt::Rns;
use cryptonn_fe::rlwe::{self, Decryptor, Params};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const PIXELS: usize = 784;

struct Options {
    batch: usize,
    hidden: usize,
    reps: usize,
    json: bool,
    params_only: bool,
}

const HELP: &str = "rlwe_bench [--batch B=256] [--hidden H=64] [--reps R=5] [--json] [--params]
  --params  print the derived parameters of each shape and exit";

fn options() -> Result<Options, String> {
    let mut o = Options {
        batch: 256,
        hidden: 64,
        reps: 5,
        json: false,
        params_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a positive integer"))
        };
        match a.as_str() {
            "--batch" => o.batch = value("--batch")?,
            "--hidden" => o.hidden = value("--hidden")?,
            "--reps" => o.reps = value("--reps")?,
            "--json" => o.json = true,
            "--params" => o.params_only = true,
            "--help" | "-h" => return Err(HELP.into()),
            other => return Err(format!("unknown flag {other}\n{HELP}")),
        }
    }
    Ok(o)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Medians of wall time and of this thread's CPU time over `reps` runs, per
/// call of `f`. Each run repeats `f` for at least 0.2 s, because Linux
/// updates a thread's CPU time only at scheduler ticks.
fn timed<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let start = Instant::now();
    std::hint::black_box(f());
    let iters = (0.2 / start.elapsed().as_secs_f64()).ceil().max(1.0) as usize;
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let (start, c0) = (Instant::now(), thread_cpu_seconds());
        for _ in 0..iters {
            std::hint::black_box(f());
        }
        wall.push(start.elapsed().as_secs_f64() / iters as f64);
        cpu.push(match (c0, thread_cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / iters as f64,
            _ => f64::NAN,
        });
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(wall), median(cpu))
}

/// One shape of the step: vectors of length l in `slots` slots, H keys.
#[derive(Clone)]
struct Shape {
    name: &'static str,
    params: Params,
    slots: usize,
    /// Images a ciphertext of this shape holds (the batch).
    images: usize,
}

/// Measures setup, encryption, key derivation and decryption of one shape
/// on `threads` threads; pushes (key, value) pairs.
fn measure(
    shape: &Shape,
    o: &Options,
    threads: usize,
    out: &mut Vec<(String, f64)>,
) -> cryptonn_fe::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let (l, name) = (shape.params.dim(), shape.name);
    let x: Vec<i64> = (0..shape.slots * l)
        .map(|_| rng.random_range(0..256))
        .collect();
    let ys: Vec<i64> = (0..o.hidden * l)
        .map(|_| rng.random_range(-128..128))
        .collect();
    let p = pool(threads);
    let t = format!("t{threads}");
    // One thread: wall and CPU time (the CPU time is robust to other jobs
    // on the machine). All threads: wall time only.
    let mut push = |what: String, scale: f64, (wall, cpu): (f64, f64)| {
        out.push((format!("{name}_{what}_{t}"), wall * scale));
        if threads == 1 {
            out.push((format!("{name}_{what}_{t}_cpu"), cpu * scale));
        }
    };
    p.install(|| -> cryptonn_fe::Result<()> {
        let mut kept = None;
        let setup = timed(1, || kept = Some(rlwe::setup(&shape.params, &mut rng)));
        push("setup_s".into(), 1.0, setup);
        let (msk, mpk) = kept.ok_or(cryptonn_fe::Error::NoiseBound)??;
        let enc = timed(o.reps, || rlwe::encrypt(&mpk, &x, &mut rng));
        push(
            "encrypt_ms_per_image".into(),
            1e3 / shape.images as f64,
            enc,
        );
        let kd = timed(o.reps, || rlwe::derive_keys(&msk, &ys));
        push(format!("derive_{}keys_s", o.hidden), 1.0, kd);
        let ct = rlwe::encrypt(&mpk, &x, &mut rng)?;
        let keys = rlwe::derive_keys(&msk, &ys)?;
        let dec = Decryptor::new(&shape.params)?;
        let got = dec.decrypt_many(&keys, &ct)?;
        let want: i64 = x[..l].iter().zip(&ys[..l]).map(|(a, b)| a * b).sum();
        assert_eq!(got[0][0], want, "decryption check");
        let d = timed(o.reps, || dec.decrypt_many(&keys, &ct));
        let madds = (o.hidden * l * shape.slots) as f64;
        push(format!("decrypt_{}keys_ms", o.hidden), 1e3, d);
        push("decrypt_ns_per_madd".into(), 1e9 / madds, d);
        push(
            "decrypt_us_per_output".into(),
            1e6 / (o.hidden * shape.slots) as f64,
            d,
        );
        Ok(())
    })
}

/// Sizes and the NTT cost, which do not depend on threads.
fn sizes(shapes: &[Shape], o: &Options, out: &mut Vec<(String, f64)>) -> cryptonn_fe::Result<()> {
    let mut rng = StdRng::seed_from_u64(8);
    for s in shapes {
        let (msk, mpk) = rlwe::setup(&s.params, &mut rng)?;
        let x = vec![1i64; s.slots * s.params.dim()];
        let ct = rlwe::encrypt(&mpk, &x, &mut rng)?;
        let key = rlwe::derive_key(&msk, &vec![1; s.params.dim()])?;
        let name = s.name;
        out.push((format!("{name}_mpk_bytes"), mpk.to_bytes().len() as f64));
        out.push((
            format!("{name}_ct_bytes_per_image"),
            ct.to_bytes().len() as f64 / o.batch as f64,
        ));
        out.push((format!("{name}_key_bytes"), key.to_bytes().len() as f64));
        out.push((
            format!("{name}_log2_q_required"),
            s.params.log2_q_required(),
        ));
    }
    let rns = Rns::new(8192)?;
    let table = rns.table(0);
    let mut a: Vec<u64> = (0..8192u64).collect();
    let (_, fwd) = timed(o.reps, || table.forward(&mut a));
    out.push(("ntt_forward_8192_us_cpu".into(), fwd * 1e6));
    let (_, inv) = timed(o.reps, || table.inverse(&mut a));
    out.push(("ntt_inverse_8192_us_cpu".into(), inv * 1e6));
    let (_, pre) = timed(o.reps, || table.inverse_prefix(&mut a, o.batch).map(|_| ()));
    out.push(("ntt_inverse_prefix_batch_us_cpu".into(), pre * 1e6));
    Ok(())
}

/// The derived parameters of each shape (the table of `docs/RLWE.md`).
fn print_params(shapes: &[Shape]) {
    println!(
        "shape  n     l     Bx   By   log2K  sigma1    sigma2    sigma3    log2q_req  log2q  log2noise  log2(delta/2)"
    );
    for s in shapes {
        let p = &s.params;
        let [s1, s2, s3] = p.sigmas();
        println!(
            "{:5}  {:5} {:5} {:4} {:4} {:6.2} {:9.4e} {:9.4e} {:9.4e} {:9.2} {:6.2} {:9.2} {:9.2}",
            s.name,
            p.degree(),
            p.dim(),
            p.x_bound(),
            p.y_bound(),
            (p.plaintext_modulus() as f64).log2(),
            s1,
            s2,
            s3,
            p.log2_q_required(),
            p.log2_q(),
            (p.noise_bound() as f64).log2(),
            ((p.delta() / 2) as f64).log2(),
        );
    }
}

fn main() -> cryptonn_fe::Result<()> {
    let o = match options() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let shapes = [
        Shape {
            name: "fwd",
            params: Params::forward_mnist()?,
            slots: o.batch,
            images: o.batch,
        },
        Shape {
            name: "bwd",
            params: Params::backward_mnist(o.batch)?,
            slots: PIXELS,
            images: o.batch,
        },
    ];
    if o.params_only {
        let mut all = shapes.to_vec();
        all.push(Shape {
            name: "bw4k",
            params: Params::backward_mnist(4096)?,
            slots: PIXELS,
            images: 4096,
        });
        print_params(&all);
        return Ok(());
    }
    let mut out = Vec::new();
    let all = rayon::current_num_threads();
    for s in &shapes {
        for threads in [1, all] {
            measure(s, &o, threads, &mut out)?;
        }
    }
    sizes(&shapes, &o, &mut out)?;
    let refs: Vec<(&str, f64)> = out.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    print_results(&refs, o.json);
    Ok(())
}
