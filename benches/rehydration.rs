//! Rehydration cost against stream length, with and without a snapshot, for BENCHMARKS.md
//! ("Event sourcing"): the `event-sourced` backend's own load (`backend::rehydrate::load`) of
//! one product stream of 10, 100 and 1,000 events, from version 1, and from a snapshot taken
//! 5 versions before the end (the mean tail with `snapshot_every = 10`).
//!
//! `cargo bench --bench rehydration -- [LOADS]` measures SQLite (a temporary file) and, when
//! `CQRS_BENCH_TEST_PG` names a server, PostgreSQL (a throwaway schema, dropped afterwards).
//! Prints one line per engine, length and mode: p50, p99 and mean of `LOADS` loads (default
//! 300), each on the same connection, after 20 unmeasured ones.

use std::time::{Duration, Instant};

use cqrs_bench::backend::rehydrate;
use cqrs_bench::db::{schema, Db, DbUrl};
use cqrs_bench::domain::aggregate::evolve_product;
use cqrs_bench::domain::{Event, ProductState};

const LENGTHS: [i64; 3] = [10, 100, 1_000];
/// Events after the snapshot when one is used.
const TAIL: i64 = 5;

fn state(version: i64) -> ProductState {
    ProductState {
        product_id: 0,
        version,
        price_cents: 1_999,
        stock: 1_000_000 - version,
    }
}

/// Writes stream `product-<len>` of `len` events and its snapshot at `len - TAIL`.
async fn fill(db: &Db, len: i64) {
    let stream = format!("product-{len}");
    let mut tx = db.write.begin().await.expect("begin");
    for v in 1..=len {
        let st = ProductState {
            product_id: len,
            ..state(v)
        };
        let e = if v == 1 {
            Event::ProductAdded {
                product_id: len,
                name: format!("product {len}"),
                category_id: 1,
                category_name: "c".into(),
                state: st,
                at: v,
            }
        } else {
            Event::StockAdjusted {
                product_id: len,
                delta: -1,
                at: v,
                product: st,
            }
        };
        sqlx::query(
            "INSERT INTO es_events (stream, version, kind, payload, occurred_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&stream)
        .bind(v)
        .bind(e.kind())
        .bind(e.to_json())
        .bind(v)
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    let at = len - TAIL;
    let snap = Some(ProductState {
        product_id: len,
        ..state(at)
    });
    rehydrate::save_snapshot(&mut tx, &stream, at, &snap)
        .await
        .expect("snapshot");
    tx.commit().await.expect("commit");
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

async fn measure(engine: &str, db: &Db, loads: usize) {
    for len in LENGTHS {
        fill(db, len).await;
    }
    let mut conn = db.read.acquire().await.expect("connection");
    for len in LENGTHS {
        let stream = format!("product-{len}");
        let mut states = Vec::new();
        for snapshots in [false, true] {
            let mut took = Vec::with_capacity(loads);
            let mut last = None;
            for i in 0..loads + 20 {
                let started = Instant::now();
                let l = rehydrate::load(&mut conn, &stream, None, evolve_product, snapshots)
                    .await
                    .expect("load");
                if i >= 20 {
                    took.push(started.elapsed());
                }
                last = Some(l);
            }
            let l = last.expect("loaded");
            assert_eq!(l.version, len);
            states.push(l.state);
            took.sort();
            let mean = took.iter().sum::<Duration>() / took.len() as u32;
            println!(
                "{engine:<10} length {len:>5}  {:<22} events read {:>5}  p50 {:>8.1} µs  p99 {:>8.1} µs  mean {:>8.1} µs",
                if snapshots {
                    "snapshot + tail"
                } else {
                    "from version 1"
                },
                l.events_read,
                quantile(&took, 0.5).as_secs_f64() * 1e6,
                quantile(&took, 0.99).as_secs_f64() * 1e6,
                mean.as_secs_f64() * 1e6
            );
        }
        assert_eq!(states[0], states[1], "a snapshot must not change the state");
    }
}

fn main() {
    let loads: usize = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = DbUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("rehydration.db").display()
        ))
        .expect("sqlite url");
        let db = Db::open(&url, "cqrs_bench", 2).await.expect("open sqlite");
        schema::recreate(&db).await.expect("create tables");
        measure("sqlite", &db, loads).await;
        db.close().await;

        match std::env::var("CQRS_BENCH_TEST_PG") {
            Ok(u) if !u.is_empty() => {
                let url = DbUrl::parse(&u).expect("CQRS_BENCH_TEST_PG");
                let name = format!("bench_rehydration_{}", std::process::id());
                let db = Db::open(&url, &name, 2).await.expect("open postgres");
                schema::recreate(&db).await.expect("create tables");
                measure("postgres", &db, loads).await;
                schema::drop_all(&db).await.expect("drop");
                db.close().await;
            }
            _ => println!("postgres: skipped (set CQRS_BENCH_TEST_PG to measure it)"),
        }
    });
}
