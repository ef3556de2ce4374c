//! Every SQL difference between SQLite and PostgreSQL, in one place. Code outside `src/db/`
//! asks its `Db` (or connection) for the dialect and builds statements from it; it never asks
//! which engine it talks to.
//!
//! Most statements are portable as written: sqlx's `Any` driver takes `$N` placeholders on
//! both engines, and both accept `ON CONFLICT … DO UPDATE`, `RETURNING`, row values and
//! `UPDATE … FROM (VALUES …)`. What differs is below.

use super::Engine;

/// The SQL dialect of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(Engine);

impl Dialect {
    pub fn of(engine: Engine) -> Dialect {
        Dialect(engine)
    }

    /// The dialect of an open connection (sqlx's `Any` connection names its driver).
    pub fn of_connection(conn: &sqlx::AnyConnection) -> Dialect {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Dialect(Engine::Sqlite)
        } else {
            Dialect(Engine::Postgres)
        }
    }

    /// The VALUES list for `rows` rows of `cols` columns: `($1,$2),($3,$4),…` on PostgreSQL,
    /// `(?,?),(?,?),…` on SQLite, where numbered names cost a quadratic lookup when a statement
    /// has thousands of them.
    pub fn values_list(self, rows: usize, cols: usize) -> String {
        match self.0 {
            Engine::Sqlite => anonymous_values_list(rows, cols),
            Engine::Postgres => numbered_values_list(rows, cols),
        }
    }

    /// The placeholder of the `n`-th (1-based) distinct parameter of a statement written with
    /// named parameters (a pack's `:name`): the engine's own numbered form, `?N` on SQLite and
    /// `$N` on PostgreSQL, so a name used twice is bound once.
    pub fn placeholder(self, n: usize) -> String {
        match self.0 {
            Engine::Sqlite => format!("?{n}"),
            Engine::Postgres => format!("${n}"),
        }
    }

    /// The placeholder that lets one call run several statements with bound values, if the
    /// engine has one: on SQLite an anonymous `?` per value, the values bound in order across
    /// the statements of the script (sqlx hands each statement the values after the last
    /// one's). Numbered `?N` would not do: a statement whose numbers leave gaps (`?4` without
    /// `?1`) gets its later values unbound. PostgreSQL's extended protocol takes one
    /// statement per call: `None`.
    pub fn script_placeholder(self) -> Option<&'static str> {
        match self.0 {
            Engine::Sqlite => Some("?"),
            Engine::Postgres => None,
        }
    }

    /// The suffix that locks the rows a `SELECT` reads until the transaction ends. SQLite has
    /// one writer at a time, so a write transaction holds everything already.
    pub fn for_update(self) -> &'static str {
        match self.0 {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// Statements that empty `tables` in a transaction. On PostgreSQL `TRUNCATE`: `DELETE`
    /// would leave every row dead, and a rebuild would pay for them in each index insert
    /// (uniqueness checks visit dead entries) until vacuum runs.
    pub fn empty_tables(self, tables: &[&str]) -> Vec<String> {
        match self.0 {
            Engine::Sqlite => tables.iter().map(|t| format!("DELETE FROM {t}")).collect(),
            Engine::Postgres => vec![format!("TRUNCATE {}", tables.join(", "))],
        }
    }

    /// A statement that wakes listeners of the channel bound as `$1` when the transaction
    /// commits; `None` where the engine has no notifications (SQLite: one process, woken in
    /// memory).
    pub fn notify(self) -> Option<&'static str> {
        match self.0 {
            Engine::Sqlite => None,
            Engine::Postgres => Some("SELECT pg_notify($1, '')"),
        }
    }

    /// Whether rows can become visible out of their id order (PostgreSQL: a `bigserial` is
    /// taken at insert and seen at commit). Where they can, readers of the outbox must stop at
    /// the transaction horizon (`log_batch`).
    pub fn commits_out_of_order(self) -> bool {
        self.0 == Engine::Postgres
    }

    /// Reads an event log (`table`: the outbox or the event store, which share these columns)
    /// after position `($1, $2)`, at most `$3` events, as `xid, seq, stream, payload`. With
    /// `horizon`, only events of transactions that have finished, in one statement, so the
    /// horizon and the rows come from the same snapshot (see `projection::event_source`).
    /// Without it (SQLite, where seq order is commit order, and the naive projector), seq
    /// order alone.
    pub fn log_batch(self, table: &str, horizon: bool) -> String {
        if horizon && self.commits_out_of_order() {
            format!(
                "SELECT xid, seq, stream, payload FROM {table} WHERE (xid, seq) > ($1, $2) \
                 AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 ORDER BY xid, seq LIMIT $3"
            )
        } else {
            format!(
                "SELECT xid, seq, stream, payload FROM {table} WHERE seq > $2 AND $1 = $1 \
                 ORDER BY seq LIMIT $3"
            )
        }
    }

    /// Sessions that hold the transaction horizon back, as `pid, state, milliseconds open`,
    /// oldest first; `None` where there is no such horizon.
    pub fn horizon_pinners(self) -> Option<&'static str> {
        match self.0 {
            Engine::Sqlite => None,
            Engine::Postgres => Some(
                "SELECT pid::bigint, COALESCE(state, ''), \
                 CAST(EXTRACT(EPOCH FROM (clock_timestamp() - xact_start)) * 1000 AS BIGINT) \
                 FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() \
                 AND xact_start IS NOT NULL ORDER BY xact_start",
            ),
        }
    }

    /// The engine's form of the tool's portable DDL (written with `BIGINT PRIMARY KEY` keys):
    /// on SQLite `INTEGER PRIMARY KEY`, the rowid alias, so a key costs no second index.
    pub fn table_ddl(self, portable: &str) -> String {
        match self.0 {
            Engine::Sqlite => portable.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY"),
            Engine::Postgres => portable.to_string(),
        }
    }

    /// The outbox table. On PostgreSQL every event is stamped with the id of the transaction
    /// that wrote it, which is what lets the projector read only below the oldest running
    /// transaction and so never skip a late commit. On SQLite one writer commits at a time,
    /// so seq order is commit order.
    pub fn events_ddl(self) -> &'static str {
        match self.0 {
            Engine::Sqlite => {
                r#"
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    xid BIGINT NOT NULL DEFAULT 0,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
"#
            }
            Engine::Postgres => {
                r#"
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_position ON events(xid, seq);
"#
            }
        }
    }

    /// An outbox table named `table` with the columns and position index of the shop's
    /// (`events_ddl`), so `log_batch` reads it the same way: a workload pack's outbox, whose
    /// `kind` is the event type and `payload` the event as JSON.
    pub fn outbox_ddl(self, table: &str) -> String {
        match self.0 {
            Engine::Sqlite => format!(
                "CREATE TABLE {table} (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
                 xid BIGINT NOT NULL DEFAULT 0, stream TEXT NOT NULL, kind TEXT NOT NULL, \
                 payload TEXT NOT NULL)"
            ),
            Engine::Postgres => format!(
                "CREATE TABLE {table} (seq BIGSERIAL PRIMARY KEY, \
                 xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint), \
                 stream TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL); \
                 CREATE INDEX {table}_position ON {table}(xid, seq)"
            ),
        }
    }

    /// The event store of the `event-sourced` backend, its write model: one row per event,
    /// numbered by a global position (`seq`), placed in its stream at `version`, and unique
    /// on `(stream, version)`, so two writers that decided on the same version of a stream
    /// cannot both append (the loser's unique violation is its optimistic-concurrency
    /// conflict). `claim` holds the store-wide unique key an event takes (a review or
    /// price-change id), NULL otherwise. On PostgreSQL every row is stamped with its
    /// transaction's id, exactly as in the outbox, so readers by position stop at the horizon
    /// and never skip a late commit (`log_batch`).
    pub fn event_store_ddl(self) -> &'static str {
        match self.0 {
            Engine::Sqlite => {
                r#"
CREATE TABLE es_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    xid BIGINT NOT NULL DEFAULT 0,
    stream TEXT NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    claim TEXT UNIQUE,
    UNIQUE (stream, version)
);
"#
            }
            Engine::Postgres => {
                r#"
CREATE TABLE es_events (
    seq BIGSERIAL PRIMARY KEY,
    xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    stream TEXT NOT NULL,
    version BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    claim TEXT UNIQUE,
    UNIQUE (stream, version)
);
CREATE INDEX es_events_position ON es_events(xid, seq);
"#
            }
        }
    }

    /// Statements that refresh the planner's statistics of `tables`.
    pub fn analyze(self, tables: &[&str]) -> Vec<String> {
        match self.0 {
            Engine::Postgres => vec![format!("ANALYZE {}", tables.join(", "))],
            Engine::Sqlite => tables.iter().map(|t| format!("ANALYZE {t}")).collect(),
        }
    }

    /// `CREATE MATERIALIZED VIEW name (columns) AS select`, built at once; `None` where the
    /// engine has none (SQLite).
    pub fn materialized_view(self, name: &str, columns: &str, select: &str) -> Option<String> {
        match self.0 {
            Engine::Postgres => Some(format!(
                "CREATE MATERIALIZED VIEW {name} ({columns}) AS {select} WITH DATA"
            )),
            Engine::Sqlite => None,
        }
    }

    /// Recomputes a materialized view while readers keep reading the old contents
    /// (`CONCURRENTLY`, which needs a unique index on the view); `None` on SQLite.
    pub fn refresh_materialized_view(self, name: &str) -> Option<String> {
        match self.0 {
            Engine::Postgres => Some(format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {name}")),
            Engine::Sqlite => None,
        }
    }

    /// Whether the write tables are loaded bare and get their keys after the bulk load (like
    /// `pgbench -i`, PostgreSQL validates each key in one pass by `ALTER TABLE`). SQLite
    /// declares its keys in `CREATE TABLE`, and the seed switches their checks off instead.
    pub fn keys_after_load(self) -> bool {
        self.0 == Engine::Postgres
    }
}

/// `(?,?),(?,?),…` for `rows` rows of `cols` columns.
pub fn anonymous_values_list(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(","));
    vec![row; rows].join(",")
}

/// `($1,$2),($3,$4),…` for `rows` rows of `cols` columns.
pub fn numbered_values_list(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_values_lists() {
        assert_eq!(numbered_values_list(2, 2), "($1,$2),($3,$4)");
        assert_eq!(numbered_values_list(1, 3), "($1,$2,$3)");
        assert_eq!(anonymous_values_list(2, 2), "(?,?),(?,?)");
        assert_eq!(Dialect::of(Engine::Sqlite).values_list(1, 2), "(?,?)");
        assert_eq!(Dialect::of(Engine::Postgres).values_list(1, 2), "($1,$2)");
        assert_eq!(Dialect::of(Engine::Sqlite).placeholder(3), "?3");
        assert_eq!(Dialect::of(Engine::Postgres).placeholder(12), "$12");
    }
}
