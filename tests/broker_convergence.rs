//! Convergence through the broker (issue [broker] 17, "What must be true"): a generated
//! history runs through `cqrs-broker`; the relay publishes it to a real JetStream stream
//! (a `nats-server -js` of the test's own) together with generated duplicates — copies of
//! events published with a fresh `Nats-Msg-Id`, as a relay republishing after the duplicate
//! window would — and the stream is consumed by a sequence of consumers, each but the last
//! killed after a generated number of batches without acking what it committed (so the
//! server delivers it again, after the ack-wait, to the next one, which receives later
//! messages first). Property: the read models equal the truth from the normalized tables.
//! The negative control: the naive projector on the same plans must be caught.
//!
//! Cases: 48 by default (each runs a real broker round trip), `PROPTEST_CASES` replaces it.

mod common;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::sqlite_url;
use cqrs_bench::backend::{cqrs_broker, prepare, Backend, BackendOptions};
use cqrs_bench::broker::{self, BrokerOptions};
use cqrs_bench::dataset::DatasetSpec;
use cqrs_bench::projection::event_source::{EventLog, EventSource};
use cqrs_bench::projection::jetstream::{ConsumerFaults, JetStreamSource};
use cqrs_bench::projection::projector::{Projector, ProjectorConfig, ProjectorMode};
use cqrs_bench::projection::read_store::SameDatabase;
use cqrs_bench::projection::relay::{Relay, SEQ_HEADER, STREAM_HEADER};
use cqrs_bench::verify::verify;
use cqrs_bench::workload::mix::OpStream;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

const ACK_WAIT: Duration = Duration::from_millis(200);

fn spec() -> DatasetSpec {
    DatasetSpec {
        categories: 3,
        products: 12,
        users: 10,
        orders: 30,
        reviews: 20,
        price_changes: 5,
        days: 3,
        extra_product_indexes: 0,
    }
}

/// What one case does.
#[derive(Debug, Clone)]
struct Plan {
    stream_seed: u64,
    commands: u64,
    /// Events per relay batch.
    relay_batch: i64,
    /// Per cent of each relay batch published again with a fresh message id.
    dup_percent: u32,
    /// Events per projector batch.
    batch: i64,
    /// Batches each killed consumer commits before it dies (one consumer per entry).
    kills: Vec<u32>,
}

fn plan(dups: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = Plan> {
    (
        0u64..10_000,
        10u64..120,
        1i64..40,
        dups,
        1i64..40,
        proptest::collection::vec(1u32..4, 0..3),
    )
        .prop_map(
            |(stream_seed, commands, relay_batch, dup_percent, batch, kills)| Plan {
                stream_seed,
                commands,
                relay_batch,
                dup_percent,
                batch,
                kills,
            },
        )
}

/// Runs one case; `Err` with the verify differences when the read models are wrong.
async fn run_case(nats: &str, plan: &Plan, mode: ProjectorMode) -> Result<(), String> {
    let (_dir, url) = sqlite_url("broker_convergence");
    let (db, _) = prepare(&url, "main", cqrs_broker::KIND, 11, &spec(), 2)
        .await
        .map_err(|e| format!("seed: {e}"))?;
    let backend = Backend::open(
        cqrs_broker::KIND,
        db.clone(),
        BackendOptions {
            run_projector: false,
            broker: BrokerOptions {
                url: nats.to_string(),
                ack_wait: ACK_WAIT,
                ..BrokerOptions::default()
            },
            ..BackendOptions::default()
        },
    )
    .await
    .map_err(|e| format!("open: {e}"))?;
    let ops = OpStream::new(plan.stream_seed, &spec(), &common::mixed_commands());
    for i in 0..plan.commands {
        let _ = backend.execute(&ops.write_op(i).expect("op")).await;
    }
    let js = broker::connect(nats).await.map_err(|e| e.to_string())?;
    let names = cqrs_broker::names_of(&db);
    let outbox = EventLog::outbox(db.clone());
    let relay = Relay::new(
        db.clone(),
        js.clone(),
        names.clone(),
        plan.relay_batch,
        Duration::from_millis(10),
    );
    // Publish, and after each batch copies of a share of it under fresh message ids.
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(plan.stream_seed);
    let mut copies = 0u64;
    loop {
        let before = relay.published_to().await.map_err(|e| e.to_string())?;
        if relay.step().await.map_err(|e| e.to_string())? == 0 {
            break;
        }
        let batch = outbox
            .fetch(
                before,
                plan.relay_batch,
                cqrs_bench::projection::event_source::Delivery::Safe,
            )
            .await
            .map_err(|e| e.to_string())?;
        for f in batch {
            if rand::Rng::gen_range(&mut rng, 0..100) < plan.dup_percent {
                let d = f.delivered().expect("readable");
                let mut h = async_nats::HeaderMap::new();
                copies += 1;
                h.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    format!("copy-{}-{copies}", f.seq).as_str(),
                );
                h.insert(SEQ_HEADER, f.seq.to_string().as_str());
                h.insert(STREAM_HEADER, f.stream.as_str());
                js.publish_with_headers(names.subject.clone(), h, d.event.to_json().into())
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let config = ProjectorConfig {
        batch_size: plan.batch,
        poll_interval: Duration::from_millis(20),
        mode,
        ..ProjectorConfig::default()
    };
    let consumer = |faults| {
        let (js, names, outbox, config, db) = (
            js.clone(),
            names.clone(),
            outbox.clone(),
            config.clone(),
            db.clone(),
        );
        async move {
            let source = JetStreamSource::open(js, names, nats, outbox, Duration::from_millis(20))
                .await
                .map_err(|e| e.to_string())?
                .with_faults(faults);
            Ok::<_, String>(Projector::over(source, SameDatabase::new(db), config))
        }
    };
    // Consumers that die after their batches without acking them.
    for &batches in &plan.kills {
        let p = consumer(ConsumerFaults { drop_acks: true }).await?;
        for _ in 0..batches {
            p.step().await.map_err(|e| e.to_string())?;
        }
    }
    // The last one runs until everything is applied and every redelivery has come and gone.
    let p = consumer(ConsumerFaults::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_since = Instant::now();
    loop {
        if p.step().await.map_err(|e| e.to_string())? > 0 {
            quiet_since = Instant::now();
        } else if p.backlog().await.map_err(|e| e.to_string())? == 0
            && quiet_since.elapsed() > ACK_WAIT * 3
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "did not catch up (backlog {:?})",
                p.backlog().await
            ));
        }
    }
    drop(p);
    let report = verify(&db).await.map_err(|e| e.to_string())?;
    backend.shutdown().await;
    if report.ok() {
        Ok(())
    } else {
        Err(format!("{} mismatches: {:?}", report.mismatches, report))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(48)
}

#[test]
fn duplicates_and_consumer_restarts_converge_to_the_truth() {
    let server = NatsServer::start();
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 50,
        ..Config::default()
    });
    let result = runner.run(&plan(0..=50), |p| {
        block_on(run_case(&server.url(), &p, ProjectorMode::ExactlyOnce))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "broker convergence: {} cases passed in {:.1} s",
        runner.config().cases,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_naive_projector_is_caught_on_the_stream() {
    let server = NatsServer::start();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 24,
            failure_persistence: None,
            max_shrink_iters: 10,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[0x4E; 32]),
    );
    let result = runner.run(&plan(10..=50), |p| {
        block_on(run_case(&server.url(), &p, ProjectorMode::Naive)).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => panic!("the naive projector passed every case: the property cannot catch it"),
        Err(TestError::Abort(why)) => panic!("aborted: {why}"),
        Err(TestError::Fail(reason, plan)) => {
            eprintln!("broker convergence: the naive projector was caught: {plan:?}: {reason}")
        }
    }
}
