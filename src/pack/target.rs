//! A pack's backend as the driver's [`Target`]: each op of the pack's stream runs on the
//! backend with the parameters its lane draws (writes and reads apart), so the one driver
//! loop, the floor and the recorder run a pack exactly as they run the shop.

use std::sync::Arc;

use super::backend::PackBackend;
use super::ops::{PackOp, PackStream};
use crate::backend::{ExecError, Receipt, Session};
use crate::workload::driver::Target;

pub struct PackTarget {
    backend: PackBackend,
    stream: Arc<PackStream>,
}

impl PackTarget {
    pub fn new(backend: PackBackend, stream: Arc<PackStream>) -> PackTarget {
        PackTarget { backend, stream }
    }

    pub fn backend(&self) -> &PackBackend {
        &self.backend
    }

    pub fn into_backend(self) -> PackBackend {
        self.backend
    }
}

impl Target for PackTarget {
    type Session = Session;
    type Ops = PackStream;

    fn session(&self, writes: bool) -> Session {
        self.backend.session(writes)
    }

    /// Checks a connection out per look: probes come and go, and must not each hold one.
    fn probe_session(&self) -> Session {
        Session::shared()
    }

    async fn execute(&self, s: &mut Session, op: &PackOp) -> Result<Receipt, ExecError> {
        let params = self.stream.write_params();
        self.backend
            .execute_in(s, params, op.index, op.name.as_str())
            .await
    }

    async fn query(&self, s: &mut Session, op: &PackOp) -> Result<(), sqlx::Error> {
        let params = self.stream.read_params();
        self.backend
            .query_in(s, params, op.index, op.name.as_str())
            .await
            .map(|_| ())
    }

    async fn is_visible(&self, s: &mut Session, r: &Receipt) -> Result<bool, sqlx::Error> {
        self.backend.is_visible_in(s, r).await
    }
}
