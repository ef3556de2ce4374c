//! A request to stop a run early (SIGINT/SIGTERM, listened for at the edge): the load stops,
//! what was measured is kept as an interrupted result, what the run created is dropped.

use tokio::sync::watch;

/// Whether the run was asked to stop; cheap to clone into every task that must notice.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

/// The side that asks (the signal listener).
#[derive(Debug)]
pub struct StopRequest(watch::Sender<bool>);

impl StopSignal {
    /// A signal and the request that sets it.
    pub fn channel() -> (StopRequest, StopSignal) {
        let (tx, rx) = watch::channel(false);
        (StopRequest(tx), StopSignal(rx))
    }

    /// A signal nobody can set (library callers, tests).
    pub fn never() -> StopSignal {
        StopSignal(watch::channel(false).1)
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the stop is asked for; never, if it cannot be any more.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl StopRequest {
    pub fn request(&self) {
        let _ = self.0.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_seen_by_every_clone() {
        let (request, stop) = StopSignal::channel();
        let seen = stop.clone();
        assert!(!stop.is_set());
        let waiter = tokio::spawn(async move { seen.wait().await });
        request.request();
        waiter.await.unwrap();
        assert!(stop.is_set());
        assert!(!StopSignal::never().is_set());
    }
}
