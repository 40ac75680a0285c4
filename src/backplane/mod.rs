//! The backplane: topics that reach subscribers on every server process
//! joined to one Redis broker under one channel prefix.
//!
//! ```text
//!  client ─ publish ─▶ server A ──▶ A's local subscribers (directly, no broker)
//!                         │
//!                         │ PUBLISH prefix+topic   (only when another server wants the topic)
//!                         ▼
//!                      broker ──▶ server B ──▶ B's subscribers
//!                         └─────▶ server A: its own echo, dropped (tagged with A's id)
//! ```
//!
//! A server SUBSCRIBEs `prefix + topic` on the broker while the topic has
//! local subscribers, and tells the others on the control channel
//! (`prefix` alone: [`wire`]), so a publisher knows which topics anyone
//! else wants ([`interest`]). [`link`] is the task that talks to the
//! broker: one connection for PUBLISH (pipelined, in publish order), one for
//! SUBSCRIBE; on a loss it reconnects with backoff and resubscribes, and
//! meanwhile publishes are delivered locally only (and counted).
mod config;
mod interest;
mod link;
mod wire;

pub use config::Backplane;

use crate::server::ServerHandle;
use crate::{Error, Kind};
use interest::Route;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes of publishes waiting for the broker past which further publishes
/// are delivered locally only: the broker is not keeping up.
const MAX_QUEUED: usize = 16 << 20;

/// What other threads hand the backplane's task.
pub(crate) enum Command {
    /// PUBLISH `payload` on `channel`.
    Publish { channel: Vec<u8>, payload: Vec<u8> },
    /// `topic` gained its first local subscriber or lost its last.
    Topic(Arc<str>),
}

/// The backplane's counters (read into [`crate::Stats`]).
#[derive(Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub local_only: AtomicU64,
    pub reconnects: AtomicU64,
}

/// A running backplane, shared by the server (publish) and its task.
pub(crate) struct Shared {
    /// This server's id on the backplane: random, tags what it publishes.
    pub id: u64,
    pub config: Backplane,
    pub interest: interest::Interest,
    pub counters: Counters,
    connected: AtomicBool,
    queued: AtomicUsize,
    tx: mpsc::UnboundedSender<Command>,
}

/// A random id: std's per-process random hash keys, mixed with the time.
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

impl Shared {
    /// The channel carrying `topic`'s messages.
    pub fn channel(&self, topic: &str) -> Vec<u8> {
        let mut c = Vec::with_capacity(self.config.prefix.len() + topic.len());
        c.extend_from_slice(self.config.prefix.as_bytes());
        c.extend_from_slice(topic.as_bytes());
        c
    }

    /// Hands a local publish to the broker when another server wants the
    /// topic; while the broker is unreachable (or too far behind, or the
    /// servers wanting it have not been heard from since the link came
    /// back) it is counted as delivered locally only.
    pub fn publish(&self, topic: &str, data: &[u8], kind: Kind) {
        let route = self.interest.route(topic);
        if route == Route::Nobody {
            return;
        }
        if route == Route::LocalOnly || !self.connected.load(Relaxed) || self.queued.load(Relaxed) > MAX_QUEUED {
            self.counters.local_only.fetch_add(1, Relaxed);
            return;
        }
        let payload = wire::message(self.id, kind, data);
        self.queued.fetch_add(payload.len(), Relaxed);
        if self.tx.send(Command::Publish { channel: self.channel(topic), payload }).is_err() {
            self.counters.local_only.fetch_add(1, Relaxed);
        }
    }

    /// Tells the task that `topic`'s local subscription state changed.
    pub fn topic_changed(&self, topic: &Arc<str>) {
        let _ = self.tx.send(Command::Topic(topic.clone()));
    }

    /// Whether the link to the broker is up now.
    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Every counter and gauge, for [`crate::Stats`]: (connected,
    /// published, received, local only, reconnects).
    pub fn read(&self) -> [u64; 5] {
        let c = &self.counters;
        [
            self.connected() as u64,
            c.published.load(Relaxed),
            c.received.load(Relaxed),
            c.local_only.load(Relaxed),
            c.reconnects.load(Relaxed),
        ]
    }
}

/// Connects to the broker (from `listen`, blocking the calling thread at
/// most about [`link::CONNECT_TIMEOUT`]) and starts the backplane's task on
/// `rt`. An unreachable broker is an error here.
pub(crate) fn start(
    config: Backplane,
    server: &ServerHandle,
    rt: &tokio::runtime::Handle,
) -> Result<(Arc<Shared>, tokio::task::JoinHandle<()>), Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        id: random_id(),
        config,
        interest: Default::default(),
        counters: Default::default(),
        connected: AtomicBool::new(false),
        queued: AtomicUsize::new(0),
        tx,
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let first = shared.clone();
    let topics = server.inner.topics.names();
    rt.spawn(async move {
        let _ = done_tx.send(link::connect(&first, &topics).await.map(|links| (links, topics)));
    });
    let (links, topics) =
        done_rx.recv().map_err(|_| Error::Io("backplane: the I/O thread stopped while connecting".into()))??;
    let task = rt.spawn(link::run(shared.clone(), server.clone(), rx, links, topics));
    Ok((shared, task))
}
