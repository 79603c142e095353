//! Lane prototype micro-benchmarks (stage 1 of the SIMD study):
//! `cargo run --release -p cryptonn-fe --example lanes_bench -- --json`.
//!
//! Prints one JSON object of medians of wall time (the machine is shared: compare keys from one run), in nanoseconds
//! per point operation (per lane for the lane code), plus the ratios against
//! dalek. Single-threaded.
//!
//! `modp2048_*` keys: the 2048-bit MODP group's modular product (ns), comb
//! exponentiation by a 2047-bit exponent and its table build (µs, per lane
//! for the lanes; `_t{teeth}b{blocks}` per comb geometry), and FEIP
//! decryption's multi-product over n = 784 or 256 elements with 64 dense 8-bit
//! keys (µs per ciphertext and key; `_c{C}` per chunk width), each beside
//! crypto-bigint through the group API.

use cryptonn_fe::bench::{median_seconds, print_results};
use cryptonn_fe::group::{Group, Modp2048, ModpParams, Rfc3526Group14};
use cryptonn_fe::lanes::edwards::{Cached, Extended};
use cryptonn_fe::lanes::ifma::{Ifma, WIDE_COMB_BLOCKS, WIDE_COMB_TEETH, WideModulus};
use cryptonn_fe::lanes::ristretto::{vartime_decode, vartime_encode};
use cryptonn_fe::multiexp::{Engine, vartime_multiscalar_mul_shared_with};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const REPS: usize = 21;
/// Accumulators in the engine-shaped runs: keys × bit planes.
const ACCS: usize = 512;
/// Table entries the accumulators draw from.
const TABLE: usize = 256;

fn points(rng: &mut StdRng, n: usize) -> Vec<RistrettoPoint> {
    (0..n)
        .map(|_| {
            let b: [u8; 32] = core::array::from_fn(|_| rng.random());
            RistrettoPoint::mul_base(&Scalar::from_bytes_mod_order(b))
        })
        .collect()
}

fn ns_per(seconds: f64, ops: usize) -> f64 {
    seconds * 1e9 / ops as f64
}

/// dalek: a chain of dependent additions, 8 independent streams, and the engine pattern.
fn dalek_adds(pts: &[RistrettoPoint], idx: &[usize]) -> Vec<(&'static str, f64)> {
    let n = 4000;
    let (g, h) = (pts[0], pts[1]);
    let chain = median_seconds(REPS, || (0..n).fold(g, |acc, _| acc + h));
    let streams = median_seconds(REPS, || {
        let mut acc = [g; 8];
        for _ in 0..n / 8 {
            for a in acc.iter_mut() {
                *a += h;
            }
        }
        acc
    });
    let table = &pts[..TABLE];
    let mut accs = vec![RistrettoPoint::identity(); ACCS];
    let engine = median_seconds(REPS, || {
        for (a, &i) in accs.iter_mut().zip(idx) {
            *a += table[i];
        }
    });
    vec![
        ("dalek_add_chain_ns", ns_per(chain, n)),
        ("dalek_add_8streams_ns", ns_per(streams, n)),
        ("dalek_add_engine_ns", ns_per(engine, ACCS)),
    ]
}

/// Our scalar code: the same three shapes.
fn scalar_adds(ext: &[Extended], idx: &[usize]) -> Vec<(&'static str, f64)> {
    let n = 4000;
    let (g, h) = (ext[0], ext[1].to_cached());
    let chain = median_seconds(REPS, || (0..n).fold(g, |acc, _| acc.add(&h)));
    let streams = median_seconds(REPS, || {
        let mut acc = [g; 8];
        for _ in 0..n / 8 {
            for a in acc.iter_mut() {
                *a = a.add(&h);
            }
        }
        acc
    });
    let table: Vec<Cached> = ext[..TABLE].iter().map(Extended::to_cached).collect();
    let mut accs = vec![Extended::IDENTITY; ACCS];
    let engine = median_seconds(REPS, || {
        for (a, &i) in accs.iter_mut().zip(idx) {
            *a = a.add(&table[i]);
        }
    });
    vec![
        ("scalar_add_chain_ns", ns_per(chain, n)),
        ("scalar_add_8streams_ns", ns_per(streams, n)),
        ("scalar_add_engine_ns", ns_per(engine, ACCS)),
        (
            "scalar_double_ns",
            ns_per(
                median_seconds(REPS, || (0..n).fold(g, |a, _| a.double())),
                n,
            ),
        ),
    ]
}

/// The lanes: in-register chain, one call per lane addition, and the engine
/// pattern (addends gathered from a scalar table, packed per addition).
fn lane_adds(v: Ifma, ext: &[Extended], idx: &[usize]) -> Vec<(&'static str, f64)> {
    let n = 500;
    let p = v.pack_extended(&core::array::from_fn(|l| ext[l]));
    let q = v.to_cached(&v.pack_extended(&core::array::from_fn(|l| ext[8 + l])));
    let chain = median_seconds(REPS, || v.add_chain(&p, &q, n));
    let calls = median_seconds(REPS, || (0..n).fold(p, |acc, _| v.add(&acc, &q)));
    let dbl = median_seconds(REPS, || (0..n).fold(p, |acc, _| v.double(&acc)));
    let table: Vec<Cached> = ext[..TABLE].iter().map(Extended::to_cached).collect();
    let groups: Vec<[u32; 8]> = idx
        .chunks_exact(8)
        .map(|c| core::array::from_fn(|l| c[l] as u32))
        .collect();
    let mut accs = vec![v.pack_extended(&[Extended::IDENTITY; 8]); ACCS / 8];
    let engine = median_seconds(REPS, || v.accumulate(&mut accs, &table, &groups));
    let lane_table: Vec<_> = table
        .chunks_exact(8)
        .map(|c| v.pack_cached(&core::array::from_fn(|l| c[l])))
        .collect();
    let lane_idx: Vec<u32> = idx
        .iter()
        .take(ACCS / 8)
        .map(|&i| (i % lane_table.len()) as u32)
        .collect();
    let lanewise = median_seconds(REPS, || {
        for _ in 0..8 {
            v.accumulate_lanewise(&mut accs, &lane_table, &lane_idx);
        }
    });
    let pack = median_seconds(REPS, || {
        for i in 0..n {
            std::hint::black_box(v.pack_cached(&core::array::from_fn(|l| table[(i + l) % TABLE])));
        }
    });
    vec![
        ("lanes_add_chain_ns", ns_per(chain, 8 * n)),
        ("lanes_add_call_ns", ns_per(calls, 8 * n)),
        ("lanes_add_engine_gather_ns", ns_per(engine, ACCS)),
        ("lanes_add_engine_lanewise_ns", ns_per(lanewise, 8 * ACCS)),
        ("lanes_double_ns", ns_per(dbl, 8 * n)),
        ("lanes_pack_cached_ns", ns_per(pack, 8 * n)),
    ]
}

/// Decoding and encoding per point: dalek, our scalar code, our lanes.
fn codecs(v: Option<Ifma>, pts: &[RistrettoPoint], ext: &[Extended]) -> Vec<(&'static str, f64)> {
    let bytes: Vec<[u8; 32]> = pts.iter().map(|p| p.compress().to_bytes()).collect();
    let n = bytes.len();
    let dalek = median_seconds(REPS, || {
        bytes
            .iter()
            .filter_map(|b| CompressedRistretto(*b).decompress())
            .count()
    });
    let ours = median_seconds(REPS, || {
        bytes.iter().filter_map(|b| vartime_decode(b).ok()).count()
    });
    let compress = median_seconds(REPS, || {
        pts.iter()
            .map(|p| p.compress().to_bytes()[0])
            .fold(0u8, |a, b| a ^ b)
    });
    let batch = median_seconds(REPS, || {
        RistrettoPoint::double_and_compress_batch(pts).len()
    });
    let encode = median_seconds(REPS, || {
        ext.iter()
            .map(|p| vartime_encode(p)[0])
            .fold(0u8, |a, b| a ^ b)
    });
    let mut out = vec![
        ("dalek_decompress_ns", ns_per(dalek, n)),
        ("scalar_decode_ns", ns_per(ours, n)),
        ("dalek_compress_ns", ns_per(compress, n)),
        ("dalek_double_and_compress_batch_ns", ns_per(batch, n)),
        ("scalar_encode_ns", ns_per(encode, n)),
    ];
    if let Some(v) = v {
        let groups: Vec<[[u8; 32]; 8]> = bytes
            .chunks_exact(8)
            .map(|c| core::array::from_fn(|l| c[l]))
            .collect();
        let lanes = median_seconds(REPS, || {
            groups
                .iter()
                .map(|g| v.vartime_decode_masked(g).1.count_ones())
                .sum::<u32>()
        });
        out.push(("lanes_decode_ns", ns_per(lanes, 8 * groups.len())));
        let packed: Vec<_> = ext
            .chunks_exact(8)
            .map(|c| v.pack_extended(&core::array::from_fn(|l| c[l])))
            .collect();
        let encode = median_seconds(REPS, || {
            packed
                .iter()
                .map(|p| v.vartime_encode(p)[0][0])
                .fold(0u8, |a, b| a ^ b)
        });
        let double_encode = median_seconds(REPS, || {
            packed
                .iter()
                .map(|p| v.vartime_encode(&v.double(p))[0][0])
                .fold(0u8, |a, b| a ^ b)
        });
        out.push(("lanes_encode_ns", ns_per(encode, 8 * packed.len())));
        out.push((
            "lanes_double_and_encode_ns",
            ns_per(double_encode, 8 * packed.len()),
        ));
    }
    out
}

/// The 2048-bit MODP group's modular products: crypto-bigint through the
/// group API (one `ConstMontyForm` product per `add`), and the lanes (per
/// product, per lane: one call gives eight).
fn modp_products(v: Option<Ifma>, rng: &mut StdRng) -> Vec<(&'static str, f64)> {
    let n = 2000;
    let g = Modp2048::generator();
    let (a, b) = (
        Modp2048::vartime_mul_small(&g, rng.random_range(1..1 << 40)),
        Modp2048::vartime_mul_small(&g, rng.random_range(1..1 << 40)),
    );
    let scalar = median_seconds(REPS, || {
        (0..n).fold(a.clone(), |x, _| Modp2048::add(&x, &b))
    });
    let mut out = vec![("modp2048_scalar_mul_ns", ns_per(scalar, n))];
    let Some(v) = v else { return out };
    let p: Vec<u64> = Rfc3526Group14::context().p().iter_u64_digits().collect();
    let Some(m) = WideModulus::<40>::new(&p) else {
        return out;
    };
    // Timing does not depend on the values: any words below p will do.
    let words: [[u64; 32]; 8] = core::array::from_fn(|_| {
        let mut w: [u64; 32] = core::array::from_fn(|_| rng.random());
        w[31] >>= 1;
        w
    });
    let (x, y) = (v.wide_pack(&m, &words), v.wide_pack(&m, &words));
    out.extend(modp_combs(v, &m, &x, rng));
    out.extend(modp_multiproducts(v, &m, rng));
    let n = 500;
    let mul = median_seconds(REPS, || (0..n).fold(x, |acc, _| v.wide_mul(&m, &acc, &y)));
    let sqr = median_seconds(REPS, || (0..n).fold(x, |acc, _| v.wide_square(&m, &acc)));
    let pack = median_seconds(REPS, || v.wide_pack(&m, &words));
    let unpack = median_seconds(REPS, || v.wide_unpack::<40, 32>(&m, &x));
    out.extend([
        ("modp2048_lane_mul_ns", ns_per(mul, 8 * n)),
        ("modp2048_lane_square_ns", ns_per(sqr, 8 * n)),
        ("modp2048_lane_pack_ns", ns_per(pack, 8)),
        ("modp2048_lane_unpack_ns", ns_per(unpack, 8)),
    ]);
    out
}

fn us_per(seconds: f64, ops: usize) -> f64 {
    seconds * 1e6 / ops as f64
}

/// Fixed-base exponentiations by 2047-bit exponents: crypto-bigint's comb
/// through the group API, and the lane comb for a few geometries (per
/// exponentiation, per lane), with the tables' build times.
fn modp_combs(
    v: Ifma,
    m: &WideModulus<40>,
    bases: &cryptonn_fe::lanes::ifma::WideX8<40>,
    rng: &mut StdRng,
) -> Vec<(&'static str, f64)> {
    let reps = 5;
    let g = Modp2048::generator();
    let k = Modp2048::scalar_random(rng);
    let build = median_seconds(reps, || Modp2048::fixed_base(&g));
    let table = Modp2048::fixed_base(&g);
    let pow = median_seconds(reps, || Modp2048::mul_fixed(&table, &k));
    let mut out = vec![
        ("modp2048_scalar_comb_pow_us", us_per(pow, 1)),
        ("modp2048_scalar_comb_build_us", us_per(build, 1)),
    ];
    let exps: [[u64; 32]; 8] = core::array::from_fn(|_| {
        let mut w: [u64; 32] = core::array::from_fn(|_| rng.random());
        w[31] >>= 1;
        w
    });
    let geometries = [
        (6, 2),
        (4, 4),
        (5, 2),
        (5, 4),
        (6, 3),
        (7, 2),
        (4, 8),
        (5, 6),
        (5, 8),
        (4, 16),
    ];
    for (teeth, blocks) in geometries {
        let build = median_seconds(reps, || v.wide_comb_with(m, bases, teeth, blocks));
        let comb = v.wide_comb_with(m, bases, teeth, blocks);
        let pow = median_seconds(reps, || v.wide_comb_pow(&comb, &exps));
        let key = |what: &str| -> &'static str {
            Box::leak(format!("modp2048_lane_comb_{what}_t{teeth}b{blocks}").into_boxed_str())
        };
        out.push((key("pow_us"), us_per(pow, 8)));
        out.push((key("build_us_per_lane"), us_per(build, 8)));
        if (teeth, blocks) == (WIDE_COMB_TEETH, WIDE_COMB_BLOCKS) {
            out.push(("modp2048_lane_comb_pow_us", us_per(pow, 8)));
            out.push(("modp2048_lane_comb_build_us_per_lane", us_per(build, 8)));
        }
    }
    out
}

/// FEIP decryption's Πᵢ ctᵢ^(yⱼ,ᵢ) for H = 64 dense 8-bit keys over n
/// elements, per output (one ciphertext and key): the scalar four-Russians
/// engine through the group API on one ciphertext, the lanes on eight.
fn modp_multiproducts(v: Ifma, m: &WideModulus<40>, rng: &mut StdRng) -> Vec<(&'static str, f64)> {
    let (reps, keys) = (3, 64);
    let g = Modp2048::generator();
    let mut out = Vec::new();
    for n in [784usize, 256] {
        let ys: Vec<Vec<i64>> = (0..keys)
            .map(|_| (0..n).map(|_| rng.random_range(-127..=127)).collect())
            .collect();
        let refs: Vec<&[i64]> = ys.iter().map(Vec::as_slice).collect();
        let points: Vec<_> = (0..n)
            .map(|_| Modp2048::vartime_mul_small(&g, rng.random_range(1..1 << 40)))
            .collect();
        let scalar = median_seconds(reps, || {
            vartime_multiscalar_mul_shared_with::<Modp2048>(&points, &refs, Engine::FourRussians)
        });
        let lanes: Vec<_> = (0..n)
            .map(|_| {
                let words: [[u64; 32]; 8] = core::array::from_fn(|_| {
                    let mut w: [u64; 32] = core::array::from_fn(|_| rng.random());
                    w[31] >>= 1;
                    w
                });
                v.wide_pack(m, &words)
            })
            .collect();
        let key = |what: String| -> &'static str { Box::leak(what.into_boxed_str()) };
        out.push((
            key(format!("modp2048_scalar_multiproduct_us_per_output_n{n}")),
            us_per(scalar, keys),
        ));
        let chunks: &[Option<usize>] = if n == 784 {
            &[None, Some(6), Some(7), Some(8)]
        } else {
            &[None]
        };
        for &chunk in chunks {
            let lane = median_seconds(reps, || {
                v.wide_vartime_multiproduct_with::<40, 32>(m, &lanes, &refs, chunk)
            });
            let suffix = chunk.map_or(String::new(), |c| format!("_c{c}"));
            out.push((
                key(format!(
                    "modp2048_lane_multiproduct_us_per_output_n{n}{suffix}"
                )),
                us_per(lane, 8 * keys),
            ));
        }
    }
    out
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut rng = StdRng::seed_from_u64(7);
    let pts = points(&mut rng, TABLE);
    let ext: Vec<Extended> = pts
        .iter()
        .filter_map(|p| vartime_decode(&p.compress().to_bytes()).ok())
        .collect();
    let idx: Vec<usize> = (0..ACCS).map(|_| rng.random_range(0..TABLE)).collect();
    let ifma = Ifma::detect();
    let mut results = dalek_adds(&pts, &idx);
    results.extend(scalar_adds(&ext, &idx));
    if let Some(v) = ifma {
        results.extend(lane_adds(v, &ext, &idx));
    }
    results.extend(codecs(ifma, &pts, &ext));
    results.extend(modp_products(ifma, &mut rng));
    let get = |k: &str| {
        results
            .iter()
            .find(|(n, _)| *n == k)
            .map_or(f64::NAN, |r| r.1)
    };
    let ratios = [
        (
            "ratio_dalek_chain_over_lanes_chain",
            get("dalek_add_chain_ns") / get("lanes_add_chain_ns"),
        ),
        (
            "ratio_dalek_engine_over_lanes_gather",
            get("dalek_add_engine_ns") / get("lanes_add_engine_gather_ns"),
        ),
        (
            "ratio_dalek_engine_over_lanes_lanewise",
            get("dalek_add_engine_ns") / get("lanes_add_engine_lanewise_ns"),
        ),
        (
            "ratio_dalek_engine_over_scalar_engine",
            get("dalek_add_engine_ns") / get("scalar_add_engine_ns"),
        ),
        (
            "ratio_dalek_decompress_over_lanes_decode",
            get("dalek_decompress_ns") / get("lanes_decode_ns"),
        ),
        (
            "ratio_dalek_decompress_over_scalar_decode",
            get("dalek_decompress_ns") / get("scalar_decode_ns"),
        ),
        (
            "ratio_modp2048_scalar_mul_over_lane_mul",
            get("modp2048_scalar_mul_ns") / get("modp2048_lane_mul_ns"),
        ),
        (
            "ratio_modp2048_scalar_comb_over_lane_comb",
            get("modp2048_scalar_comb_pow_us") / get("modp2048_lane_comb_pow_us"),
        ),
        (
            "ratio_modp2048_scalar_over_lane_multiproduct_n784",
            get("modp2048_scalar_multiproduct_us_per_output_n784")
                / get("modp2048_lane_multiproduct_us_per_output_n784"),
        ),
    ];
    results.extend(ratios);
    results.push(("ifma", if ifma.is_some() { 1.0 } else { 0.0 }));
    print_results(&results, json);
}
