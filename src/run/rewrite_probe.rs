//! The reader that watches a `denormalized` run's order lines while its price changes
//! rewrite them: it reads one product's lines against the product, again and again, picking
//! products as the op stream picks them for price changes (the scenario's product keys), and
//! counts how long each read took and whether it saw the product half-rewritten.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::db::{copies, Db};
use crate::metrics::rewrite_reads::RewriteReadsRecorder;
use crate::scenario::Scenario;
use crate::workload::keys::KeySampler;
use crate::workload::rng::Rng;

/// The pause between two reads: a reader beside the load, not a load of its own.
pub const PAUSE: Duration = Duration::from_millis(5);

/// The probe's own random stream (apart from the op stream's).
const STREAM: u64 = 0x0d3e_0a11;

/// Reads until aborted; records the reads that start at or after `measure_from`.
pub fn spawn(
    db: Db,
    s: &Scenario,
    measure_from: Instant,
    recorder: Arc<Mutex<RewriteReadsRecorder>>,
) -> tokio::task::JoinHandle<()> {
    let products = KeySampler::new(s.product_keys.clone(), s.dataset.products);
    let mut rng = Rng::derive(s.seed, STREAM, 0);
    tokio::spawn(async move {
        loop {
            let product_id = products.sample(&mut rng);
            let began = Instant::now();
            let seen = match db.read.acquire().await {
                Ok(mut conn) => copies::read_product_lines(&mut conn, product_id).await,
                Err(e) => Err(e),
            };
            if began >= measure_from {
                let mut r = recorder.lock().expect("rewrite reads lock");
                match seen {
                    Ok(seen) => r.record(began.elapsed(), seen.lines, seen.stale),
                    Err(_) => r.record_error(),
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
    })
}
