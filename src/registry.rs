//! The live connections of one server, by id. Sharded so that a send looks
//! up its connection under a lock shared by 1/64th of the connections, never
//! a lock shared by all of them.
use crate::outbox::ConnShared;
use crate::ConnId;
use parking_lot::Mutex;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SHARDS: usize = 64;

/// Ids are sequential: a multiplicative hash spreads them well enough.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8 | *b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A connection found by its id, which it holds: the table keeps one
/// pointer per connection, not the id beside it.
struct ById(Arc<ConnShared>);

impl Borrow<ConnId> for ById {
    fn borrow(&self) -> &ConnId {
        &self.0.id
    }
}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state)
    }
}

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

/// One shard's connections. A struct, not a type alias: cbindgen reads the
/// whole crate for the header and fails on an alias of a HashSet with its
/// hasher.
#[derive(Default)]
struct Shard(HashSet<ById, BuildHasherDefault<IdHasher>>);

pub(crate) struct Registry {
    shards: Box<[Mutex<Shard>]>,
    accepting: AtomicBool,
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            accepting: AtomicBool::new(true),
        }
    }

    fn shard(&self, id: ConnId) -> &Mutex<Shard> {
        &self.shards[(id as usize) % SHARDS]
    }

    /// Adds a connection; false once the server stopped accepting. The flag
    /// is read under the shard lock, so `stop_accepting` followed by
    /// `for_each` sees every connection that was let in.
    pub fn insert(&self, conn: Arc<ConnShared>) -> bool {
        let mut shard = self.shard(conn.id).lock();
        if !self.accepting.load(Ordering::SeqCst) {
            return false;
        }
        shard.0.replace(ById(conn));
        true
    }

    pub fn remove(&self, id: ConnId) {
        self.shard(id).lock().0.remove(&id);
    }

    /// Runs `f` on connection `id` under its shard lock (no Arc traffic);
    /// `f` must not call into the host.
    pub fn with<R>(&self, id: ConnId, f: impl FnOnce(&ConnShared) -> R) -> Option<R> {
        self.shard(id).lock().0.get(&id).map(|c| f(&c.0))
    }

    /// The connection `id`, if live.
    pub fn get(&self, id: ConnId) -> Option<Arc<ConnShared>> {
        self.shard(id).lock().0.get(&id).map(|c| c.0.clone())
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Calls `f` on every connection, one shard lock at a time. `f` must not
    /// call into the host (no callbacks under a shard lock).
    pub fn for_each(&self, f: &mut dyn FnMut(&Arc<ConnShared>)) {
        for shard in self.shards.iter() {
            for conn in shard.lock().0.iter() {
                f(&conn.0);
            }
        }
    }
}
