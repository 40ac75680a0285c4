//! What the servers of one backplane say to each other through the broker.
//! Sans-I/O: bytes in, values out.
//!
//! Every payload starts with a 12-byte header: 0xFF 'W' '1', one kind
//! byte, the sending server's id (u64, big-endian). 0xFF never starts
//! UTF-8 text, so a foreign program's text payload (a backend doing
//! `PUBLISH wsserver:lobby hello`) cannot pass for ours.
//!
//! - On a topic's channel (`PREFIX` + topic): kind `t` or `b` (a text or
//!   binary message), then the message's bytes.
//! - On the control channel (`PREFIX` alone): kind `H` (hello: I have just
//!   joined, here are my topics; everyone answers with `S`), `S` (my topics
//!   are exactly these), `+` / `-` (I now subscribe / no longer subscribe
//!   this topic), `P` (heartbeat, once a second). Topic lists are u16
//!   big-endian lengths, each followed by that many bytes.
use crate::Kind;

const MAGIC: [u8; 3] = [0xFF, b'W', b'1'];
pub(crate) const HEADER: usize = 12;

/// A control message's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Hello,
    Set,
    Add,
    Remove,
    Ping,
}

impl Op {
    fn byte(self) -> u8 {
        match self {
            Op::Hello => b'H',
            Op::Set => b'S',
            Op::Add => b'+',
            Op::Remove => b'-',
            Op::Ping => b'P',
        }
    }

    fn of(b: u8) -> Option<Op> {
        Some(match b {
            b'H' => Op::Hello,
            b'S' => Op::Set,
            b'+' => Op::Add,
            b'-' => Op::Remove,
            b'P' => Op::Ping,
            _ => return None,
        })
    }
}

fn header(out: &mut Vec<u8>, kind: u8, server: u64) {
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&server.to_be_bytes());
}

/// (kind byte, server id, rest) of a payload with our header.
fn split(payload: &[u8]) -> Option<(u8, u64, &[u8])> {
    if payload.len() < HEADER || payload[..3] != MAGIC {
        return None;
    }
    let id = u64::from_be_bytes(payload[4..12].try_into().ok()?);
    Some((payload[3], id, &payload[HEADER..]))
}

/// A topic message as published by `server`.
pub(crate) fn message(server: u64, kind: Kind, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    header(&mut out, if kind == Kind::Text { b't' } else { b'b' }, server);
    out.extend_from_slice(data);
    out
}

/// A message received on a topic's channel.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// From a server of this backplane (possibly this one).
    Ours { server: u64, kind: Kind, data: &'a [u8] },
    /// From anything else: text if it is UTF-8, else binary.
    Foreign { kind: Kind, data: &'a [u8] },
}

pub(crate) fn parse_message(payload: &[u8]) -> Incoming<'_> {
    match split(payload) {
        Some((b't', server, data)) => Incoming::Ours { server, kind: Kind::Text, data },
        Some((b'b', server, data)) => Incoming::Ours { server, kind: Kind::Binary, data },
        _ => {
            let kind = if std::str::from_utf8(payload).is_ok() { Kind::Text } else { Kind::Binary };
            Incoming::Foreign { kind, data: payload }
        }
    }
}

/// A control message from `server` listing `topics`.
pub(crate) fn control<'a>(server: u64, op: Op, topics: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    header(&mut out, op.byte(), server);
    for t in topics {
        let t = &t.as_bytes()[..t.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(t.len() as u16).to_be_bytes());
        out.extend_from_slice(t);
    }
    out
}

/// A control message: (op, sender, topics); None when it is not one of ours
/// (or a topic in it is not UTF-8).
pub(crate) fn parse_control(payload: &[u8]) -> Option<(Op, u64, Vec<&str>)> {
    let (op, server, mut rest) = split(payload)?;
    let op = Op::of(op)?;
    let mut topics = Vec::new();
    while !rest.is_empty() {
        let n = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        topics.push(std::str::from_utf8(rest.get(2..2 + n)?).ok()?);
        rest = &rest[2 + n..];
    }
    Some((op, server, topics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_foreign_payloads_pass_as_they_are() {
        let m = message(0x0102_0304_0506_0708, Kind::Binary, b"\x00\xffdata");
        assert_eq!(
            parse_message(&m),
            Incoming::Ours { server: 0x0102_0304_0506_0708, kind: Kind::Binary, data: b"\x00\xffdata" }
        );
        let m = message(7, Kind::Text, b"");
        assert_eq!(parse_message(&m), Incoming::Ours { server: 7, kind: Kind::Text, data: b"" });
        assert_eq!(parse_message(b"hello"), Incoming::Foreign { kind: Kind::Text, data: b"hello" });
        assert_eq!(parse_message(b"\xff\x00"), Incoming::Foreign { kind: Kind::Binary, data: b"\xff\x00" });
    }

    #[test]
    fn control_messages_round_trip() {
        let c = control(42, Op::Set, ["lobby", "", "dév"]);
        assert_eq!(parse_control(&c), Some((Op::Set, 42, vec!["lobby", "", "dév"])));
        assert_eq!(parse_control(&control(1, Op::Ping, [])), Some((Op::Ping, 1, vec![])));
        let mut cut = control(1, Op::Add, ["abc"]);
        cut.pop();
        assert_eq!(parse_control(&cut), None);
        assert_eq!(parse_control(&message(1, Kind::Text, b"x")), None);
        assert_eq!(parse_control(b"plain"), None);
    }
}
