//! The loop every worker that keeps a read side up runs (the projector, the broker's relay, a
//! pack's projector): take a step (a batch); while steps find work, take the next at once;
//! when one finds none, wait for a wake-up or the poll timer; when one fails, count the error
//! and retry with back-off (10 ms, doubling, at most 1 s), never stopping on it. It ends when
//! `shutdown` turns true.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{watch, Notify};

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs `step` (how many items it handled, or an error) until `shutdown` turns true, counting
/// failed steps in `errors`.
pub async fn run_steps<E, F, Fut>(
    mut step: F,
    wake: &Notify,
    shutdown: &mut watch::Receiver<bool>,
    poll_interval: Duration,
    errors: &AtomicU64,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, E>>,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match step().await {
            Ok(n) if n > 0 => backoff = FIRST_BACKOFF,
            Ok(_) => {
                backoff = FIRST_BACKOFF;
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(poll_interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
