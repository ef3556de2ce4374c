//! One document model for the report's prose: findings become [`Block`]s once, and each
//! renderer (markdown, HTML, the terminal) writes them its way, so a structure is not written
//! three times.

use super::plot::backend_hex;
use super::{html_escape, inline_html};
use crate::backend::BackendKind;

/// A run of text with one emphasis.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Strong(String),
    Code(String),
}

impl Inline {
    /// Reads the verdict's light markup (`**strong**`, `` `code` ``) into inlines; an unclosed
    /// marker is text.
    pub fn parse(s: &str) -> Vec<Inline> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let strong = rest.find("**");
            let code = rest.find('`');
            let (at, marker, make): (usize, &str, fn(String) -> Inline) = match (strong, code) {
                (Some(a), Some(b)) if b < a => (b, "`", Inline::Code),
                (Some(a), _) => (a, "**", Inline::Strong),
                (None, Some(b)) => (b, "`", Inline::Code),
                (None, None) => {
                    out.push(Inline::Text(rest.to_string()));
                    break;
                }
            };
            let after = &rest[at + marker.len()..];
            match after.find(marker) {
                Some(end) => {
                    if at > 0 {
                        out.push(Inline::Text(rest[..at].to_string()));
                    }
                    out.push(make(after[..end].to_string()));
                    rest = &after[end + marker.len()..];
                }
                None => {
                    out.push(Inline::Text(rest.to_string()));
                    break;
                }
            }
        }
        out
    }
}

/// What a table's rows are, which decides how HTML shows them (markdown is the same for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Plain text cells.
    Plain,
    /// One row per run (the report's measurement tables): the first cell names the run and
    /// carries its backend's colour, cells may hold light markup, and the table scrolls
    /// sideways on a narrow screen.
    Runs,
}

/// A block of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Level 2 (`##`) or deeper.
    Heading(u8, String),
    Paragraph(Vec<Inline>),
    Bullets(Vec<Vec<Inline>>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
        kind: TableKind,
    },
}

fn md_inlines(v: &[Inline]) -> String {
    v.iter()
        .map(|i| match i {
            Inline::Text(t) => t.clone(),
            Inline::Strong(t) => format!("**{t}**"),
            Inline::Code(t) => format!("`{t}`"),
        })
        .collect()
}

fn html_inlines(v: &[Inline]) -> String {
    v.iter()
        .map(|i| match i {
            Inline::Text(t) => html_escape(t),
            Inline::Strong(t) => format!("<strong>{}</strong>", html_escape(t)),
            Inline::Code(t) => format!("<code>{}</code>", html_escape(t)),
        })
        .collect()
}

fn plain_inlines(v: &[Inline]) -> String {
    v.iter()
        .map(|i| match i {
            Inline::Text(t) | Inline::Strong(t) | Inline::Code(t) => t.as_str(),
        })
        .collect()
}

/// Markdown: blank lines between blocks, tables as pipe tables.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, t) => {
                out.push_str(&format!("{} {t}\n\n", "#".repeat(*level as usize)));
            }
            Block::Paragraph(v) => out.push_str(&format!("{}\n\n", md_inlines(v))),
            Block::Bullets(items) => {
                for i in items {
                    out.push_str(&format!("- {}\n", md_inlines(i)));
                }
                out.push('\n');
            }
            Block::Table { head, rows, .. } => {
                let cell = |s: &str| s.replace('|', "\\|");
                out.push_str(&format!(
                    "| {} |\n|{}|\n",
                    head.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "),
                    head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
                ));
                for r in rows {
                    out.push_str(&format!(
                        "| {} |\n",
                        r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
                    ));
                }
                out.push('\n');
            }
        }
    }
    out
}

/// HTML fragments; a heading's `id` is its text in lower case (for links into the report).
pub fn html(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, t) => {
                let id: String = t
                    .to_lowercase()
                    .chars()
                    .map(|c| if c.is_alphanumeric() { c } else { '-' })
                    .collect();
                out.push_str(&format!(
                    "<h{level} id=\"{id}\">{}</h{level}>\n",
                    html_escape(t)
                ));
            }
            Block::Paragraph(v) => out.push_str(&format!("<p>{}</p>\n", html_inlines(v))),
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", html_inlines(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                head,
                rows,
                kind: TableKind::Runs,
            } => runs_table_html(&mut out, head, rows),
            Block::Table {
                head,
                rows,
                kind: TableKind::Plain,
            } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    out.push_str(&format!("<th>{}</th>", html_escape(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for c in r {
                        out.push_str(&format!("<td>{}</td>", html_escape(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
    out
}

/// A table of runs: cells with light markup, the first one with its backend's colour swatch.
fn runs_table_html(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", inline_html(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if i > 0 {
                out.push_str(&format!("<td>{}</td>", inline_html(c)));
                continue;
            }
            let colour = BackendKind::all()
                .into_iter()
                .find(|k| c.starts_with(k.name()))
                .map(backend_hex);
            match colour {
                Some(col) => out.push_str(&format!(
                    "<td class=\"run\"><span class=\"swatch\" style=\"background:{col}\"></span>{}</td>",
                    inline_html(c)
                )),
                None => out.push_str(&format!("<td class=\"run\">{}</td>", inline_html(c))),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

/// Plain lines for a terminal: no markup, headings and tables left out (the terminal shows its
/// own tables), bullets as lines.
pub fn terminal(blocks: &[Block]) -> Vec<String> {
    let mut out = Vec::new();
    for b in blocks {
        match b {
            Block::Paragraph(v) => out.push(plain_inlines(v)),
            Block::Bullets(items) => out.extend(items.iter().map(|i| plain_inlines(i))),
            Block::Heading(..) | Block::Table { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_inlines() {
        assert_eq!(
            Inline::parse("**cqrs-sync** meets `read.p99 <= 50ms` at 2 readers"),
            vec![
                Inline::Strong("cqrs-sync".into()),
                Inline::Text(" meets ".into()),
                Inline::Code("read.p99 <= 50ms".into()),
                Inline::Text(" at 2 readers".into()),
            ]
        );
        assert_eq!(Inline::parse("5 ** 2"), vec![Inline::Text("5 ** 2".into())]);
    }

    #[test]
    fn one_document_three_renderings() {
        let doc = vec![
            Block::Heading(2, "Decision".into()),
            Block::Paragraph(Inline::parse("**a** < b")),
            Block::Bullets(vec![Inline::parse("`x`")]),
            Block::Table {
                head: vec!["h|1".into()],
                rows: vec![vec!["v".into()]],
                kind: TableKind::Plain,
            },
        ];
        assert_eq!(
            markdown(&doc),
            "## Decision\n\n**a** < b\n\n- `x`\n\n| h\\|1 |\n|---|\n| v |\n\n"
        );
        let h = html(&doc);
        assert!(h.starts_with("<h2 id=\"decision\">Decision</h2>\n"));
        assert!(h.contains("<p><strong>a</strong> &lt; b</p>"));
        assert!(h.contains("<li><code>x</code></li>"));
        assert!(h.contains("<th>h|1</th>"));
        assert_eq!(terminal(&doc), ["a < b", "x"]);
    }

    #[test]
    fn a_table_of_runs_is_the_same_markdown_and_marks_its_runs_in_html() {
        let head = vec!["run".to_string(), "write p99".to_string()];
        let rows = vec![
            vec!["cqrs-sync @ 2 readers".to_string(), "**1.2ms**".to_string()],
            vec!["total".to_string(), "a|b".to_string()],
        ];
        let plain = Block::Table {
            head: head.clone(),
            rows: rows.clone(),
            kind: TableKind::Plain,
        };
        let runs = Block::Table {
            head,
            rows,
            kind: TableKind::Runs,
        };
        let md = markdown(std::slice::from_ref(&runs));
        assert_eq!(markdown(std::slice::from_ref(&plain)), md);
        assert_eq!(
            md,
            "| run | write p99 |\n|---|---|\n| cqrs-sync @ 2 readers | **1.2ms** |\n| total | a\\|b |\n\n"
        );
        let h = html(&[runs]);
        assert!(h.starts_with("<div class=\"scroll\"><table>"), "{h}");
        assert!(h.contains(&format!(
            "<td class=\"run\"><span class=\"swatch\" style=\"background:{}\"></span>cqrs-sync @ 2 readers</td>",
            backend_hex(BackendKind::from_name("cqrs-sync").unwrap())
        )), "{h}");
        assert!(h.contains("<td><strong>1.2ms</strong></td>"), "{h}");
        // A row that names no backend has no swatch.
        assert!(h.contains("<td class=\"run\">total</td>"), "{h}");
        assert!(!html(&[plain]).contains("swatch"));
    }
}
