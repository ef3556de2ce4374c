//! A read side kept up by a projector over an event log in the write model's database, as
//! `cqrs-async` (the outbox) and `event-sourced` (the event store) have it: the projector's
//! start-up, the wake-ups (in-process after a commit, and a notification statement for
//! projectors in other processes where the engine has one), the read-your-writes check, the
//! wait for catching up, and the shutdown. The backends differ only in which log it reads.
//!
//! Beside it, unless told not to, a second projector over the same log keeps the product
//! search index (tantivy, `projection::search`) with its own checkpoint in the index's
//! commits: the two read sides apply separately, as a search engine beside a database must,
//! and a reader sees a write once the read side its query reads covers it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use sqlx::{AnyConnection, Row};
use tokio::sync::{watch, Notify};

use super::{BackendOptions, Receipt, Session};
use crate::db::Db;
use crate::projection::event_source::{notify_channel, EventLog, Position};
use crate::projection::projector::{LagTracker, Projector, ProjectorError};
use crate::projection::read_store::{read_checkpoints, SameDatabase};
use crate::projection::search::{index_dir, SearchError, SearchIndex, SearchStore};
use crate::projection::ProjectionName;

/// The search index's read side: its projector and, once started, the projector's task.
pub struct SearchSide {
    pub index: Arc<SearchIndex>,
    pub projector: Arc<Projector<EventLog, SearchStore>>,
    wake: Arc<Notify>,
    run: bool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    shutdown: watch::Receiver<bool>,
    db: Db,
    /// The log's table (`events` or `es_events`).
    table: &'static str,
}

pub struct Projected {
    /// The statement that wakes projectors in other processes, where the engine has one.
    notify: Option<&'static str>,
    channel: String,
    /// The log's table (`events` or `es_events`).
    table: &'static str,
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    projector: Arc<Projector>,
    lag: Option<Arc<LagTracker>>,
    search: Option<SearchSide>,
    /// Why the search index could not be opened (reported by `start_search`).
    search_failed: Mutex<Option<SearchError>>,
    search_lag: Option<Arc<LagTracker>>,
    /// The read models' own database (`--read-db`), when they are not in the log's.
    read_store: Option<Db>,
}

impl Projected {
    /// A projector from `log` into the read models of `db`, or of the separate read store
    /// `opts` name, started unless `opts` say not to (tests may drive it by hand instead).
    /// The search index is kept only beside read models in the log's own database: it is
    /// filled from the catalog and its skew counted in the log, both in one database.
    pub fn start(db: &Db, log: EventLog, opts: &BackendOptions) -> Self {
        let wake = Arc::new(Notify::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let table = log.table();
        let (search, search_failed) = if opts.search && opts.read_store.is_none() {
            match SearchSide::open(db, log.clone(), opts, shutdown_rx.clone()) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        let store = opts.read_store.as_ref().unwrap_or(db);
        let mut projector = Projector::over(
            log,
            SameDatabase::new(store.clone()),
            opts.projector.clone(),
        );
        if let Some(lag) = &opts.lag {
            projector = projector.with_lag(lag.clone());
        }
        let projector = Arc::new(projector);
        let task = opts
            .run_projector
            .then(|| tokio::spawn(projector.clone().run(wake.clone(), shutdown_rx)));
        Projected {
            notify: db.dialect().notify(),
            channel: notify_channel(db),
            table,
            wake,
            shutdown,
            task,
            projector,
            lag: opts.lag.clone(),
            search,
            search_failed: Mutex::new(search_failed),
            search_lag: opts.search_lag.clone(),
            read_store: opts.read_store.clone(),
        }
    }

    pub fn projector(&self) -> &Arc<Projector> {
        &self.projector
    }

    /// Where the read models are: the separate read store, if any, else `db`.
    pub fn reads_from<'a>(&'a self, db: &'a Db) -> &'a Db {
        self.read_store.as_ref().unwrap_or(db)
    }

    /// The search index's read side, if it has one.
    pub fn search(&self) -> Option<&SearchSide> {
        self.search.as_ref()
    }

    /// Fills a new search index from the product catalog and starts its projector (once,
    /// before the first command).
    pub async fn start_search(&self) -> Result<(), ProjectorError> {
        if let Some(e) = self.search_failed.lock().expect("search lock").take() {
            return Err(e.into());
        }
        match &self.search {
            Some(s) => s.start().await,
            None => Ok(()),
        }
    }

    /// Wakes projectors in other processes once `tx` commits (nothing where the engine has
    /// no notifications).
    pub async fn notify_in(&self, tx: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if let Some(notify) = self.notify {
            sqlx::query(notify)
                .bind(&self.channel)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// After a commit of `seqs` at `at`: starts their lag clocks and wakes the projector.
    pub fn after_commit(&self, seqs: &[i64], at: Instant) {
        if let Some(lag) = &self.lag {
            lag.committed(seqs, at);
        }
        if let Some(lag) = &self.search_lag {
            lag.committed(seqs, at);
        }
        self.wake.notify_one();
        if let Some(s) = &self.search {
            s.wake.notify_one();
        }
    }

    /// Whether the read models the receipt's probe reads ([`Receipt::read_models`]) cover
    /// its last event: their checkpoints, and the search index's only when that query
    /// reads the index.
    pub async fn is_visible(
        &self,
        db: &Db,
        session: &mut Session,
        receipt: &Receipt,
    ) -> Result<bool, sqlx::Error> {
        let Some(&seq) = receipt.seqs.iter().max() else {
            return Ok(true);
        };
        let models = receipt.read_models();
        let sql_models: Vec<ProjectionName> = models
            .iter()
            .copied()
            .filter(|p| *p != ProjectionName::ProductSearch)
            .collect();
        // Where the backend keeps no index, text_search reads the SQL product catalog.
        let search = match (
            &self.search,
            models.contains(&ProjectionName::ProductSearch),
        ) {
            (Some(s), true) => Some(s),
            (None, true) => {
                return self
                    .is_visible_in(db, session, receipt, &[ProjectionName::ProductCatalog])
                    .await;
            }
            (_, false) => None,
        };
        if !self
            .is_visible_in(db, session, receipt, &sql_models)
            .await?
        {
            return Ok(false);
        }
        let Some(s) = search else {
            return Ok(true);
        };
        let mut conn = db.read.acquire().await?;
        let pos = position_of(&mut conn, self.table, seq).await?;
        Ok(pos.is_some_and(|p| s.index.searchable() >= p))
    }

    /// Whether the checkpoints of the SQL read models `models` cover the receipt's last event.
    async fn is_visible_in(
        &self,
        db: &Db,
        session: &mut Session,
        receipt: &Receipt,
        models: &[ProjectionName],
    ) -> Result<bool, sqlx::Error> {
        let Some(&seq) = receipt.seqs.iter().max() else {
            return Ok(true);
        };
        if models.is_empty() {
            return Ok(true);
        }
        let Some(store) = &self.read_store else {
            let mut conn = session.take(&db.read).await?;
            let result = covers(&mut conn, self.table, seq, models).await;
            session.give_back(conn, result.is_ok());
            return result;
        };
        // The event's position is in the log's database, the checkpoints in the read store's.
        let pos = {
            let mut conn = db.read.acquire().await?;
            position_of(&mut conn, self.table, seq).await?
        };
        let Some(pos) = pos else {
            return Ok(false);
        };
        let mut conn = session.take(&store.read).await?;
        let result = read_checkpoints(&mut conn).await;
        session.give_back(conn, result.is_ok());
        let checkpoints = result?;
        Ok(models
            .iter()
            .all(|p| checkpoints.get(p).is_some_and(|c| *c >= pos)))
    }

    /// Waits until the projector has applied every committed event (driving it here when
    /// its task was not started).
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<(), ProjectorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.task.is_none() {
                self.projector.catch_up().await?;
            }
            if let Some(s) = &self.search {
                if !s.run {
                    s.projector.catch_up().await?;
                }
            }
            let search_backlog = match &self.search {
                Some(s) => s.projector.backlog().await?,
                None => 0,
            };
            if self.projector.backlog().await? == 0 && search_backlog == 0 {
                return Ok(());
            }
            if let Some(s) = &self.search {
                s.wake.notify_one();
            }
            if Instant::now() >= deadline {
                return Err(ProjectorError::Timeout(timeout));
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the projector task, if it runs.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(s) = self.search.take() {
            let task = s.task.lock().expect("search task lock").take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}

impl SearchSide {
    /// Events of the log the SQL product catalog covers and the index does not (negative:
    /// the other way round): the two read sides' skew.
    pub async fn skew(&self) -> Result<i64, ProjectorError> {
        let index = self.index.searchable();
        let mut conn = self
            .db
            .read
            .acquire()
            .await
            .map_err(crate::db::DbError::from)?;
        let sql = crate::projection::read_store::read_checkpoints(&mut conn)
            .await?
            .get(&ProjectionName::ProductCatalog)
            .copied()
            .unwrap_or_default();
        let (lo, hi, sign) = if sql >= index {
            (index, sql, 1)
        } else {
            (sql, index, -1)
        };
        if lo == hi {
            return Ok(0);
        }
        let q = format!(
            "SELECT COUNT(*) FROM {} WHERE (xid > $1 OR (xid = $1 AND seq > $2)) \
             AND (xid < $3 OR (xid = $3 AND seq <= $4))",
            self.table
        );
        let n: i64 = sqlx::query_scalar(&q)
            .bind(lo.xid)
            .bind(lo.seq)
            .bind(hi.xid)
            .bind(hi.seq)
            .fetch_one(&mut *conn)
            .await?;
        Ok(sign * n)
    }

    /// Opens (or creates) the index where `opts` say, with a projector over `log` that stops
    /// when `shutdown` turns true.
    fn open(
        db: &Db,
        log: EventLog,
        opts: &BackendOptions,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, SearchError> {
        let index = SearchIndex::open(&index_dir(db, opts.search_dir.as_deref()))?;
        let table = log.table();
        let mut projector =
            Projector::over(log, SearchStore::new(index.clone()), exactly_once(opts))
                .with_projections(&[ProjectionName::ProductSearch]);
        if let Some(lag) = &opts.search_lag {
            projector = projector.with_lag(lag.clone());
        }
        Ok(SearchSide {
            index,
            projector: Arc::new(projector),
            wake: Arc::new(Notify::new()),
            run: opts.run_projector,
            task: Mutex::new(None),
            shutdown,
            db: db.clone(),
            table,
        })
    }

    /// A new index (at the start, empty) is filled from the product catalog read model at
    /// its checkpoint; then the projector's task starts, if it runs in this process.
    async fn start(&self) -> Result<(), ProjectorError> {
        if self.index.committed()? == Position::default() && self.index.searcher().num_docs() == 0 {
            self.projector.store().seed_from_catalog(&self.db).await?;
        }
        // Without a task here, a projector in another process may keep the index: leave it
        // the writer's lock.
        self.index.release_writer();
        if self.run {
            let task = tokio::spawn(
                self.projector
                    .clone()
                    .run(self.wake.clone(), self.shutdown.clone()),
            );
            *self.task.lock().expect("search task lock") = Some(task);
        }
        Ok(())
    }
}

/// The search projector's settings: the run's, but always exactly-once. `--projector naive`
/// is the negative control of the SQL read models, which verify is to catch; the index has no
/// naive path of its own (with one, a CI run of `ci-redelivery.toml` did not catch up in 300 s).
fn exactly_once(opts: &BackendOptions) -> crate::projection::projector::ProjectorConfig {
    crate::projection::projector::ProjectorConfig {
        mode: crate::projection::projector::ProjectorMode::ExactlyOnce,
        ..opts.projector.clone()
    }
}

/// The log position of event `seq` of `table`.
async fn position_of(
    conn: &mut AnyConnection,
    table: &str,
    seq: i64,
) -> Result<Option<Position>, sqlx::Error> {
    let sql = format!("SELECT xid, seq FROM {table} WHERE seq = $1");
    let row = sqlx::query(&sql)
        .bind(seq)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(Position {
            xid: r.try_get(0)?,
            seq: r.try_get(1)?,
        })
    })
    .transpose()
}

/// Whether the checkpoints of the SQL read models `models` cover event `seq` of `table`.
/// The checkpoint commits with the read-model rows, so "checkpoint covers the event" and
/// "the read model shows it" are the same fact.
async fn covers(
    conn: &mut AnyConnection,
    table: &str,
    seq: i64,
    models: &[ProjectionName],
) -> Result<bool, sqlx::Error> {
    // The names are the tool's own constants, not input.
    let names: Vec<String> = models.iter().map(|p| format!("'{}'", p.name())).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM projection_checkpoints c, {table} e \
         WHERE e.seq = $1 AND c.projection IN ({}) AND (c.xid, c.seq) >= (e.xid, e.seq)",
        names.join(", ")
    );
    let row = sqlx::query(&sql).bind(seq).fetch_one(&mut *conn).await?;
    let covered: i64 = row.try_get(0)?;
    Ok(covered as usize >= models.len())
}
