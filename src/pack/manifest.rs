//! Reading a pack's folder: the manifest walked key by key and the SQL files, with every
//! check that needs no database. Each check records its problem and carries on, so one pass
//! reports everything that is wrong.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::params::{ParamSpec, Range, MAX_WORDS};
use super::sql::{is_name, split, NamedSql};
use super::{
    CommandDef, CommandStatement, CopyDef, Emit, Pack, PackProblem, ProjectionDef, QueryDef,
    ReadModelDef, RowRequirement, SqlFile,
};
use crate::db::sql::Param;
use crate::db::Engine;
use crate::toml_path::{child, element, syntax_error, type_name};
use crate::workload::keys::KeyDist;

pub const MANIFEST: &str = "pack.toml";

const TOP_KEYS: &[&str] = &[
    "description",
    "dataset",
    "parameters",
    "events",
    "commands",
    "read_models",
    "projections",
    "queries",
    "copy",
];
const KINDS: &str = "uniform, zipf, hotspot, choice, words";
/// The largest dataset size (as the shop's largest counts).
pub const MAX_SIZE: i64 = 10_000_000_000;

/// Reads `dir`: the pack (with what was valid) and every problem found.
pub(super) fn read(dir: &Path) -> (Pack, Vec<PackProblem>) {
    let file = dir.join(MANIFEST).display().to_string();
    let mut w = Walker {
        file: file.clone(),
        problems: Vec::new(),
    };
    let mut pack = Pack {
        name: dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pack".to_string()),
        dir: dir.to_path_buf(),
        description: String::new(),
        sizes: BTreeMap::new(),
        parameters: BTreeMap::new(),
        events: BTreeMap::new(),
        stream_keys: BTreeMap::new(),
        commands: BTreeMap::new(),
        read_models: BTreeMap::new(),
        projections: BTreeMap::new(),
        queries: BTreeMap::new(),
        schemas: Vec::new(),
        datasets: Vec::new(),
        copy: None,
    };
    match std::fs::read_to_string(dir.join(MANIFEST)) {
        Err(e) => w.problem("", format!("cannot read the file: {e}")),
        Ok(text) => match text.parse::<Table>() {
            Err(e) => {
                let (path, message) = syntax_problem(&text, &e);
                w.problem(path, message);
            }
            Ok(root) => w.manifest(&root, &mut pack),
        },
    }
    w.sql_files(dir, &mut pack);
    (pack, w.problems)
}

/// A TOML syntax error located by line and column.
fn syntax_problem(text: &str, e: &toml::de::Error) -> (String, String) {
    let (place, message) = syntax_error(text, e);
    (place.unwrap_or_default(), message)
}

/// `a, b, c`, or `none`.
fn list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let all: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    if all.is_empty() {
        "none".to_string()
    } else {
        all.join(", ")
    }
}

struct Walker {
    file: String,
    problems: Vec<PackProblem>,
}

/// What a name in a command already is, for duplicate and unknown-name messages.
#[derive(Clone, Copy)]
enum NameIs {
    Size,
    Parameter,
    /// Returned by statement `i`.
    Returned(usize),
}

impl Walker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let file = self.file.clone();
        self.problem_in(file, path, message);
    }

    fn problem_in(&mut self, file: String, path: impl Into<String>, message: impl Into<String>) {
        let one_line = |s: String| s.replace('\r', "\\r").replace('\n', "\\n");
        self.problems.push(PackProblem {
            file,
            path: one_line(path.into()),
            message: one_line(message.into()),
        });
    }

    fn expected(&mut self, path: &str, what: &str, v: &Value) {
        self.problem(path, format!("expected {what}, got {}", type_name(v)));
    }

    fn unknown_keys(&mut self, t: &Table, prefix: &str, allowed: &[&str]) {
        for key in t.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    child(prefix, key),
                    format!("unknown key (expected one of: {})", allowed.join(", ")),
                );
            }
        }
    }

    fn table<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Table> {
        match v {
            Value::Table(t) => Some(t),
            other => {
                self.expected(path, "a table", other);
                None
            }
        }
    }

    fn string<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }

    fn array<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a [Value]> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.expected(path, "an array", other);
                None
            }
        }
    }

    /// A required key of `t`.
    fn required<'a>(
        &mut self,
        t: &'a Table,
        prefix: &str,
        key: &str,
        what: &str,
    ) -> Option<&'a Value> {
        let v = t.get(key);
        if v.is_none() {
            self.problem(child(prefix, key), format!("required: {what}"));
        }
        v
    }

    /// A key of a named section (`commands.transfer`) that SQL will name.
    fn name(&mut self, path: &str, name: &str) -> bool {
        let ok = is_name(name);
        if !ok {
            self.problem(
                path,
                "not a name SQL can use: a letter or _, then letters, digits and _",
            );
        }
        ok
    }

    /// A number in (lo, hi) (or (lo, hi] with `hi_inclusive`).
    fn share(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        hi_inclusive: bool,
        what: &str,
    ) -> Option<f64> {
        let path = child(prefix, key);
        let x = match self.required(t, prefix, key, what)? {
            Value::Integer(n) => *n as f64,
            Value::Float(x) => *x,
            other => {
                self.expected(&path, "a number", other);
                return None;
            }
        };
        let ok = x > 0.0 && (x < 1.0 || (hi_inclusive && x == 1.0));
        if !ok {
            let range = if hi_inclusive { "(0, 1]" } else { "(0, 1)" };
            self.problem(&path, format!("must be in {range}, got {x}"));
            return None;
        }
        Some(x)
    }

    /// SQL text of one statement.
    fn statement(&mut self, v: &Value, path: &str) -> Option<NamedSql> {
        let text = self.string(v, path)?;
        match NamedSql::parse(text) {
            Ok(sql) => Some(sql),
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    fn manifest(&mut self, root: &Table, pack: &mut Pack) {
        self.unknown_keys(root, "", TOP_KEYS);
        if let Some(v) = root.get("description") {
            if let Some(s) = self.string(v, "description") {
                pack.description = s.to_string();
            }
        }
        if let Some(t) = root.get("dataset").and_then(|v| self.table(v, "dataset")) {
            self.sizes(t, pack);
        }
        if let Some(t) = root
            .get("parameters")
            .and_then(|v| self.table(v, "parameters"))
        {
            self.parameters(t, pack);
        }
        if let Some(t) = root.get("events").and_then(|v| self.table(v, "events")) {
            self.events(t, pack);
        }
        if let Some(t) = root.get("copy").and_then(|v| self.table(v, "copy")) {
            pack.copy = self.copy(t, pack);
        }
        if let Some(t) = root.get("commands").and_then(|v| self.table(v, "commands")) {
            for (name, v) in t {
                let path = child("commands", name);
                let named = self.name(&path, name);
                if let Some(c) = self
                    .table(v, &path)
                    .and_then(|c| self.command(c, &path, pack))
                {
                    if named {
                        pack.commands.insert(name.clone(), c);
                    }
                }
            }
        }
        if let Some(t) = root
            .get("read_models")
            .and_then(|v| self.table(v, "read_models"))
        {
            for (name, v) in t {
                let path = child("read_models", name);
                let named = self.name(&path, name);
                if let Some(r) = self.table(v, &path).and_then(|r| self.read_model(r, &path)) {
                    if named {
                        pack.read_models.insert(name.clone(), r);
                    }
                }
            }
        }
        if let Some(t) = root
            .get("projections")
            .and_then(|v| self.table(v, "projections"))
        {
            for (name, v) in t {
                let path = child("projections", name);
                let named = self.name(&path, name);
                if let Some(p) = self
                    .table(v, &path)
                    .and_then(|p| self.projection(p, &path, pack))
                {
                    if named {
                        pack.projections.insert(name.clone(), p);
                    }
                }
            }
        }
        if let Some(t) = root.get("queries").and_then(|v| self.table(v, "queries")) {
            for (name, v) in t {
                let path = child("queries", name);
                let named = self.name(&path, name);
                let also_command = root
                    .get("commands")
                    .and_then(Value::as_table)
                    .is_some_and(|c| c.contains_key(name));
                if also_command {
                    self.problem(
                        &path,
                        format!("duplicate name: {name} is also a command (mixes and results name both)"),
                    );
                }
                if let Some(q) = self
                    .table(v, &path)
                    .and_then(|q| self.query(q, &path, pack))
                {
                    if named {
                        pack.queries.insert(name.clone(), q);
                    }
                }
            }
        }
    }

    /// `[copy]`: tables to copy (names, each once), their optional SELECTs, and sizes
    /// measured on the source (declared sizes only).
    fn copy(&mut self, t: &Table, pack: &Pack) -> Option<CopyDef> {
        self.unknown_keys(t, "copy", &["tables", "select", "sizes"]);
        let tables = self.required(t, "copy", "tables", "the tables to copy, in order")?;
        let mut names: Vec<String> = Vec::new();
        for (i, v) in self.array(tables, "copy.tables")?.iter().enumerate() {
            let path = element("copy.tables", i);
            let Some(name) = self.string(v, &path) else {
                continue;
            };
            if !self.name(&path, name) {
                continue;
            }
            if names.iter().any(|n| n == name) {
                self.problem(&path, format!("{name} is listed twice"));
                continue;
            }
            names.push(name.to_string());
        }
        if names.is_empty() {
            self.problem("copy.tables", "empty: name at least one table to copy");
        }
        let mut selects: BTreeMap<String, String> = BTreeMap::new();
        if let Some(st) = t.get("select").and_then(|v| self.table(v, "copy.select")) {
            for (name, v) in st {
                let path = child("copy.select", name);
                if !names.contains(name) {
                    self.problem(&path, format!("not in copy.tables ({})", list(&names)));
                } else if let Some(sql) = self.string(v, &path) {
                    selects.insert(name.clone(), sql.to_string());
                }
            }
        }
        let mut sizes = BTreeMap::new();
        if let Some(st) = t.get("sizes").and_then(|v| self.table(v, "copy.sizes")) {
            for (name, v) in st {
                let path = child("copy.sizes", name);
                if !pack.sizes.contains_key(name) {
                    self.problem(
                        &path,
                        format!("not a size of [dataset] ({})", list(pack.sizes.keys())),
                    );
                } else if let Some(sql) = self.string(v, &path) {
                    sizes.insert(name.clone(), sql.to_string());
                }
            }
        }
        Some(CopyDef {
            tables: names
                .into_iter()
                .map(|n| {
                    let select = selects.remove(&n);
                    (n, select)
                })
                .collect(),
            sizes,
        })
    }

    fn sizes(&mut self, t: &Table, pack: &mut Pack) {
        for (name, v) in t {
            let path = child("dataset", name);
            if !self.name(&path, name) {
                continue;
            }
            match v {
                Value::Integer(n) if (0..=MAX_SIZE).contains(n) => {
                    pack.sizes.insert(name.clone(), *n);
                }
                Value::Integer(n) => {
                    self.problem(&path, format!("must be in 0..={MAX_SIZE}, got {n}"));
                }
                other => self.expected(&path, "an integer", other),
            }
        }
    }

    fn parameters(&mut self, t: &Table, pack: &mut Pack) {
        for (name, v) in t {
            let path = child("parameters", name);
            if !self.name(&path, name) {
                continue;
            }
            if pack.sizes.contains_key(name) {
                self.problem(
                    &path,
                    format!("duplicate name: {name} is also a dataset size"),
                );
                continue;
            }
            let Some(spec) = self.table(v, &path) else {
                continue;
            };
            if let Some(p) = self.parameter(spec, &path, &pack.sizes) {
                pack.parameters.insert(name.clone(), p);
            }
        }
    }

    fn parameter(
        &mut self,
        t: &Table,
        path: &str,
        sizes: &BTreeMap<String, i64>,
    ) -> Option<ParamSpec> {
        let kind_path = child(path, "kind");
        let kind = self.required(t, path, "kind", &format!("one of {KINDS}"))?;
        let kind = self.string(kind, &kind_path)?;
        match kind {
            "uniform" | "zipf" | "hotspot" => {
                let allowed: &[&str] = match kind {
                    "uniform" => &["kind", "range"],
                    "zipf" => &["kind", "range", "exponent"],
                    _ => &["kind", "range", "hot_keys", "hot_ops"],
                };
                self.unknown_keys(t, path, allowed);
                let dist = match kind {
                    "uniform" => Some(KeyDist::Uniform),
                    "zipf" => self
                        .exponent(t, path)
                        .map(|exponent| KeyDist::Zipf { exponent }),
                    _ => {
                        let hot_keys = self.share(
                            t,
                            path,
                            "hot_keys",
                            false,
                            "the share of keys that are hot",
                        );
                        let hot_ops =
                            self.share(t, path, "hot_ops", true, "the share of draws they get");
                        match (hot_keys, hot_ops) {
                            (Some(hot_keys), Some(hot_ops)) => {
                                Some(KeyDist::Hotspot { hot_keys, hot_ops })
                            }
                            _ => None,
                        }
                    }
                };
                let range = self.range(t, path, sizes);
                Some(ParamSpec::Range {
                    dist: dist?,
                    range: range?,
                })
            }
            "choice" => {
                self.unknown_keys(t, path, &["kind", "values"]);
                let values_path = child(path, "values");
                let v = self.required(t, path, "values", "the values to choose among")?;
                let values = self.array(v, &values_path)?;
                let mut out = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    match v {
                        Value::Integer(n) => out.push(Param::Int(*n)),
                        Value::String(s) => out.push(Param::Text(s.clone())),
                        other => self.expected(
                            &element(&values_path, i),
                            "an integer or a string",
                            other,
                        ),
                    }
                }
                if values.is_empty() {
                    self.problem(&values_path, "must not be empty");
                    return None;
                }
                if out.len() != values.len() {
                    return None;
                }
                if out.iter().any(|p| p.kind() != out[0].kind()) {
                    self.problem(&values_path, "mixes integers and strings: give one type");
                    return None;
                }
                Some(ParamSpec::Choice(out))
            }
            "words" => {
                self.unknown_keys(t, path, &["kind", "count"]);
                let count = match t.get("count") {
                    None => 1,
                    Some(Value::Integer(n)) if (1..=i64::from(MAX_WORDS)).contains(n) => *n as u32,
                    Some(Value::Integer(n)) => {
                        self.problem(
                            child(path, "count"),
                            format!("must be in 1..={MAX_WORDS}, got {n}"),
                        );
                        return None;
                    }
                    Some(other) => {
                        self.expected(&child(path, "count"), "an integer", other);
                        return None;
                    }
                };
                Some(ParamSpec::Words { count })
            }
            other => {
                self.problem(
                    kind_path,
                    format!("unknown kind {other:?} (expected one of: {KINDS})"),
                );
                None
            }
        }
    }

    fn exponent(&mut self, t: &Table, path: &str) -> Option<f64> {
        let p = child(path, "exponent");
        let x = match self.required(t, path, "exponent", "the Zipf exponent (> 0)")? {
            Value::Integer(n) => *n as f64,
            Value::Float(x) => *x,
            other => {
                self.expected(&p, "a number", other);
                return None;
            }
        };
        if !(x.is_finite() && x > 0.0) {
            self.problem(p, format!("must be > 0, got {x}"));
            return None;
        }
        Some(x)
    }

    fn range(&mut self, t: &Table, path: &str, sizes: &BTreeMap<String, i64>) -> Option<Range> {
        let p = child(path, "range");
        let v = self.required(t, path, "range", "LO..=HI, e.g. \"1..=accounts\"")?;
        let text = self.string(v, &p)?;
        let range = match Range::parse(text) {
            Ok(r) => r,
            Err(e) => {
                self.problem(p, e);
                return None;
            }
        };
        match range.resolve(sizes) {
            Ok(_) => Some(range),
            Err(e) => {
                let message = if e.contains("empty") {
                    format!("{e} with the default sizes")
                } else {
                    format!("{e} (sizes: {})", list(sizes.keys()))
                };
                self.problem(p, message);
                None
            }
        }
    }

    fn events(&mut self, t: &Table, pack: &mut Pack) {
        for (name, v) in t {
            let path = child("events", name);
            let named = self.name(&path, name);
            let Some(e) = self.table(v, &path) else {
                continue;
            };
            self.unknown_keys(e, &path, &["fields", "stream_key"]);
            let fields_path = child(&path, "fields");
            let Some(fields) = self
                .required(e, &path, "fields", "the payload's field names")
                .and_then(|v| self.array(v, &fields_path))
            else {
                continue;
            };
            let mut names: Vec<String> = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                let fp = element(&fields_path, i);
                let Some(f) = self.string(f, &fp) else {
                    continue;
                };
                if !self.name(&fp, f) {
                    continue;
                }
                if names.iter().any(|n| n == f) {
                    self.problem(fp, format!("duplicate field {f}"));
                    continue;
                }
                names.push(f.to_string());
            }
            let key_path = child(&path, "stream_key");
            let stream_key = e.get("stream_key").and_then(|v| self.string(v, &key_path));
            if let Some(key) = stream_key {
                // Checked against every string the list holds, so a field already reported
                // as a bad name is not reported again here.
                let listed = fields.iter().any(|f| f.as_str() == Some(key));
                if listed {
                    if named && names.iter().any(|n| n == key) {
                        pack.stream_keys.insert(name.clone(), key.to_string());
                    }
                } else {
                    self.problem(
                        &key_path,
                        format!("unknown field {key} of {name} (fields: {})", list(&names)),
                    );
                }
            }
            if named {
                pack.events.insert(name.clone(), names);
            }
        }
    }

    fn command(&mut self, t: &Table, path: &str, pack: &Pack) -> Option<CommandDef> {
        self.unknown_keys(t, path, &["statements", "emit"]);
        let statements_path = child(path, "statements");
        let entries = self
            .required(
                t,
                path,
                "statements",
                "the statements run in one transaction",
            )
            .and_then(|v| self.array(v, &statements_path))?;
        if entries.is_empty() {
            self.problem(&statements_path, "must not be empty");
        }
        // Every name a command can use, with what it is; returned values from the statement
        // that returns them on.
        let mut scope: BTreeMap<String, NameIs> = BTreeMap::new();
        for s in pack.sizes.keys() {
            scope.insert(s.clone(), NameIs::Size);
        }
        for p in pack.parameters.keys() {
            scope.insert(p.clone(), NameIs::Parameter);
        }
        // Names returned by each statement, read first so a use before the return is named.
        let returned_by: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                e.get("returns")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let mut statements = Vec::new();
        let mut valid = true;
        for (i, entry) in entries.iter().enumerate() {
            let sp = element(&statements_path, i);
            match self.command_statement(entry, &sp, i, &mut scope, &returned_by) {
                Some(s) => statements.push(s),
                None => valid = false,
            }
        }
        let mut emit = Vec::new();
        if let Some(v) = t.get("emit") {
            let emit_path = child(path, "emit");
            if let Some(entries) = self.array(v, &emit_path) {
                for (i, entry) in entries.iter().enumerate() {
                    let ep = element(&emit_path, i);
                    match self.emit(entry, &ep, &scope, pack) {
                        Some(e) => emit.push(e),
                        None => valid = false,
                    }
                }
            }
        }
        valid.then_some(CommandDef { statements, emit })
    }

    fn command_statement(
        &mut self,
        entry: &Value,
        path: &str,
        index: usize,
        scope: &mut BTreeMap<String, NameIs>,
        returned_by: &[Vec<String>],
    ) -> Option<CommandStatement> {
        // A plain string is a statement with no requirement and no returned values.
        let (sql_value, sql_path, table) = match entry {
            Value::String(_) => (entry, path.to_string(), None),
            Value::Table(t) => {
                self.unknown_keys(t, path, &["sql", "require_rows", "returns"]);
                let v = self.required(t, path, "sql", "the statement")?;
                (v, child(path, "sql"), Some(t))
            }
            other => {
                self.expected(
                    path,
                    "a string or a table (sql, require_rows, returns)",
                    other,
                );
                return None;
            }
        };
        let sql = self.statement(sql_value, &sql_path);
        let mut ok = sql.is_some();
        if let Some(sql) = &sql {
            for name in sql.names() {
                if scope.contains_key(name) {
                    continue;
                }
                ok = false;
                let later = returned_by
                    .iter()
                    .enumerate()
                    .skip(index + 1)
                    .find(|(_, r)| r.iter().any(|n| n == name));
                let message = match later {
                    Some((j, _)) => {
                        format!(":{name} is returned only by a later statement (statements[{j}])")
                    }
                    None => format!(
                        "unknown parameter :{name} (not a parameter, a dataset size or a value \
                         returned by an earlier statement)"
                    ),
                };
                self.problem(path, message);
            }
        }
        let mut require_rows = None;
        let mut returns = Vec::new();
        if let Some(t) = table {
            if let Some(v) = t.get("require_rows") {
                require_rows = self.requirement(v, &child(path, "require_rows"));
                ok &= require_rows.is_some();
            }
            if let Some(v) = t.get("returns") {
                let rp = child(path, "returns");
                match self.array(v, &rp) {
                    None => ok = false,
                    Some(names) => {
                        if names.is_empty() {
                            self.problem(&rp, "must not be empty (leave it out instead)");
                            ok = false;
                        }
                        for (k, n) in names.iter().enumerate() {
                            let np = element(&rp, k);
                            let Some(n) = self.string(n, &np) else {
                                ok = false;
                                continue;
                            };
                            if !self.name(&np, n) {
                                ok = false;
                                continue;
                            }
                            if let Some(is) = scope.get(n) {
                                let what = match is {
                                    NameIs::Size => "a dataset size".to_string(),
                                    NameIs::Parameter => "a parameter".to_string(),
                                    NameIs::Returned(j) if *j == index => {
                                        "returned twice by this statement".to_string()
                                    }
                                    NameIs::Returned(j) => {
                                        format!("returned by statements[{j}]")
                                    }
                                };
                                self.problem(np, format!("duplicate name {n}: already {what}"));
                                ok = false;
                                continue;
                            }
                            scope.insert(n.to_string(), NameIs::Returned(index));
                            returns.push(n.to_string());
                        }
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        Some(CommandStatement {
            sql: sql?,
            require_rows,
            returns,
        })
    }

    fn requirement(&mut self, v: &Value, path: &str) -> Option<RowRequirement> {
        match v {
            Value::Integer(n) if *n >= 0 => Some(RowRequirement::Exactly(*n as u64)),
            Value::String(s) => {
                let n = s.trim().strip_prefix(">=").map(str::trim);
                match n.and_then(|n| n.parse::<u64>().ok()) {
                    Some(n) => Some(RowRequirement::AtLeast(n)),
                    None => {
                        self.problem(
                            path,
                            format!("expected a row count N or \">= N\" (N >= 0), got {s:?}"),
                        );
                        None
                    }
                }
            }
            Value::Integer(n) => {
                self.problem(path, format!("must be >= 0, got {n}"));
                None
            }
            other => {
                self.expected(path, "a row count N or \">= N\"", other);
                None
            }
        }
    }

    fn emit(
        &mut self,
        entry: &Value,
        path: &str,
        scope: &BTreeMap<String, NameIs>,
        pack: &Pack,
    ) -> Option<Emit> {
        let t = self.table(entry, path)?;
        self.unknown_keys(t, path, &["event", "fields"]);
        let event_path = child(path, "event");
        let event = self
            .required(t, path, "event", "the event type emitted")
            .and_then(|v| self.string(v, &event_path));
        let declared = event.and_then(|e| pack.events.get(e));
        if let (Some(e), None) = (event, declared) {
            self.problem(
                &event_path,
                format!(
                    "unknown event {e:?} (declared: {})",
                    list(pack.events.keys())
                ),
            );
        }
        let fields_path = child(path, "fields");
        let fields = match t.get("fields") {
            None => Some(Table::new()).filter(|_| declared.is_none_or(Vec::is_empty)),
            Some(v) => self.table(v, &fields_path).cloned(),
        };
        let mut ok = declared.is_some();
        let mut out = BTreeMap::new();
        if let Some(fields) = &fields {
            for (field, v) in fields {
                let fp = child(&fields_path, field);
                if let (Some(e), Some(declared)) = (event, declared) {
                    if !declared.contains(field) {
                        self.problem(
                            &fp,
                            format!("{e} has no field {field} (fields: {})", list(declared)),
                        );
                        ok = false;
                    }
                }
                let Some(value) = self.string(v, &fp) else {
                    ok = false;
                    continue;
                };
                if !scope.contains_key(value) {
                    self.problem(
                        &fp,
                        format!(
                            "unknown value {value} (not a parameter, a dataset size or a value \
                             a statement returns)"
                        ),
                    );
                    ok = false;
                    continue;
                }
                out.insert(field.clone(), value.to_string());
            }
        }
        if let (Some(e), Some(declared)) = (event, declared) {
            let given = fields.as_ref();
            for f in declared {
                if !given.is_some_and(|g| g.contains_key(f)) {
                    self.problem(&fields_path, format!("missing field {f} of {e}"));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Emit {
            event: event?.to_string(),
            fields: out,
        })
    }

    fn read_model(&mut self, t: &Table, path: &str) -> Option<ReadModelDef> {
        self.unknown_keys(t, path, &["ddl", "key", "truth"]);
        let ddl_path = child(path, "ddl");
        let ddl = self
            .required(t, path, "ddl", "the CREATE TABLE of the read model")
            .and_then(|v| self.string(v, &ddl_path))
            .map(String::from);
        let key_path = child(path, "key");
        let mut key: Option<Vec<String>> = None;
        if let Some(v) = self.required(t, path, "key", "the columns that identify a row") {
            if let Some(a) = self.array(v, &key_path) {
                let mut cols = Vec::new();
                let mut ok = true;
                for (i, c) in a.iter().enumerate() {
                    let cp = element(&key_path, i);
                    match self.string(c, &cp) {
                        Some(c) if cols.iter().any(|k| k == c) => {
                            self.problem(cp, format!("duplicate column {c}"));
                            ok = false;
                        }
                        Some(c) => cols.push(c.to_string()),
                        None => ok = false,
                    }
                }
                if a.is_empty() {
                    self.problem(&key_path, "must not be empty");
                    ok = false;
                }
                key = ok.then_some(cols);
            }
        }
        let truth_path = child(path, "truth");
        let truth = self
            .required(
                t,
                path,
                "truth",
                "the query over the write tables that yields exactly the rows the read model \
                 must hold",
            )
            .and_then(|v| self.statement(v, &truth_path));
        if let Some(truth) = &truth {
            let names = truth.names();
            if !names.is_empty() {
                self.problem(
                    &truth_path,
                    format!("takes no parameters, found :{}", names.join(", :")),
                );
                return None;
            }
        }
        Some(ReadModelDef {
            ddl: ddl?,
            key: key?,
            truth: truth?,
        })
    }

    fn projection(&mut self, t: &Table, path: &str, pack: &Pack) -> Option<ProjectionDef> {
        self.unknown_keys(t, path, &["event", "statements"]);
        let event_path = child(path, "event");
        let event = self
            .required(t, path, "event", "the event type it applies")
            .and_then(|v| self.string(v, &event_path));
        let fields = event.and_then(|e| pack.events.get(e));
        if let (Some(e), None) = (event, fields) {
            self.problem(
                &event_path,
                format!(
                    "unknown event {e:?} (declared: {})",
                    list(pack.events.keys())
                ),
            );
        }
        let statements_path = child(path, "statements");
        let entries = self
            .required(t, path, "statements", "the statements that apply the event")
            .and_then(|v| self.array(v, &statements_path))?;
        if entries.is_empty() {
            self.problem(&statements_path, "must not be empty");
            return None;
        }
        let mut statements = Vec::new();
        let mut ok = fields.is_some();
        for (i, v) in entries.iter().enumerate() {
            let sp = element(&statements_path, i);
            let Some(sql) = self.statement(v, &sp) else {
                ok = false;
                continue;
            };
            if let (Some(e), Some(fields)) = (event, fields) {
                for name in sql.names() {
                    if !fields.iter().any(|f| f == name) {
                        self.problem(
                            &sp,
                            format!("unknown field :{name} of {e} (fields: {})", list(fields)),
                        );
                        ok = false;
                    }
                }
            }
            statements.push(sql);
        }
        if !ok {
            return None;
        }
        Some(ProjectionDef {
            event: event?.to_string(),
            statements,
        })
    }

    fn query(&mut self, t: &Table, path: &str, pack: &Pack) -> Option<QueryDef> {
        self.unknown_keys(t, path, &["write_sql", "read_sql"]);
        let side = |w: &mut Walker, key: &str, what: &str| {
            let p = child(path, key);
            let sql = w
                .required(t, path, key, what)
                .and_then(|v| w.statement(v, &p))?;
            let mut ok = true;
            for name in sql.names() {
                if !pack.parameters.contains_key(name) && !pack.sizes.contains_key(name) {
                    w.problem(
                        &p,
                        format!("unknown parameter :{name} (not a parameter or a dataset size)"),
                    );
                    ok = false;
                }
            }
            ok.then_some(sql)
        };
        let write_sql = side(self, "write_sql", "the query on the write model");
        let read_sql = side(self, "read_sql", "the query on the read models");
        Some(QueryDef {
            write_sql: write_sql?,
            read_sql: read_sql?,
        })
    }

    /// The schema and dataset files, shared and per engine.
    fn sql_files(&mut self, dir: &Path, pack: &mut Pack) {
        let variants: [(Option<Engine>, &str); 3] = [
            (None, ""),
            (Some(Engine::Sqlite), ".sqlite"),
            (Some(Engine::Postgres), ".postgres"),
        ];
        for role in ["schema", "dataset"] {
            for (engine, suffix) in variants {
                let name = format!("{role}{suffix}.sql");
                let path = dir.join(&name);
                if !path.exists() {
                    continue;
                }
                let file = path.display().to_string();
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        self.problem_in(file, "", format!("cannot read the file: {e}"));
                        continue;
                    }
                };
                if role == "schema" {
                    if text.trim().is_empty() {
                        self.problem_in(file, "", "holds no SQL statement");
                        continue;
                    }
                    pack.schemas.push(SqlFile {
                        file,
                        engine,
                        text,
                        statements: Vec::new(),
                    });
                    continue;
                }
                let statements = match split(&text) {
                    Ok(s) => s,
                    Err(e) => {
                        self.problem_in(file, "", e);
                        continue;
                    }
                };
                let mut ok = true;
                for (i, s) in statements.iter().enumerate() {
                    for name in s.names() {
                        if !pack.sizes.contains_key(name) {
                            self.problem_in(
                                file.clone(),
                                element("statements", i),
                                format!(
                                    "unknown size :{name} (sizes: {})",
                                    list(pack.sizes.keys())
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                if ok {
                    pack.datasets.push(SqlFile {
                        file,
                        engine,
                        text,
                        statements,
                    });
                }
            }
        }
        if !variants
            .iter()
            .any(|(_, suffix)| dir.join(format!("schema{suffix}.sql")).exists())
        {
            self.problem_in(
                dir.display().to_string(),
                "",
                "no schema.sql (nor schema.sqlite.sql or schema.postgres.sql): the write model's DDL",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn lines(dir: &Path) -> Vec<String> {
        let (_, problems) = read(dir);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_minimal_pack_reads_whole() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "schema.sql",
            "CREATE TABLE t (id BIGINT PRIMARY KEY, n BIGINT);",
        );
        write(
            d.path(),
            "dataset.sql",
            "INSERT INTO t (id, n) SELECT 1, :rows;",
        );
        write(
            d.path(),
            MANIFEST,
            r#"
[dataset]
rows = 10
[parameters]
id = { kind = "uniform", range = "1..=rows" }
[events.Bumped]
fields = ["id"]
[commands.bump]
statements = [{ sql = "UPDATE t SET n = n + 1 WHERE id = :id", require_rows = ">= 1" }]
emit = [{ event = "Bumped", fields = { id = "id" } }]
[read_models.counts]
ddl = "CREATE TABLE counts (id BIGINT PRIMARY KEY, n BIGINT)"
key = ["id"]
truth = "SELECT id, n FROM t"
[projections.count]
event = "Bumped"
statements = ["UPDATE counts SET n = n + 1 WHERE id = :id"]
[queries.n]
write_sql = "SELECT n FROM t WHERE id = :id"
read_sql = "SELECT n FROM counts WHERE id = :id"
"#,
        );
        let (pack, problems) = read(d.path());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            pack.summary(),
            "1 command, 1 query, 1 read model, 1 projection"
        );
        let bump = &pack.commands["bump"];
        assert_eq!(
            bump.statements[0].require_rows,
            Some(RowRequirement::AtLeast(1))
        );
        assert_eq!(bump.emit[0].fields["id"], "id");
        assert_eq!(pack.dataset(Engine::Sqlite).unwrap().statements.len(), 1);
        assert!(pack.schema(Engine::Postgres).unwrap().engine.is_none());
    }

    #[test]
    fn returned_values_parameters_and_requirements_are_checked() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "schema.sql",
            "CREATE TABLE t (id BIGINT PRIMARY KEY);",
        );
        write(
            d.path(),
            MANIFEST,
            r#"
[parameters]
from = { kind = "zipf", range = "1..=10", exponent = 0 }
mixed = { kind = "choice", values = [1, "a"] }
none = { kind = "words", count = 0 }
id = { kind = "uniform", range = "1..=n" }
ok = { kind = "uniform", range = "1..=10" }
[commands.c]
statements = [
    { sql = "SELECT :tid", require_rows = "> 1" },
    { sql = "SELECT 1", returns = ["tid", "ok"] },
]
[queries.c]
write_sql = "SELECT 1"
read_sql = "SELECT 1"
"#,
        );
        let f = d.path().join(MANIFEST).display().to_string();
        let mut got = lines(d.path());
        got.sort();
        let mut want: Vec<String> = [
            "parameters.from.exponent: must be > 0, got 0",
            "parameters.mixed.values: mixes integers and strings: give one type",
            "parameters.none.count: must be in 1..=64, got 0",
            "parameters.id.range: unknown dataset size `n` (sizes: none)",
            "commands.c.statements[0]: :tid is returned only by a later statement (statements[1])",
            "commands.c.statements[0].require_rows: expected a row count N or \">= N\" (N >= 0), got \"> 1\"",
            "commands.c.statements[1].returns[1]: duplicate name ok: already a parameter",
            "queries.c: duplicate name: c is also a command (mixes and results name both)",
        ]
        .iter()
        .map(|l| format!("{f}: {l}"))
        .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_missing_folder_names_the_manifest_and_the_schema() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let l = lines(&missing);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].starts_with(&format!(
            "{}: cannot read the file",
            missing.join(MANIFEST).display()
        )));
        assert_eq!(
            l[1],
            format!(
                "{}: no schema.sql (nor schema.sqlite.sql or schema.postgres.sql): the write model's DDL",
                missing.display()
            )
        );
    }

    #[test]
    fn a_copy_names_each_table_once_selects_of_its_tables_and_declared_sizes() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "schema.sql",
            "CREATE TABLE t (id BIGINT PRIMARY KEY);",
        );
        write(
            d.path(),
            MANIFEST,
            r#"
[dataset]
rows = 10
[copy]
tables = ["t", "t", "bad name"]
select = { u = "SELECT 1" }
sizes = { rows = "SELECT count(*) FROM t", other = "SELECT 1" }
colour = "blue"
"#,
        );
        let f = d.path().join(MANIFEST).display().to_string();
        let mut got = lines(d.path());
        got.sort();
        let mut want: Vec<String> = [
            "copy.colour: unknown key (expected one of: tables, select, sizes)",
            "copy.tables[1]: t is listed twice",
            "copy.tables[2]: not a name SQL can use: a letter or _, then letters, digits and _",
            "copy.select.u: not in copy.tables (t)",
            "copy.sizes.other: not a size of [dataset] (rows)",
        ]
        .iter()
        .map(|l| format!("{f}: {l}"))
        .collect();
        want.sort();
        assert_eq!(got, want);
        let (pack, _) = read(d.path());
        let copy = pack.copy.unwrap();
        assert_eq!(copy.tables, vec![("t".to_string(), None)]);
        assert_eq!(copy.sizes.len(), 1);
    }

    /// A pack whose only events are `events` (TOML), with a schema so nothing else is wrong.
    fn events_pack(events: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "schema.sql", "CREATE TABLE t (id BIGINT);");
        write(d.path(), MANIFEST, events);
        d
    }

    #[test]
    fn a_stream_key_names_one_of_its_events_fields() {
        let d = events_pack(
            r#"
[events.MoneyTransferred]
fields = ["transfer", "from", "to", "amount"]
stream_key = "from"
[events.Opened]
fields = ["account"]
"#,
        );
        let (pack, problems) = read(d.path());
        assert!(problems.is_empty(), "{problems:?}");
        // Only the event that declares one has a stream key; the fields stay as declared.
        assert_eq!(
            pack.stream_keys,
            BTreeMap::from([("MoneyTransferred".to_string(), "from".to_string())])
        );
        assert_eq!(
            pack.events["MoneyTransferred"],
            ["transfer", "from", "to", "amount"]
        );
        assert_eq!(pack.events["Opened"], ["account"]);
    }

    #[test]
    fn a_stream_key_that_is_no_field_or_no_string_is_refused() {
        let d = events_pack(
            r#"
[events.MoneyTransferred]
fields = ["transfer", "from", "to"]
stream_key = "account"
[events.Opened]
fields = ["account"]
stream_key = 1
[events.Closed]
fields = ["account"]
stream_key = ["account"]
"#,
        );
        let f = d.path().join(MANIFEST).display().to_string();
        let mut got = lines(d.path());
        got.sort();
        let mut want: Vec<String> = [
            "events.Closed.stream_key: expected a string, got an array",
            "events.MoneyTransferred.stream_key: unknown field account of MoneyTransferred (fields: transfer, from, to)",
            "events.Opened.stream_key: expected a string, got an integer",
        ]
        .iter()
        .map(|l| format!("{f}: {l}"))
        .collect();
        want.sort();
        assert_eq!(got, want);
        // The events themselves stand, so their projections and emits are checked as usual;
        // no stream key is kept.
        let (pack, _) = read(d.path());
        assert_eq!(pack.events.len(), 3);
        assert!(pack.stream_keys.is_empty());
    }
}
