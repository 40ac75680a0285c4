//! Which topics the other servers of the backplane subscribe on the broker,
//! as they announce it on the control channel. A publish goes to the broker
//! only for a topic some other server wants; a server that stops sending
//! heartbeats is forgotten after [`Interest::expire`]'s age.
//!
//! After this server's own outage every server it knew is *unconfirmed*
//! until it is heard from again (its answer to our hello, or a heartbeat):
//! one that is still reconnecting would not get a message sent now, so a
//! publish that only unconfirmed servers want is not sent but counted as
//! delivered locally only ([`Route::LocalOnly`]).
//!
//! Written by the backplane's task only; read by every publishing thread
//! ([`Interest::route`], one read lock).
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// What a publish on a topic does with the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// No other server wants it: nothing to send.
    Nobody,
    /// Some server that is surely listening wants it: send it.
    Send,
    /// Only servers not heard from since this server's reconnect want it.
    LocalOnly,
}

struct Peer {
    topics: HashSet<Box<str>>,
    seen: Instant,
    confirmed: bool,
}

/// Topic → how many other servers want it, confirmed or not.
#[derive(Default)]
struct Counts {
    confirmed: HashMap<Box<str>, u32>,
    unconfirmed: HashMap<Box<str>, u32>,
}

impl Counts {
    fn of(&mut self, confirmed: bool) -> &mut HashMap<Box<str>, u32> {
        if confirmed {
            &mut self.confirmed
        } else {
            &mut self.unconfirmed
        }
    }

    fn add(&mut self, confirmed: bool, topic: &str) {
        *self.of(confirmed).entry(topic.into()).or_default() += 1;
    }

    fn remove(&mut self, confirmed: bool, topic: &str) {
        let map = self.of(confirmed);
        if let Some(n) = map.get_mut(topic) {
            *n -= 1;
            if *n == 0 {
                map.remove(topic);
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Interest {
    counts: RwLock<Counts>,
    peers: Mutex<HashMap<u64, Peer>>,
}

impl Interest {
    /// What a publish on `topic` does with the broker now.
    pub fn route(&self, topic: &str) -> Route {
        let counts = self.counts.read();
        if counts.confirmed.contains_key(topic) {
            Route::Send
        } else if counts.unconfirmed.contains_key(topic) {
            Route::LocalOnly
        } else {
            Route::Nobody
        }
    }

    /// Server `id`, heard from now: known and confirmed from here on.
    fn heard<'a>(peers: &'a mut HashMap<u64, Peer>, counts: &mut Counts, id: u64, now: Instant) -> &'a mut Peer {
        let peer = peers.entry(id).or_insert_with(|| Peer { topics: HashSet::new(), seen: now, confirmed: true });
        peer.seen = now;
        if !peer.confirmed {
            peer.confirmed = true;
            for t in &peer.topics {
                counts.remove(false, t);
                counts.add(true, t);
            }
        }
        peer
    }

    /// Server `id` subscribes exactly `topics` now.
    pub fn set(&self, id: u64, topics: &[&str], now: Instant) {
        let (mut peers, mut counts) = (self.peers.lock(), self.counts.write());
        let peer = Self::heard(&mut peers, &mut counts, id, now);
        let new: HashSet<Box<str>> = topics.iter().map(|t| Box::from(*t)).collect();
        peer.topics.difference(&new).for_each(|gone| counts.remove(true, gone));
        new.difference(&peer.topics).for_each(|added| counts.add(true, added));
        peer.topics = new;
    }

    /// Server `id` subscribes (`add`) or unsubscribed `topic`.
    pub fn change(&self, id: u64, topic: &str, add: bool, now: Instant) {
        let (mut peers, mut counts) = (self.peers.lock(), self.counts.write());
        let peer = Self::heard(&mut peers, &mut counts, id, now);
        let changed = if add { peer.topics.insert(topic.into()) } else { peer.topics.remove(topic) };
        match (changed, add) {
            (true, true) => counts.add(true, topic),
            (true, false) => counts.remove(true, topic),
            _ => {}
        }
    }

    /// A heartbeat from server `id`; false if it is not known.
    pub fn seen(&self, id: u64, now: Instant) -> bool {
        let mut peers = self.peers.lock();
        if !peers.contains_key(&id) {
            return false;
        }
        Self::heard(&mut peers, &mut self.counts.write(), id, now);
        true
    }

    /// After this server's outage: every known server is unconfirmed until
    /// heard from again, and counts as seen now (so that it has
    /// [`Interest::expire`]'s time to be heard).
    pub fn unconfirm_all(&self, now: Instant) {
        let (mut peers, mut counts) = (self.peers.lock(), self.counts.write());
        for p in peers.values_mut() {
            p.seen = now;
            if std::mem::replace(&mut p.confirmed, false) {
                for t in &p.topics {
                    counts.remove(true, t);
                    counts.add(false, t);
                }
            }
        }
    }

    /// Forgets the servers not heard from since `before`; how many.
    pub fn expire(&self, before: Instant) -> usize {
        let (mut peers, mut counts) = (self.peers.lock(), self.counts.write());
        let old: Vec<u64> = peers.iter().filter(|(_, p)| p.seen < before).map(|(id, _)| *id).collect();
        for id in &old {
            if let Some(p) = peers.remove(id) {
                p.topics.iter().for_each(|t| counts.remove(p.confirmed, t));
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
        assert_eq!([i.route("a"), i.route("b"), i.route("c")], [Route::Send, Route::Send, Route::Nobody]);
        i.set(1, &["c"], t0);
        assert_eq!([i.route("a"), i.route("b"), i.route("c")], [Route::Send, Route::Nobody, Route::Send]);
        i.change(2, "a", false, t0);
        i.change(2, "a", false, t0);
        assert_eq!(i.route("a"), Route::Nobody);
        assert!(i.seen(1, t0 + Duration::from_secs(5)) && !i.seen(9, t0));
        i.change(3, "z", true, t0);
        assert_eq!(i.expire(t0 + Duration::from_secs(1)), 2);
        assert_eq!([i.route("c"), i.route("z")], [Route::Send, Route::Nobody]);
    }

    #[test]
    fn after_an_outage_a_server_counts_once_heard_again() {
        let i = Interest::default();
        let t0 = Instant::now();
        i.set(1, &["a"], t0);
        i.set(2, &["a", "b"], t0);
        i.unconfirm_all(t0);
        assert_eq!([i.route("a"), i.route("b")], [Route::LocalOnly, Route::LocalOnly]);
        assert!(i.seen(1, t0));
        assert_eq!([i.route("a"), i.route("b")], [Route::Send, Route::LocalOnly]);
        i.set(2, &["b"], t0);
        assert_eq!([i.route("a"), i.route("b")], [Route::Send, Route::Send]);
        i.unconfirm_all(t0);
        assert_eq!(i.expire(t0 + Duration::from_secs(1)), 2);
        assert_eq!(i.route("b"), Route::Nobody);
    }
}
