//! Projector throughput (events/s) on SQLite: rebuilding every read model from the seeded event
//! log with batch sizes 1, 10, 100 and 1000, a "rebuild from zero" with the default batch size,
//! and the pure in-memory fold over the same log as the upper bound. Resetting the read models
//! before each rebuild is not timed.
//!
//! Run it: `cargo bench --bench projector`.

use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};

use cqrs_bench::backend::cqrs_async;
use cqrs_bench::backend::prepare;
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::db::{Db, DbUrl};
use cqrs_bench::projection::event_source::read_log;
use cqrs_bench::projection::fold::fold;
use cqrs_bench::projection::projector::{Projector, ProjectorConfig};
use cqrs_bench::projection::read_store::reset_read_models;
use cqrs_bench::projection::ProjectionName;

const SEED: u64 = 42;

/// About 5k events: one rebuild stays well under a second with large batches.
fn dataset() -> DatasetSpec {
    DatasetSpec {
        categories: 10,
        products: 300,
        users: 300,
        orders: 1_500,
        reviews: 1_000,
        price_changes: 300,
        days: 30,
        extra_product_indexes: 0,
    }
}

/// Resets the read models (not timed), then times one rebuild from the log.
async fn rebuild(db: &Db, config: &ProjectorConfig) -> Duration {
    reset_read_models(db, &ProjectionName::ALL)
        .await
        .expect("reset read models");
    let projector = Projector::new(db.clone(), config.clone());
    let started = Instant::now();
    let applied = projector.catch_up().await.expect("catch up");
    let elapsed = started.elapsed();
    assert!(applied > 0, "the rebuild applied nothing");
    elapsed
}

fn projector(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = DbUrl::parse(&format!(
        "sqlite://{}",
        dir.path().join("projector.db").display()
    ))
    .expect("sqlite url");
    let spec = dataset();
    let (db, log) = rt.block_on(async {
        let (db, _) = prepare(&url, "main", cqrs_async::KIND, SEED, &spec, 4)
            .await
            .expect("seed");
        let log = read_log(&db).await.expect("read log");
        (db, log)
    });
    let events = log.len() as u64;
    assert!(events > 0, "the seeded event log is empty");

    let mut group = c.benchmark_group("projector");
    group
        .throughput(Throughput::Elements(events))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    for batch_size in [1_i64, 10, 100, 1_000] {
        let config = ProjectorConfig {
            batch_size,
            ..Default::default()
        };
        group.bench_with_input(
            BenchmarkId::new("batch", batch_size),
            &config,
            |b, config| {
                b.to_async(&rt).iter_custom(|iters| {
                    let db = &db;
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += rebuild(db, config).await;
                        }
                        total
                    }
                })
            },
        );
    }

    let default = ProjectorConfig::default();
    group.bench_function(
        BenchmarkId::new("rebuild_from_zero", default.batch_size),
        |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (db, config) = (&db, &default);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += rebuild(db, config).await;
                    }
                    total
                }
            })
        },
    );

    group.bench_function("pure_fold", |b| {
        b.iter(|| fold(log.iter().map(|d| &d.event)))
    });
    group.finish();

    rt.block_on(db.close());
    drop(dir);
}

criterion_group!(benches, projector);
criterion_main!(benches);
