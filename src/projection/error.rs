//! Why projecting failed: shared by the event sources, read stores, projector and rebuild.

use std::time::Duration;

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database error in projector: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("event {seq} has an unreadable payload: {message}")]
    Payload { seq: i64, message: String },
    #[error("{0} has no event log (only cqrs-async and event-sourced datasets have one); nothing to rebuild from")]
    NoEventLog(String),
    #[error("projector did not catch up within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    #[error(transparent)]
    Search(#[from] super::search::SearchError),
}

impl ProjectorError {
    /// 2 when the database has nothing to project from; the database's code for its errors;
    /// 3 when projecting itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProjectorError::Db(e) => e.exit_code(),
            ProjectorError::NoEventLog(_) => 2,
            ProjectorError::Broker(e) => e.exit_code(),
            ProjectorError::Search(e) => e.exit_code(),
            ProjectorError::Sql(_)
            | ProjectorError::Payload { .. }
            | ProjectorError::Timeout(_) => 3,
        }
    }
}
