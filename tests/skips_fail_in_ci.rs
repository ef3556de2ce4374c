//! A test that lacks its service skips on a developer's machine but fails where
//! `CQRS_BENCH_REQUIRE_SERVICES=1` (as `.ci/run` sets it): a skip is never a quiet pass in CI.

mod common;

#[test]
fn a_missing_service_fails_where_services_are_required() {
    // Nothing else in this binary reads the variable while it is changed.
    std::env::set_var(common::REQUIRE_SERVICES_ENV, "1");
    let required = common::services_required();
    let outcome = std::panic::catch_unwind(|| common::skip("probe", "no such service here"));
    std::env::remove_var(common::REQUIRE_SERVICES_ENV);
    assert!(required);
    let message = outcome.expect_err("a skip passed where services are required");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        text.contains("probe: no such service here") && text.contains("fails instead of skipping"),
        "{text}"
    );
}

#[test]
fn ci_requires_every_service() {
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.contains("export CQRS_BENCH_REQUIRE_SERVICES=1"));
    // The services it requires, it provides.
    for provided in [
        "apt-get install -y chromium",
        "apt-get install -y nats-server",
        "pg_isready",
    ] {
        assert!(ci.contains(provided), "{provided}");
    }
}
