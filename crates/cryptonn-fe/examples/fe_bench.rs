//! FE micro-benchmarks: `cargo run --release -p cryptonn-fe --example fe_bench -- --json`.
//!
//! Prints one JSON object of medians. Single-threaded unless the key says
//! otherwise (`batch_decrypt_per_output_us` uses all threads). `modp2048_*`
//! are the RFC 3526 2048-bit group: `encrypt` with an [`Encryptor`]'s
//! fixed-base tables, `decrypt` with a 2¹⁷-entry discrete-log table.

use std::sync::Arc;
use std::time::Instant;

use cryptonn_fe::bench::{median_seconds, print_results};
use cryptonn_fe::feip::{self, Decryptor, Encryptor};
use cryptonn_fe::multiexp::{Engine, vartime_multiscalar_mul_shared_with};
use cryptonn_fe::{DlogConfig, DlogTable, Group, Modp2048, Ristretto255};
use rand::SeedableRng;
use rand::rngs::StdRng;

const N: usize = 784;

fn single_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    pool.install(f)
}

fn pixels(rng: &mut StdRng, n: usize) -> Vec<i64> {
    use rand::RngExt;
    (0..n).map(|_| rng.random_range(0..256)).collect()
}

fn weights(rng: &mut StdRng, n: usize) -> Vec<i64> {
    use rand::RngExt;
    (0..n).map(|_| rng.random_range(-4095..4096)).collect()
}

/// The MODP group (RFC 3526 group 14): one group operation, full-size
/// exponentiations (by an element, by g, by a fixed-base table and the cost
/// of that table), decoding one element, and FEIP over 784 entries.
fn modp2048(
    rng: &mut StdRng,
    x: &[i64],
    y: &[i64],
) -> cryptonn_fe::Result<Vec<(&'static str, f64)>> {
    type M = Modp2048;
    let g = M::generator();
    let h = M::mul_base(&M::scalar_random(rng));
    let adds = 2_000;
    let add =
        median_seconds(11, || (0..adds).fold(g.clone(), |acc, _| M::add(&acc, &h))) / adds as f64;
    let k = M::scalar_random(rng);
    let mul = median_seconds(5, || M::mul(&h, &k));
    let mul_base = median_seconds(5, || M::mul_base(&k));
    let fixed_base = median_seconds(5, || M::fixed_base(&h));
    let fixed = M::fixed_base(&h);
    let mul_fixed = median_seconds(5, || M::mul_fixed(&fixed, &k));
    let bytes = M::element_to_bytes(&h);
    let decode = median_seconds(21, || M::element_from_bytes(&bytes));

    let (msk, mpk) = feip::setup::<M, _>(N, rng)?;
    let encryptor = Encryptor::new(&mpk)?;
    let encrypt = median_seconds(3, || encryptor.encrypt(x, rng));
    let table = Arc::new(DlogTable::<M>::new(DlogConfig::new(1 << 16, 1 << 31))?);
    let key = feip::derive_key(&msk, y)?;
    let ct = encryptor.encrypt(x, rng)?;
    let decrypt = median_seconds(5, || Decryptor::new(table.clone()).decrypt(&key, &ct));
    Ok(vec![
        ("modp2048_add_ns", add * 1e9),
        ("modp2048_mul_ms", mul * 1e3),
        ("modp2048_mul_base_ms", mul_base * 1e3),
        ("modp2048_fixed_base_ms", fixed_base * 1e3),
        ("modp2048_mul_fixed_ms", mul_fixed * 1e3),
        ("modp2048_decode_us", decode * 1e6),
        ("modp2048_encrypt_784_ms", encrypt * 1e3),
        ("modp2048_decrypt_784_ms", decrypt * 1e3),
    ])
}

fn main() -> cryptonn_fe::Result<()> {
    let json = std::env::args().any(|a| a == "--json");
    let mut rng = StdRng::seed_from_u64(7);

    let (table_build, table) = {
        let start = Instant::now();
        let table = DlogTable::<Ristretto255>::new(DlogConfig::default())?;
        (start.elapsed().as_secs_f64(), Arc::new(table))
    };
    let decryptor = Decryptor::new(table.clone());

    let results = single_thread(|| -> cryptonn_fe::Result<Vec<(&str, f64)>> {
        let g = Ristretto255::generator();
        let h = Ristretto255::double(&g);
        let adds = 10_000;
        let group_add = median_seconds(21, || {
            (0..adds).fold(g, |acc, _| Ristretto255::add(&acc, &h))
        }) / adds as f64;

        let (msk, mpk) = feip::setup::<Ristretto255, _>(N, &mut rng)?;
        let encryptor = Encryptor::new(&mpk)?;
        let x = pixels(&mut rng, N);
        let y = weights(&mut rng, N);
        // Includes the wire encoding where the group batches it (Ristretto255).
        // The client's way: many images per call (lane combs stay in
        // cache); one image at a time for comparison.
        let images: Vec<Vec<i64>> = (0..64).map(|_| pixels(&mut rng, N)).collect();
        let encrypt = median_seconds(5, || encryptor.encrypt_many(&images, &mut rng)) / 64.0;
        let encrypt_single = median_seconds(21, || encryptor.encrypt(&x, &mut rng));
        let sample = encryptor.encrypt(&x, &mut rng)?;
        let encode_elementwise = median_seconds(21, || {
            sample
                .elements()
                .iter()
                .map(Ristretto255::element_to_bytes)
                .collect::<Vec<_>>()
        });
        let derive = median_seconds(21, || feip::derive_key(&msk, &y));
        let key = feip::derive_key(&msk, &y)?;
        let ct = encryptor.encrypt(&x, &mut rng)?;
        let decrypt = median_seconds(21, || decryptor.decrypt(&key, &ct));

        let mut out = vec![
            ("group_add_ns", group_add * 1e9),
            ("encrypt_784_ms", encrypt * 1e3),
            ("encrypt_784_single_ms", encrypt_single * 1e3),
            ("encode_784_elementwise_ms", encode_elementwise * 1e3),
            ("derive_key_784_us", derive * 1e6),
            ("decrypt_784_ms", decrypt * 1e3),
        ];
        out.extend(modp2048(&mut rng, &x, &y)?);
        Ok(out)
    })?;

    let (msk, mpk) = feip::setup::<Ristretto255, _>(N, &mut rng)?;
    let xs: Vec<Vec<i64>> = (0..64).map(|_| pixels(&mut rng, N)).collect();
    let cts = Encryptor::new(&mpk)?.encrypt_many(&xs, &mut rng)?;
    let keys = (0..128)
        .map(|_| feip::derive_key(&msk, &weights(&mut rng, N)))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = median_seconds(3, || decryptor.decrypt_batch(&keys, &cts)) / (64.0 * 128.0);

    let engines = single_thread(|| engines(&mut rng));
    let mut all = results;
    all.extend(engines.iter().map(|(k, v)| (k.as_str(), *v)));
    all.push(("batch_decrypt_per_output_us", batch * 1e6));
    all.push(("dlog_table_build_ms", table_build * 1e3));
    all.push(("dlog_table_bytes", table.heap_bytes() as f64));
    all.push(("threads", rayon::current_num_threads() as f64));
    print_results(&all, json);
    Ok(())
}

/// Microseconds per output (wall) of each shared engine on one thread, for the
/// main job's shapes (forward: 784 points, backward: 256; 8-bit keys), the
/// engines interleaved rep by rep so load hits both alike; and the ratio.
fn engines(rng: &mut StdRng) -> Vec<(String, f64)> {
    use rand::RngExt;
    let g = Ristretto255::generator();
    let mut out = Vec::new();
    for (n, h) in [(784usize, 64usize), (784, 128), (256, 64)] {
        let points: Vec<_> = (0..n)
            .map(|_| Ristretto255::vartime_mul_small(&g, rng.random_range(1..1 << 40)))
            .collect();
        let ys: Vec<Vec<i64>> = (0..h)
            .map(|_| (0..n).map(|_| rng.random_range(-127..=127)).collect())
            .collect();
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let engines = [Engine::Signed, Engine::FourRussians];
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..9 {
            for (engine, t) in engines.iter().zip(times.iter_mut()) {
                t.push(median_seconds(1, || {
                    vartime_multiscalar_mul_shared_with::<Ristretto255>(&points, &refs, *engine)
                }));
            }
        }
        let [signed, old] = times.map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2] / h as f64
        });
        out.push((format!("engine_signed_n{n}_h{h}_us"), signed * 1e6));
        out.push((format!("engine_four_russians_n{n}_h{h}_us"), old * 1e6));
        out.push((format!("engine_ratio_n{n}_h{h}"), old / signed));
    }
    out
}
