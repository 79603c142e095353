//! scratch (to be deleted)
#![allow(missing_docs)]
use cryptonn::attack::{self, Equations, SolverConfig, least_squares, recover};
use cryptonn::mnist::data::{Dataset, Split};
use std::path::Path;
use std::time::Instant;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn int(&mut self, lo: i64, hi: i64) -> i64 { lo + (self.next() % (hi - lo + 1) as u64) as i64 }
    fn vector(&mut self, len: usize, lo: i64, hi: i64) -> Vec<i64> { (0..len).map(|_| self.int(lo, hi)).collect() }
}
fn equations(x: &[i64], batch: usize, n: usize, forward: usize, gradient: usize, rng: &mut Rng) -> Equations {
    let forward = (0..forward).map(|_| { let y = rng.vector(n, -127, 127);
        let z = (0..batch).map(|b| (0..n).map(|i| x[b * n + i] * y[i]).sum()).collect(); (y, z) }).collect();
    let gradient = (0..gradient).map(|_| { let d = rng.vector(batch, -127, 127);
        let g = (0..n).map(|i| (0..batch).map(|b| d[b] * x[b * n + i]).sum()).collect(); (d, g) }).collect();
    Equations { forward, gradient }
}

#[test]
#[ignore]
fn scratch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train = Dataset::load(&dir, Split::Train, 10).unwrap();
    let (b, n) = (256, train.features);
    let x = train.pixels(&(0..b).collect::<Vec<_>>());
    let fw: usize = std::env::var("FW").unwrap_or("128".into()).parse().unwrap();
    let gr: usize = std::env::var("GR").unwrap_or("110".into()).parse().unwrap();
    let tol: f64 = std::env::var("TOL").unwrap_or("1e-5".into()).parse().unwrap();
    let its: usize = std::env::var("ITS").unwrap_or("20000".into()).parse().unwrap();
    let mut rng = Rng(11);
    let eqs = equations(&x, b, n, fw, gr, &mut rng);
    let cfg = SolverConfig { max_iterations: its, tolerance: tol };
    let t = Instant::now();
    let r = recover(&eqs, b, n, None, &cfg).unwrap();
    let q = attack::quality(&r.pixels, &x, n);
    println!("DR fw={fw} gr={gr} tol={tol}: {:.2}s rounds {} its {} certified {} {:?}", t.elapsed().as_secs_f64(), r.rounds, r.iterations, r.certified.iter().filter(|&&c| c).count(), q);
    if std::env::var("LS").is_ok() {
        let t = Instant::now();
        let ls = least_squares(&eqs, b, n, &cfg).unwrap();
        println!("LS: {:.2}s {:?}", t.elapsed().as_secs_f64(), attack::quality(&ls, &x, n));
    }
}
