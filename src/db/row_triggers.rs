//! A batch of rows applied in one call on SQLite: the rows go in as one JSON array, inserted
//! into a temporary view whose `INSTEAD OF INSERT` triggers (one per row kind) run that kind's
//! statements for each row, in array order, with the row's values as `NEW."column"`.
//!
//! Why: sqlx runs each SQLite call on the connection's own thread, and the hand-off there and
//! back costs more than a small statement. Through the view a whole batch is one call, and
//! SQLite compiles every trigger's statements once, with the insert that fires them.
//!
//! The view and its triggers are temporary (the connection's own, never in the database file)
//! and named after a hash of what they run, so two definitions never meet under one name. The
//! script creates them if missing before every insert: a rollback of the transaction that
//! created them takes them away again.
//!
//! SQLite accepts less inside a trigger than outside (no `WITH`, no qualified table names in
//! `INSERT`/`UPDATE`/`DELETE`): [`RowTriggers::ddl`] is run alone first, and a caller whose
//! statements it refuses applies them one call per row instead.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use super::sql::Param;
use super::Engine;

/// The view, its triggers and the insert that applies a batch through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTriggers {
    kinds: Vec<String>,
    columns: Vec<String>,
    ddl: String,
    script: String,
}

/// How a statement in a trigger's body names a column of the row it runs for.
pub fn column_ref(column: &str) -> String {
    format!("NEW.{}", quote(column))
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl RowTriggers {
    /// For `engine` (`None` where a batch is not one call this way: PostgreSQL): rows carry a
    /// kind and a value per column of `columns`; `programs` gives each kind its statements,
    /// which read the row through [`column_ref`].
    pub fn new(
        engine: Engine,
        columns: Vec<String>,
        programs: &[(String, Vec<String>)],
    ) -> Option<RowTriggers> {
        if engine != Engine::Sqlite || programs.is_empty() {
            return None;
        }
        let mut column_list = String::from("kind");
        for c in &columns {
            column_list.push_str(", ");
            column_list.push_str(&quote(c));
        }
        let mut body = String::new();
        for (kind, statements) in programs {
            body.push_str(kind);
            for s in statements {
                body.push_str(s);
            }
        }
        let mut hasher = DefaultHasher::new();
        (&columns, &body).hash(&mut hasher);
        let view = format!("cqrs_bench_apply_{:016x}", hasher.finish());
        let mut ddl = format!(
            "CREATE TEMP VIEW IF NOT EXISTS {view} ({column_list}) AS SELECT {}",
            vec!["NULL"; columns.len() + 1].join(", ")
        );
        for (i, (_, statements)) in programs.iter().enumerate() {
            ddl.push_str(&format!(
                ";\nCREATE TEMP TRIGGER IF NOT EXISTS {view}_{i} INSTEAD OF INSERT ON {view} \
                 WHEN NEW.kind = {i} BEGIN\n"
            ));
            for s in statements {
                ddl.push_str(s.trim().trim_end_matches(';'));
                ddl.push_str(";\n");
            }
            ddl.push_str("END");
        }
        let values: Vec<String> = (0..=columns.len())
            .map(|i| format!("value ->> {i}"))
            .collect();
        let script = format!(
            "{ddl};\nINSERT INTO temp.{view} ({column_list}) SELECT {} FROM json_each(?) ORDER BY key",
            values.join(", ")
        );
        Some(RowTriggers {
            kinds: programs.iter().map(|(k, _)| k.clone()).collect(),
            columns,
            ddl,
            script,
        })
    }

    /// Creates the view and its triggers on the connection (if missing): run alone, it tells
    /// whether SQLite takes the statements inside a trigger.
    pub fn ddl(&self) -> &str {
        &self.ddl
    }

    /// The script that applies a batch: [`Self::ddl`], then the insert, bound to
    /// [`Self::rows`].
    pub fn script(&self) -> &str {
        &self.script
    }

    /// Whether rows of `kind` run anything.
    pub fn runs(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// The JSON array the script binds: a row per `(kind, values by column)` given, in order,
    /// kinds without statements left out. A value the row lacks is NULL.
    pub fn rows<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, Param>)>,
    ) -> String {
        let mut out = Vec::new();
        for (kind, values) in rows {
            let Some(k) = self.kinds.iter().position(|x| x == kind) else {
                continue;
            };
            let mut row = Vec::with_capacity(self.columns.len() + 1);
            row.push(serde_json::Value::from(k));
            for c in &self.columns {
                row.push(match values.get(c) {
                    Some(Param::Int(n)) => serde_json::Value::from(*n),
                    Some(Param::Text(t)) => serde_json::Value::from(t.as_str()),
                    Some(Param::Null) | None => serde_json::Value::Null,
                });
            }
            out.push(serde_json::Value::Array(row));
        }
        serde_json::Value::Array(out).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Executor, Row};

    fn counter() -> RowTriggers {
        RowTriggers::new(
            Engine::Sqlite,
            vec!["id".into(), "note".into()],
            &[
                (
                    "add".into(),
                    vec![format!(
                        "INSERT INTO t (id, n, note) VALUES ({}, 1, {}) \
                         ON CONFLICT (id) DO UPDATE SET n = n + 1, note = excluded.note",
                        column_ref("id"),
                        column_ref("note")
                    )],
                ),
                (
                    "drop".into(),
                    vec![format!("DELETE FROM t WHERE id = {}", column_ref("id"))],
                ),
            ],
        )
        .expect("SQLite")
    }

    #[test]
    fn postgres_has_none() {
        assert!(RowTriggers::new(Engine::Postgres, vec![], &[("a".into(), vec![])]).is_none());
    }

    /// Rows run in the order given, each through its kind's statements, with its own types.
    #[tokio::test]
    async fn a_batch_runs_row_by_row_in_order() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, note)")
            .await
            .unwrap();
        let batch = counter();
        let row = |id: i64, note: Option<&str>| {
            let mut m = BTreeMap::new();
            m.insert("id".to_string(), Param::Int(id));
            if let Some(n) = note {
                m.insert("note".to_string(), Param::Text(n.to_string()));
            }
            m
        };
        let given = [
            ("add", row(1, None)),
            ("add", row(1, Some("a"))),
            ("other", row(1, Some("x"))),
            ("add", row(2, Some("b"))),
            ("drop", row(2, None)),
            ("add", row(2, Some("a"))),
        ];
        let rows = batch.rows(given.iter().map(|(k, m)| (*k, m)));
        // Kinds without statements are left out; a missing value is null.
        assert_eq!(rows, r#"[[0,1,null],[0,1,"a"],[0,2,"b"],[1,2,null],[0,2,"a"]]"#);
        // A rollback takes the view and triggers away; the script, prepared before and kept
        // in sqlx's cache, makes them again.
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(batch.script())
            .bind(rows.clone())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        for _ in 0..2 {
            sqlx::query(batch.script())
                .bind(rows.clone())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let got: Vec<(i64, i64, String, String)> =
            sqlx::query("SELECT id, n, note, typeof(note) FROM t ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
        // Id 1: added four times, the last note "a". Id 2: dropped, then added again once
        // per batch: the second batch adds, drops, adds.
        assert_eq!(
            got,
            vec![
                (1, 4, "a".to_string(), "text".to_string()),
                (2, 1, "a".to_string(), "text".to_string()),
            ]
        );
        assert!(batch.runs("drop") && !batch.runs("other"));
    }

    /// SQLite refuses some statements inside a trigger that it runs outside one: the DDL run
    /// alone says so.
    #[tokio::test]
    async fn a_statement_a_trigger_cannot_hold_is_refused_by_the_ddl() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let with = RowTriggers::new(
            Engine::Sqlite,
            vec!["id".into()],
            &[(
                "add".into(),
                vec![format!(
                    "WITH x AS (SELECT {} AS id) INSERT INTO t SELECT id FROM x",
                    column_ref("id")
                )],
            )],
        )
        .unwrap();
        assert!(conn.execute(with.ddl()).await.is_err());
        assert!(conn.execute(counter().ddl()).await.is_ok());
    }
}
