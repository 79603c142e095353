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

/// CPU time of the calling thread in seconds, from Linux's
/// `/proc/thread-self/schedstat` (nanoseconds on a CPU); `None` elsewhere.
/// On a shared machine it counts only the time this thread ran.
pub fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Median CPU time of the calling thread over `reps` runs of `f` (at least
/// one run); NaN where [`thread_cpu_seconds`] is unavailable. Meaningful
/// only for work that stays on this thread (e.g. a one-thread rayon pool,
/// measured from inside `install`).
pub fn median_cpu_seconds<T>(reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = thread_cpu_seconds();
            std::hint::black_box(f());
            match (start, thread_cpu_seconds()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            }
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
