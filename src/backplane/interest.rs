//! Which topics the other servers of the backplane subscribe on the broker,
//! as they announce it on the control channel. A publish goes to the broker
//! only for a topic some other server wants; a server that stops sending
//! heartbeats is forgotten after [`Interest::expire`]'s age.
//!
//! Written by the backplane's task only; read by every publishing thread
//! ([`Interest::wanted`], one read lock).
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

struct Peer {
    topics: HashSet<Box<str>>,
    seen: Instant,
}

#[derive(Default)]
pub(crate) struct Interest {
    /// Topic → how many other servers want it.
    wanted: RwLock<HashMap<Box<str>, u32>>,
    peers: Mutex<HashMap<u64, Peer>>,
}

impl Interest {
    /// Whether some other server subscribes `topic`.
    pub fn wanted(&self, topic: &str) -> bool {
        self.wanted.read().contains_key(topic)
    }

    fn count(wanted: &mut HashMap<Box<str>, u32>, topic: &str, up: bool) {
        if up {
            *wanted.entry(topic.into()).or_default() += 1;
        } else if let Some(n) = wanted.get_mut(topic) {
            *n -= 1;
            if *n == 0 {
                wanted.remove(topic);
            }
        }
    }

    /// Server `id` subscribes exactly `topics` now.
    pub fn set(&self, id: u64, topics: &[&str], now: Instant) {
        let mut peers = self.peers.lock();
        let peer = peers.entry(id).or_insert_with(|| Peer { topics: HashSet::new(), seen: now });
        peer.seen = now;
        let new: HashSet<Box<str>> = topics.iter().map(|t| Box::from(*t)).collect();
        let mut wanted = self.wanted.write();
        for gone in peer.topics.difference(&new) {
            Self::count(&mut wanted, gone, false);
        }
        for added in new.difference(&peer.topics) {
            Self::count(&mut wanted, added, true);
        }
        peer.topics = new;
    }

    /// Server `id` subscribes (`add`) or unsubscribed `topic`.
    pub fn change(&self, id: u64, topic: &str, add: bool, now: Instant) {
        let mut peers = self.peers.lock();
        let peer = peers.entry(id).or_insert_with(|| Peer { topics: HashSet::new(), seen: now });
        peer.seen = now;
        let changed = if add { peer.topics.insert(topic.into()) } else { peer.topics.remove(topic) };
        if changed {
            Self::count(&mut self.wanted.write(), topic, add);
        }
    }

    /// Server `id` is alive (a heartbeat).
    pub fn seen(&self, id: u64, now: Instant) {
        if let Some(p) = self.peers.lock().get_mut(&id) {
            p.seen = now;
        }
    }

    /// Whether server `id` is known (said hello or listed its topics).
    pub fn known(&self, id: u64) -> bool {
        self.peers.lock().contains_key(&id)
    }

    /// Treats every known server as seen now (after this server's own
    /// outage, when nobody could be heard).
    pub fn all_seen(&self, now: Instant) {
        self.peers.lock().values_mut().for_each(|p| p.seen = now);
    }

    /// Forgets the servers not heard from since `before`; how many.
    pub fn expire(&self, before: Instant) -> usize {
        let mut peers = self.peers.lock();
        let old: Vec<u64> = peers.iter().filter(|(_, p)| p.seen < before).map(|(id, _)| *id).collect();
        let mut wanted = self.wanted.write();
        for id in &old {
            if let Some(p) = peers.remove(id) {
                p.topics.iter().for_each(|t| Self::count(&mut wanted, t, false));
            }
        }
        old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_topic_is_wanted_while_some_server_subscribes_it() {
        let i = Interest::default();
        let t0 = Instant::now();
        i.set(1, &["a", "b"], t0);
        i.change(2, "a", true, t0);
        assert!(i.wanted("a") && i.wanted("b") && !i.wanted("c"));
        i.set(1, &["c"], t0);
        assert!(i.wanted("a") && !i.wanted("b") && i.wanted("c"));
        i.change(2, "a", false, t0);
        i.change(2, "a", false, t0);
        assert!(!i.wanted("a"));
        i.seen(1, t0 + Duration::from_secs(5));
        i.change(3, "z", true, t0);
        assert_eq!(i.expire(t0 + Duration::from_secs(1)), 2);
        assert!(i.wanted("c") && !i.wanted("z"));
        assert!(i.known(1) && !i.known(2) && !i.known(3));
    }
}
