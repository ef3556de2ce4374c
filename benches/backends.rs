//! The three backends compared op by op, on the same seeded dataset.
//!
//! One criterion group per query and per command; inside each group one function per backend
//! (`normalized`, `cqrs-sync`, `cqrs-async`), so the report shows them side by side. For
//! commands the async backend is measured twice: `cqrs-async/returns` (the write has committed)
//! and `cqrs-async/visible` (the read model shows it; the projector runs in the background).
//!
//! SQLite always (temporary files). PostgreSQL too when `CQRS_BENCH_BENCH_PG` gives a URL; its
//! groups are prefixed `postgres/` and its schemas (`bench_<backend>`) are dropped at the end.
//!
//! Run one group: `cargo bench --bench backends -- place_order`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use tokio::runtime::Runtime;

use cqrs_bench::backend::{prepare, Backend, BackendKind, BackendOptions, ExecError, Receipt};
use cqrs_bench::dataset::{DatasetSpec, START_AT};
use cqrs_bench::db::DbUrl;
use cqrs_bench::domain::{Command, CommandKind, OrderLine, QueryKind};
use cqrs_bench::workload::mix::{MixSpec, OpStream};

const PG_ENV: &str = "CQRS_BENCH_BENCH_PG";
const SEED: u64 = 42;
/// Ids the benchmark's commands create start here, far above anything the seed uses.
const FIRST_ID: i64 = 10_000_000;
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_ID: AtomicI64 = AtomicI64::new(FIRST_ID);
static NEXT_READ: AtomicU64 = AtomicU64::new(0);

const COMMANDS: [CommandKind; 5] = [
    CommandKind::PlaceOrder,
    CommandKind::PayOrder,
    CommandKind::AddReview,
    CommandKind::ChangePrice,
    CommandKind::Restock,
];

/// The default dataset: the benches compare backends at the size the tests use.
fn dataset() -> DatasetSpec {
    DatasetSpec::default()
}

fn fresh_id() -> i64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Logical time of the command with id `n`: 1 ms apart, after the seeded history.
fn at(n: i64) -> i64 {
    START_AT + (n - FIRST_ID) * 1_000
}

fn place_order(n: i64, spec: &DatasetSpec) -> Command {
    let first = n % spec.products + 1;
    let second = (n * 7 + 3) % spec.products + 1;
    let mut lines = vec![OrderLine {
        product_id: first,
        qty: 1,
    }];
    if second != first {
        lines.push(OrderLine {
            product_id: second,
            qty: 1,
        });
    }
    Command::PlaceOrder {
        order_id: n,
        user_id: n % spec.users + 1,
        lines,
        at: at(n),
    }
}

/// The command of kind `kind` with fresh id `n` (not for `PayOrder`, which needs an order
/// placed first: see `timed_command`).
fn command(kind: CommandKind, n: i64, spec: &DatasetSpec) -> Command {
    let product_id = n % spec.products + 1;
    match kind {
        CommandKind::PlaceOrder => place_order(n, spec),
        CommandKind::AddReview => Command::AddReview {
            review_id: n,
            product_id,
            user_id: (n * 31) % spec.users + 1,
            rating: n % 5 + 1,
            at: at(n),
        },
        CommandKind::ChangePrice => Command::ChangePrice {
            change_id: n,
            product_id,
            cents: 199 + (n * 7_919) % 19_800,
            at: at(n),
        },
        CommandKind::Restock => Command::Restock {
            product_id,
            qty: 10,
            at: at(n),
        },
        other => unreachable!("no benchmark command for {other:?}"),
    }
}

fn expect_ok(r: Result<Receipt, ExecError>, cmd: &Command) -> Receipt {
    r.unwrap_or_else(|e| panic!("benchmark command {cmd:?} failed: {e}"))
}

async fn wait_visible(backend: &Backend, receipt: &Receipt) {
    let started = Instant::now();
    while !backend.is_visible(receipt).await.expect("is_visible") {
        assert!(
            started.elapsed() < VISIBLE_TIMEOUT,
            "write not visible after {VISIBLE_TIMEOUT:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// Runs one command of `kind` with a fresh id; returns the time of the part that is measured
/// (for `PayOrder`, placing the order to pay is not).
async fn timed_command(
    backend: &Backend,
    kind: CommandKind,
    spec: &DatasetSpec,
    visible: bool,
) -> Duration {
    let n = fresh_id();
    let cmd = if kind == CommandKind::PayOrder {
        let place = place_order(n, spec);
        let receipt = expect_ok(backend.execute(&place).await, &place);
        if visible {
            wait_visible(backend, &receipt).await;
        }
        Command::PayOrder {
            order_id: n,
            at: at(n) + 500,
        }
    } else {
        command(kind, n, spec)
    };
    let started = Instant::now();
    let receipt = expect_ok(backend.execute(&cmd).await, &cmd);
    if visible {
        wait_visible(backend, &receipt).await;
    }
    started.elapsed()
}

struct Engine {
    /// Prefix of the group names ("" for SQLite, "postgres/" for PostgreSQL).
    prefix: &'static str,
    backends: Vec<Backend>,
    _dir: Option<tempfile::TempDir>,
}

async fn open_all(
    url_for: impl Fn(BackendKind) -> (DbUrl, String),
    spec: &DatasetSpec,
) -> Vec<Backend> {
    let mut backends = Vec::new();
    for kind in BackendKind::all() {
        let (url, schema) = url_for(kind);
        let (db, _) = prepare(&url, &schema, kind, SEED, spec, 4)
            .await
            .unwrap_or_else(|e| panic!("seeding {kind}: {e}"));
        let backend = Backend::open(
            kind,
            db,
            BackendOptions {
                run_projector: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("opening {kind}: {e}"));
        backends.push(backend);
    }
    backends
}

fn engines(rt: &Runtime, spec: &DatasetSpec) -> Vec<Engine> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let backends = rt.block_on(open_all(
        |kind| {
            let url = format!(
                "sqlite://{}",
                path.join(format!("{}.db", kind.ident())).display()
            );
            (DbUrl::parse(&url).expect("sqlite url"), "main".to_string())
        },
        spec,
    ));
    out.push(Engine {
        prefix: "",
        backends,
        _dir: Some(dir),
    });
    if let Ok(raw) = std::env::var(PG_ENV) {
        if !raw.is_empty() {
            let url = DbUrl::parse(&raw).unwrap_or_else(|e| panic!("{PG_ENV}: {e}"));
            let backends = rt.block_on(open_all(
                |kind| (url.clone(), format!("bench_{}", kind.ident())),
                spec,
            ));
            out.push(Engine {
                prefix: "postgres/",
                backends,
                _dir: None,
            });
        }
    } else {
        eprintln!("PostgreSQL skipped: set {PG_ENV} to a URL to benchmark it too");
    }
    out
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn bench_queries(c: &mut Criterion, rt: &Runtime, engine: &Engine, spec: &DatasetSpec) {
    for kind in QueryKind::ALL {
        let mix = MixSpec {
            writes: BTreeMap::new(),
            reads: BTreeMap::from([(kind, 1.0)]),
            ..MixSpec::default()
        };
        let stream = OpStream::new(SEED, spec, &mix);
        let mut group = c.benchmark_group(format!("{}{}", engine.prefix, kind.name()));
        configure(&mut group);
        for backend in &engine.backends {
            rt.block_on(backend.wait_caught_up(Duration::from_secs(60)))
                .expect("projector caught up");
            let stream = &stream;
            group.bench_function(backend.kind.name(), |b| {
                b.to_async(rt).iter(|| async move {
                    let j = NEXT_READ.fetch_add(1, Ordering::Relaxed);
                    let q = stream.read_op(j).expect("a query");
                    backend.query(&q).await.expect("query")
                })
            });
        }
        group.finish();
    }
}

fn bench_commands(c: &mut Criterion, rt: &Runtime, engine: &Engine, spec: &DatasetSpec) {
    for kind in COMMANDS {
        let mut group = c.benchmark_group(format!("{}{}", engine.prefix, kind.name()));
        configure(&mut group);
        for backend in &engine.backends {
            let modes: Vec<(bool, String)> = if backend.kind.read_side_lags() {
                vec![
                    (false, format!("{}/returns", backend.kind.name())),
                    (true, format!("{}/visible", backend.kind.name())),
                ]
            } else {
                vec![(false, backend.kind.name().to_string())]
            };
            for (visible, name) in modes {
                rt.block_on(backend.wait_caught_up(Duration::from_secs(60)))
                    .expect("projector caught up");
                group.bench_function(name.as_str(), |b| {
                    b.to_async(rt).iter_custom(|iters| async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            total += timed_command(backend, kind, spec, visible).await;
                        }
                        total
                    })
                });
            }
        }
        group.finish();
    }
}

fn backends(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let spec = dataset();
    let engines = engines(&rt, &spec);
    for engine in &engines {
        // Queries first, so every backend answers them on exactly the seeded data.
        bench_queries(c, &rt, engine, &spec);
        bench_commands(c, &rt, engine, &spec);
    }
    for engine in engines {
        for backend in engine.backends {
            let db = backend.db.clone();
            rt.block_on(async {
                backend.shutdown().await;
                if db.is_pg() {
                    if let Err(e) = cqrs_bench::db::schema::drop_all(&db).await {
                        eprintln!("dropping {:?}: {e}", db.schema);
                    }
                }
                db.close().await;
            });
        }
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
