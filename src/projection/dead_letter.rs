//! Poison events. When a read model's handler fails on an event (a database error from its
//! SQL, or a payload that cannot be read), the event is retried a few times with back-off and
//! then parked in `dead_letters` (position, stream, read model, error, attempts) exactly once,
//! and the checkpoint moves on.
//!
//! Dead letters are **sequenced per stream** (as Axon does): once an event of a stream is
//! parked for a read model, later events of that stream wait behind it for that read model, so
//! replaying them later applies them in order and the read model converges. Other streams, and
//! the other read models, keep projecting.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::{AnyConnection, Row};

use super::error::ProjectorError;
use super::event_source::{EventLog, EventSource, Fetched};
use super::sql::{apply_batch, ApplyStats, Delivered, Guard};
use super::ProjectionName;
use crate::db::{Db, DbError};

/// Attempts per event before it is parked.
pub const MAX_ATTEMPTS: u32 = 3;
/// Back-off before the second attempt; doubles each time.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// A handler failure (the event's fault) rather than a lost connection (the database's).
fn is_handler_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(_))
}

async fn park(
    conn: &mut AnyConnection,
    p: ProjectionName,
    f: &Fetched,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO dead_letters (seq, projection, stream, error, attempts) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (projection, seq) DO NOTHING",
    )
    .bind(f.seq)
    .bind(p.name())
    .bind(&f.stream)
    .bind(error)
    .bind(attempts as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn parked_streams(
    conn: &mut AnyConnection,
    p: ProjectionName,
) -> Result<HashSet<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT DISTINCT stream FROM dead_letters WHERE projection = $1")
        .bind(p.name())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// Applies `due` to read model `p` inside the caller's transaction. Events of parked streams
/// and unreadable events are parked; if the batch fails, events are applied one by one (each
/// in a savepoint, retried with back-off) to find and park the poison ones. Errors that are not
/// the event's fault (connection lost) are returned, and the caller's transaction is lost.
pub async fn apply_guarded(
    conn: &mut AnyConnection,
    p: ProjectionName,
    due: &[&Fetched],
) -> Result<ApplyStats, sqlx::Error> {
    let mut parked = parked_streams(conn, p).await?;
    let mut ready: Vec<&Delivered> = Vec::with_capacity(due.len());
    for f in due {
        if parked.contains(&f.stream) {
            park(
                conn,
                p,
                f,
                "waiting behind an earlier dead letter of its stream",
                0,
            )
            .await?;
            continue;
        }
        match &f.event {
            Ok(d) => ready.push(d),
            Err(e) => {
                park(conn, p, f, &format!("unreadable payload: {e}"), 1).await?;
                parked.insert(f.stream.clone());
            }
        }
    }
    if ready.is_empty() {
        return Ok(ApplyStats::default());
    }
    // Fast path: the whole batch in one savepoint.
    {
        let mut sp = sqlx::Connection::begin(&mut *conn).await?;
        match apply_batch(&mut sp, &ready, &[p], Guard::Ledger).await {
            Ok(stats) => {
                sp.commit().await?;
                return Ok(stats);
            }
            Err(e) if is_handler_failure(&e) => sp.rollback().await?,
            Err(e) => return Err(e),
        }
    }
    // Slow path: one event at a time, in order, parking what keeps failing.
    let mut total = ApplyStats::default();
    for d in &ready {
        let stream = d.event.stream();
        let f = due
            .iter()
            .find(|f| f.seq == d.seq)
            .expect("ready events come from due");
        if parked.contains(&stream) {
            park(
                conn,
                p,
                f,
                "waiting behind an earlier dead letter of its stream",
                0,
            )
            .await?;
            continue;
        }
        let mut last_error = String::new();
        let mut applied = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut sp = sqlx::Connection::begin(&mut *conn).await?;
            match apply_batch(&mut sp, std::slice::from_ref(d), &[p], Guard::Ledger).await {
                Ok(stats) => {
                    sp.commit().await?;
                    total.counted += stats.counted;
                    total.duplicates += stats.duplicates;
                    applied = true;
                    break;
                }
                Err(e) if is_handler_failure(&e) => {
                    sp.rollback().await?;
                    last_error = e.to_string();
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if !applied {
            park(conn, p, f, &last_error, MAX_ATTEMPTS).await?;
            parked.insert(stream);
        }
    }
    Ok(total)
}

/// A parked event.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub seq: i64,
    pub projection: String,
    pub stream: String,
    pub error: String,
    pub attempts: i64,
}

pub async fn list(db: &Db) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, projection, stream, error, attempts FROM dead_letters ORDER BY projection, seq",
    )
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeadLetter {
                seq: r.try_get(0)?,
                projection: r.try_get(1)?,
                stream: r.try_get(2)?,
                error: r.try_get(3)?,
                attempts: r.try_get(4)?,
            })
        })
        .collect()
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub replayed: u64,
    pub still_failing: u64,
}

/// Applies parked events again, per read model in log order, in one transaction; each one that
/// succeeds leaves the dead-letter table. A stream stops at its first event that still fails.
/// The events are read back from the outbox (from the event store on an event-sourced
/// database).
pub async fn replay(db: &Db, projections: &[ProjectionName]) -> Result<ReplayReport, sqlx::Error> {
    let store = crate::db::state::DbState::read(db)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
        .has_event_store();
    let replayed = if store {
        replay_from(&EventLog::event_store(db.clone()), db, projections).await
    } else {
        replay_from(&EventLog::outbox(db.clone()), db, projections).await
    };
    replayed.map_err(|e| match e {
        ProjectorError::Sql(e) | ProjectorError::Db(DbError::Sql(e)) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

/// `replay`, reading the parked events from `source`.
pub async fn replay_from(
    source: &impl EventSource,
    db: &Db,
    projections: &[ProjectionName],
) -> Result<ReplayReport, ProjectorError> {
    let mut report = ReplayReport::default();
    let mut conn = db.write.acquire().await.map_err(DbError::from)?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for &p in projections {
        let rows =
            sqlx::query("SELECT seq, stream FROM dead_letters WHERE projection = $1 ORDER BY seq")
                .bind(p.name())
                .fetch_all(&mut *tx)
                .await?;
        let parked: Vec<(i64, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let seqs: Vec<i64> = parked.iter().map(|(seq, _)| *seq).collect();
        let events: HashMap<i64, Fetched> = source
            .events_at(&seqs)
            .await?
            .into_iter()
            .map(|f| (f.seq, f))
            .collect();
        let mut blocked: HashSet<String> = HashSet::new();
        for (seq, stream) in parked {
            // A dead letter whose event the source no longer has cannot be replayed.
            let Some(fetched) = events.get(&seq) else {
                continue;
            };
            if blocked.contains(&stream) {
                report.still_failing += 1;
                continue;
            }
            let outcome = match &fetched.event {
                Ok(d) => {
                    let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                    match apply_batch(&mut sp, std::slice::from_ref(d), &[p], Guard::Ledger).await {
                        Ok(_) => {
                            sp.commit().await?;
                            Ok(())
                        }
                        Err(e) if is_handler_failure(&e) => {
                            sp.rollback().await?;
                            Err(e.to_string())
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => Err(format!("unreadable payload: {e}")),
            };
            match outcome {
                Ok(()) => {
                    sqlx::query("DELETE FROM dead_letters WHERE projection = $1 AND seq = $2")
                        .bind(p.name())
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    report.replayed += 1;
                }
                Err(error) => {
                    sqlx::query(
                        "UPDATE dead_letters SET attempts = attempts + 1, error = $1 \
                         WHERE projection = $2 AND seq = $3",
                    )
                    .bind(error)
                    .bind(p.name())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                    blocked.insert(stream);
                    report.still_failing += 1;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(report)
}
