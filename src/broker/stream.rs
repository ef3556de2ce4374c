//! The stream and the durable consumer of one run's database, and the rule that keeps the
//! tool away from anyone else's: every stream it creates carries its mark in the stream's
//! description, and it deletes or recreates only streams that carry it (and their consumers).
//! Names are derived from where the database lives, so two runs' databases never share one.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::{redacted, BrokerError, BrokerOptions};

/// What the description of a stream the tool created starts with.
pub const MARK: &str = "created by cqrs-bench";

/// The stream, its one subject and the projector's durable consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub stream: String,
    pub subject: String,
    pub consumer: String,
}

impl Names {
    /// Names for the database at `location` (a SQLite path, or a PostgreSQL URL and schema):
    /// a readable part (the schema or the file's name) and a hash of the whole location.
    pub fn for_location(readable: &str, location: &str) -> Names {
        let readable: String = readable
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let base = format!("cqrs_bench_{readable}_{:08x}", fnv1a(location) as u32);
        Names {
            subject: format!("{base}.events"),
            consumer: format!("{base}_projector"),
            stream: base,
        }
    }

    fn description(&self) -> String {
        format!("{MARK}: the outbox of {}", self.stream)
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether a stream's description carries the tool's mark.
fn is_ours(info: &stream::Info) -> bool {
    info.config
        .description
        .as_deref()
        .is_some_and(|d| d.starts_with(MARK))
}

/// The stream's info, `None` if there is no such stream.
async fn find(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Stream<stream::Info>>, BrokerError> {
    match js.get_stream(name).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_not_found(&e.to_string()) => Ok(None),
        Err(e) => Err(BrokerError::js(e)),
    }
}

fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not found") || m.contains("10059")
}

/// Creates the stream and the consumer afresh for a freshly seeded database: a stream of
/// that name left from an earlier run is deleted first if the tool created it, and refused if
/// not.
pub async fn create_fresh(
    js: &jetstream::Context,
    names: &Names,
    opts: &BrokerOptions,
) -> Result<(), BrokerError> {
    if let Some(existing) = find(js, &names.stream).await? {
        if !is_ours(existing.cached_info()) {
            return Err(BrokerError::ForeignStream {
                name: names.stream.clone(),
                url: redacted(&opts.url),
            });
        }
        js.delete_stream(&names.stream)
            .await
            .map_err(BrokerError::js)?;
    }
    let stream = js
        .create_stream(stream::Config {
            name: names.stream.clone(),
            subjects: vec![names.subject.clone()],
            description: Some(names.description()),
            storage: stream::StorageType::File,
            num_replicas: opts.replicas,
            // Republishes after a relay crash come back within seconds; two minutes is
            // JetStream's default and ample.
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(BrokerError::js)?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(names.consumer.clone()),
            description: Some(format!("{MARK}: the projector of {}", names.stream)),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: opts.ack_wait,
            deliver_policy: consumer::DeliverPolicy::All,
            max_ack_pending: 100_000,
            num_replicas: opts.replicas,
            ..Default::default()
        })
        .await
        .map_err(BrokerError::js)?;
    Ok(())
}

/// The durable consumer of an existing stream the tool created.
pub async fn consumer(
    js: &jetstream::Context,
    names: &Names,
    url: &str,
) -> Result<consumer::Consumer<consumer::pull::Config>, BrokerError> {
    let Some(stream) = find(js, &names.stream).await? else {
        return Err(BrokerError::MissingStream {
            name: names.stream.clone(),
            url: redacted(url),
        });
    };
    if !is_ours(stream.cached_info()) {
        return Err(BrokerError::ForeignStream {
            name: names.stream.clone(),
            url: redacted(url),
        });
    }
    stream
        .get_consumer(&names.consumer)
        .await
        .map_err(BrokerError::js)
}

/// The stream's last sequence number (0 when empty).
pub async fn last_sequence(js: &jetstream::Context, names: &Names) -> Result<u64, BrokerError> {
    let mut s = js
        .get_stream(&names.stream)
        .await
        .map_err(BrokerError::js)?;
    Ok(s.info().await.map_err(BrokerError::js)?.state.last_sequence)
}

/// How many messages the stream holds.
pub async fn message_count(js: &jetstream::Context, names: &Names) -> Result<u64, BrokerError> {
    let mut s = js
        .get_stream(&names.stream)
        .await
        .map_err(BrokerError::js)?;
    Ok(s.info().await.map_err(BrokerError::js)?.state.messages)
}

/// Deletes the stream (and with it its consumer) if the tool created it; leaves any other
/// stream of that name alone. Returns whether it deleted one.
pub async fn delete_ours(js: &jetstream::Context, names: &Names) -> Result<bool, BrokerError> {
    match find(js, &names.stream).await? {
        Some(s) if is_ours(s.cached_info()) => {
            js.delete_stream(&names.stream)
                .await
                .map_err(BrokerError::js)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_differ_by_location() {
        let a = Names::for_location("cqrs_bench_cqrs_broker", "postgres://h/db (schema a)");
        let b = Names::for_location("cqrs_bench_cqrs_broker", "postgres://h/other (schema a)");
        assert_ne!(a.stream, b.stream);
        assert!(a.stream.starts_with("cqrs_bench_cqrs_bench_cqrs_broker_"));
        let odd = Names::for_location("bench.cqrs broker*>", "x");
        assert!(odd
            .stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_eq!(odd.subject, format!("{}.events", odd.stream));
    }
}
