//! Helpers shared by the benchmark binaries (`fe_bench`, `step_bench`):
//! medians of wall time and one way to print results.

use std::time::Instant;

/// Median wall time of `reps` runs of `f`, in seconds (at least one run).
pub fn median_seconds<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Prints `results` as one JSON object (values rounded to 3 decimals) or as a table.
pub fn print_results(results: &[(&str, f64)], json: bool) {
    if json {
        let object: serde_json::Map<String, serde_json::Value> = results
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    serde_json::json!((v * 1000.0).round() / 1000.0),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(object));
    } else {
        for (k, v) in results {
            println!("{k:>28}: {v:.3}");
        }
    }
}
