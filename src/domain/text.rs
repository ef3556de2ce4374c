//! What a word is, for `text_search`: the one rule the SQL backends and the search index
//! share, so both find the same products. A name is split at every character that is not an
//! ASCII letter or digit and lower-cased; a query term is split and lower-cased the same way.
//! Product names are ASCII words separated by single spaces (`dataset::spec::product_name`),
//! which is what lets SQL match a word as `' ' || lower(name) || ' ' LIKE '% word %'`.

/// Longest word kept: the search index's default tokenizer drops tokens of 40 bytes and more,
/// so SQL must not match them either.
pub const MAX_WORD: usize = 39;

/// The distinct words of `terms`, in first-seen order; empty if none holds a word.
pub fn words<S: AsRef<str>>(terms: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in terms {
        for w in t
            .as_ref()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty() && w.len() <= MAX_WORD)
        {
            let w = w.to_ascii_lowercase();
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_lower_and_dedupe() {
        assert_eq!(
            words(&["Red OAK", "oak-chair", "  "]),
            ["red", "oak", "chair"]
        );
        assert!(words(&["!!", ""]).is_empty());
        assert!(words(&["x".repeat(MAX_WORD + 1)]).is_empty());
    }
}
