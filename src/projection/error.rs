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
    #[error("{0} has no event log (only a cqrs-async dataset has one); nothing to rebuild from")]
    NoEventLog(String),
    #[error("projector did not catch up within {0:?}")]
    Timeout(Duration),
}
