//! Publish/subscribe: topic name → its subscribers. Knows nothing about
//! sockets; a subscriber is a connection's shared state, so a publish
//! queues one shared frame on each without a registry lookup.
//!
//! Lock order: the topic map, then a connection's outbox. A connection
//! also lists its own topics (in its outbox), so that its end removes it
//! everywhere without scanning every topic.
use crate::outbox::ConnShared;
use crate::registry::IdHasher;
use crate::{ConnId, Error};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, OnceLock};

type Subscribers = HashMap<ConnId, Arc<ConnShared>, BuildHasherDefault<IdHasher>>;

/// The longest topic name, in bytes.
pub(crate) const MAX_TOPIC_LEN: usize = 1024;

/// Told when a topic gains its first subscriber or loses its last, under
/// the map's lock (so calls come in the order of the changes): must only
/// hand the name on, never block or call back into the topics.
pub(crate) type Watcher = Box<dyn Fn(&Arc<str>) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Topics {
    map: RwLock<HashMap<Arc<str>, Subscribers>>,
    watcher: OnceLock<Watcher>,
}

/// A topic name must be 1..=1024 bytes.
pub(crate) fn check_topic(topic: &str) -> Result<(), Error> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(Error::InvalidArgument(format!("a topic name is 1..{MAX_TOPIC_LEN} bytes, not {}", topic.len())));
    }
    Ok(())
}

impl Topics {
    /// Sets the watcher (once; later calls are ignored).
    pub fn watch(&self, watcher: Watcher) {
        let _ = self.watcher.set(watcher);
    }

    fn changed(&self, topic: &Arc<str>) {
        if let Some(w) = self.watcher.get() {
            w(topic);
        }
    }

    /// Adds `conn` to `topic`; false if it already was there. Fails once
    /// the connection has ended (it would never be removed again).
    pub fn subscribe(&self, conn: &Arc<ConnShared>, topic: &str) -> Result<bool, Error> {
        check_topic(topic)?;
        let mut map = self.map.write();
        let (name, new) = match map.get_key_value(topic) {
            Some((_, subs)) if subs.contains_key(&conn.id) => return Ok(false),
            Some((k, _)) => (k.clone(), false),
            None => (Arc::from(topic), true),
        };
        // Under the map lock: a connection ending now either sees this
        // topic in its list or has already refused it.
        conn.add_topic(name.clone())?;
        map.entry(name.clone()).or_default().insert(conn.id, conn.clone());
        if new {
            self.changed(&name);
        }
        Ok(true)
    }

    /// Removes `conn` from `topic`; false if it was not subscribed.
    pub fn unsubscribe(&self, conn: &ConnShared, topic: &str) -> bool {
        let mut map = self.map.write();
        let Some(subs) = map.get_mut(topic) else { return false };
        if subs.remove(&conn.id).is_none() {
            return false;
        }
        if subs.is_empty() {
            if let Some((name, _)) = map.remove_entry(topic) {
                self.changed(&name);
            }
        }
        conn.remove_topic(topic);
        true
    }

    /// Removes an ended connection from the topics it listed.
    pub fn forget(&self, id: ConnId, topics: Vec<Arc<str>>) {
        if topics.is_empty() {
            return;
        }
        let mut map = self.map.write();
        for topic in topics {
            if let Some(subs) = map.get_mut(&topic) {
                subs.remove(&id);
                if subs.is_empty() {
                    map.remove(&topic);
                    self.changed(&topic);
                }
            }
        }
    }

    /// Runs `f` on every subscriber of `topic` (none for an unknown one),
    /// under the map's read lock: publishes from one thread reach each
    /// subscriber in the order they were made. `f` must not call the host.
    pub fn for_each(&self, topic: &str, f: &mut dyn FnMut(&Arc<ConnShared>)) {
        if let Some(subs) = self.map.read().get(topic) {
            subs.values().for_each(f);
        }
    }

    pub fn subscribers(&self, topic: &str) -> usize {
        self.map.read().get(topic).map_or(0, HashMap::len)
    }

    /// Every topic with at least one subscriber.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.map.read().keys().cloned().collect()
    }

    /// (topics with at least one subscriber, subscriptions in all).
    pub fn totals(&self) -> (usize, usize) {
        let map = self.map.read();
        (map.len(), map.values().map(HashMap::len).sum())
    }
}
