//! The backends, fed the same seeded stream of commands, give identical answers to every
//! query, and verify finds the read models equal to the truth (issue [core] 1 and 2); for
//! `event-sourced` the truth is the fold over its event store (issue [es] 14). `triggers`
//! and, on PostgreSQL, `matview` (after a final refresh) answer the same (issue
//! [alternatives] 15). `text_search` gives the same products in the same order everywhere:
//! from SQL on the SQL backends, from the tantivy index on `cqrs-async` and `event-sourced`,
//! whose documents verify against the truth (issue [search] 16). `denormalized`, whose order
//! lines carry copies of the product's details rewritten on every price change, answers
//! every query the same too: its revenue is still the price paid at placement, and the copies
//! verify against the products table (issue [stories] 18).

mod common;

use std::time::Duration;

use common::*;
use cqrs_bench::backend::event_sourced;
use cqrs_bench::backend::{registry, Backend, BackendKind, ExecError};
use cqrs_bench::db::DbUrl;
use cqrs_bench::domain::month::month_of;
use cqrs_bench::domain::{Query, QueryAnswer, QueryKind, TextSort};
use cqrs_bench::projection::search::verify::check_index;
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::OpStream;

const COMMANDS: u64 = 2_000;

/// Every query kind over many keys: all products' pages, every user's orders, searches.
fn probe_queries(stream: &OpStream, spec: &cqrs_bench::dataset::DatasetSpec) -> Vec<Query> {
    let mut qs: Vec<Query> = (1..=spec.products)
        .map(|product_id| Query::ProductPage { product_id })
        .collect();
    qs.push(Query::ProductPage {
        product_id: 999_999,
    });
    qs.extend((1..=spec.users).map(|user_id| Query::UserOrders { user_id, limit: 20 }));
    qs.extend((0..300).filter_map(|j| stream.read_op(j)));
    qs.push(Query::DailyRevenue {
        from_day: 0,
        to_day: i64::MAX / cqrs_bench::domain::MICROS_PER_DAY - 2,
    });
    qs.push(Query::TopProducts { n: 1_000 });
    qs.extend(text_searches(spec));
    // Every month of the seeded history and of the run, and one before them with no orders.
    let start = cqrs_bench::dataset::START_AT;
    let first = month_of(start - spec.days * cqrs_bench::domain::MICROS_PER_DAY);
    qs.extend((first - 1..=month_of(start) + 1).map(|month| Query::MonthlyReport { month }));
    let reports = qs
        .iter()
        .filter(|q| matches!(q, Query::MonthlyReport { .. }))
        .count();
    assert!(reports >= 3, "{reports} monthly reports");
    qs
}

/// `text_search` from the op stream, and by hand at the edges: every word of the names'
/// vocabulary, across all categories, sorted both ways, with limits beyond the hits, so ties
/// (same price, same relevance) must be broken by id the same way everywhere.
fn text_searches(spec: &cqrs_bench::dataset::DatasetSpec) -> Vec<Query> {
    let mix = cqrs_bench::workload::mix::MixSpec {
        reads: [(QueryKind::TextSearch, 1.0)].into_iter().collect(),
        ..cqrs_bench::workload::mix::MixSpec::default()
    };
    let stream = OpStream::new(11, spec, &mix);
    let mut qs: Vec<Query> = (0..200).filter_map(|j| stream.read_op(j)).collect();
    for words in cqrs_bench::dataset::NAME_WORDS {
        for (k, w) in words.iter().enumerate() {
            for sort in [TextSort::Price, TextSort::Relevance] {
                qs.push(Query::TextSearch {
                    // A second word from another list, and one in another spelling.
                    terms: vec![w.to_uppercase(), "oak-CHAIR".into()],
                    category_id: if k % 2 == 0 {
                        0
                    } else {
                        1 + k as i64 % spec.categories
                    },
                    min_cents: 0,
                    max_cents: i64::MAX / 2,
                    min_rating: (k % 3) as i64,
                    in_stock: k % 4 == 0,
                    sort,
                    limit: 500,
                });
            }
        }
    }
    qs
}

async fn answers(b: &Backend, qs: &[Query]) -> Vec<String> {
    let mut out = Vec::with_capacity(qs.len());
    for q in qs {
        out.push(format!("{:?}", b.query(q).await.expect("query")));
    }
    out
}

async fn replay_and_compare(url_for: impl Fn(BackendKind) -> (DbUrl, String)) {
    let spec = small_dataset();
    let stream = OpStream::new(7, &spec, &common::mixed_commands());
    let mut backends = Vec::new();
    for kind in BackendKind::all() {
        let (url, schema) = url_for(kind);
        // `matview` runs only on PostgreSQL; `replica` needs a standby of its own
        // (tests/replica.rs).
        if registry::refusal(kind, url.engine()).is_some() || registry::entry(kind).needs_replica {
            continue;
        }
        backends.push(open_searched_backend(&url, &schema, kind, 7, &spec, false).await);
    }
    let queries = probe_queries(&stream, &spec);
    let searched: Vec<String> = backends
        .iter()
        .filter(|b| b.search().is_some())
        .map(|b| b.kind.name().to_string())
        .collect();
    assert_eq!(
        searched,
        ["cqrs-async", "event-sourced"],
        "who reads the index"
    );
    let mut outcomes: Vec<Vec<String>> = vec![Vec::new(); backends.len()];
    let mut rejected = 0;
    for i in 0..COMMANDS {
        let cmd = stream.write_op(i).expect("write op");
        for (n, b) in backends.iter().enumerate() {
            let o = match b.execute(&cmd).await {
                // The event-sourced backend also records each stock change on the product's
                // stream; its first event is the one the normalized path emits.
                Ok(r) if b.kind == event_sourced::KIND => {
                    format!("ok {:?}", &r.events[..1])
                }
                Ok(r) => format!("ok {:?}", r.events),
                Err(ExecError::Domain(e)) => format!("rejected {e}"),
                Err(e) => panic!("{} failed on {cmd:?}: {e}", b.kind),
            };
            outcomes[n].push(o);
        }
        if outcomes[0]
            .last()
            .is_some_and(|o| o.starts_with("rejected"))
        {
            rejected += 1;
        }
        // Compare answers every 500 commands, not only at the end.
        if (i + 1) % 500 == 0 {
            for b in &backends {
                b.wait_caught_up(Duration::from_secs(60))
                    .await
                    .expect("catch up");
            }
            let reference = answers(&backends[0], &queries).await;
            for b in &backends[1..] {
                let got = answers(b, &queries).await;
                for (k, (a, e)) in got.iter().zip(&reference).enumerate() {
                    assert_eq!(
                        a,
                        e,
                        "{} differs from normalized on {:?} after {} commands",
                        b.kind,
                        queries[k],
                        i + 1
                    );
                }
            }
        }
    }
    // The text searches find something, and not everything: agreement means little over
    // empty answers; some ask for both relevance levels (a name holding one word or two).
    let mut found = 0;
    let mut two_words = 0;
    let mut text = 0;
    for q in queries
        .iter()
        .filter(|q| matches!(q, Query::TextSearch { .. }))
    {
        text += 1;
        let QueryAnswer::TextSearch(hits) = backends[0].query(q).await.expect("query") else {
            panic!("text_search answered with another type");
        };
        found += usize::from(!hits.is_empty());
        if let Query::TextSearch { terms, .. } = q {
            two_words += usize::from(hits.iter().any(|h| {
                let name = format!(" {} ", h.name.to_lowercase());
                terms.len() == 2
                    && terms
                        .iter()
                        .all(|t| name.contains(&format!(" {} ", t.to_lowercase())))
            }));
        }
    }
    assert!(
        found * 2 > text,
        "only {found} of {text} text searches found anything"
    );
    assert!(
        found < text,
        "every text search found something: the filters do nothing"
    );
    assert!(
        two_words > 0,
        "no name held two searched words: relevance ties only"
    );
    // The monthly reports hold several categories and segments, and the month before the
    // history none: agreement over empty reports would mean little.
    let mut full = 0;
    let mut empty = 0;
    for q in queries
        .iter()
        .filter(|q| matches!(q, Query::MonthlyReport { .. }))
    {
        let QueryAnswer::MonthlyReport(r) = backends[0].query(q).await.expect("query") else {
            panic!("monthly_report answered with another type");
        };
        full += usize::from(r.by_category.len() > 1 && r.by_segment.len() > 1);
        empty += usize::from(r.by_category.is_empty() && r.by_segment.is_empty());
        let by_category: i64 = r.by_category.iter().map(|c| c.revenue_cents).sum();
        let by_segment: i64 = r.by_segment.iter().map(|c| c.revenue_cents).sum();
        assert_eq!(by_category, by_segment, "{q:?}: the sections disagree");
    }
    assert!(
        full >= 1 && empty >= 1,
        "{full} full, {empty} empty reports"
    );
    for b in backends.iter().filter(|b| b.search().is_some()) {
        let index = &b.search().expect("search side").index;
        let expected = {
            let mut conn = b.db.read.acquire().await.unwrap();
            // The SQL read model verified equal to the truth below, so it stands in for it.
            cqrs_bench::projection::truth::load_catalog(&mut conn)
                .await
                .unwrap()
        };
        let check = check_index(index, &expected, 5).expect("check the index");
        assert_eq!(check.mismatches, 0, "{} search index: {check:?}", b.kind);
        assert_eq!(check.rows_actual, spec.products as usize, "{}", b.kind);
    }
    for (b, o) in backends.iter().zip(&outcomes).skip(1) {
        assert_eq!(&outcomes[0], o, "normalized and {} outcomes differ", b.kind);
    }
    let ran: Vec<&str> = backends.iter().map(|b| b.kind.name()).collect();
    assert!(ran.contains(&"triggers"), "{ran:?}");
    assert!(ran.contains(&"denormalized"), "{ran:?}");
    assert_eq!(ran.contains(&"matview"), backends[0].db.is_pg(), "{ran:?}");
    // The stream exercises both paths.
    assert!(
        rejected > 20,
        "only {rejected} rejections: the stream does not exercise domain errors"
    );
    assert!(
        rejected < COMMANDS as usize / 2,
        "{rejected} rejections: too few commands succeed"
    );
    for b in &backends[1..] {
        let report = verify(&b.db).await.expect("verify");
        assert_eq!(report.mismatches, 0, "{} verify: {:?}", b.kind, report);
        assert!(report.models.iter().all(|m| m.rows_expected > 0));
        if b.kind == cqrs_bench::backend::denormalized::KIND {
            let checked: Vec<&str> = report.models.iter().map(|m| m.read_model.name()).collect();
            assert_eq!(checked, ["order_line_copies"], "what denormalized verifies");
        }
    }
    for b in backends {
        let db = b.db.clone();
        b.shutdown().await;
        if db.is_pg() {
            cleanup(&db).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_agree_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    replay_and_compare(move |kind| {
        let url = DbUrl::parse(&format!(
            "sqlite://{}",
            path.join(format!("{}.db", kind.ident())).display()
        ))
        .unwrap();
        (url, "cqrs_bench".to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_agree_on_postgres() {
    let Some(url) = pg_url("backends_agree_on_postgres") else {
        return;
    };
    replay_and_compare(move |kind| (url.clone(), unique_schema(kind.ident()))).await;
}
