//! A driver worker's hold on the database.
//!
//! Checking a connection out of an sqlx pool and back costs two extra round trips per
//! operation: a health check on the way out and another on the way back in. pgbench keeps one
//! connection per client for the whole run; a dedicated session does the same, so an op costs
//! only its own statements. A session shares the pool instead (one check-out per op) where
//! holding would starve others: for writes on SQLite, whose single writer connection the other
//! writers and the projector need too, and when the pool has no room for a connection per
//! worker. (On SQLite a check-out also hands the connection back through a task of the pool's,
//! which costs a read as much as the statement.)

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};

pub struct Session {
    dedicated: bool,
    held: Option<PoolConnection<Any>>,
}

impl Session {
    /// A session that checks a connection out of the pool for every op.
    pub fn shared() -> Self {
        Session {
            dedicated: false,
            held: None,
        }
    }

    /// A session that keeps its connection between ops.
    pub fn dedicated() -> Self {
        Session {
            dedicated: true,
            held: None,
        }
    }

    /// A driver worker's session for the write lane (`writes`) or the read lane of `db`:
    /// dedicated when the pool has room for every worker (`room`), except on a single shared
    /// writer connection (SQLite's, which the other writers and the projector need too).
    pub fn for_lane(db: &crate::db::Db, room: bool, writes: bool) -> Self {
        if room && !(writes && db.single_writer()) {
            Session::dedicated()
        } else {
            Session::shared()
        }
    }

    /// Whether the session keeps its connection between ops.
    pub fn is_dedicated(&self) -> bool {
        self.dedicated
    }

    /// Whether it holds a connection right now.
    pub fn holds_connection(&self) -> bool {
        self.held.is_some()
    }

    /// The connection for the next op: the held one, or one from `pool`.
    pub async fn take(&mut self, pool: &AnyPool) -> Result<PoolConnection<Any>, sqlx::Error> {
        match self.held.take() {
            Some(conn) => Ok(conn),
            None => pool.acquire().await,
        }
    }

    /// Hands the connection back after an op. One that saw a database error may be broken
    /// (a server restart, say): it goes back through the pool, which checks it, and the next
    /// op starts on a fresh check-out.
    pub fn give_back(&mut self, conn: PoolConnection<Any>, healthy: bool) {
        if self.dedicated && healthy {
            self.held = Some(conn);
        }
    }
}
