//! Pacer precision alone, no database: `cargo bench --bench pacer_probe -- RATE SECONDS`
//! prints how late ops would start (p50/p99/max, µs) and the pacer's window.
use std::time::{Duration, Instant};

use cqrs_bench::workload::pacer::Pacer;

fn main() {
    // `cargo bench` adds `--bench`; only numbers are ours.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200.0);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let pacer = Pacer::shared().expect("pacer thread");
        let start = Instant::now() + Duration::from_millis(10);
        let n = (rate * secs) as u64;
        let mut late = Vec::with_capacity(n as usize);
        for i in 0..n {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            pacer.sleep_until(at).await;
            late.push(Instant::now().saturating_duration_since(at).as_micros() as u64);
        }
        late.sort();
        let q = |p: f64| late[((late.len() as f64 * p) as usize).min(late.len() - 1)];
        println!(
            "rate {rate}/s: late p50 {} µs, p99 {} µs, max {} µs; window {:?}",
            q(0.5),
            q(0.99),
            late[late.len() - 1],
            pacer.window()
        );
    });
}
