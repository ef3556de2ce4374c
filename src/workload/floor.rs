//! The harness's floor: before a run's load, the same driver drives the run's lanes (same
//! rates, workers, sessions and op stream) with a trivial statement (`SELECT 1`) in place of
//! each op. What that costs from intended start to finish is what the tool itself adds to
//! every op, and the smallest difference it can resolve.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::AnyPool;

use crate::backend::{ExecError, Receipt, Session};
use crate::db::Db;
use crate::metrics::{Floor, Recorder};
use crate::workload::driver::{drive_measured, DriverConfig, OpSource, Progress, Target};

/// The statement every calibration op runs.
pub const FLOOR_STATEMENT: &str = "SELECT 1";
/// How long the calibration is measured.
pub const FLOOR_DURATION: Duration = Duration::from_secs(1);
/// How long it runs before that (connections and caches settle), not counted.
pub const FLOOR_WARMUP: Duration = Duration::from_millis(200);

/// A backend's sessions and pools, every op of its stream `O` replaced by
/// [`FLOOR_STATEMENT`].
pub struct FloorTarget<O> {
    db: Db,
    dedicated_sessions: bool,
    ops: PhantomData<fn() -> O>,
}

async fn trivial(session: &mut Session, pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut conn = session.take(pool).await?;
    let result = sqlx::query(FLOOR_STATEMENT).execute(&mut *conn).await;
    session.give_back(conn, result.is_ok());
    result.map(|_| ())
}

impl<O: OpSource> Target for FloorTarget<O> {
    type Session = Session;
    type Ops = O;

    fn session(&self, writes: bool) -> Session {
        Session::for_lane(&self.db, self.dedicated_sessions, writes)
    }

    async fn execute(&self, s: &mut Session, _op: &O::Write) -> Result<Receipt, ExecError> {
        trivial(s, &self.db.write).await?;
        Ok(Receipt::default())
    }

    async fn query(&self, s: &mut Session, _op: &O::Read) -> Result<(), sqlx::Error> {
        trivial(s, &self.db.read).await
    }

    async fn is_visible(&self, _s: &mut Session, _r: &Receipt) -> Result<bool, sqlx::Error> {
        Ok(true)
    }
}

/// Calibrates the floor for `cfg`'s lanes on a backend's database `db` (its workers'
/// sessions dedicated or not, as the backend's), with its op stream.
pub async fn calibrate<O: OpSource>(
    db: Db,
    dedicated_sessions: bool,
    stream: Arc<O>,
    cfg: &DriverConfig,
) -> Floor {
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
        Arc::new(FloorTarget {
            db,
            dedicated_sessions,
            ops: PhantomData,
        }),
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
