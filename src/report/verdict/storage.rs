//! What each backend keeps on disk at one read level, measured from the database: the write
//! tables, and beside them the read models and the event log that CQRS adds.

use super::{by_backend, pct, Level};
use crate::backend::registry::Role;
use crate::backend::BackendKind;
use crate::format::fmt_bytes;

/// One backend's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub backend: BackendKind,
    pub write_tables: u64,
    pub read_models: u64,
    pub event_log: u64,
}

impl Stored {
    /// What it keeps beyond the write tables.
    pub fn extra(&self) -> u64 {
        self.read_models + self.event_log
    }
}

/// The storage finding of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFinding {
    /// Backends whose engine reported table sizes, in the level's backend order.
    pub stored: Vec<Stored>,
    /// Backends whose engine could not.
    pub not_measured: Vec<BackendKind>,
}

/// Every backend's bytes at `level`.
pub fn storage(level: &Level) -> StorageFinding {
    let mut stored = Vec::new();
    let mut not_measured = Vec::new();
    for (kind, run) in by_backend(level) {
        match &run.storage {
            Some(s) => stored.push(Stored {
                backend: kind,
                write_tables: s.write_tables_bytes,
                read_models: s.read_tables_bytes,
                event_log: s.event_log_bytes,
            }),
            None => not_measured.push(kind),
        }
    }
    StorageFinding {
        stored,
        not_measured,
    }
}

impl StorageFinding {
    /// The verdict's lines: one per backend, then those not measured.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .stored
            .iter()
            .map(|s| {
                if s.backend.role() == Role::Baseline {
                    format!(
                        "**{}** stores {} of write tables (its read-model and event-log tables stay empty: {} + {})",
                        s.backend,
                        fmt_bytes(s.write_tables),
                        fmt_bytes(s.read_models),
                        fmt_bytes(s.event_log)
                    )
                } else {
                    format!(
                        "**{}** stores {} of write tables plus {} of read models and {} of event log: {} extra ({} of the write model)",
                        s.backend,
                        fmt_bytes(s.write_tables),
                        fmt_bytes(s.read_models),
                        fmt_bytes(s.event_log),
                        fmt_bytes(s.extra()),
                        pct((s.write_tables + s.extra()) as f64, s.write_tables as f64)
                    )
                }
            })
            .collect();
        if !self.not_measured.is_empty() {
            let names: Vec<String> = self.not_measured.iter().map(|k| k.to_string()).collect();
            out.push(format!(
                "storage not measured for {} (the engine could not report table sizes)",
                names.join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, sample};
    use super::*;
    use crate::report::levels;

    #[test]
    fn extra_bytes_are_read_models_and_log_against_the_write_tables() {
        let mut r = sample();
        run(&mut r, "cqrs-sync").storage = Some(crate::db::storage::Storage {
            write_tables_bytes: 1_048_576,
            read_tables_bytes: 524_288,
            event_log_bytes: 0,
        });
        run(&mut r, "cqrs-async").storage = None;
        let ls = levels(&r);
        let f = storage(&ls[0]);
        assert_eq!(
            f.not_measured,
            [BackendKind::from_name("cqrs-async").unwrap()]
        );
        let sync = f.stored.iter().find(|s| s.backend.name() == "cqrs-sync");
        assert_eq!(sync.map(Stored::extra), Some(524_288));
        let lines = f.lines();
        assert!(lines.contains(
            &"**cqrs-sync** stores 1.00 MiB of write tables plus 512.0 KiB of read models and 0 B of event log: 512.0 KiB extra (+50% of the write model)".to_string()
        ), "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            "storage not measured for cqrs-async (the engine could not report table sizes)"
        );
        assert!(
            lines[0].starts_with("**normalized** stores "),
            "{}",
            lines[0]
        );
    }
}
