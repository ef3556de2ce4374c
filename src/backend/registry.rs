//! The one list of backends: each entry names a backend, says what it provisions and what
//! verify compares it with, and opens it. Parsing `--backends`, help texts and the messages
//! that list valid names all read this list. Adding a backend: its file (with its `KIND` and
//! `ENTRY`) and one entry here.

pub use super::entry::{Entry, Role, VerifiedAgainst};
use super::{
    cqrs_async, cqrs_broker, cqrs_sync, denormalized, event_sourced, matview, normalized, replica,
    triggers, BackendKind,
};
use crate::db::Engine;

pub static BACKENDS: &[Entry] = &[
    normalized::ENTRY,
    cqrs_sync::ENTRY,
    cqrs_async::ENTRY,
    event_sourced::ENTRY,
    cqrs_broker::ENTRY,
    triggers::ENTRY,
    matview::ENTRY,
    replica::ENTRY,
    denormalized::ENTRY,
];

/// Why `kind` cannot run on `engine`, if it cannot.
pub fn refusal(kind: BackendKind, engine: Engine) -> Option<String> {
    match entry(kind).requires {
        Some(needed) if needed != engine => {
            Some(format!("{} needs {}", kind.name(), needed.display_name()))
        }
        _ => None,
    }
}

/// The entry of `kind`.
pub fn entry(kind: BackendKind) -> &'static Entry {
    BACKENDS
        .iter()
        .find(|e| e.kind == kind)
        .expect("every BackendKind is registered")
}

/// The baseline every other backend is compared with: the entry whose role is
/// [`Role::Baseline`] (normalized).
pub fn baseline() -> BackendKind {
    BACKENDS
        .iter()
        .find(|e| e.role == Role::Baseline)
        .map(|e| e.kind)
        .expect("one backend is registered as the baseline")
}

/// Whether any of `kinds` needs a broker to run.
pub fn any_needs_broker(kinds: &[BackendKind]) -> bool {
    kinds.iter().any(|k| entry(*k).needs_broker)
}

/// The pairs `(backend, what it is measured against)` among `kinds`, both in `kinds`, in
/// registration order (event-sourced against cqrs-async).
pub fn measured_pairs(kinds: &[BackendKind]) -> Vec<(BackendKind, BackendKind)> {
    BACKENDS
        .iter()
        .filter(|e| kinds.contains(&e.kind))
        .filter_map(|e| e.measured_against.map(|o| (e.kind, o)))
        .filter(|(_, o)| kinds.contains(o))
        .collect()
}

/// The entry named `name`.
pub fn by_name(name: &str) -> Option<&'static Entry> {
    BACKENDS.iter().find(|e| e.kind.name() == name)
}

/// Every backend's name, in registration order.
pub fn names() -> Vec<&'static str> {
    BACKENDS.iter().map(|e| e.kind.name()).collect()
}

/// The names as prose: `a, b or c`.
pub fn names_in_prose() -> String {
    prose(&names())
}

/// The backends whose read models can live in a database of their own, as prose.
pub fn with_separate_read_store() -> String {
    let names: Vec<&str> = BACKENDS
        .iter()
        .filter(|e| e.separate_read_store)
        .map(|e| e.kind.name())
        .collect();
    prose(&names)
}

/// The backends that run a workload pack, as prose.
pub fn running_packs() -> String {
    let names: Vec<&str> = BACKENDS
        .iter()
        .filter(|e| matches!(e.pack, super::entry::PackSupport::Runs(_)))
        .map(|e| e.kind.name())
        .collect();
    prose(&names)
}

fn prose(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

/// One line per backend, `name: help`, for `--help` texts.
pub fn help() -> String {
    BACKENDS
        .iter()
        .map(|e| format!("{}: {}", e.kind.name(), e.help))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplicity_orders_baseline_alternatives_then_cqrs() {
        let mut by_simplicity: Vec<&Entry> = BACKENDS.iter().collect();
        by_simplicity.sort_by_key(|e| e.simplicity);
        let names: Vec<&str> = by_simplicity.iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            names,
            [
                "normalized",
                "triggers",
                "matview",
                "replica",
                "cqrs-sync",
                "cqrs-async",
                "cqrs-broker",
                "event-sourced",
                "denormalized"
            ]
        );
        let roles: Vec<Role> = by_simplicity.iter().map(|e| e.role).collect();
        assert_eq!(roles[0], Role::Baseline);
        assert!(roles[1..4].iter().all(|r| *r == Role::Alternative));
        assert!(roles[4..8].iter().all(|r| *r == Role::Cqrs));
        assert_eq!(roles[8], Role::Story);
    }

    #[test]
    fn roles_and_needs_answer_from_the_entries() {
        assert_eq!(baseline().name(), "normalized");
        assert_eq!(
            BACKENDS.iter().filter(|e| e.role == Role::Baseline).count(),
            1
        );
        let by = |n: &str| by_name(n).unwrap().kind;
        assert!(any_needs_broker(&[by("normalized"), by("cqrs-broker")]));
        assert!(!any_needs_broker(&[by("normalized"), by("cqrs-async")]));
        // A backend is measured against another only when both ran.
        let all = BackendKind::all();
        assert_eq!(
            measured_pairs(&all),
            [
                (by("event-sourced"), by("cqrs-async")),
                (by("denormalized"), by("cqrs-sync"))
            ]
        );
        assert!(measured_pairs(&[by("event-sourced"), by("cqrs-sync")]).is_empty());
    }

    #[test]
    fn packs_run_on_normalized_the_cqrs_backends_and_two_alternatives_with_a_reason_elsewhere() {
        use super::super::entry::{PackMode, PackSupport};
        assert_eq!(
            running_packs(),
            "normalized, cqrs-sync, cqrs-async, cqrs-broker, matview or replica"
        );
        let mode = |n: &str| by_name(n).unwrap().pack;
        assert_eq!(mode("normalized"), PackSupport::Runs(PackMode::WriteModel));
        assert_eq!(
            mode("cqrs-sync"),
            PackSupport::Runs(PackMode::InTransaction)
        );
        assert_eq!(mode("cqrs-async"), PackSupport::Runs(PackMode::Outbox));
        assert_eq!(mode("matview"), PackSupport::Runs(PackMode::Views));
        assert_eq!(mode("replica"), PackSupport::Runs(PackMode::Standby));
        assert_eq!(mode("cqrs-broker"), PackSupport::Runs(PackMode::Broker));
        for e in BACKENDS {
            if let PackSupport::Refused(reason) = e.pack {
                assert!(!reason.is_empty(), "{}", e.kind.name());
            }
        }
    }

    #[test]
    fn every_kind_is_registered_once() {
        for (i, kind) in BackendKind::all().into_iter().enumerate() {
            assert_eq!(BACKENDS.iter().filter(|e| e.kind == kind).count(), 1);
            assert_eq!(by_name(kind.name()).map(|e| e.kind), Some(kind));
            assert_eq!(kind.index(), i);
        }
        assert!(BackendKind::all().windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            names_in_prose(),
            "normalized, cqrs-sync, cqrs-async, event-sourced, cqrs-broker, triggers, matview, replica or denormalized"
        );
    }
}
