//! Naming places in a TOML document for error messages (`writes.mix.place_order`,
//! `commands.transfer.statements[1]`, `line 3, column 7`): shared by the scenario and the
//! pack readers, so both say where a problem is in the same words.

use toml::Value;

/// What kind of value `v` is, with its article (`a string`, `an array`).
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// A key as it appears in a dotted path: bare when TOML allows it, quoted otherwise.
pub fn key_repr(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// The path of `key` inside the table at `prefix` (the root when `prefix` is empty).
pub fn child(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key_repr(key)
    } else {
        format!("{prefix}.{}", key_repr(key))
    }
}

/// The path of the `i`-th element of the array at `prefix`.
pub fn element(prefix: &str, i: usize) -> String {
    format!("{prefix}[{i}]")
}

/// Where a TOML syntax error is (`line 3, column 7`, or `None` when the parser gave no
/// place) and what it is (`TOML syntax error: …`, the parser's lines joined by `; `).
pub fn syntax_error(text: &str, e: &toml::de::Error) -> (Option<String>, String) {
    let place = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        format!("line {line}, column {column}")
    });
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    (place, format!("TOML syntax error: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bare_when_toml_allows_and_quoted_otherwise() {
        assert_eq!(child("", "writes"), "writes");
        assert_eq!(child("writes.mix", "place_order"), "writes.mix.place_order");
        assert_eq!(child("thresholds", "*.errors"), "thresholds.\"*.errors\"");
        assert_eq!(
            element("commands.transfer.statements", 1),
            "commands.transfer.statements[1]"
        );
    }

    #[test]
    fn a_syntax_error_is_placed_by_line_and_column() {
        let text = "a = 1\nb = = 2\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let (place, message) = syntax_error(text, &e);
        assert_eq!(place.as_deref(), Some("line 2, column 5"));
        assert!(message.starts_with("TOML syntax error: "), "{message}");
    }
}
