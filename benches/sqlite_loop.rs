//! The client library's own limit on SQLite: one sqlx connection running `user_orders` on the
//! read models in a bare loop, nothing else, for `benches/sqlite-floor.sh`.
//!
//! `cargo bench --bench sqlite_loop -- DB_FILE [SECONDS]` prints `bare sqlx loop: N ops/s`.
//! Users are drawn uniformly from those in the file, as the scenario does.

use std::time::{Duration, Instant};

use cqrs_bench::backend::queries::{user_orders_sql, ReadSide};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

fn main() {
    // `cargo bench` adds `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(file) = args.first() else {
        // A plain `cargo bench` runs every bench target: nothing to measure without a file.
        eprintln!("sqlite_loop: no DB_FILE given, nothing measured (usage: cargo bench --bench sqlite_loop -- DB_FILE [SECONDS])");
        return;
    };
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut conn = SqliteConnectOptions::new()
            .filename(file)
            .read_only(true)
            .connect()
            .await
            .unwrap_or_else(|e| {
                eprintln!("{file}: {e}");
                std::process::exit(2);
            });
        let users: i64 = sqlx::query("SELECT MAX(id) FROM users")
            .fetch_one(&mut conn)
            .await
            .and_then(|r| r.try_get(0))
            .unwrap_or(1)
            .max(1);
        let sql = user_orders_sql(ReadSide::ReadModels);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let (mut ops, mut rows) = (0u64, 0usize);
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        while Instant::now() < end {
            // xorshift: a uniform user, as cheap as the loop can make it.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let user = 1 + (x % users as u64) as i64;
            let got: Vec<(i64, i64, String, i64, i64)> = sqlx::query_as(sql)
                .bind(user)
                .bind(20i64)
                .fetch_all(&mut conn)
                .await
                .expect("query");
            rows += got.len();
            ops += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "bare sqlx loop: {:.0} ops/s ({:.1} µs per op, {:.1} rows per op)",
            ops as f64 / secs,
            secs * 1e6 / ops as f64,
            rows as f64 / ops as f64
        );
    });
}
