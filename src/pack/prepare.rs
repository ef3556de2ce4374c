//! The engine check: a pack's DDL applied in a scratch database of the engine
//! (`db::scratch`), then every statement prepared there with its parameters typed as a run
//! binds them. Each statement the engine refuses is a problem at its path; so is a read model
//! whose table does not match its truth query, a `returns` list longer or shorter than the
//! row, and a query whose two sides yield different numbers of columns.

use std::collections::BTreeMap;

use super::manifest::MANIFEST;
use super::sql::NamedSql;
use super::{Pack, PackProblem};
use crate::db::scratch::Scratch;
use crate::db::sql::ParamKind;
use crate::db::{DbError, DbUrl};

/// Every problem the engine of `db` (in-memory SQLite without one) finds in `pack`.
pub(super) async fn on_engine(
    pack: &Pack,
    db: Option<&DbUrl>,
) -> Result<Vec<PackProblem>, DbError> {
    let mut scratch = Scratch::open(db).await?;
    let mut check = Check {
        pack,
        manifest: pack.dir.join(MANIFEST).display().to_string(),
        problems: Vec::new(),
    };
    check.run(&mut scratch).await;
    scratch.close().await;
    Ok(check.problems)
}

struct Check<'p> {
    pack: &'p Pack,
    manifest: String,
    problems: Vec<PackProblem>,
}

/// `a, b, c`.
fn columns(names: &[String]) -> String {
    names.join(", ")
}

impl Check<'_> {
    fn problem(&mut self, file: &str, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(PackProblem {
            file: file.to_string(),
            path: path.into(),
            message: message.into().replace('\n', " "),
        });
    }

    /// The types of an event's fields, from the values the commands put in them (inferred
    /// where they disagree or come from a returned value).
    fn field_kinds(&self, event: &str) -> BTreeMap<String, ParamKind> {
        let mut kinds: BTreeMap<String, ParamKind> = BTreeMap::new();
        for command in self.pack.commands.values() {
            for emit in command.emit.iter().filter(|e| e.event == event) {
                for (field, value) in &emit.fields {
                    let k = kind_of(self.pack, value);
                    kinds
                        .entry(field.clone())
                        .and_modify(|old| {
                            if *old != k {
                                *old = ParamKind::Inferred;
                            }
                        })
                        .or_insert(k);
                }
            }
        }
        kinds
    }

    /// Prepares `sql` with its names typed by `kind`; a refusal is a problem at `path`.
    async fn prepare(
        &mut self,
        scratch: &mut Scratch,
        file: &str,
        path: &str,
        sql: &NamedSql,
        kind: impl Fn(&str) -> ParamKind,
    ) -> Option<Vec<String>> {
        let compiled = sql.compile(scratch.dialect());
        let kinds: Vec<ParamKind> = compiled.binds.iter().map(|n| kind(n.as_str())).collect();
        match scratch.prepare(&compiled.sql, &kinds).await {
            Ok(columns) => Some(columns),
            Err(e) => {
                let engine = scratch.engine().display_name();
                self.problem(file, path, format!("{engine} cannot prepare it: {e}"));
                None
            }
        }
    }

    async fn run(&mut self, scratch: &mut Scratch) {
        let pack = self.pack;
        let engine = scratch.engine();
        let manifest = self.manifest.clone();
        let Some(schema) = pack.schema(engine) else {
            // No schema at all is reported by the manifest's checks.
            if !pack.schemas.is_empty() {
                self.problem(
                    &pack.dir.display().to_string(),
                    "",
                    format!(
                        "no write-model DDL for {}: schema.{}.sql or schema.sql",
                        engine.display_name(),
                        engine.name()
                    ),
                );
            }
            return;
        };
        if let Err(e) = scratch.run_script(&schema.text).await {
            // Every statement would fail against a schema that is not there.
            self.problem(
                &schema.file,
                "",
                format!("{} refuses it: {e}", engine.display_name()),
            );
            return;
        }

        let mut table_columns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (name, rm) in &pack.read_models {
            let path = format!("read_models.{name}");
            if let Err(e) = scratch.run_script(&rm.ddl).await {
                let message = format!("{} refuses it: {e}", engine.display_name());
                self.problem(&manifest, format!("{path}.ddl"), message);
                continue;
            }
            match scratch.prepare(&format!("SELECT * FROM {name}"), &[]).await {
                Err(e) => self.problem(
                    &manifest,
                    format!("{path}.ddl"),
                    format!("creates no table {name}: {e}"),
                ),
                Ok(cols) => {
                    for (i, k) in rm.key.iter().enumerate() {
                        if !cols.iter().any(|c| c.eq_ignore_ascii_case(k)) {
                            self.problem(
                                &manifest,
                                format!("{path}.key[{i}]"),
                                format!("{k} is not a column of {name} ({})", columns(&cols)),
                            );
                        }
                    }
                    table_columns.insert(name.as_str(), cols);
                }
            }
        }

        // A copied table must be one of the write model's (the source is checked when a
        // run connects to it).
        for (i, (table, _)) in pack.copy.iter().flat_map(|c| &c.tables).enumerate() {
            if let Err(e) = scratch
                .prepare(&format!("SELECT * FROM {table}"), &[])
                .await
            {
                self.problem(
                    &manifest,
                    format!("copy.tables[{i}]"),
                    format!("{table} is not a table of the write model: {e}"),
                );
            }
        }

        if let Some(dataset) = pack.dataset(engine) {
            for (i, statement) in dataset.statements.iter().enumerate() {
                let path = format!("statements[{i}]");
                self.prepare(scratch, &dataset.file, &path, statement, |_| ParamKind::Int)
                    .await;
            }
        }

        for (name, command) in &pack.commands {
            for (i, statement) in command.statements.iter().enumerate() {
                let path = format!("commands.{name}.statements[{i}]");
                let cols = self
                    .prepare(scratch, &manifest, &path, &statement.sql, |n| {
                        kind_of(pack, n)
                    })
                    .await;
                let wanted = statement.returns.len();
                if let Some(cols) = cols.filter(|c| wanted > 0 && c.len() != wanted) {
                    self.problem(
                        &manifest,
                        format!("{path}.returns"),
                        format!(
                            "names {wanted} value(s) ({}) but the statement yields {} column(s)",
                            columns(&statement.returns),
                            cols.len()
                        ),
                    );
                }
            }
        }

        for (name, rm) in &pack.read_models {
            let path = format!("read_models.{name}.truth");
            let cols = self
                .prepare(scratch, &manifest, &path, &rm.truth, |_| {
                    ParamKind::Inferred
                })
                .await;
            if let (Some(truth), Some(table)) = (cols, table_columns.get(name.as_str())) {
                let set = |c: &[String]| {
                    let mut v: Vec<String> = c.iter().map(|s| s.to_ascii_lowercase()).collect();
                    v.sort();
                    v
                };
                if set(&truth) != set(table) {
                    self.problem(
                        &manifest,
                        path,
                        format!(
                            "yields columns ({}) but {name} has ({}): they must be the same",
                            columns(&truth),
                            columns(table)
                        ),
                    );
                }
            }
        }

        for (name, projection) in &pack.projections {
            let kinds = self.field_kinds(&projection.event);
            for (i, statement) in projection.statements.iter().enumerate() {
                let path = format!("projections.{name}.statements[{i}]");
                self.prepare(scratch, &manifest, &path, statement, |n| {
                    kinds.get(n).copied().unwrap_or(ParamKind::Inferred)
                })
                .await;
            }
        }

        for (name, query) in &pack.queries {
            let path = format!("queries.{name}");
            let write = self
                .prepare(
                    scratch,
                    &manifest,
                    &format!("{path}.write_sql"),
                    &query.write_sql,
                    |n| kind_of(pack, n),
                )
                .await;
            let read = self
                .prepare(
                    scratch,
                    &manifest,
                    &format!("{path}.read_sql"),
                    &query.read_sql,
                    |n| kind_of(pack, n),
                )
                .await;
            if let (Some(w), Some(r)) = (write, read) {
                if w.len() != r.len() {
                    self.problem(
                        &manifest,
                        path,
                        format!(
                            "write_sql yields {} column(s) ({}), read_sql {} ({}): both sides must give the same answer",
                            w.len(),
                            columns(&w),
                            r.len(),
                            columns(&r)
                        ),
                    );
                }
            }
        }
    }
}

/// The type a name is bound with: sizes are integers, parameters their kind; a value a
/// statement returns is not known before it exists.
fn kind_of(pack: &Pack, name: &str) -> ParamKind {
    if pack.sizes.contains_key(name) {
        ParamKind::Int
    } else if let Some(p) = pack.parameters.get(name) {
        p.kind()
    } else {
        ParamKind::Inferred
    }
}
