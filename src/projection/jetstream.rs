//! The JetStream source of `cqrs-broker`: the projector reads the stream the relay publishes
//! to through a durable pull consumer. A position is the stream sequence (`Position { xid: 0,
//! seq }`), stored as the read models' checkpoint in the same transaction as their rows; an
//! event's own seq (for the ledgers and dead letters) is its outbox seq, from `Cqrs-Seq`.
//!
//! Acknowledgement comes after the commit (`ack`), so a crash between the two makes the
//! server deliver again, and so do an ack after the ack-wait, a lost ack and a consumer
//! restart: the checkpoint skips what it covers and the ledgers absorb the rest.
//!
//! **Never skipping a message.** Messages are handed to the projector only as a run without
//! gaps from the checkpoint: a message held back by an earlier consumer that died (redelivered
//! only after the ack-wait) must not be overtaken by later ones, or the checkpoint would move
//! past it and its redelivery would be dropped as covered. Messages received beyond a gap wait
//! in memory until it fills; fetched messages stay there until acknowledged, so a batch whose
//! transaction failed is offered again at once instead of after the ack-wait.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use tokio::sync::{watch, Mutex, Notify};

use super::error::ProjectorError;
use super::event_source::{Delivery, EventLog, EventSource, Fetched, Position};
use super::relay::{SEQ_HEADER, STREAM_HEADER};
use super::sql::Delivered;
use crate::broker::{stream, BrokerError, Names};
use crate::domain::Event;

/// Counters of what the server delivered.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Messages the server delivered more than once (its own count, `delivered > 1`).
    pub redelivered: AtomicU64,
    /// Messages received that the checkpoint already covered.
    pub covered: AtomicU64,
}

/// Fault drills for the consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsumerFaults {
    /// Never send acks, as a consumer killed between its commit and its ack.
    pub drop_acks: bool,
}

struct Inbox {
    messages: Option<consumer::pull::Stream>,
    /// Received, not yet acknowledged: stream seq → (decoded event, message to ack).
    pending: BTreeMap<u64, (Fetched, jetstream::Message)>,
}

/// A durable pull consumer on the run's stream.
pub struct JetStreamSource {
    js: jetstream::Context,
    names: Names,
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// The outbox, for replaying dead letters (events stay there).
    outbox: EventLog,
    /// How long a fetch waits for the first message.
    wait: Duration,
    inbox: Mutex<Inbox>,
    faults: ConsumerFaults,
    pub stats: Arc<DeliveryStats>,
}

impl JetStreamSource {
    /// The consumer `names.consumer` (which must exist: see `broker::stream::create_fresh`).
    pub async fn open(
        js: jetstream::Context,
        names: Names,
        url: &str,
        outbox: EventLog,
        wait: Duration,
    ) -> Result<Self, ProjectorError> {
        let consumer = stream::consumer(&js, &names, url).await?;
        Ok(JetStreamSource {
            js,
            names,
            consumer,
            outbox,
            wait,
            inbox: Mutex::new(Inbox {
                messages: None,
                pending: BTreeMap::new(),
            }),
            faults: ConsumerFaults::default(),
            stats: Arc::new(DeliveryStats::default()),
        })
    }

    pub fn with_faults(mut self, faults: ConsumerFaults) -> Self {
        self.faults = faults;
        self
    }

    /// Takes what the server delivered into the inbox: waits up to `wait` for the first
    /// message, then takes whatever has already arrived, up to `limit`.
    async fn receive(
        &self,
        inbox: &mut Inbox,
        limit: usize,
        wait: Duration,
    ) -> Result<(), ProjectorError> {
        if inbox.messages.is_none() {
            let s = self
                .consumer
                .stream()
                .max_messages_per_batch(limit.clamp(1, 1000))
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(BrokerError::js)?;
            inbox.messages = Some(s);
        }
        let stream = inbox.messages.as_mut().expect("just set");
        let mut taken = 0;
        while taken < limit {
            let next = if taken == 0 && !wait.is_zero() {
                match tokio::time::timeout(wait, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => return Ok(()),
                }
            } else {
                match stream.next().now_or_never() {
                    Some(n) => n,
                    None => return Ok(()),
                }
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // Missed heartbeats, a restarted server: start a new pull next time.
                    inbox.messages = None;
                    return Err(BrokerError::js(e).into());
                }
                None => {
                    inbox.messages = None;
                    return Ok(());
                }
            };
            let info = message.info().map_err(BrokerError::js)?;
            let (seq, delivered) = (info.stream_sequence, info.delivered);
            if delivered > 1 {
                self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
            }
            let fetched = decode(seq, &message);
            inbox.pending.insert(seq, (fetched, message));
            taken += 1;
        }
        Ok(())
    }
}

/// A message as the projector sees it: its stream seq as position, the outbox seq from
/// `Cqrs-Seq` as the event's seq; an unreadable one is returned as such, to be
/// dead-lettered.
fn decode(stream_seq: u64, m: &jetstream::Message) -> Fetched {
    let header = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    let seq = header(SEQ_HEADER)
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-(stream_seq as i64));
    let stream = header(STREAM_HEADER).unwrap_or_default();
    let event = std::str::from_utf8(&m.payload)
        .map_err(|e| e.to_string())
        .and_then(|text| Event::from_json(text).map_err(|e| e.to_string()))
        .map(|event| Delivered { seq, event });
    Fetched {
        pos: Position {
            xid: 0,
            seq: stream_seq as i64,
        },
        seq,
        stream,
        event,
    }
}

impl JetStreamSource {
    /// What [`EventSource::fetch`] hands over (safe delivery), each with its message's
    /// payload as published: for a consumer whose events are not the shop's (a workload
    /// pack's, whose `Fetched::event` is then the reason it is not one).
    pub async fn fetch_payloads(
        &self,
        from: Position,
        limit: i64,
    ) -> Result<Vec<(Fetched, String)>, ProjectorError> {
        self.fetch_with(from, limit, Delivery::Safe, |f, m| {
            (f.clone(), String::from_utf8_lossy(&m.payload).into_owned())
        })
        .await
    }

    /// Receives what the server delivered and hands over, in stream order, what `delivery`
    /// allows (see the module's note on gaps), each as `take` makes it.
    async fn fetch_with<T>(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
        take: impl Fn(&Fetched, &jetstream::Message) -> T,
    ) -> Result<Vec<T>, ProjectorError> {
        let limit = limit.max(1) as usize;
        let mut inbox = self.inbox.lock().await;
        let next = from.seq as u64 + 1;
        // Wait for new messages only when nothing usable is in hand already.
        let ready = inbox.pending.contains_key(&next)
            || inbox
                .pending
                .keys()
                .next()
                .is_some_and(|&s| s <= from.seq as u64);
        let wait = if ready { Duration::ZERO } else { self.wait };
        self.receive(&mut inbox, limit, wait).await?;
        let mut out = Vec::new();
        match delivery {
            // The naive projector's reading: whatever arrived, in stream order.
            Delivery::Tail => {
                out.extend(inbox.pending.values().take(limit).map(|(f, m)| take(f, m)));
            }
            Delivery::Safe => {
                let mut expect = next;
                for (&s, (f, m)) in inbox.pending.iter() {
                    if out.len() >= limit {
                        break;
                    }
                    if s < expect {
                        // Covered by the checkpoint: handed over only to be acknowledged.
                        self.stats.covered.fetch_add(1, Ordering::Relaxed);
                        out.push(take(f, m));
                    } else if s == expect {
                        out.push(take(f, m));
                        expect += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}

impl EventSource for JetStreamSource {
    async fn fetch(
        &self,
        from: Position,
        limit: i64,
        delivery: Delivery,
    ) -> Result<Vec<Fetched>, ProjectorError> {
        self.fetch_with(from, limit, delivery, |f, _| f.clone())
            .await
    }

    async fn backlog(&self, from: Position, _delivery: Delivery) -> Result<i64, ProjectorError> {
        let last = stream::last_sequence(&self.js, &self.names).await?;
        Ok((last as i64 - from.seq).max(0))
    }

    async fn held_back(&self, _from: Position) -> Result<bool, ProjectorError> {
        Ok(false)
    }

    async fn events_at(&self, seqs: &[i64]) -> Result<Vec<Fetched>, ProjectorError> {
        self.outbox.events_at(seqs).await
    }

    /// Acknowledges everything up to `pos` with one ack (the consumer acks all below it).
    async fn ack(&self, pos: Position) -> Result<(), ProjectorError> {
        let mut inbox = self.inbox.lock().await;
        let upto = pos.seq.max(0) as u64;
        let mut acked: Vec<u64> = inbox.pending.range(..=upto).map(|(s, _)| *s).collect();
        let Some(&last) = acked.last() else {
            return Ok(());
        };
        if !self.faults.drop_acks {
            let (_, message) = &inbox.pending[&last];
            message.ack().await.map_err(BrokerError::js)?;
        }
        for s in acked.drain(..) {
            inbox.pending.remove(&s);
        }
        Ok(())
    }

    /// The fetch itself waits for the server's messages; there is nothing else to listen to.
    fn wake_ups(
        &self,
        _wake: Arc<Notify>,
        _shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}
