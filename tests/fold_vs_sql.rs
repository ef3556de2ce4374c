//! The pure fold (the oracle) and the SQL applier agree on random event sequences, applied
//! in random batch sizes (issue [core] 5).

mod common;

use common::*;
use cqrs_bench::backend::cqrs_async;
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::db::DbUrl;
use cqrs_bench::domain::CommandKind;
use cqrs_bench::projection::event_source::read_log;
use cqrs_bench::projection::fold::fold;
use cqrs_bench::projection::read_store::reset_read_models;
use cqrs_bench::projection::sql::{apply_batch, Guard};
use cqrs_bench::projection::truth::{load, Source};
use cqrs_bench::projection::ProjectionName;
use cqrs_bench::verify::VerifyReport;
use cqrs_bench::workload::keys::KeyDist;
use cqrs_bench::workload::mix::{MixSpec, OpStream};
use proptest::prelude::*;

fn tiny() -> DatasetSpec {
    DatasetSpec {
        categories: 3,
        products: 15,
        users: 10,
        orders: 20,
        reviews: 20,
        price_changes: 5,
        days: 3,
        extra_product_indexes: 0,
    }
}

/// Runs `commands` random commands through the async backend (no projector), then rebuilds
/// the read models with the SQL applier from the log in batches of the given sizes and
/// compares with the fold of the same log and with the truth.
async fn check(url: DbUrl, schema: String, seed: u64, commands: u64, batches: Vec<usize>) {
    let spec = tiny();
    let b = open_backend(&url, &schema, cqrs_async::KIND, seed, &spec, false).await;
    let mix = MixSpec {
        writes: CommandKind::ALL.iter().map(|k| (*k, 1.0)).collect(),
        product_keys: KeyDist::Zipf { exponent: 1.0 },
        ..MixSpec::default()
    };
    let stream = OpStream::new(seed, &spec, &mix);
    for i in 0..commands {
        let _ = b.execute(&stream.write_op(i).unwrap()).await;
    }
    let log = read_log(&b.db).await.unwrap();
    let oracle = fold(log.iter().map(|d| &d.event));

    reset_read_models(&b.db, &ProjectionName::ALL)
        .await
        .unwrap();
    let mut conn = b.db.write.acquire().await.unwrap();
    let mut rest = &log[..];
    let mut k = 0;
    while !rest.is_empty() {
        let n = batches[k % batches.len()].clamp(1, rest.len());
        let (batch, tail) = rest.split_at(n);
        let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
        apply_batch(&mut tx, batch, &ProjectionName::ALL, Guard::Ledger)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        rest = tail;
        k += 1;
    }
    let sql_state = load(&mut conn, Source::ReadTables).await.unwrap();
    let truth = load(&mut conn, Source::Truth).await.unwrap();
    drop(conn);
    let vs_oracle = VerifyReport::compare(&sql_state, &oracle);
    assert_eq!(vs_oracle.mismatches, 0, "SQL vs fold: {vs_oracle:?}");
    let vs_truth = VerifyReport::compare(&oracle, &truth);
    assert_eq!(vs_truth.mismatches, 0, "fold vs truth: {vs_truth:?}");
    if b.db.is_pg() {
        cleanup(&b.db).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn fold_and_sql_agree_on_sqlite(seed in 0u64..1_000_000, commands in 0u64..150,
                                    batches in prop::collection::vec(1usize..60, 1..5)) {
        let (_dir, url) = sqlite_url("fold");
        runtime().block_on(check(url, "cqrs_bench".into(), seed, commands, batches));
    }

    #[test]
    fn fold_and_sql_agree_on_postgres(seed in 0u64..1_000_000, commands in 0u64..150,
                                      batches in prop::collection::vec(1usize..60, 1..5)) {
        if let Some(url) = pg_url("fold_and_sql_agree_on_postgres") {
            runtime().block_on(check(url, unique_schema("fold"), seed, commands, batches));
        }
    }
}
