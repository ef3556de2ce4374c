//! The harness's floor: before a run's load, the same driver drives the run's lanes (same
//! rates, workers, sessions and op stream) with a trivial statement (`SELECT 1`) in place of
//! each op. What that costs from intended start to finish is what the tool itself adds to
//! every op, and the smallest difference it can resolve.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::AnyPool;

use crate::backend::{Backend, ExecError, Receipt, Session};
use crate::domain::{Command, Query, QueryAnswer};
use crate::metrics::{Floor, Recorder};
use crate::workload::driver::{drive_measured, DriverConfig, Progress, Target};
use crate::workload::mix::OpStream;

/// The statement every calibration op runs.
pub const FLOOR_STATEMENT: &str = "SELECT 1";
/// How long the calibration is measured.
pub const FLOOR_DURATION: Duration = Duration::from_secs(1);
/// How long it runs before that (connections and caches settle), not counted.
pub const FLOOR_WARMUP: Duration = Duration::from_millis(200);

/// A backend's sessions and pools, every op replaced by [`FLOOR_STATEMENT`].
pub struct FloorTarget {
    backend: Arc<Backend>,
}

async fn trivial(session: &mut Session, pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut conn = session.take(pool).await?;
    let result = sqlx::query(FLOOR_STATEMENT).execute(&mut *conn).await;
    session.give_back(conn, result.is_ok());
    result.map(|_| ())
}

impl Target for FloorTarget {
    type Session = Session;

    fn session(&self, writes: bool) -> Session {
        self.backend.session(writes)
    }

    async fn execute(&self, s: &mut Session, _cmd: &Command) -> Result<Receipt, ExecError> {
        trivial(s, &self.backend.db.write).await?;
        Ok(Receipt::default())
    }

    async fn query(&self, s: &mut Session, _q: &Query) -> Result<QueryAnswer, sqlx::Error> {
        trivial(s, &self.backend.db.read).await?;
        Ok(QueryAnswer::TopProducts(Vec::new()))
    }

    async fn is_visible(&self, _s: &mut Session, _r: &Receipt) -> Result<bool, sqlx::Error> {
        Ok(true)
    }
}

/// Calibrates the floor for `cfg`'s lanes on `backend`'s database.
pub async fn calibrate(backend: Arc<Backend>, stream: Arc<OpStream>, cfg: &DriverConfig) -> Floor {
    let cfg = DriverConfig {
        duration: FLOOR_WARMUP + FLOOR_DURATION,
        ryw_share: 0.0,
        ..cfg.clone()
    };
    let start = Instant::now() + Duration::from_millis(20);
    let recorder = Arc::new(Mutex::new(Recorder::new(
        start,
        FLOOR_WARMUP,
        Duration::from_secs(1),
    )));
    let progress = Arc::new(Progress::default());
    let (end, cpu) = drive_measured(
        Arc::new(FloorTarget { backend }),
        stream,
        cfg,
        start,
        recorder.clone(),
        progress,
    )
    .await;
    let metrics = Recorder::finish_shared(recorder, end);
    let lane = |class: &str| {
        metrics
            .ops
            .get(class)
            .filter(|o| o.latency.count > 0)
            .map(|o| o.latency.clone())
    };
    Floor {
        statement: FLOOR_STATEMENT.into(),
        seconds: metrics.measured_seconds,
        write: lane("write"),
        read: lane("read"),
        dispatch: metrics.dispatch.clone(),
        cpu,
    }
}
