//! A batch of rows folded into a few set-wise statements, on PostgreSQL, where the statements
//! the rows run allow it without changing what one row after another would leave.
//!
//! Why: [`super::row_triggers`] runs each row's statements one by one inside the server, and
//! PostgreSQL spends about 9 µs on each (its executor's start-up and end, every time), and a
//! row updated many times in one transaction leaves a longer chain of versions each time. A
//! read model that counts or keeps the latest state of a few hot rows (a day's sales, a
//! popular product) is updated hundreds of times a batch; folded, it is updated once.
//!
//! What folds is decided per read model table, from the statements' syntax (`sqlparser`),
//! and only when every statement of the pack writes one table and reads nothing but that
//! table's row and the event's fields (`NEW."field"`): then the tables are independent and
//! each can be applied on its own. A table folds when all its statements are of these forms:
//! - **insert**: `INSERT INTO t (…) VALUES (…)` of the event's fields, one statement (an
//!   `INSERT … SELECT` in the rows' order);
//! - **add**: `UPDATE t SET c = c + e, … WHERE k = e AND …` (or `- e`), integer `e` of the
//!   event's fields (summed per key: addition of integers does not depend on the order);
//! - **latest**: `UPDATE t SET a = e, …, v = e_v WHERE k = e AND … AND v < e_v`, all such
//!   statements of the table setting the same columns (per key, the first row with the
//!   highest version is what one row after another leaves).
//!
//! The adds' and the latests' columns must not meet, no statement sets a key, and where a
//! table has an insert and updates, an update of a key inserted later in the same batch sends
//! that batch one row at a time ([`RowFold::batch`] checks). Tables with any other statement
//! (an upsert, a delete) keep their statements row by row, through the row triggers. Read
//! models with foreign keys or triggers, or a pack with a statement of another shape, fold
//! nothing. Left out on purpose: a sum that overflows part-way through a batch but not at its
//! end (one row after another would fail; the fold does not).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, FromTable, Ident, ObjectName, ObjectNamePart,
    OnConflictAction, OnInsert, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
    UnaryOperator, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlx::AnyConnection;

use super::row_triggers::{self, Batch, RowTriggers};
use super::sql::Param;
use super::Engine;

/// The view's column naming a row's kind, as in [`super::row_triggers`].
const KIND: &str = "cqrs_bench_kind";
/// A row's place in its batch.
const ORDINAL: &str = "cqrs_bench_n";

/// A pack's projection statements split into what folds, per table, and the rest.
#[derive(Debug, Clone)]
pub struct RowFold {
    kinds: Vec<String>,
    tables: Vec<TableFold>,
    /// The statements of the tables that do not fold, row by row.
    rest: Option<RowTriggers>,
    rest_kinds: BTreeSet<usize>,
}

/// A batch folded: the rest's rows through its triggers, then one statement per fold.
#[derive(Debug, Clone)]
pub struct FoldBatch {
    rest: Option<Batch>,
    /// Each statement and its binds (arrays, one per column of its rows).
    statements: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct TableFold {
    table: String,
    /// The key columns of its updates.
    keys: Vec<String>,
    insert: Option<InsertFold>,
    adds: Vec<AddFold>,
    latests: Vec<LatestFold>,
}

#[derive(Debug, Clone)]
struct InsertFold {
    kinds: Vec<usize>,
    columns: Vec<String>,
    values: Vec<String>,
    /// The fields giving the table's key columns, where the table has updates too.
    key_fields: Vec<String>,
    fields: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct AddFold {
    kinds: Vec<usize>,
    /// Per key column (the table's order), the expression.
    keys: Vec<Expr>,
    /// Column, contribution (the sign folded in).
    terms: Vec<(String, String)>,
    fields: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct LatestFold {
    kinds: Vec<usize>,
    keys: Vec<Expr>,
    /// Column, value, in column order; the version last.
    sets: Vec<(String, String)>,
    fields: BTreeSet<String>,
}

/// One set-wise statement: its SQL after `WITH b AS (…)`, and the kinds and fields of the
/// rows it reads.
struct Part {
    body: String,
    kinds: Vec<usize>,
    fields: BTreeSet<String>,
}

/// A table's statements: the kind running each, its place among the kind's, its shape.
type TableStatements = Vec<(usize, usize, Shape)>;

/// A row of a batch: its kind's index and its values.
type IndexedRow<'a> = (usize, &'a BTreeMap<String, Param>);

/// A latest-state statement: its kind, keys, columns set and version column.
type LatestParts<'a> = (
    usize,
    &'a BTreeMap<String, Expr>,
    &'a BTreeMap<String, Expr>,
    &'a String,
);

/// One statement as the fold sees it.
enum Shape {
    Insert {
        columns: Vec<String>,
        values: Vec<Expr>,
    },
    Add {
        keys: BTreeMap<String, Expr>,
        terms: Vec<(String, Expr, bool)>,
    },
    Latest {
        keys: BTreeMap<String, Expr>,
        sets: BTreeMap<String, Expr>,
        version: String,
    },
    /// Self-contained, but applied row by row.
    Other,
}

fn name_of(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] => Some(name_of(i)),
        _ => None,
    }
}

fn plain_table(t: &TableWithJoins) -> Option<String> {
    match &t.relation {
        TableFactor::Table {
            name,
            alias: None,
            args: None,
            with_hints,
            ..
        } if t.joins.is_empty() && with_hints.is_empty() => single_name(name),
        _ => None,
    }
}

/// The event's field an expression is, if it is one (`NEW."field"`).
fn field(e: &Expr) -> Option<String> {
    match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 && name_of(&parts[0]) == "new" => {
            Some(parts[1].value.clone())
        }
        Expr::Nested(inner) => field(inner),
        _ => None,
    }
}

/// Whether `e` reads nothing but the event's fields, literals and the columns of `table`'s
/// row (bare or `table.`/`excluded.`), with no function and no subquery.
fn closed(e: &Expr, table: &str) -> bool {
    match e {
        Expr::Identifier(_) | Expr::Value(_) => true,
        Expr::CompoundIdentifier(parts) => {
            parts.len() == 2 && {
                let first = name_of(&parts[0]);
                first == "new" || first == "excluded" || first == table
            }
        }
        Expr::BinaryOp { left, right, .. } => closed(left, table) && closed(right, table),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr) => closed(expr, table),
        Expr::Between {
            expr, low, high, ..
        } => closed(expr, table) && closed(low, table) && closed(high, table),
        _ => false,
    }
}

/// `e`, made of the event's fields and literals only, as SQL over the batch's rows `b`;
/// `integral`: integer literals only (no text, no decimals).
fn render(e: &Expr, integral: bool) -> Option<String> {
    match e {
        Expr::CompoundIdentifier(_) => field(e).map(|f| format!("b.{}", quote(&f))),
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) if !integral || n.bytes().all(|c| c.is_ascii_digit()) => {
                Some(n.clone())
            }
            Value::SingleQuotedString(_) | Value::Boolean(_) if !integral => Some(v.to_string()),
            Value::Null => Some("NULL".into()),
            _ => None,
        },
        Expr::BinaryOp { left, op, right } => {
            let allowed = matches!(
                op,
                BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo
            ) || (!integral && *op == BinaryOperator::StringConcat);
            allowed.then_some(())?;
            Some(format!(
                "({} {op} {})",
                render(left, integral)?,
                render(right, integral)?
            ))
        }
        Expr::UnaryOp {
            op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
            expr,
        } => Some(format!("({op}{})", render(expr, integral)?)),
        Expr::Nested(inner) => Some(format!("({})", render(inner, integral)?)),
        _ => None,
    }
}

/// The event's fields `exprs` read.
fn fields_in<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> BTreeSet<String> {
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::CompoundIdentifier(_) => out.extend(field(e)),
            Expr::BinaryOp { left, right, .. } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => walk(expr, out),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for e in exprs {
        walk(e, &mut out);
    }
    out
}

fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(name_of(i)),
        _ => None,
    }
}

fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        _ => out.push(e.clone()),
    }
}

/// A WHERE of `key = e` terms and at most one `version < e`: the keys and the guard.
#[allow(clippy::type_complexity)]
fn keyed(selection: &Expr) -> Option<(BTreeMap<String, Expr>, Option<(String, Expr)>)> {
    let mut terms = Vec::new();
    conjuncts(selection, &mut terms);
    let mut keys = BTreeMap::new();
    let mut guard = None;
    for t in terms {
        let Expr::BinaryOp { left, op, right } = &t else {
            return None;
        };
        match op {
            BinaryOperator::Eq => {
                let (c, e) = match (column(left), column(right)) {
                    (Some(c), None) => (c, right),
                    (None, Some(c)) => (c, left),
                    _ => return None,
                };
                render(e, false)?;
                if keys.insert(c, (**e).clone()).is_some() {
                    return None;
                }
            }
            BinaryOperator::Lt if guard.is_none() => {
                render(right, false)?;
                guard = Some((column(left)?, (**right).clone()));
            }
            _ => return None,
        }
    }
    (!keys.is_empty()).then_some((keys, guard))
}

/// A statement's table and shape; `None` when the statement is not self-contained or not
/// understood (then nothing of the pack folds).
fn shape(sql: &str) -> Option<(String, Shape)> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    match statements.pop()? {
        Statement::Update(u) => {
            if u.from.is_some()
                || u.returning.is_some()
                || u.or.is_some()
                || u.limit.is_some()
                || !u.order_by.is_empty()
            {
                return None;
            }
            let table = plain_table(&u.table)?;
            let mut sets = BTreeMap::new();
            for a in &u.assignments {
                let AssignmentTarget::ColumnName(name) = &a.target else {
                    return None;
                };
                if !closed(&a.value, &table) {
                    return None;
                }
                if sets.insert(single_name(name)?, a.value.clone()).is_some() {
                    return None;
                }
            }
            let selection = u.selection.as_ref()?;
            if !closed(selection, &table) {
                return None;
            }
            Some((table, update_shape(sets, selection)))
        }
        Statement::Insert(i) => {
            let TableObject::TableName(name) = &i.table else {
                return None;
            };
            let table = single_name(name)?;
            let source = i.source.as_ref()?;
            if i.table_alias.is_some()
                || i.returning.is_some()
                || i.or.is_some()
                || i.columns.is_empty()
                || source.with.is_some()
                || source.order_by.is_some()
                || source.limit_clause.is_some()
            {
                return None;
            }
            let SetExpr::Values(values) = source.body.as_ref() else {
                return None;
            };
            let [row] = values.rows.as_slice() else {
                return None;
            };
            let row = &row.content;
            let columns: Vec<String> = i.columns.iter().map(single_name).collect::<Option<_>>()?;
            if row.len() != columns.len() || !row.iter().all(|e| closed(e, &table)) {
                return None;
            }
            match &i.on {
                None if row.iter().all(|e| render(e, false).is_some()) => Some((
                    table,
                    Shape::Insert {
                        columns,
                        values: row.clone(),
                    },
                )),
                None => Some((table, Shape::Other)),
                Some(OnInsert::OnConflict(c)) => {
                    if let OnConflictAction::DoUpdate(d) = &c.action {
                        let exprs = d.assignments.iter().map(|a| &a.value);
                        if !exprs.chain(d.selection.as_ref()).all(|e| closed(e, &table)) {
                            return None;
                        }
                    }
                    Some((table, Shape::Other))
                }
                Some(_) => None,
            }
        }
        Statement::Delete(d) => {
            let FromTable::WithFromKeyword(from) = &d.from else {
                return None;
            };
            let [from] = from.as_slice() else {
                return None;
            };
            if !d.tables.is_empty()
                || d.using.is_some()
                || d.returning.is_some()
                || d.limit.is_some()
                || !d.order_by.is_empty()
            {
                return None;
            }
            let table = plain_table(from)?;
            if !d.selection.iter().all(|e| closed(e, &table)) {
                return None;
            }
            Some((table, Shape::Other))
        }
        _ => None,
    }
}

fn update_shape(sets: BTreeMap<String, Expr>, selection: &Expr) -> Shape {
    let Some((keys, guard)) = keyed(selection) else {
        return Shape::Other;
    };
    if sets.keys().any(|c| keys.contains_key(c)) {
        return Shape::Other;
    }
    match guard {
        None => {
            let mut terms = Vec::new();
            for (c, e) in &sets {
                let Expr::BinaryOp { left, op, right } = e else {
                    return Shape::Other;
                };
                let term = match (column(left), op, column(right)) {
                    (Some(l), BinaryOperator::Plus, _) if &l == c => (right, false),
                    (Some(l), BinaryOperator::Minus, _) if &l == c => (right, true),
                    (_, BinaryOperator::Plus, Some(r)) if &r == c => (left, false),
                    _ => return Shape::Other,
                };
                if render(term.0, true).is_none() {
                    return Shape::Other;
                }
                terms.push((c.clone(), (**term.0).clone(), term.1));
            }
            Shape::Add { keys, terms }
        }
        Some((version, bound)) => {
            let same = sets
                .get(&version)
                .is_some_and(|e| render(e, false) == render(&bound, false));
            if !same || sets.values().any(|e| render(e, false).is_none()) {
                return Shape::Other;
            }
            Shape::Latest {
                keys,
                sets,
                version,
            }
        }
    }
}

/// Whether a read model's DDL declares what makes its table depend on another's writes.
fn entangled(ddl: &str) -> bool {
    let upper = ddl.to_ascii_uppercase();
    ["REFERENCES", "TRIGGER", "RULE", "FOREIGN"]
        .iter()
        .any(|w| upper.contains(w))
}

impl RowFold {
    /// Rows of `kinds` (`programs`' order) with values for `columns`; `programs` as for
    /// [`RowTriggers::new`], `read_models` each read model's name and DDL. `None` where
    /// nothing folds (see the module's notes), and on SQLite, whose row triggers are cheap.
    pub fn new(
        engine: Engine,
        columns: Vec<String>,
        programs: &[(String, Vec<String>)],
        read_models: &BTreeMap<String, String>,
    ) -> Option<RowFold> {
        if engine != Engine::Postgres
            || read_models.values().any(|ddl| entangled(ddl))
            || columns.iter().any(|c| c == KIND || c == ORDINAL)
        {
            return None;
        }
        // Per table, in order of first use: (kind, statement index, shape).
        let mut by_table: Vec<(String, TableStatements)> = Vec::new();
        for (k, (_, statements)) in programs.iter().enumerate() {
            for (s, sql) in statements.iter().enumerate() {
                let (table, shape) = shape(sql)?;
                if !read_models.contains_key(&table) {
                    return None;
                }
                match by_table.iter_mut().find(|(t, _)| *t == table) {
                    Some((_, list)) => list.push((k, s, shape)),
                    None => by_table.push((table, vec![(k, s, shape)])),
                }
            }
        }
        let mut tables = Vec::new();
        let mut folded: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (table, list) in by_table {
            if let Some(fold) = TableFold::of(&table, &list) {
                folded.extend(list.iter().map(|(k, s, _)| (*k, *s)));
                tables.push(fold);
            }
        }
        if tables.is_empty() {
            return None;
        }
        let mut rest_programs = Vec::new();
        let mut rest_kinds = BTreeSet::new();
        for (k, (kind, statements)) in programs.iter().enumerate() {
            let left: Vec<String> = statements
                .iter()
                .enumerate()
                .filter(|(s, _)| !folded.contains(&(k, *s)))
                .map(|(_, sql)| sql.clone())
                .collect();
            if !left.is_empty() {
                rest_kinds.insert(k);
                rest_programs.push((kind.clone(), left));
            }
        }
        // The rest's rows carry only the fields its statements read.
        let rest_columns = columns
            .into_iter()
            .filter(|c| {
                let at = row_triggers::column_ref(c);
                rest_programs
                    .iter()
                    .flat_map(|(_, s)| s)
                    .any(|s| s.contains(&at))
            })
            .collect();
        let rest = if rest_programs.is_empty() {
            None
        } else {
            Some(RowTriggers::new(engine, rest_columns, &rest_programs)?)
        };
        Some(RowFold {
            kinds: programs.iter().map(|(k, _)| k.clone()).collect(),
            tables,
            rest,
            rest_kinds,
        })
    }

    /// The tables whose statements fold (for tests and notes).
    pub fn folded_tables(&self) -> Vec<&str> {
        self.tables.iter().map(|t| t.table.as_str()).collect()
    }

    /// The batch of the rows given as `(kind, values by column)`, in order, folded. `None`
    /// when it must go one row at a time: a column holding an integer in one row and text in
    /// another, an update of a key a later row of the batch inserts, or no row to apply.
    pub fn batch<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, Param>)> + Clone,
    ) -> Option<FoldBatch> {
        let mut indexed: Vec<(usize, &BTreeMap<String, Param>)> = Vec::new();
        for (kind, values) in rows.clone() {
            if let Some(k) = self.kinds.iter().position(|x| x == kind) {
                indexed.push((k, values));
            }
        }
        if indexed.is_empty() || self.tables.iter().any(|t| !t.in_order(&indexed)) {
            return None;
        }
        // Per column: seen an integer, seen text.
        let mut seen: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
        for (_, values) in &indexed {
            for (c, v) in values.iter() {
                let s = seen.entry(c.as_str()).or_default();
                match v {
                    Param::Int(_) => s.0 = true,
                    Param::Text(_) => s.1 = true,
                    Param::Null => {}
                }
            }
        }
        if seen.values().any(|&(int, text)| int && text) {
            return None;
        }
        let rest = match &self.rest {
            Some(rest) if indexed.iter().any(|(k, _)| self.rest_kinds.contains(k)) => {
                Some(rest.batch(rows)?)
            }
            _ => None,
        };
        let present: BTreeSet<usize> = indexed.iter().map(|(k, _)| *k).collect();
        let mut statements = Vec::new();
        for part in self.tables.iter().flat_map(|t| t.statements(&present)) {
            let chosen: Vec<(usize, &IndexedRow)> = indexed
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| part.kinds.contains(k))
                .collect();
            let mut binds = vec![
                int_array(chosen.iter().map(|(i, _)| Some(*i as i64 + 1))),
                int_array(chosen.iter().map(|(_, (k, _))| Some(*k as i64))),
            ];
            let mut unnest = vec!["$1::bigint[]".to_string(), "$2::bigint[]".to_string()];
            let mut names = vec![ORDINAL.to_string(), KIND.to_string()];
            for f in &part.fields {
                let int = seen.get(f.as_str()).is_some_and(|s| s.0);
                let values = chosen.iter().map(|(_, (_, v))| v.get(f));
                binds.push(if int {
                    int_array(values.map(|v| match v {
                        Some(Param::Int(n)) => Some(*n),
                        _ => None,
                    }))
                } else {
                    text_array(values.map(|v| match v {
                        Some(Param::Text(t)) => Some(t.as_str()),
                        _ => None,
                    }))
                });
                unnest.push(format!(
                    "${}::{}[]",
                    binds.len(),
                    if int { "bigint" } else { "text" }
                ));
                names.push(quote(f));
            }
            statements.push((
                format!(
                    "WITH b AS (SELECT * FROM unnest({}) AS b({})) {}",
                    unnest.join(", "),
                    names.join(", "),
                    part.body
                ),
                binds,
            ));
        }
        Some(FoldBatch { rest, statements })
    }

    /// Makes on `conn` the view the rest of `rows` go through, if missing (see
    /// [`Batch::make`]).
    pub async fn make<'a>(
        &self,
        conn: &mut AnyConnection,
        rows: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, Param>)> + Clone,
    ) -> Result<(), sqlx::Error> {
        if let Some(FoldBatch {
            rest: Some(rest), ..
        }) = self.batch(rows)
        {
            rest.make(conn).await?;
        }
        Ok(())
    }
}

/// A PostgreSQL array literal of integers.
fn int_array(values: impl Iterator<Item = Option<i64>>) -> String {
    let items: Vec<String> = values
        .map(|v| v.map_or_else(|| "NULL".to_string(), |n| n.to_string()))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// A PostgreSQL array literal of text, each element quoted.
fn text_array<'a>(values: impl Iterator<Item = Option<&'a str>>) -> String {
    let items: Vec<String> = values
        .map(|v| match v {
            Some(t) => format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\"")),
            None => "NULL".to_string(),
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn kinds_in(kinds: &[usize]) -> String {
    let list: Vec<String> = kinds.iter().map(usize::to_string).collect();
    format!("{KIND} IN ({})", list.join(", "))
}

/// A row's key for the order check: `None` when a part is NULL (it matches nothing).
fn key_of(values: &BTreeMap<String, Param>, fields: &[String]) -> Option<Vec<String>> {
    fields
        .iter()
        .map(|f| match values.get(f) {
            Some(Param::Int(n)) => Some(format!("i{n}")),
            Some(Param::Text(t)) => Some(format!("t{t}")),
            Some(Param::Null) | None => None,
        })
        .collect()
}

impl TableFold {
    fn of(table: &str, list: &[(usize, usize, Shape)]) -> Option<TableFold> {
        let mut inserts: Vec<(usize, &Vec<String>, &Vec<Expr>)> = Vec::new();
        let mut adds = Vec::new();
        let mut latests: Vec<LatestParts> = Vec::new();
        let mut keys: Option<Vec<String>> = None;
        let mut same_keys = |k: &BTreeMap<String, Expr>| {
            let names: Vec<String> = k.keys().cloned().collect();
            keys.get_or_insert_with(|| names.clone()) == &names
        };
        for (kind, _, shape) in list {
            match shape {
                Shape::Other => return None,
                Shape::Insert { columns, values } => inserts.push((*kind, columns, values)),
                Shape::Add { keys: k, terms } => {
                    if !same_keys(k) {
                        return None;
                    }
                    adds.push((*kind, k, terms));
                }
                Shape::Latest {
                    keys: k,
                    sets,
                    version,
                } => {
                    if !same_keys(k) {
                        return None;
                    }
                    latests.push((*kind, k, sets, version));
                }
            }
        }
        let keys = keys.unwrap_or_default();
        // One insert statement (the same one for every kind that runs it), once a kind.
        let mut inserting: Vec<usize> = inserts.iter().map(|(k, _, _)| *k).collect();
        inserting.dedup();
        if inserting.len() != inserts.len() {
            return None;
        }
        let insert = match inserts.first() {
            None => None,
            Some(&(_, columns, values)) => {
                let same =
                    |&(_, c, v): &(usize, &Vec<String>, &Vec<Expr>)| c == columns && v == values;
                if !inserts.iter().all(same) {
                    return None;
                }
                let updates = !adds.is_empty() || !latests.is_empty();
                let mut key_fields = Vec::new();
                if updates {
                    for k in &keys {
                        let at = columns.iter().position(|c| c == k)?;
                        key_fields.push(field(&values[at])?);
                    }
                }
                Some(InsertFold {
                    kinds: inserts.iter().map(|(k, _, _)| *k).collect(),
                    columns: columns.clone(),
                    fields: fields_in(values.iter()),
                    values: values
                        .iter()
                        .map(|v| render(v, false))
                        .collect::<Option<_>>()?,
                    key_fields,
                })
            }
        };
        // Latests: the same columns and version everywhere; adds touch none of them.
        let latest_columns: Option<(Vec<&String>, &String)> = latests
            .first()
            .map(|(_, _, sets, version)| (sets.keys().collect(), *version));
        if let Some((columns, version)) = &latest_columns {
            let same = |(_, _, s, v): &(usize, _, &BTreeMap<String, Expr>, &String)| {
                s.keys().collect::<Vec<_>>() == *columns && *v == *version
            };
            if !latests.iter().all(same) {
                return None;
            }
            let added = adds
                .iter()
                .flat_map(|(_, _, terms)| terms.iter())
                .any(|(c, _, _)| columns.contains(&c));
            if added {
                return None;
            }
        }
        // Where a table has an insert, every update's key is a field (for the order check).
        if insert.is_some() {
            let fields = |k: &BTreeMap<String, Expr>| k.values().all(|e| field(e).is_some());
            if !adds.iter().all(|(_, k, _)| fields(k))
                || !latests.iter().all(|(_, k, _, _)| fields(k))
            {
                return None;
            }
        }
        let key_exprs = |k: &BTreeMap<String, Expr>| keys.iter().map(|c| k[c].clone()).collect();
        let adds = adds
            .iter()
            .map(|(kind, k, terms_in)| {
                let terms = terms_in
                    .iter()
                    .map(|(c, e, negative)| {
                        let e = render(e, true)?;
                        Some((c.clone(), if *negative { format!("(-{e})") } else { e }))
                    })
                    .collect::<Option<_>>()?;
                Some(AddFold {
                    kinds: vec![*kind],
                    keys: key_exprs(k),
                    terms,
                    fields: fields_in(k.values().chain(terms_in.iter().map(|(_, e, _)| e))),
                })
            })
            .collect::<Option<_>>()?;
        let latests = latests
            .iter()
            .map(|(kind, k, sets, version)| {
                let mut list: Vec<(String, String)> = sets
                    .iter()
                    .filter(|(c, _)| c != version)
                    .map(|(c, e)| Some((c.clone(), render(e, false)?)))
                    .collect::<Option<_>>()?;
                list.push(((*version).clone(), render(&sets[*version], false)?));
                Some(LatestFold {
                    kinds: vec![*kind],
                    keys: key_exprs(k),
                    sets: list,
                    fields: fields_in(k.values().chain(sets.values())),
                })
            })
            .collect::<Option<_>>()?;
        Some(TableFold {
            table: table.to_string(),
            keys,
            insert,
            adds,
            latests,
        })
    }

    /// Whether no row of `rows` updates a key that a later row inserts (one row after
    /// another, that update would find nothing; folded, it would find the insert).
    fn in_order(&self, rows: &[(usize, &BTreeMap<String, Param>)]) -> bool {
        let Some(insert) = &self.insert else {
            return true;
        };
        if self.adds.is_empty() && self.latests.is_empty() {
            return true;
        }
        let mut first_insert: HashMap<Vec<String>, usize> = HashMap::new();
        for (i, (k, values)) in rows.iter().enumerate() {
            if insert.kinds.contains(k) {
                if let Some(key) = key_of(values, &insert.key_fields) {
                    first_insert.entry(key).or_insert(i);
                }
            }
        }
        let updates = self
            .adds
            .iter()
            .map(|a| (&a.kinds, &a.keys))
            .chain(self.latests.iter().map(|l| (&l.kinds, &l.keys)));
        for (kinds, keys) in updates {
            let fields: Vec<String> = keys.iter().filter_map(field).collect();
            for (i, (k, values)) in rows.iter().enumerate() {
                if !kinds.contains(k) {
                    continue;
                }
                let Some(key) = key_of(values, &fields) else {
                    continue;
                };
                if first_insert.get(&key).is_some_and(|&at| at > i) {
                    return false;
                }
            }
        }
        true
    }

    /// The statements (after the batch's `WITH b AS (…)`) applying the kinds `present`.
    fn statements(&self, present: &BTreeSet<usize>) -> Vec<Part> {
        let t = quote(&self.table);
        let here = |kinds: &[usize]| -> Vec<usize> {
            kinds
                .iter()
                .copied()
                .filter(|k| present.contains(k))
                .collect()
        };
        let key_match: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, c)| format!("cqrs_bench_t.{} = d.cqrs_bench_k{i}", quote(c)))
            .collect();
        let key_match = key_match.join(" AND ");
        let key_select = |keys: &[Expr]| -> String {
            keys.iter()
                .enumerate()
                .map(|(i, e)| {
                    format!(
                        "{} AS cqrs_bench_k{i}",
                        render(e, false).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let key_names: Vec<String> = (0..self.keys.len())
            .map(|i| format!("cqrs_bench_k{i}"))
            .collect();
        let key_names = key_names.join(", ");
        let mut out = Vec::new();
        if let Some(insert) = &self.insert {
            let kinds = here(&insert.kinds);
            if !kinds.is_empty() {
                let columns: Vec<String> = insert.columns.iter().map(|c| quote(c)).collect();
                out.push(Part {
                    body: format!(
                        "INSERT INTO {t} ({}) SELECT {} FROM b WHERE {} ORDER BY {ORDINAL}",
                        columns.join(", "),
                        insert.values.join(", "),
                        kinds_in(&kinds)
                    ),
                    kinds,
                    fields: insert.fields.clone(),
                });
            }
        }
        // Adds: every column any add touches, a zero where one does not.
        let columns: Vec<String> = self
            .adds
            .iter()
            .flat_map(|a| a.terms.iter().map(|(c, _)| c.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let parts: Vec<String> = self
            .adds
            .iter()
            .filter_map(|a| {
                let kinds = here(&a.kinds);
                if kinds.is_empty() {
                    return None;
                }
                let values: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let v = a.terms.iter().find(|(x, _)| x == c);
                        format!("{} AS cqrs_bench_s{i}", v.map_or("0", |(_, e)| e.as_str()))
                    })
                    .collect();
                Some(format!(
                    "SELECT {}, {} FROM b WHERE {}",
                    key_select(&a.keys),
                    values.join(", "),
                    kinds_in(&kinds)
                ))
            })
            .collect();
        if !parts.is_empty() {
            let sums: Vec<String> = (0..columns.len())
                .map(|i| format!("sum(cqrs_bench_s{i}) AS cqrs_bench_s{i}, count(cqrs_bench_s{i}) AS cqrs_bench_c{i}"))
                .collect();
            let sets: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let c = quote(c);
                    format!(
                        "{c} = CASE WHEN d.cqrs_bench_c{i} = d.cqrs_bench_rows \
                         THEN cqrs_bench_t.{c} + d.cqrs_bench_s{i} END"
                    )
                })
                .collect();
            out.push(Part {
                body: format!(
                    "UPDATE {t} AS cqrs_bench_t SET {} FROM (SELECT {key_names}, count(*) AS cqrs_bench_rows, {} \
                     FROM ({}) u GROUP BY {key_names}) d WHERE {key_match}",
                    sets.join(", "),
                    sums.join(", "),
                    parts.join(" UNION ALL ")
                ),
                kinds: self.adds.iter().flat_map(|a| here(&a.kinds)).collect(),
                fields: self.adds.iter().flat_map(|a| a.fields.iter().cloned()).collect(),
            });
        }
        let parts: Vec<String> = self
            .latests
            .iter()
            .enumerate()
            .filter_map(|(p, l)| {
                let kinds = here(&l.kinds);
                if kinds.is_empty() {
                    return None;
                }
                let values: Vec<String> = l
                    .sets
                    .iter()
                    .enumerate()
                    .map(|(i, (_, e))| format!("{e} AS cqrs_bench_s{i}"))
                    .collect();
                // `p`: the statement's place, for an event that runs two of them.
                Some(format!(
                    "SELECT {}, {}, {ORDINAL}, {p} AS cqrs_bench_p FROM b WHERE {}",
                    key_select(&l.keys),
                    values.join(", "),
                    kinds_in(&kinds)
                ))
            })
            .collect();
        if let (false, Some(first)) = (parts.is_empty(), self.latests.first()) {
            let last = first.sets.len() - 1;
            let version = quote(&first.sets[last].0);
            let sets: Vec<String> = first
                .sets
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{} = d.cqrs_bench_s{i}", quote(c)))
                .collect();
            out.push(Part {
                body: format!(
                    "UPDATE {t} AS cqrs_bench_t SET {} FROM (SELECT * FROM (SELECT u.*, row_number() OVER \
                     (PARTITION BY {key_names} ORDER BY cqrs_bench_s{last} DESC, {ORDINAL}, cqrs_bench_p) AS cqrs_bench_rank \
                     FROM ({}) u WHERE cqrs_bench_s{last} IS NOT NULL) w WHERE cqrs_bench_rank = 1) d \
                     WHERE {key_match} AND cqrs_bench_t.{version} < d.cqrs_bench_s{last}",
                    sets.join(", "),
                    parts.join(" UNION ALL ")
                ),
                kinds: self.latests.iter().flat_map(|l| here(&l.kinds)).collect(),
                fields: self.latests.iter().flat_map(|l| l.fields.iter().cloned()).collect(),
            });
        }
        out
    }
}

impl FoldBatch {
    /// Applies the batch on `conn`: the rest row by row through its view (made first where
    /// missing), then each table's folds.
    pub async fn apply(&self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if let Some(rest) = &self.rest {
            rest.apply(conn).await?;
        }
        for (sql, binds) in &self.statements {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b.as_str());
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The set-wise statements (for tests).
    pub fn statements(&self) -> Vec<&str> {
        self.statements.iter().map(|(s, _)| s.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(c: &str) -> String {
        row_triggers::column_ref(c)
    }

    /// The shop pack's shapes: an insert and versioned status updates of one table, sums of
    /// another, a versioned state and sums of disjoint columns of a third, and a day's sales
    /// kept by an upsert, a decrement and a delete at zero.
    fn shop_like() -> Vec<(String, Vec<String>)> {
        vec![
            (
                "Placed".into(),
                vec![
                    format!(
                        "INSERT INTO orders_rm (order_id, status, version) VALUES ({}, 'placed', 1)",
                        new("order")
                    ),
                    format!(
                        "INSERT INTO daily (day, n) VALUES ({} / 10, 1) ON CONFLICT (day) DO UPDATE SET n = daily.n + 1",
                        new("at")
                    ),
                    format!(
                        "UPDATE sales SET units = units + {q}, revenue = revenue + {q} * {c} WHERE product_id = {p}",
                        q = new("qty"),
                        c = new("cents"),
                        p = new("product")
                    ),
                    format!(
                        "UPDATE catalog SET price = {c}, version = {v} WHERE product_id = {p} AND version < {v}",
                        c = new("cents"),
                        v = new("pv"),
                        p = new("product")
                    ),
                ],
            ),
            (
                "Paid".into(),
                vec![format!(
                    "UPDATE orders_rm SET status = 'paid', version = {v} WHERE order_id = {o} AND version < {v}",
                    v = new("version"),
                    o = new("order")
                )],
            ),
            (
                "Cancelled".into(),
                vec![
                    format!("UPDATE daily SET n = n - 1 WHERE day = {} / 10", new("at")),
                    format!("DELETE FROM daily WHERE day = {} / 10 AND n = 0", new("at")),
                    format!(
                        "UPDATE sales SET units = units - {q} WHERE product_id = {p}",
                        q = new("qty"),
                        p = new("product")
                    ),
                ],
            ),
            (
                "Reviewed".into(),
                vec![format!(
                    "UPDATE catalog SET reviews = reviews + 1, stars = stars + {} WHERE product_id = {}",
                    new("rating"),
                    new("product")
                )],
            ),
        ]
    }

    fn tables(names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    format!("CREATE TABLE {n} (id BIGINT PRIMARY KEY)"),
                )
            })
            .collect()
    }

    fn columns() -> Vec<String> {
        [
            "at", "cents", "order", "product", "pv", "qty", "rating", "version",
        ]
        .map(String::from)
        .to_vec()
    }

    fn shop_fold() -> Option<RowFold> {
        RowFold::new(
            Engine::Postgres,
            columns(),
            &shop_like(),
            &tables(&["orders_rm", "daily", "sales", "catalog"]),
        )
    }

    fn row(pairs: &[(&str, i64)]) -> BTreeMap<String, Param> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Param::Int(*v)))
            .collect()
    }

    /// Order 7 placed: two of product 4 at 300, the product at version 3.
    fn placed() -> BTreeMap<String, Param> {
        row(&[
            ("order", 7),
            ("at", 25),
            ("qty", 2),
            ("cents", 300),
            ("product", 4),
            ("pv", 3),
        ])
    }

    #[test]
    fn the_tables_of_sums_and_latest_states_fold_and_a_delete_keeps_its_table_row_by_row() {
        let fold = shop_fold().expect("folds");
        assert_eq!(fold.folded_tables(), ["orders_rm", "sales", "catalog"]);
        let placed = placed();
        let paid = row(&[("order", 7), ("version", 2)]);
        let batch = fold
            .batch([("Placed", &placed), ("Paid", &paid)])
            .expect("a batch in order");
        // The day's sales go through the row triggers; one insert, one sum and one latest
        // statement for the rest (the catalog's reviews: no row of that kind).
        assert!(batch.rest.is_some());
        let statements = batch.statements();
        assert_eq!(statements.len(), 4, "{statements:#?}");
        assert!(statements[0].contains("INSERT INTO \"orders_rm\""));
        assert!(
            statements[1].contains("UPDATE \"orders_rm\"")
                && statements[1].contains("row_number()")
        );
        assert!(statements[2].contains("UPDATE \"sales\"") && statements[2].contains("sum("));
        assert!(statements[3].contains("UPDATE \"catalog\""));
    }

    #[test]
    fn an_update_of_a_key_inserted_later_in_the_batch_sends_the_batch_row_by_row() {
        let fold = shop_fold().expect("folds");
        let placed = placed();
        let paid = row(&[("order", 7), ("version", 2)]);
        let other = row(&[("order", 8), ("version", 2)]);
        assert!(fold.batch([("Paid", &paid), ("Placed", &placed)]).is_none());
        assert!(fold
            .batch([("Paid", &other), ("Placed", &placed)])
            .is_some());
        assert!(fold.batch([("Placed", &placed), ("Paid", &paid)]).is_some());
    }

    #[test]
    fn what_reads_another_table_or_calls_a_function_folds_nothing() {
        let base = shop_like();
        let read_models = tables(&["orders_rm", "daily", "sales", "catalog"]);
        for odd in [
            format!(
                "UPDATE sales SET units = units + (SELECT count(*) FROM catalog) WHERE product_id = {}",
                new("product")
            ),
            format!("UPDATE sales SET units = units + abs({}) WHERE product_id = {}", new("qty"), new("product")),
            format!("UPDATE elsewhere SET units = units + 1 WHERE product_id = {}", new("product")),
            format!("UPDATE sales SET units = units + 1 FROM catalog WHERE sales.product_id = {}", new("product")),
            format!("DELETE FROM daily USING catalog WHERE day = {}", new("at")),
        ] {
            let mut programs = base.clone();
            programs[3].1.push(odd.clone());
            assert!(
                RowFold::new(Engine::Postgres, columns(), &programs, &read_models).is_none(),
                "{odd}"
            );
        }
        let mut keyed = read_models.clone();
        keyed.insert(
            "sales".into(),
            "CREATE TABLE sales (product_id BIGINT REFERENCES catalog (product_id))".into(),
        );
        assert!(RowFold::new(Engine::Postgres, columns(), &base, &keyed).is_none());
        assert!(RowFold::new(Engine::Sqlite, columns(), &base, &read_models).is_none());
    }

    #[test]
    fn a_table_whose_statements_do_not_commute_stays_row_by_row() {
        let read_models = tables(&["orders_rm", "daily", "sales", "catalog"]);
        // Latest states of different columns; a sum of the version; a text literal summed.
        for odd in [
            format!(
                "UPDATE catalog SET stock = {c}, version = {v} WHERE product_id = {p} AND version < {v}",
                c = new("cents"),
                v = new("pv"),
                p = new("product")
            ),
            format!("UPDATE catalog SET version = version + 1 WHERE product_id = {}", new("product")),
            format!("UPDATE catalog SET stars = stars + 'x' WHERE product_id = {}", new("product")),
            format!("UPDATE catalog SET stars = stars + 1 WHERE version = {}", new("product")),
        ] {
            let mut programs = shop_like();
            programs[3].1.push(odd.clone());
            let fold = RowFold::new(Engine::Postgres, columns(), &programs, &read_models)
                .expect("the other tables still fold");
            assert_eq!(fold.folded_tables(), ["orders_rm", "sales"], "{odd}");
        }
    }

    #[test]
    fn an_insert_an_event_runs_twice_keeps_its_table_row_by_row() {
        let mut programs = shop_like();
        let again = programs[0].1[0].clone();
        programs[0].1.push(again);
        let read_models = tables(&["orders_rm", "daily", "sales", "catalog"]);
        let fold = RowFold::new(Engine::Postgres, columns(), &programs, &read_models).unwrap();
        assert_eq!(fold.folded_tables(), ["sales", "catalog"]);
    }

    #[test]
    fn array_literals_quote_text_and_keep_nulls() {
        assert_eq!(
            int_array([Some(1), None, Some(-3)].into_iter()),
            "{1,NULL,-3}"
        );
        assert_eq!(
            text_array([Some("a\"b"), None, Some("c\\d"), Some("NULL")].into_iter()),
            r#"{"a\"b",NULL,"c\\d","NULL"}"#
        );
    }
}
