//! The curious server's solvers on small synthetic batches whose answer is
//! known: which equations determine the batch, and whether each attack finds it.

use cryptonn_audit::{
    Equations, Prior, SolverConfig, feasibility, least_squares, linear_mmse, recover,
};

/// A seeded generator (SplitMix64), so every failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn vector(&mut self, len: usize, lo: i64, hi: i64) -> Vec<i64> {
        (0..len).map(|_| self.int(lo, hi)).collect()
    }
}

/// The server's equations for batch `x` (`batch`×`n`) under 8-bit keys:
/// `forward` row-wise keys y with X·y, `gradient` column-wise keys δ with Xᵀ·δ.
fn equations(
    x: &[i64],
    batch: usize,
    n: usize,
    forward: usize,
    gradient: usize,
    rng: &mut Rng,
) -> Equations {
    let forward = (0..forward)
        .map(|_| {
            let y = rng.vector(n, -127, 127);
            let z = (0..batch)
                .map(|b| (0..n).map(|i| x[b * n + i] * y[i]).sum())
                .collect();
            (y, z)
        })
        .collect();
    let gradient = (0..gradient)
        .map(|_| {
            let d = rng.vector(batch, -127, 127);
            let g = (0..n)
                .map(|i| (0..batch).map(|b| d[b] * x[b * n + i]).sum())
                .collect();
            (d, g)
        })
        .collect();
    Equations { forward, gradient }
}

/// `binary` images of only 0s and 255s (vertices of the box), then images
/// of uniform grey levels in 1..=254.
fn batch(binary: usize, grey: usize, n: usize, rng: &mut Rng) -> Vec<i64> {
    let mut x = Vec::new();
    for _ in 0..binary {
        x.extend((0..n).map(|_| 255 * rng.int(0, 1)));
    }
    for _ in 0..grey {
        x.extend(rng.vector(n, 1, 254));
    }
    x
}

fn cfg() -> SolverConfig {
    SolverConfig {
        max_iterations: 20_000,
        tolerance: 1e-6,
    }
}

const N: usize = 24;
const B: usize = 8;

#[test]
fn the_box_alone_pins_down_binary_images() {
    // 18 forward equations leave 6 free dimensions per image: only the box
    // makes a 0/255 image the one solution (Wendel: 1 − P(Bin(23, ½) ≥ 18)).
    let mut rng = Rng(1);
    let x = batch(B, 0, N, &mut rng);
    let eqs = equations(&x, B, N, 18, 0, &mut rng);
    let r = recover(&eqs, B, N, None, &cfg()).unwrap();
    assert_eq!(r.certified, vec![true; B]);
    assert_eq!(cryptonn_audit::quality(&r.pixels, &x, N).exact_images, 1.0);
}

#[test]
fn joint_equations_recover_what_neither_side_does_alone() {
    // Four binary images, determined by 18 forward equations and the box;
    // four grey images, which the forward equations leave 6-dimensional and
    // the 4 gradient equations (of 8 images) do not fix either. Once the
    // binary images are certified and peeled, the 4 gradient equations fix
    // the remaining 4 images.
    let mut rng = Rng(2);
    let x = batch(4, 4, N, &mut rng);
    let eqs = equations(&x, B, N, 18, 4, &mut rng);
    let forward_only = Equations {
        forward: eqs.forward.clone(),
        gradient: Vec::new(),
    };
    let gradient_only = Equations {
        forward: Vec::new(),
        gradient: eqs.gradient.clone(),
    };

    let fwd = recover(&forward_only, B, N, None, &cfg()).unwrap();
    assert_eq!(
        fwd.certified,
        [true, true, true, true, false, false, false, false]
    );
    let grad = recover(&gradient_only, B, N, None, &cfg()).unwrap();
    assert_eq!(grad.certified, vec![false; B]);
    assert!(cryptonn_audit::quality(&grad.pixels, &x, N).exact_images < 1.0);

    let joint = recover(&eqs, B, N, None, &cfg()).unwrap();
    assert_eq!(joint.certified, vec![true; B]);
    let q = cryptonn_audit::quality(&joint.pixels, &x, N);
    assert_eq!((q.exact_images, q.mean_psnr_db), (1.0, 99.0));
    assert_eq!(feasibility(&eqs, B, N, &cfg()).unwrap(), joint.pixels);
}

#[test]
fn gradient_equations_of_full_rank_certify_the_whole_batch() {
    let mut rng = Rng(3);
    let x = batch(2, 6, N, &mut rng);
    let eqs = equations(&x, B, N, 0, B, &mut rng);
    let r = recover(&eqs, B, N, None, &cfg()).unwrap();
    assert_eq!(r.certified, vec![true; B]);
    assert_eq!(r.pixels, x.iter().map(|&v| v as f64).collect::<Vec<_>>());
}

#[test]
fn lmmse_without_equations_is_the_prior_mean() {
    let mut rng = Rng(4);
    let public = batch(0, 50, N, &mut rng);
    let prior = Prior::from_images(&public, N).unwrap();
    let guess = linear_mmse(&Equations::default(), 3, N, &prior).unwrap();
    for image in guess.chunks(N) {
        assert_eq!(image, prior.mean());
    }
}

#[test]
fn lmmse_with_keys_of_full_rank_is_exact() {
    let mut rng = Rng(5);
    // A degenerate prior (pixel 0 always black) must not matter.
    let mut public = batch(0, 50, N, &mut rng);
    public.iter_mut().step_by(N).for_each(|p| *p = 0);
    let prior = Prior::from_images(&public, N).unwrap();
    let x = batch(1, 3, N, &mut rng);
    let eqs = equations(&x, 4, N, N + 2, 0, &mut rng); // two keys dependent
    let guess = linear_mmse(&eqs, 4, N, &prior).unwrap();
    for (g, &t) in guess.iter().zip(&x) {
        assert!((g - t as f64).abs() < 1e-6, "{g} vs {t}");
    }
}

#[test]
fn lmmse_with_some_equations_satisfies_them() {
    let mut rng = Rng(6);
    let public = batch(0, 200, N, &mut rng);
    let prior = Prior::from_images(&public, N).unwrap();
    let x = batch(0, 2, N, &mut rng);
    let eqs = equations(&x, 2, N, 5, 0, &mut rng);
    let guess = linear_mmse(&eqs, 2, N, &prior).unwrap();
    // Grey images and a prior of grey images: the unclipped estimate is in
    // the box, so it meets every forward equation.
    for (y, z) in &eqs.forward {
        for b in 0..2 {
            let dot: f64 = (0..N).map(|i| guess[b * N + i] * y[i] as f64).sum();
            assert!((dot - z[b] as f64).abs() < 1e-6 * z[b].abs().max(1) as f64);
        }
    }
}

#[test]
fn fista_converges_to_the_truth_with_full_rank_forward_keys() {
    let mut rng = Rng(7);
    let x = batch(3, 5, N, &mut rng);
    let eqs = equations(&x, B, N, N, 2, &mut rng);
    let guess = least_squares(&eqs, B, N, &cfg()).unwrap();
    let q = cryptonn_audit::quality(&guess, &x, N);
    assert_eq!(q.exact_images, 1.0);
    assert!(q.max_pixel_error < 0.05, "{q:?}");
}

#[test]
fn feasibility_from_the_lmmse_guess_recovers_the_joint_batch() {
    let mut rng = Rng(8);
    let public = batch(10, 40, N, &mut rng);
    let prior = Prior::from_images(&public, N).unwrap();
    let x = batch(4, 4, N, &mut rng);
    let eqs = equations(&x, B, N, 18, 4, &mut rng);
    let start = linear_mmse(&eqs, B, N, &prior).unwrap();
    let guess = cryptonn_audit::feasibility_from(&eqs, B, N, &start, &cfg()).unwrap();
    assert_eq!(cryptonn_audit::quality(&guess, &x, N).exact_images, 1.0);
}

#[test]
fn rejects_equations_that_do_not_fit_the_batch() {
    let eqs = Equations {
        forward: vec![(vec![1; N], vec![0; B - 1])],
        gradient: Vec::new(),
    };
    for result in [
        feasibility(&eqs, B, N, &cfg()),
        least_squares(&eqs, B, N, &cfg()),
        linear_mmse(&eqs, B, N, &Prior::from_images(&[0; N], N).unwrap()),
    ] {
        assert!(matches!(
            result,
            Err(cryptonn_audit::Error::Shape {
                expected: B,
                got: 7,
                ..
            })
        ));
    }
}

/// Real size, on MNIST: one training batch of 256 under 128 forward and 110
/// gradient equations of random 8-bit keys, then the projection mode (K
/// forward equations only). Prints times and quality. Slow in the dev profile:
/// `cargo test --release --test attack -- --ignored --nocapture`.
#[test]
#[ignore = "timing on MNIST; run in release"]
fn real_size_batch_timing() {
    use cryptonn_mnist::data::{Dataset, Split};
    use std::path::Path;
    use std::time::Instant;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = Dataset::load(&dir, Split::Train, 10).unwrap();
    let test = Dataset::load(&dir, Split::Test, 10).unwrap();
    let (b, n) = (256, train.features);
    let x = train.pixels(&(0..b).collect::<Vec<_>>());
    let t = Instant::now();
    let prior = Prior::from_images(&test.pixels(&(0..test.len()).collect::<Vec<_>>()), n).unwrap();
    println!(
        "prior from {} test images: {:.2} s",
        test.len(),
        t.elapsed().as_secs_f64()
    );
    let cfg = SolverConfig::default();
    let report = |name: &str, guess: &[f64], t: Instant| {
        let q = cryptonn_audit::quality(guess, &x, n);
        println!(
            "{name:<40} {:7.2} s  PSNR {:5.1} dB  exact images {:5.1}%  exact pixels {:5.1}%  within ±16 {:5.1}%",
            t.elapsed().as_secs_f64(),
            q.mean_psnr_db,
            100.0 * q.exact_images,
            100.0 * q.exact_pixels,
            100.0 * q.within_16
        );
    };
    let mut rng = Rng(11);
    let eqs = equations(&x, b, n, 128, 110, &mut rng);
    let t = Instant::now();
    let r = recover(&eqs, b, n, None, &cfg).unwrap();
    report(
        &format!("(a) feasibility: {} rounds, {} its", r.rounds, r.iterations),
        &r.pixels,
        t,
    );
    let t = Instant::now();
    let lmmse = linear_mmse(&eqs, b, n, &prior).unwrap();
    report("(b) linear MMSE", &lmmse, t);
    let t = Instant::now();
    let r = recover(&eqs, b, n, Some(&lmmse), &cfg).unwrap();
    report(
        &format!(
            "(d) LMMSE then feasibility: {} rounds, {} its",
            r.rounds, r.iterations
        ),
        &r.pixels,
        t,
    );
    let t = Instant::now();
    let ls = least_squares(&eqs, b, n, &cfg).unwrap();
    report("(c) least squares (FISTA)", &ls, t);
    // More gradient equations than the default step gives: past the phase
    // transition, where certify-and-peel recovers the batch.
    let eqs = equations(&x, b, n, 128, 160, &mut rng);
    let t = Instant::now();
    let r = recover(&eqs, b, n, None, &cfg).unwrap();
    report(
        &format!(
            "(a) 128 + 160 eqs: {} rounds, {} its",
            r.rounds, r.iterations
        ),
        &r.pixels,
        t,
    );
    for k in [16, 32, 64, 128] {
        let eqs = equations(&x, b, n, k, 0, &mut rng);
        let t = Instant::now();
        let lmmse = linear_mmse(&eqs, b, n, &prior).unwrap();
        report(&format!("projection K={k}: (b) LMMSE"), &lmmse, t);
        let t = Instant::now();
        let r = recover(&eqs, b, n, Some(&lmmse), &cfg).unwrap();
        report(
            &format!(
                "projection K={k}: (d) {} rounds, {} its",
                r.rounds, r.iterations
            ),
            &r.pixels,
            t,
        );
    }
}
