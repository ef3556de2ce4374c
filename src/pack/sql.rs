//! SQL with named parameters, as a pack writes it: `:account` wherever a value goes. It is
//! read once into text and parameter pieces (skipping string literals, quoted identifiers,
//! comments, dollar-quoted bodies and `::` casts) and compiled once per engine into its
//! numbered placeholders (the style is the `Dialect`'s): the distinct names are numbered in
//! the order they first appear, and the run binds one value per name.

use crate::db::dialect::Dialect;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(String),
}

/// One SQL statement with named parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSql {
    text: String,
    pieces: Vec<Piece>,
}

/// A statement in an engine's placeholder style and the names to bind, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub sql: String,
    pub binds: Vec<String>,
}

impl NamedSql {
    /// Reads one statement (a trailing `;` is allowed). `Err`: what is wrong, in a sentence.
    pub fn parse(text: &str) -> Result<NamedSql, String> {
        let mut statements = split_pieces(text)?;
        match statements.len() {
            0 => Err("holds no SQL statement".to_string()),
            1 => Ok(NamedSql {
                text: text.trim().to_string(),
                pieces: statements.remove(0),
            }),
            n => Err(format!(
                "holds {n} statements separated by `;`: give each its own entry"
            )),
        }
    }

    /// The statement as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The distinct parameter names, in the order they first appear.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for p in &self.pieces {
            if let Piece::Param(n) = p {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
        names
    }

    /// `statements` as one script, `;` between them, for an engine that runs a script with
    /// bound values in one call (`Dialect::script_placeholder`, `placeholder`): every
    /// parameter is that placeholder, and the names are bound in the order they occur, a name
    /// used twice bound twice. `None` on an engine without one.
    pub fn script(statements: &[NamedSql], dialect: Dialect) -> Option<Compiled> {
        let placeholder = dialect.script_placeholder()?;
        let mut sql = String::new();
        let mut binds = Vec::new();
        for (i, s) in statements.iter().enumerate() {
            if i > 0 {
                sql.push_str(";\n");
            }
            for p in &s.pieces {
                match p {
                    Piece::Text(t) => sql.push_str(t),
                    Piece::Param(n) => {
                        sql.push_str(placeholder);
                        binds.push(n.clone());
                    }
                }
            }
        }
        Some(Compiled {
            sql: sql.trim().to_string(),
            binds,
        })
    }

    /// The statement with each parameter written as `value(name)` gives it (a trigger's
    /// `NEW."name"`, say).
    pub fn with_params_as(&self, value: impl Fn(&str) -> String) -> String {
        let mut sql = String::with_capacity(self.text.len());
        for p in &self.pieces {
            match p {
                Piece::Text(t) => sql.push_str(t),
                Piece::Param(n) => sql.push_str(&value(n)),
            }
        }
        sql.trim().to_string()
    }

    /// The statement with the engine's numbered placeholders.
    pub fn compile(&self, dialect: Dialect) -> Compiled {
        let binds: Vec<String> = self.names().into_iter().map(String::from).collect();
        let sql = self.with_params_as(|n| {
            let number = binds.iter().position(|b| b == n).unwrap_or(0) + 1;
            dialect.placeholder(number)
        });
        Compiled { sql, binds }
    }
}

/// The statements of a script (a dataset file), split at the semicolons outside literals and
/// comments; pieces holding only whitespace and comments are dropped.
pub fn split(text: &str) -> Result<Vec<NamedSql>, String> {
    Ok(split_pieces(text)?
        .into_iter()
        .map(|pieces| {
            let text = pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.clone(),
                    Piece::Param(n) => format!(":{n}"),
                })
                .collect::<String>()
                .trim()
                .to_string();
            NamedSql { text, pieces }
        })
        .collect())
}

/// Whether `s` can be written as `:s` in SQL: a letter or `_`, then letters, digits and `_`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.bytes();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && chars.all(is_ident)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index just past a quoted run opening at `start` and closed by `quote` (doubled to
/// escape it; with `backslash`, `\` escapes the next byte too); `None` when unterminated.
fn end_of_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return Some(i + 1);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The index just past a `/* … */` comment opening at `start` (PostgreSQL nests them).
fn end_of_block_comment(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The tag of a dollar quote opening at `start` (`$$` or `$tag$`), with both dollars.
fn dollar_tag(b: &[u8], start: usize) -> Option<&[u8]> {
    let mut i = start + 1;
    if b.get(i).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while i < b.len() && is_ident(b[i]) {
        i += 1;
    }
    (b.get(i) == Some(&b'$')).then(|| &b[start..=i])
}

/// Splits `text` into statements of pieces.
fn split_pieces(text: &str) -> Result<Vec<Vec<Piece>>, String> {
    let b = text.as_bytes();
    let mut statements = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut text_start = 0;
    // Whether the statement so far holds more than whitespace and comments.
    let mut has_code = false;
    let mut i = 0;
    let flush = |pieces: &mut Vec<Piece>, from: usize, to: usize| {
        if to > from {
            pieces.push(Piece::Text(text[from..to].to_string()));
        }
    };
    while i < b.len() {
        let next = b.get(i + 1).copied();
        match b[i] {
            b'\'' => {
                // E'…' takes backslash escapes (PostgreSQL).
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                i = end_of_quoted(b, i, b'\'', escapes)
                    .ok_or("a string literal ('…') is not closed")?;
                has_code = true;
            }
            b'"' => {
                i = end_of_quoted(b, i, b'"', false)
                    .ok_or("a quoted identifier (\"…\") is not closed")?;
                has_code = true;
            }
            b'-' if next == Some(b'-') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            b'/' if next == Some(b'*') => {
                i = end_of_block_comment(b, i).ok_or("a /* comment */ is not closed")?;
            }
            b'$' if next.is_some_and(|c| c.is_ascii_digit()) => {
                return Err(
                    "has a numbered placeholder ($1): write parameters by name (:name)".into(),
                );
            }
            b'$' => {
                match dollar_tag(b, i) {
                    Some(tag) => {
                        let body = i + tag.len();
                        let close = text[body..]
                            .find(std::str::from_utf8(tag).unwrap_or("$$"))
                            .ok_or("a dollar-quoted string ($$…$$) is not closed")?;
                        i = body + close + tag.len();
                    }
                    None if next.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') => {
                        return Err(
                            "has a $name placeholder: write parameters as :name".to_string()
                        );
                    }
                    None => i += 1,
                }
                has_code = true;
            }
            b':' if next == Some(b':') => {
                // A cast (`x::bigint`), not a parameter.
                i += 2;
                has_code = true;
            }
            b':' if next.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') => {
                flush(&mut pieces, text_start, i);
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_ident(b[end]) {
                    end += 1;
                }
                pieces.push(Piece::Param(text[start..end].to_string()));
                i = end;
                text_start = i;
                has_code = true;
            }
            b'?' => {
                return Err("has a `?` placeholder: write parameters by name (:name)".into());
            }
            b';' => {
                flush(&mut pieces, text_start, i);
                let statement = std::mem::take(&mut pieces);
                if has_code {
                    statements.push(statement);
                }
                i += 1;
                text_start = i;
                has_code = false;
            }
            c => {
                if !c.is_ascii_whitespace() {
                    has_code = true;
                }
                i += 1;
            }
        }
    }
    flush(&mut pieces, text_start, b.len());
    if has_code {
        statements.push(pieces);
    }
    Ok(statements)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Engine;

    fn compiled(sql: &str, engine: Engine) -> (String, Vec<String>) {
        let c = NamedSql::parse(sql).unwrap().compile(Dialect::of(engine));
        (c.sql, c.binds)
    }

    #[test]
    fn a_script_binds_each_occurrence_in_order_on_sqlite_only() {
        let a = NamedSql::parse("UPDATE t SET n = n + :qty WHERE id = :id").unwrap();
        let b = NamedSql::parse("DELETE FROM u WHERE id = :id AND n < :qty;").unwrap();
        let s = NamedSql::script(
            &[a.clone(), b.clone()],
            Dialect::of(crate::db::Engine::Sqlite),
        )
        .unwrap();
        assert_eq!(
            s.sql,
            "UPDATE t SET n = n + ? WHERE id = ?;\nDELETE FROM u WHERE id = ? AND n < ?"
        );
        assert_eq!(s.binds, ["qty", "id", "id", "qty"]);
        assert!(NamedSql::script(&[a, b], Dialect::of(crate::db::Engine::Postgres)).is_none());
    }

    #[test]
    fn numbers_distinct_names_in_first_appearance_order() {
        let sql = "UPDATE accounts SET balance = balance - :amount WHERE id = :from AND balance >= :amount;";
        let (pg, binds) = compiled(sql, Engine::Postgres);
        assert_eq!(
            pg,
            "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1"
        );
        assert_eq!(binds, ["amount", "from"]);
        let (lite, binds) = compiled(sql, Engine::Sqlite);
        assert_eq!(
            lite,
            "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 AND balance >= ?1"
        );
        assert_eq!(binds, ["amount", "from"]);
    }

    #[test]
    fn skips_literals_comments_casts_and_dollar_quotes() {
        let sql =
            "SELECT ':no', \"a:b\", x::bigint, $$ :no ; $$, $t$ ? $t$, E'it\\'s :no' -- :no ?\n\
                   /* :no /* nested ; */ ? */ FROM t WHERE k = :yes";
        let s = NamedSql::parse(sql).unwrap();
        assert_eq!(s.names(), ["yes"]);
        let (pg, _) = compiled(sql, Engine::Postgres);
        assert!(pg.ends_with("WHERE k = $1"), "{pg}");
        assert!(pg.contains("x::bigint") && pg.contains("':no'"), "{pg}");
    }

    #[test]
    fn refuses_positional_placeholders_and_several_statements() {
        assert!(NamedSql::parse("SELECT ?").unwrap_err().contains("`?`"));
        assert!(NamedSql::parse("SELECT $1").unwrap_err().contains("$1"));
        assert!(NamedSql::parse("SELECT $x").unwrap_err().contains("$name"));
        assert!(NamedSql::parse("SELECT 1; SELECT 2")
            .unwrap_err()
            .contains("2 statements"));
        assert!(NamedSql::parse(" -- only a comment\n;")
            .unwrap_err()
            .contains("no SQL statement"));
        assert!(NamedSql::parse("SELECT 'open")
            .unwrap_err()
            .contains("not closed"));
    }

    #[test]
    fn splits_a_script_at_top_level_semicolons() {
        let parts = split(
            "INSERT INTO a SELECT ';' ;\n-- a comment ; still a comment\n\
             INSERT INTO b VALUES (:n);\n  ;  \n",
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].text(), "INSERT INTO a SELECT ';'");
        assert_eq!(parts[1].names(), ["n"]);
        assert!(parts[1].text().ends_with("INSERT INTO b VALUES (:n)"));
    }

    #[test]
    fn names_are_sql_identifiers() {
        assert!(is_name("from_id") && is_name("_x1"));
        assert!(!is_name("1x") && !is_name("a-b") && !is_name(""));
    }
}
