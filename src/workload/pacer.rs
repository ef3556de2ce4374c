//! The pacer: starts open-loop ops on time, to tens of microseconds.
//!
//! tokio's timer is a millisecond wheel: `sleep_until` rounds every deadline up to the next
//! millisecond, even one that has already passed (tokio #5021, #6866), which put ~1.2 ms of
//! slop on every op. So the driver waits here instead, in two steps:
//!
//! 1. **Coarse:** one thread (`cqrs-pacer`) keeps the waiting deadlines in time order and sleeps
//!    on a condition variable, with a 1 µs timer slack, until a *window* before the earliest; then
//!    it wakes that task. No CPU is used while it sleeps.
//! 2. **Fine:** the woken task yields to the runtime until its deadline has come (each yield
//!    lets the runtime serve other tasks' I/O first), then the op starts.
//!
//! The window adapts to how late the coarse wake-up arrives on this machine (the sleep's own
//! overshoot plus the hand-over to the runtime thread): it is the 98th percentile of the last
//! [`RING`] arrivals plus a margin, within `[MIN_WINDOW, MAX_WINDOW]`, and never more than an
//! eighth of the whole wait. On an idle VM a 5 ms sleep wakes ~75 µs late (p50) and ~350 µs
//! (p99), while sleeps 200 µs apart wake within tens of µs; so low rates get a wide window (a
//! few per cent of a core at 200 ops/s) and high rates a narrow one, and the fine wait never
//! grows into a spinning core. A deadline that has already passed costs no wait at all (closed
//! loop, or a lane that is behind).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use crate::metrics::cpu::PACER_THREAD;

/// Arrivals remembered to size the window.
pub const RING: usize = 128;
/// Narrowest fine-wait window.
pub const MIN_WINDOW: Duration = Duration::from_micros(30);
/// Widest fine-wait window: beyond it a starved machine shows as dispatch delay rather than
/// as a driver burning the database's CPU.
pub const MAX_WINDOW: Duration = Duration::from_micros(500);
/// Added to the arrival percentile.
const MARGIN: Duration = Duration::from_micros(30);
/// The window before any arrival was seen.
const INITIAL_WINDOW: Duration = Duration::from_micros(300);

struct Entry {
    at: Instant,
    id: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.id) == (o.at, o.id)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.id).cmp(&(o.at, o.id))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    next_id: u64,
    shutdown: bool,
}

struct Arrivals {
    ring: [u32; RING],
    len: usize,
    next: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    arrivals: Mutex<Arrivals>,
    /// The current window, µs.
    window_us: AtomicU64,
}

/// A high-resolution timer service for the driver's tasks. Dropping it stops its thread.
/// Runs share one ([`Pacer::shared`]): its thread lives as long as the process, so its CPU
/// time is still there to be read when a run ends.
pub struct Pacer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts the pacer's thread.
    pub fn start() -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            arrivals: Mutex::new(Arrivals {
                ring: [0; RING],
                len: 0,
                next: 0,
            }),
            window_us: AtomicU64::new(INITIAL_WINDOW.as_micros() as u64),
        });
        let thread = std::thread::Builder::new()
            .name(PACER_THREAD.into())
            .spawn({
                let shared = shared.clone();
                move || pace(&shared)
            })?;
        Ok(Pacer {
            shared,
            thread: Some(thread),
        })
    }

    /// The process's pacer, started on first use; `None` if no thread could be started.
    pub fn shared() -> Option<&'static Pacer> {
        static SHARED: std::sync::OnceLock<Option<Pacer>> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| Pacer::start().ok()).as_ref()
    }

    /// The current fine-wait window.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.shared.window_us.load(Ordering::Relaxed))
    }

    /// Resolves at `at`, to tens of microseconds; at once if `at` has passed.
    pub async fn sleep_until(&self, at: Instant) {
        let now = Instant::now();
        if at <= now {
            return;
        }
        // The fine wait is at most an eighth of the whole wait, so ops due every few hundred
        // µs (whose short sleeps wake promptly anyway) do not keep the runtime spinning. One
        // coarse sleep only: a second short one after the wake-up halves the fine wait's CPU
        // but its own late wake-ups put the p99 at ~230 µs instead of ~50 µs (BENCHMARKS.md).
        let remaining = at - now;
        let fine = self.window().min(remaining / 8).max(MIN_WINDOW);
        if remaining > fine {
            let target = at - fine;
            let woken = self.register(target);
            // A dropped sender means the pacer stopped: fall back to waiting here.
            let _ = woken.await;
            self.arrived(Instant::now().saturating_duration_since(target));
        }
        while Instant::now() < at {
            tokio::task::yield_now().await;
        }
    }

    fn register(&self, at: Instant) -> oneshot::Receiver<()> {
        let (wake, woken) = oneshot::channel();
        let mut q = self.shared.queue.lock().expect("pacer queue");
        let id = q.next_id;
        q.next_id += 1;
        let earliest = q.heap.peek().is_none_or(|Reverse(e)| at < e.at);
        q.heap.push(Reverse(Entry { at, id, wake }));
        drop(q);
        if earliest {
            self.shared.changed.notify_one();
        }
        woken
    }

    /// Remembers how late a coarse wake-up arrived and resizes the window.
    fn arrived(&self, late: Duration) {
        let mut a = self.shared.arrivals.lock().expect("pacer arrivals");
        let us = u32::try_from(late.as_micros()).unwrap_or(u32::MAX);
        let slot = a.next;
        a.ring[slot] = us;
        a.next = (a.next + 1) % RING;
        a.len = (a.len + 1).min(RING);
        let window = window_for(&a.ring[..a.len]);
        self.shared
            .window_us
            .store(window.as_micros() as u64, Ordering::Relaxed);
    }
}

/// The window for a set of arrival delays (µs): their 98th percentile plus the margin,
/// clamped.
pub fn window_for(arrivals_us: &[u32]) -> Duration {
    if arrivals_us.is_empty() {
        return INITIAL_WINDOW;
    }
    let mut sorted = arrivals_us.to_vec();
    let k = (sorted.len() * 98 / 100).min(sorted.len() - 1);
    let (_, p90, _) = sorted.select_nth_unstable(k);
    (Duration::from_micros(u64::from(*p90)) + MARGIN).clamp(MIN_WINDOW, MAX_WINDOW)
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shared.queue.lock().expect("pacer queue").shutdown = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks the kernel to fire this thread's timers within 1 µs of the deadline (the default
/// slack is 50 µs).
fn tight_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only changes this thread's
    // timer slack; it has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
    }
}

/// The pacer thread: sleep until the earliest deadline, wake every task that is due.
fn pace(shared: &Shared) {
    tight_timer_slack();
    let mut due = Vec::new();
    let mut q = shared.queue.lock().expect("pacer queue");
    loop {
        if q.shutdown {
            // Wake whoever still waits: they finish their wait on the runtime.
            q.heap.clear();
            return;
        }
        let now = Instant::now();
        while let Some(Reverse(e)) = q.heap.peek() {
            if e.at > now {
                break;
            }
            if let Some(Reverse(e)) = q.heap.pop() {
                due.push(e.wake);
            }
        }
        if !due.is_empty() {
            drop(q);
            for wake in due.drain(..) {
                let _ = wake.send(());
            }
            q = shared.queue.lock().expect("pacer queue");
            continue;
        }
        q = match q.heap.peek().map(|Reverse(e)| e.at) {
            None => shared.changed.wait(q).expect("pacer queue"),
            Some(at) => {
                shared
                    .changed
                    .wait_timeout(q, at.saturating_duration_since(now))
                    .expect("pacer queue")
                    .0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_the_arrivals() {
        assert_eq!(window_for(&[]), INITIAL_WINDOW);
        // Quick arrivals: the narrowest window.
        assert_eq!(window_for(&[0; RING]), MIN_WINDOW);
        // 98th percentile 200 µs plus the margin.
        let mut a: Vec<u32> = vec![50; 124];
        a.extend([200; 4]);
        assert_eq!(window_for(&a), Duration::from_micros(230));
        // Starved: capped.
        assert_eq!(window_for(&[5_000; RING]), MAX_WINDOW);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_in_deadline_order_and_never_early() {
        let pacer = Arc::new(Pacer::start().unwrap());
        let t0 = Instant::now();
        let offsets = [7u64, 2, 5, 3, 9, 1];
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for off in offsets {
            let (pacer, done) = (pacer.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let at = t0 + Duration::from_millis(off);
                pacer.sleep_until(at).await;
                assert!(Instant::now() >= at, "woke before its deadline");
                done.lock().unwrap().push(off);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = done.lock().unwrap().clone();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        // A deadline in the past resolves at once, without registering.
        pacer.sleep_until(t0).await;
    }
}
