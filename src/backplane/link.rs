//! The backplane's task, on the server's first I/O thread: it owns the two
//! connections to the broker (PUBLISH on one, SUBSCRIBE on the other),
//! sends what publishers queued, in their order, delivers what other
//! servers published to the local subscribers, keeps the broker's
//! subscriptions equal to the topics with local subscribers, and answers
//! the control channel. A lost link is logged and retried with backoff;
//! the topics are resubscribed when it is back.
use super::wire::{self, Incoming, Op};
use super::{Command, Shared};
use crate::server::ServerHandle;
use crate::{Error, LogLevel};
use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

/// Connecting (TCP, TLS, AUTH) and each answer from the broker.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Heartbeats on the control channel: every server sends one this often.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// No echo of our own heartbeat for this long: the link is dead even if
/// TCP has not noticed.
const DEAD_AFTER: Duration = Duration::from_secs(5);
/// Another server not heard from for this long is forgotten (crashed).
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// Reconnect backoff: doubled from the first to the last, with ±25% jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The most publishes sent to the broker in one pipeline.
const BATCH: usize = 512;

/// The connections of one link to the broker.
pub(crate) struct Links {
    publisher: MultiplexedConnection,
    sink: PubSubSink,
    stream: PubSubStream,
}

fn io(shared: &Shared, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Io(format!("backplane {}: {what}: {e}", shared.config.shown()))
}

/// Opens both connections and subscribes the control channel and the
/// channels of `topics`, within [`CONNECT_TIMEOUT`] in all.
pub(crate) async fn connect(shared: &Shared, topics: &[Arc<str>]) -> Result<Links, Error> {
    let timed_out = |_| io(shared, "cannot connect", format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()));
    timeout(CONNECT_TIMEOUT, connect_now(shared, topics)).await.map_err(timed_out)?
}

async fn connect_now(shared: &Shared, topics: &[Arc<str>]) -> Result<Links, Error> {
    let client = shared.config.client()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let publisher = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| io(shared, "cannot connect", e))?;
    let pubsub = client.get_async_pubsub().await.map_err(|e| io(shared, "cannot connect", e))?;
    let (mut sink, stream) = pubsub.split();
    let mut channels = vec![shared.config.prefix.as_bytes().to_vec()];
    channels.extend(topics.iter().map(|t| shared.channel(t)));
    sink.subscribe(channels).await.map_err(|e| io(shared, "SUBSCRIBE", e))?;
    Ok(Links { publisher, sink, stream })
}

/// The task: serves the link until it is lost, then reconnects, forever
/// (the server aborts it when it closes). `topics` are the ones `links`
/// subscribed.
pub(crate) async fn run(
    shared: Arc<Shared>,
    server: ServerHandle,
    mut rx: UnboundedReceiver<Command>,
    mut links: Links,
    topics: Vec<Arc<str>>,
) {
    let mut subscribed: HashSet<Arc<str>> = topics.into_iter().collect();
    let shown = shared.config.shown().to_string();
    loop {
        let mut link = Link { shared: &shared, server: &server, links, subscribed: &mut subscribed };
        let why = link.serve(&mut rx).await;
        shared.connected.store(false, Relaxed);
        let before = shared.counters.local_only.load(Relaxed);
        server.log(
            LogLevel::Warn,
            &format!("backplane {shown}: lost the broker ({why}); local delivery goes on, reconnecting"),
        );
        let (down, mut attempts, mut wait) = (Instant::now(), 0u32, BACKOFF_FIRST);
        links = loop {
            drain_until(&shared, &mut rx, jitter(wait)).await;
            attempts += 1;
            let topics = server.inner.topics.names();
            match connect(&shared, &topics).await {
                Ok(l) => {
                    subscribed = topics.into_iter().collect();
                    break l;
                }
                Err(e) => {
                    let level = if attempts == 1 { LogLevel::Warn } else { LogLevel::Debug };
                    server.log(level, &format!("{e} (attempt {attempts}; retrying)"));
                    wait = (wait * 2).min(BACKOFF_MAX);
                }
            }
        };
        shared.counters.reconnects.fetch_add(1, Relaxed);
        shared.interest.unconfirm_all(Instant::now());
        server.log(
            LogLevel::Info,
            &format!(
                "backplane {shown}: reconnected after {} ms ({attempts} attempts), {} topics resubscribed, \
                 {} publishes delivered locally only meanwhile",
                down.elapsed().as_millis(),
                subscribed.len(),
                shared.counters.local_only.load(Relaxed) - before
            ),
        );
    }
}

/// Sleeps `d` while the link is down, counting what was queued for the
/// broker as delivered locally only (topic changes are re-read from the
/// topics when the link is back).
async fn drain_until(shared: &Shared, rx: &mut UnboundedReceiver<Command>, d: Duration) {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Command::Publish { payload, .. })) => {
                shared.queued.fetch_sub(payload.len(), Relaxed);
                shared.counters.local_only.fetch_add(1, Relaxed);
            }
            Ok(Some(Command::Topic(_))) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// `d` give or take a quarter, so that servers that lost the broker
/// together do not all come back in the same instant.
fn jitter(d: Duration) -> Duration {
    let r = super::random_id() % 1000; // 0..999
    d * (750 + r as u32 / 2) / 1000
}

struct Link<'a> {
    shared: &'a Shared,
    server: &'a ServerHandle,
    links: Links,
    subscribed: &'a mut HashSet<Arc<str>>,
}

type Lost = String;

impl Link<'_> {
    /// Runs the link until it fails; returns why.
    async fn serve(&mut self, rx: &mut UnboundedReceiver<Command>) -> Lost {
        let me = self.shared.id;
        let topics: Vec<Arc<str>> = self.subscribed.iter().cloned().collect();
        if let Err(e) = self.control(wire::control(me, Op::Hello, topics.iter().map(|t| &**t))).await {
            return e;
        }
        self.shared.connected.store(true, Relaxed);
        let mut beat = tokio::time::interval(HEARTBEAT);
        let mut heard_myself = Instant::now();
        loop {
            tokio::select! {
                msg = self.links.stream.next() => {
                    let Some(msg) = msg else { return "the connection closed".into() };
                    if let Err(e) = self.incoming(&msg, &mut heard_myself).await {
                        return e;
                    }
                }
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { return "the server is closing".into() };
                    if let Err(e) = self.commands(cmd, rx).await {
                        return e;
                    }
                }
                _ = beat.tick() => {
                    if heard_myself.elapsed() > DEAD_AFTER {
                        return format!("no echo of this server's heartbeat for {} s", DEAD_AFTER.as_secs());
                    }
                    if let Some(before) = Instant::now().checked_sub(FORGET_AFTER) {
                        self.shared.interest.expire(before);
                    }
                    if let Err(e) = self.control(wire::control(me, Op::Ping, [])).await {
                        return e;
                    }
                }
            }
        }
    }

    /// PUBLISH on the control channel.
    async fn control(&mut self, payload: Vec<u8>) -> Result<(), Lost> {
        let channel = self.shared.config.prefix.as_bytes();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg(payload);
        publish.query_async::<()>(&mut self.links.publisher).await.map_err(|e| format!("PUBLISH: {e}"))
    }

    /// `first` and whatever else is queued now (up to [`BATCH`]
    /// publishes): topic changes one by one, publishes in one pipeline.
    async fn commands(&mut self, first: Command, rx: &mut UnboundedReceiver<Command>) -> Result<(), Lost> {
        let (mut pipe, mut count, mut bytes) = (redis::pipe(), 0usize, 0usize);
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Publish { channel, payload } => {
                    bytes += payload.len();
                    pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
                    count += 1;
                }
                Command::Topic(topic) => self.sync_topic(topic).await?,
            }
            if count < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if count == 0 {
            return Ok(());
        }
        let sent = pipe.query_async::<()>(&mut self.links.publisher).await;
        self.shared.queued.fetch_sub(bytes, Relaxed);
        let c = &self.shared.counters;
        match sent {
            Ok(()) => {
                c.published.fetch_add(count as u64, Relaxed);
                Ok(())
            }
            Err(e) => {
                // Perhaps sent, perhaps not: counted as not.
                c.local_only.fetch_add(count as u64, Relaxed);
                Err(format!("PUBLISH: {e}"))
            }
        }
    }

    /// Makes the broker subscription of `topic` match whether it has
    /// local subscribers now, and tells the other servers.
    async fn sync_topic(&mut self, topic: Arc<str>) -> Result<(), Lost> {
        let want = self.server.subscribers(&topic) > 0;
        let channel = self.shared.channel(&topic);
        let op = match (want, self.subscribed.contains(&topic)) {
            (true, false) => {
                let r = timeout(CONNECT_TIMEOUT, self.links.sink.subscribe(channel)).await;
                r.map_err(|e| format!("SUBSCRIBE: {e}"))?.map_err(|e| format!("SUBSCRIBE: {e}"))?;
                self.subscribed.insert(topic.clone());
                Op::Add
            }
            (false, true) => {
                let r = timeout(CONNECT_TIMEOUT, self.links.sink.unsubscribe(channel)).await;
                r.map_err(|e| format!("UNSUBSCRIBE: {e}"))?.map_err(|e| format!("UNSUBSCRIBE: {e}"))?;
                self.subscribed.remove(&topic);
                Op::Remove
            }
            _ => return Ok(()),
        };
        // After the broker confirmed the subscription: whoever publishes
        // once they read this reaches it.
        self.control(wire::control(self.shared.id, op, [&*topic])).await
    }

    /// One message from the broker: another server's publish, or a
    /// control message.
    async fn incoming(&mut self, msg: &redis::Msg, heard_myself: &mut Instant) -> Result<(), Lost> {
        let Ok(channel) = msg.get_channel::<Vec<u8>>() else { return Ok(()) };
        let prefix = self.shared.config.prefix.as_bytes();
        let Some(rest) = channel.strip_prefix(prefix) else { return Ok(()) };
        let payload = msg.get_payload_bytes();
        let me = self.shared.id;
        if rest.is_empty() {
            let Some((op, from, topics)) = wire::parse_control(payload) else { return Ok(()) };
            let now = Instant::now();
            let interest = &self.shared.interest;
            match op {
                _ if from == me => *heard_myself = now,
                Op::Hello => {
                    interest.set(from, &topics, now);
                    let mine: Vec<Arc<str>> = self.subscribed.iter().cloned().collect();
                    return self.control(wire::control(me, Op::Set, mine.iter().map(|t| &**t))).await;
                }
                Op::Set => interest.set(from, &topics, now),
                Op::Add | Op::Remove => topics.iter().for_each(|t| interest.change(from, t, op == Op::Add, now)),
                Op::Ping if interest.seen(from, now) => {}
                Op::Ping => {
                    // A server we forgot (or never heard say hello): a hello
                    // of ours makes every server, it too, list its topics.
                    let mine: Vec<Arc<str>> = self.subscribed.iter().cloned().collect();
                    return self.control(wire::control(me, Op::Hello, mine.iter().map(|t| &**t))).await;
                }
            }
            return Ok(());
        }
        let Ok(topic) = std::str::from_utf8(rest) else { return Ok(()) };
        let (kind, data) = match wire::parse_message(payload) {
            Incoming::Ours { server, .. } if server == me => return Ok(()), // our own echo
            Incoming::Ours { kind, data, .. } | Incoming::Foreign { kind, data } => (kind, data),
        };
        self.shared.counters.received.fetch_add(1, Relaxed);
        if let Err(e) = self.server.publish_local(topic, data, kind, None) {
            self.server
                .log(LogLevel::Debug, &format!("backplane: a message on topic '{topic}' was not delivered: {e}"));
        }
        Ok(())
    }
}
