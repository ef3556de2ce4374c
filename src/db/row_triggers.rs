//! A batch of rows applied in one call: the rows go in as one JSON array, inserted into a
//! temporary view whose `INSTEAD OF INSERT` triggers run each row kind's statements for each
//! row, in array order, with the row's values as `NEW."column"`. On SQLite a trigger per kind
//! holds the statements; on PostgreSQL one PL/pgSQL function (in `pg_temp`) does, branching on
//! the kind.
//!
//! Why: each statement sent on its own is a round trip (on SQLite a hand-off to the
//! connection's thread and back, on PostgreSQL one over the socket), and that costs more than a
//! small statement. Through the view a batch is one call, and the engine plans every
//! statement once for the connection.
//!
//! The view and what it fires are temporary (the connection's own, never in the database) and
//! named after a hash of what they run and, on PostgreSQL, the view's column types (taken from
//! the values, as the statements would be bound them: integers `bigint`, the rest `text`), so
//! two definitions never meet under one name. A rollback of the transaction that made them
//! takes them away again: SQLite's script makes them if missing before every insert, and on
//! PostgreSQL [`Batch::apply`] looks first.
//!
//! An engine accepts less inside a trigger than outside (SQLite: no `WITH`, no qualified table
//! names; both: no `RETURNING` without a destination): [`RowTriggers::new`] takes only
//! `INSERT`, `UPDATE` and `DELETE` statements without `RETURNING`, and [`Batch::make`] is the
//! engine's own word on the rest; a caller whose statements it refuses applies them one row at
//! a time instead.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use sqlx::{AnyConnection, Executor as _};

use super::sql::Param;
use super::Engine;

/// What a batch of each row kind runs, for one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowTriggers {
    engine: Engine,
    kinds: Vec<String>,
    columns: Vec<String>,
    /// Each kind's statements, in `kinds`' order.
    programs: Vec<Vec<String>>,
    /// The hash of the above, the start of every view's name.
    name: String,
}

/// A batch of rows, and the view (with what it fires) it is applied through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    engine: Engine,
    view: String,
    ddl: String,
    insert: String,
    rows: String,
    len: usize,
}

/// How a statement in a trigger's body names a column of the row it runs for.
pub fn column_ref(column: &str) -> String {
    format!("NEW.{}", quote(column))
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Whether `statement` is of a kind a trigger can run as it is: a write that returns nothing.
fn fits_a_trigger(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect();
    matches!(
        words.first().map(String::as_str),
        Some("INSERT" | "UPDATE" | "DELETE")
    ) && !words.iter().any(|w| w == "RETURNING")
}

/// The view's column that says which kind a row is (a column of that name is refused).
const KIND: &str = "cqrs_bench_kind";

/// PostgreSQL's quote of the function body; a body holding it is not made into a function.
const BODY_QUOTE: &str = "$cqrs_bench_row$";

impl RowTriggers {
    /// Rows carry a kind and a value per column of `columns`; `programs` gives each kind its
    /// statements, which read the row through [`column_ref`]. `None` when a statement is not
    /// one a trigger can run as it is (see the module's notes).
    pub fn new(
        engine: Engine,
        columns: Vec<String>,
        programs: &[(String, Vec<String>)],
    ) -> Option<RowTriggers> {
        let statements = || programs.iter().flat_map(|(_, s)| s);
        if programs.is_empty()
            || columns.iter().any(|c| c == KIND)
            || !statements().all(|s| fits_a_trigger(s))
            || statements().any(|s| s.contains(BODY_QUOTE))
        {
            return None;
        }
        let mut hasher = DefaultHasher::new();
        (engine.name(), &columns, programs).hash(&mut hasher);
        Some(RowTriggers {
            engine,
            kinds: programs.iter().map(|(k, _)| k.clone()).collect(),
            columns,
            programs: programs.iter().map(|(_, s)| s.clone()).collect(),
            name: format!("cqrs_bench_apply_{:016x}", hasher.finish()),
        })
    }

    /// Whether rows of `kind` run anything.
    pub fn runs(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// The batch of the rows given as `(kind, values by column)`, in order, kinds without
    /// statements left out (a value a row lacks is NULL). `None` when there is nothing to make
    /// the view of: on PostgreSQL, no rows, or a column holding an integer in one row and text
    /// in another (its view column has one type).
    pub fn batch<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, Param>)>,
    ) -> Option<Batch> {
        let mut out = Vec::new();
        // Per column: seen an integer, seen text.
        let mut seen = vec![(false, false); self.columns.len()];
        for (kind, values) in rows {
            let Some(k) = self.kinds.iter().position(|x| x == kind) else {
                continue;
            };
            let mut row = Vec::with_capacity(self.columns.len() + 1);
            row.push(serde_json::Value::from(k));
            for (c, seen) in self.columns.iter().zip(&mut seen) {
                row.push(match values.get(c) {
                    Some(Param::Int(n)) => {
                        seen.0 = true;
                        serde_json::Value::from(*n)
                    }
                    Some(Param::Text(t)) => {
                        seen.1 = true;
                        serde_json::Value::from(t.as_str())
                    }
                    Some(Param::Null) | None => serde_json::Value::Null,
                });
            }
            out.push(serde_json::Value::Array(row));
        }
        let len = out.len();
        let rows = serde_json::Value::Array(out).to_string();
        match self.engine {
            Engine::Sqlite => Some(self.sqlite(rows, len)),
            Engine::Postgres => {
                if len == 0 || seen.iter().any(|&(int, text)| int && text) {
                    return None;
                }
                let types: Vec<&str> = seen
                    .iter()
                    .map(|&(int, _)| if int { "bigint" } else { "text" })
                    .collect();
                Some(self.postgres(&types, rows, len))
            }
        }
    }

    fn column_list(&self) -> String {
        let mut list = String::from(KIND);
        for c in &self.columns {
            list.push_str(", ");
            list.push_str(&quote(c));
        }
        list
    }

    fn sqlite(&self, rows: String, len: usize) -> Batch {
        let view = self.name.clone();
        let column_list = self.column_list();
        let mut ddl = format!(
            "CREATE TEMP VIEW IF NOT EXISTS {view} ({column_list}) AS SELECT {}",
            vec!["NULL"; self.columns.len() + 1].join(", ")
        );
        for (i, statements) in self.programs.iter().enumerate() {
            ddl.push_str(&format!(
                ";\nCREATE TEMP TRIGGER IF NOT EXISTS {view}_{i} INSTEAD OF INSERT ON {view} \
                 WHEN NEW.{KIND} = {i} BEGIN\n"
            ));
            for s in statements {
                ddl.push_str(s.trim().trim_end_matches(';'));
                ddl.push_str(";\n");
            }
            ddl.push_str("END");
        }
        let values: Vec<String> = (0..=self.columns.len())
            .map(|i| format!("value ->> {i}"))
            .collect();
        // The DDL goes first in the same call: a rollback may have taken the view away.
        let insert = format!(
            "{ddl};\nINSERT INTO temp.{view} ({column_list}) SELECT {} FROM json_each(?) ORDER BY key",
            values.join(", ")
        );
        Batch {
            engine: Engine::Sqlite,
            view,
            ddl,
            insert,
            rows,
            len,
        }
    }

    fn postgres(&self, types: &[&str], rows: String, len: usize) -> Batch {
        let mut hasher = DefaultHasher::new();
        types.hash(&mut hasher);
        let view = format!("{}_{:08x}", self.name, hasher.finish() as u32);
        let column_list = self.column_list();
        let mut body = String::from("#variable_conflict use_column\nBEGIN\n");
        for (i, statements) in self.programs.iter().enumerate() {
            body.push_str(if i == 0 { "IF" } else { "ELSIF" });
            body.push_str(&format!(" NEW.{KIND} = {i} THEN\n"));
            for s in statements {
                body.push_str(s.trim().trim_end_matches(';'));
                body.push_str(";\n");
            }
        }
        body.push_str("END IF;\nRETURN NEW;\nEND");
        let nulls: Vec<String> = std::iter::once("bigint")
            .chain(types.iter().copied())
            .map(|t| format!("NULL::{t}"))
            .collect();
        let ddl = format!(
            "CREATE FUNCTION pg_temp.{view}() RETURNS trigger LANGUAGE plpgsql AS \
             {BODY_QUOTE}{body}{BODY_QUOTE};\n\
             CREATE TEMP VIEW {view} ({column_list}) AS SELECT {};\n\
             CREATE TRIGGER {view} INSTEAD OF INSERT ON pg_temp.{view} \
             FOR EACH ROW EXECUTE FUNCTION pg_temp.{view}()",
            nulls.join(", ")
        );
        let values: Vec<String> = std::iter::once("bigint")
            .chain(types.iter().copied())
            .enumerate()
            .map(|(i, t)| format!("(r.value ->> {i})::{t}"))
            .collect();
        let insert = format!(
            "INSERT INTO pg_temp.{view} ({column_list}) SELECT {} \
             FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r(value, n) ORDER BY r.n",
            values.join(", ")
        );
        Batch {
            engine: Engine::Postgres,
            view,
            ddl,
            insert,
            rows,
            len,
        }
    }
}

impl Batch {
    /// How many rows run statements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the view and what it fires on `conn` if missing. A database error here is the
    /// engine refusing the statements in a trigger; on PostgreSQL it aborts the transaction,
    /// so a caller that would go on runs this inside a savepoint.
    pub async fn make(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self.engine == Engine::Postgres && self.exists(conn).await? {
            return Ok(());
        }
        conn.execute(self.ddl.as_str()).await?;
        Ok(())
    }

    async fn exists(&self, conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("pg_temp.{}", self.view))
            .fetch_one(&mut *conn)
            .await
    }

    /// Applies the rows on `conn`, making the view first where it is missing.
    pub async fn apply(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self.len == 0 {
            return Ok(());
        }
        if self.engine == Engine::Postgres {
            self.make(conn).await?;
        }
        sqlx::query(&self.insert)
            .bind(self.rows.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The rows as the insert binds them (for tests).
    pub fn rows(&self) -> &str {
        &self.rows
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

    /// An in-memory SQLite database holding what `ddl` makes.
    async fn memory_with(ddl: &str) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        conn.execute(ddl).await.unwrap();
        conn
    }

    fn one(kind: &str, statement: &str) -> Option<RowTriggers> {
        let programs = [(kind.to_string(), vec![statement.to_string()])];
        RowTriggers::new(Engine::Sqlite, vec!["id".into()], &programs)
    }

    /// Only writes that return nothing go into a trigger; anything else stays a call per row.
    #[test]
    fn only_plain_writes_are_taken() {
        for taken in [
            "INSERT INTO t VALUES (NEW.\"id\")",
            "  update t SET n = n + 1",
            "DELETE FROM t WHERE id = 1",
        ] {
            assert!(one("a", taken).is_some(), "{taken}");
        }
        for refused in [
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "SELECT 1",
            "INSERT INTO t VALUES (1) RETURNING id",
            "UPDATE t SET n = 1 returning n",
        ] {
            assert!(one("a", refused).is_none(), "{refused}");
        }
        let programs = [("a".to_string(), vec!["DELETE FROM t".to_string()])];
        let kind_column = vec![KIND.to_string()];
        assert!(RowTriggers::new(Engine::Sqlite, kind_column, &programs).is_none());
    }

    /// On PostgreSQL a view column has one type, taken from the values: a column holding an
    /// integer and text in one batch, or no rows at all, leaves the batch to a call per row;
    /// integer and text batches get views of their own.
    #[test]
    fn postgres_types_its_view_from_the_values() {
        let programs = [("a".to_string(), vec!["DELETE FROM t".to_string()])];
        let pg = RowTriggers::new(Engine::Postgres, vec!["id".into()], &programs).unwrap();
        let with = |v: Param| BTreeMap::from([("id".to_string(), v)]);
        let (int, text, null) = (
            with(Param::Int(1)),
            with(Param::Text("x".into())),
            with(Param::Null),
        );
        assert!(pg.batch([("a", &int), ("a", &text)]).is_none());
        assert!(pg.batch(std::iter::empty()).is_none());
        let ints = pg.batch([("a", &int), ("a", &null)]).unwrap();
        let texts = pg.batch([("a", &text), ("b", &int)]).unwrap();
        assert_ne!(ints.view, texts.view);
        assert_eq!((ints.len(), texts.len()), (2, 1));
    }

    /// Rows run in the order given, each through its kind's statements, with its own types.
    #[tokio::test]
    async fn a_batch_runs_row_by_row_in_order() {
        let mut conn =
            memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, note)").await;
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
        let rows = batch
            .batch(given.iter().map(|(k, m)| (*k, m)))
            .expect("SQLite");
        // Kinds without statements are left out; a missing value is null.
        assert_eq!(
            rows.rows(),
            r#"[[0,1,null],[0,1,"a"],[0,2,"b"],[1,2,null],[0,2,"a"]]"#
        );
        assert_eq!(rows.len(), 5);
        // A rollback takes the view and triggers away; the script, prepared before and kept
        // in sqlx's cache, makes them again.
        let mut tx = conn.begin().await.unwrap();
        rows.apply(&mut tx).await.unwrap();
        tx.rollback().await.unwrap();
        for _ in 0..2 {
            rows.apply(&mut conn).await.unwrap();
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

    /// SQLite refuses some statements inside a trigger that it runs outside one (a qualified
    /// table name): making the view says so.
    #[tokio::test]
    async fn a_statement_a_trigger_cannot_hold_is_refused_when_made() {
        let mut conn = memory_with("CREATE TABLE t (id INTEGER PRIMARY KEY)").await;
        let qualified = format!("INSERT INTO main.t VALUES ({})", column_ref("id"));
        conn.execute(qualified.replace("NEW.\"id\"", "1").as_str())
            .await
            .expect("outside a trigger SQLite takes it");
        let none = BTreeMap::new();
        let batch = |t: RowTriggers| t.batch([("add", &none)]).expect("SQLite");
        assert!(batch(one("add", &qualified).unwrap())
            .make(&mut conn)
            .await
            .is_err());
        assert!(batch(counter()).make(&mut conn).await.is_ok());
    }
}
