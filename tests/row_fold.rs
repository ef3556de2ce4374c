//! A folded batch (`db::row_fold`) leaves on PostgreSQL exactly what the same rows applied one
//! after another leave (`db::row_triggers`): random batches with repeated keys, versions out of
//! order and tied, NULLs, text with quotes, and inserts that collide, each applied both ways in
//! a transaction rolled back after, the tables compared row by row.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use cqrs_bench::db::row_fold::RowFold;
use cqrs_bench::db::row_triggers::{column_ref, RowTriggers};
use cqrs_bench::db::sql::Param;
use cqrs_bench::db::Engine;
use proptest::prelude::*;
use sqlx::{Connection, Executor, Row};

const TABLES: [&str; 4] = ["items", "counters", "daily", "notes"];

const DDL: &str = "
CREATE TABLE items (id BIGINT PRIMARY KEY, owner BIGINT, note TEXT, version BIGINT NOT NULL);
CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT, m BIGINT);
CREATE TABLE daily (day BIGINT PRIMARY KEY, n BIGINT NOT NULL);
CREATE TABLE notes (id BIGINT, body TEXT)";

const SEED: &str = "
INSERT INTO items VALUES (100, 1, 'a', 3), (101, 2, NULL, 1), (102, NULL, 'c', 5);
INSERT INTO counters VALUES (1, 10, 0), (2, NULL, 5), (3, 0, 0), (4, 7, 7);
INSERT INTO daily VALUES (1, 2)";

fn programs() -> Vec<(String, Vec<String>)> {
    let f = column_ref;
    vec![
        (
            "Put".into(),
            vec![
                format!(
                    "INSERT INTO items (id, owner, note, version) VALUES ({}, {}, {}, 1)",
                    f("id"),
                    f("owner"),
                    f("note")
                ),
                format!("INSERT INTO notes (id, body) VALUES ({}, {})", f("id"), f("note")),
            ],
        ),
        (
            "Set".into(),
            vec![format!(
                "UPDATE items SET owner = {o}, note = {t}, version = {v} WHERE id = {i} AND version < {v}",
                o = f("owner"),
                t = f("note"),
                v = f("version"),
                i = f("id")
            )],
        ),
        (
            "Rename".into(),
            vec![format!(
                "UPDATE items SET note = 'renamed ' || {t}, owner = {o} * 2, version = {v} WHERE id = {i} AND version < {v}",
                o = f("owner"),
                t = f("note"),
                v = f("version"),
                i = f("id")
            )],
        ),
        (
            // Two latest states in one event, the second tied with the first when the
            // versions are equal: one at a time, the first stays.
            "Twice".into(),
            vec![
                format!(
                    "UPDATE items SET owner = {o}, note = 'first', version = {v} WHERE id = {i} AND version < {v}",
                    o = f("owner"),
                    v = f("version"),
                    i = f("id")
                ),
                format!(
                    "UPDATE items SET owner = {o} + 1, note = 'second', version = {v} WHERE id = {i} AND version < {v}",
                    o = f("owner"),
                    v = f("version"),
                    i = f("id")
                ),
            ],
        ),
        (
            "Bump".into(),
            vec![
                format!(
                    "UPDATE counters SET n = n + {a}, m = m - {a} * 2 WHERE id = {k}",
                    a = f("amount"),
                    k = f("key")
                ),
                format!(
                    "INSERT INTO daily (day, n) VALUES ({k} % 2, 1) ON CONFLICT (day) DO UPDATE SET n = daily.n + 1",
                    k = f("key")
                ),
            ],
        ),
        (
            "Drop".into(),
            vec![
                format!("UPDATE counters SET m = m + 1 WHERE id = {}", f("key")),
                format!("UPDATE daily SET n = n - 1 WHERE day = {} % 2", f("key")),
                format!("DELETE FROM daily WHERE day = {} % 2 AND n = 0", f("key")),
            ],
        ),
    ]
}

fn columns() -> Vec<String> {
    ["amount", "id", "key", "note", "owner", "version"]
        .map(String::from)
        .to_vec()
}

type Event = (String, BTreeMap<String, Param>);

fn int_or_null(range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Param> {
    prop_oneof![8 => range.prop_map(Param::Int), 1 => Just(Param::Null)]
}

fn event() -> impl Strategy<Value = Event> {
    let note = prop_oneof![
        Just(Param::Text("plain".into())),
        Just(Param::Text("it's \"quoted\" \\ here".into())),
        Just(Param::Null),
    ];
    (
        0usize..6,
        1i64..=40,
        prop_oneof![100i64..=102, 1i64..=6],
        int_or_null(1..=5),
        int_or_null(-3..=9),
        note,
        int_or_null(1..=6),
        1i64..=5,
    )
        .prop_map(
            |(kind, new_id, old_id, owner, amount, note, version, key)| {
                let names = ["Put", "Set", "Rename", "Twice", "Bump", "Drop"];
                // New items mostly under ids of their own; updates of seeded ones and new ones.
                let id = if kind == 0 { new_id } else { old_id };
                let mut fields = BTreeMap::new();
                fields.insert("id".to_string(), Param::Int(id));
                fields.insert("owner".to_string(), owner);
                fields.insert("note".to_string(), note);
                fields.insert("version".to_string(), version);
                fields.insert("amount".to_string(), amount);
                fields.insert("key".to_string(), Param::Int(key));
                (names[kind].to_string(), fields)
            },
        )
}

/// Every table's rows, sorted, as text; or the error the batch ended in.
async fn outcome(
    conn: &mut sqlx::AnyConnection,
    schema: &str,
    apply: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<(), sqlx::Error>,
) -> Result<Vec<String>, String> {
    let mut tx = conn.begin().await.unwrap();
    tx.execute(format!("SET LOCAL search_path TO {schema}").as_str())
        .await
        .unwrap();
    tx.execute(SEED).await.unwrap();
    if let Err(e) = apply(&mut tx).await {
        tx.rollback().await.unwrap();
        return Err(e.to_string());
    }
    let mut rows = Vec::new();
    for t in TABLES {
        let sql = format!("SELECT CAST(t.* AS TEXT) FROM {t} t ORDER BY 1");
        for r in sqlx::query(&sql).fetch_all(&mut *tx).await.unwrap() {
            rows.push(format!("{t}: {}", r.get::<String, _>(0)));
        }
    }
    tx.rollback().await.unwrap();
    Ok(rows)
}

#[test]
fn a_folded_batch_leaves_what_one_row_after_another_leaves() {
    let Some(url) = pg_env("a_folded_batch_leaves_what_one_row_after_another_leaves") else {
        return;
    };
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = unique_schema("row_fold");
    let conn = rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        conn.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        conn.execute(format!("SET search_path TO {schema}; {DDL}").as_str())
            .await
            .unwrap();
        std::sync::Mutex::new(conn)
    });
    let read_models = TABLES
        .iter()
        .map(|t| (t.to_string(), format!("CREATE TABLE {t} (…)")))
        .collect();
    let fold = RowFold::new(Engine::Postgres, columns(), &programs(), &read_models)
        .expect("items, counters and notes fold");
    assert_eq!(fold.folded_tables(), ["items", "notes", "counters"]);
    let one_by_one = RowTriggers::new(Engine::Postgres, columns(), &programs()).unwrap();
    let folded_batches = AtomicUsize::new(0);
    let compared = AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(event(), 2..24), |events| {
        let rows = || events.iter().map(|(k, f)| (k.as_str(), f));
        let Some(folded) = fold.batch(rows()) else {
            return Ok(());
        };
        folded_batches.fetch_add(1, Ordering::Relaxed);
        let mut conn = conn.lock().unwrap();
        let (a, b) = rt.block_on(async {
            let a = outcome(&mut conn, &schema, async |c| folded.apply(c).await).await;
            let b = outcome(&mut conn, &schema, async |c| {
                match one_by_one.batch(rows()) {
                    Some(batch) => batch.apply(c).await,
                    None => Ok(()),
                }
            })
            .await;
            (a, b)
        });
        // Both fail alike (a second insert of one id), or leave the same rows.
        prop_assert_eq!(a.is_ok(), b.is_ok(), "folded {:?}\none by one {:?}", a, b);
        if a.is_ok() {
            compared.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(a, b);
        }
        Ok(())
    });
    let mut conn = conn.into_inner().unwrap();
    rt.block_on(async {
        conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
            .await
            .unwrap();
    });
    result.unwrap();
    // Most batches fold (the others hold an update before its insert), and most of those
    // apply without a second insert of one id, so their rows are compared.
    let (folded, compared) = (folded_batches.into_inner(), compared.into_inner());
    assert!(
        folded >= 24 && compared >= 12,
        "{folded} of 48 batches folded, {compared} compared"
    );
}

/// A literal the set-wise statement types otherwise than one event's statement does (text in
/// the fold's `UNION`, a date where it stands alone): PostgreSQL refuses the fold when planning
/// it (SQLSTATE class 42, which `CompiledPack` takes as the engine's refusal and keeps the
/// row triggers), and the same rows one at a time apply.
#[tokio::test]
async fn a_literal_typed_otherwise_in_the_fold_is_refused_when_planned() {
    let Some(url) = pg_env("a_literal_typed_otherwise_in_the_fold_is_refused_when_planned") else {
        return;
    };
    sqlx::any::install_default_drivers();
    let schema = unique_schema("row_fold_refused");
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    conn.execute(
        format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; \
             CREATE TABLE stamps (id BIGINT PRIMARY KEY, day DATE, version BIGINT NOT NULL); \
             INSERT INTO stamps VALUES (1, NULL, 0)"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let programs = vec![(
        "Stamped".to_string(),
        vec![format!(
            "UPDATE stamps SET day = '2026-12-07', version = {v} WHERE id = {i} AND version < {v}",
            v = column_ref("version"),
            i = column_ref("id")
        )],
    )];
    let columns = vec!["id".to_string(), "version".to_string()];
    let read_models = [("stamps".to_string(), "CREATE TABLE stamps (…)".to_string())].into();
    let fold = RowFold::new(Engine::Postgres, columns.clone(), &programs, &read_models).unwrap();
    let rows: Vec<(String, BTreeMap<String, Param>)> = (1..=2)
        .map(|v| {
            let fields = [
                ("id".to_string(), Param::Int(1)),
                ("version".to_string(), Param::Int(v)),
            ];
            ("Stamped".to_string(), fields.into())
        })
        .collect();
    let batch = || rows.iter().map(|(k, f)| (k.as_str(), f));
    let mut tx = conn.begin().await.unwrap();
    let refused = fold
        .batch(batch())
        .unwrap()
        .apply(&mut tx)
        .await
        .unwrap_err();
    let code = refused
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap()
        .to_string();
    assert!(code.starts_with("42"), "{code}: {refused}");
    tx.rollback().await.unwrap();
    let one_by_one = RowTriggers::new(Engine::Postgres, columns, &programs).unwrap();
    one_by_one
        .batch(batch())
        .unwrap()
        .apply(&mut conn)
        .await
        .unwrap();
    let (day, version): (String, i64) =
        sqlx::query_as("SELECT CAST(day AS TEXT), version FROM stamps WHERE id = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((day.as_str(), version), ("2026-12-07", 2));
    conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
        .await
        .unwrap();
}
