//! permessage-deflate (RFC 7692): reading a client's offers and choosing the
//! answer, and the compressor and inflater behind a connection that took it.
//!
//! Memory per connection is a design target, so contexts live only where
//! the negotiation needs them: a server that does not keep its context
//! compresses with one compressor per sending thread (reset after each
//! message, shared by every connection), and an inflater is held only while
//! a compressed message arrives unless the client keeps its context.
use super::frame::{Violation, INVALID_PAYLOAD, TOO_BIG};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// What a connection agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deflate {
    /// The server starts each message with an empty window.
    pub server_no_takeover: bool,
    /// The client does, so the inflater need not outlive a message.
    pub client_no_takeover: bool,
    /// The server's window (9..=15).
    pub server_window_bits: u8,
}

/// Splits `s` at `sep` outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    s.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
    .map(str::trim)
}

/// A window size parameter's value: 8..=15, digits only (quotes allowed).
fn window_bits(value: &str) -> Option<u8> {
    let v = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// One permessage-deflate offer's parameters, or None when the offer is
/// malformed or asks for what we cannot do (a server window of 8 bits:
/// zlib's smallest raw window is 9).
fn accept_offer(params: &[&str], keep_context: bool) -> Option<Deflate> {
    let (mut snct, mut cnct, mut smwb, mut cmwb) = (false, false, None, false);
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (param.trim(), None),
        };
        let fresh = match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) => !std::mem::replace(&mut snct, true),
            ("client_no_context_takeover", None) => !std::mem::replace(&mut cnct, true),
            ("server_max_window_bits", Some(v)) => smwb.replace(window_bits(v)?).is_none(),
            ("client_max_window_bits", v) => {
                if let Some(v) = v {
                    window_bits(v)?;
                }
                !std::mem::replace(&mut cmwb, true)
            }
            _ => false,
        };
        if !fresh {
            return None; // unknown, repeated or valueless-when-it-needs-one
        }
    }
    let server_window_bits = smwb.unwrap_or(15);
    if server_window_bits < 9 {
        return None;
    }
    // RFC 7692 §7.1.1: a server may add either no_context_takeover on its own.
    Some(Deflate {
        server_no_takeover: snct || !keep_context,
        client_no_takeover: cnct || !keep_context,
        server_window_bits,
    })
}

/// Picks the first acceptable permessage-deflate offer from the values of
/// the client's Sec-WebSocket-Extensions headers; returns it with the
/// header value to answer with.
pub(crate) fn negotiate<'a>(offers: impl Iterator<Item = &'a str>, keep_context: bool) -> Option<(Deflate, String)> {
    for value in offers {
        for offer in split_outside_quotes(value, ',') {
            let mut parts = split_outside_quotes(offer, ';');
            if !parts.next().is_some_and(|n| n.eq_ignore_ascii_case("permessage-deflate")) {
                continue;
            }
            let params: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
            if let Some(d) = accept_offer(&params, keep_context) {
                let mut answer = String::from("permessage-deflate");
                if d.server_no_takeover {
                    answer.push_str("; server_no_context_takeover");
                }
                if d.client_no_takeover {
                    answer.push_str("; client_no_context_takeover");
                }
                if d.server_window_bits < 15 {
                    answer.push_str(&format!("; server_max_window_bits={}", d.server_window_bits));
                }
                return Some((d, answer));
            }
        }
    }
    None
}

/// A server-side compressor.
pub(crate) struct Compressor {
    z: Compress,
    level: u32,
    bits: u8,
}

impl Compressor {
    pub fn new(level: u32, bits: u8) -> Compressor {
        Compressor { z: Compress::new_with_window_bits(Compression::new(level), false, bits), level, bits }
    }

    /// Compresses one message into `out`: the payload of its frame (a sync
    /// flush without its 00 00 FF FF tail, RFC 7692 §7.2.1). `reset`:
    /// start the next message with an empty window.
    pub fn message(&mut self, data: &[u8], out: &mut Vec<u8>, reset: bool) {
        out.reserve(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = self.z.total_in();
            // Cannot fail: a valid stream, a sync flush, room for output.
            let _ = self.z.compress_vec(input, out, FlushCompress::Sync);
            input = &input[(self.z.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break; // the flush finished with room to spare: complete
            }
        }
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
        if reset {
            self.z.reset();
        }
    }
}

thread_local! {
    /// Per-thread compressors for servers that keep no context, by
    /// (level, window bits): every connection's messages share them.
    static SHARED: RefCell<Vec<Compressor>> = const { RefCell::new(Vec::new()) };
    /// Inflaters returned after a message (client without context takeover).
    static SPARE_INFLATERS: RefCell<Vec<Inflater>> = const { RefCell::new(Vec::new()) };
}

/// Compresses one message with this thread's context-free compressor.
pub(crate) fn compress_once(level: u32, bits: u8, data: &[u8], out: &mut Vec<u8>) {
    SHARED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut list) => {
            let i = match list.iter().position(|c| c.level == level && c.bits == bits) {
                Some(i) => i,
                None => {
                    list.push(Compressor::new(level, bits));
                    list.len() - 1
                }
            };
            list[i].message(data, out, true)
        }
        // In use further up this thread's stack (a log callback that sends):
        // a fresh one for this message.
        Err(_) => Compressor::new(level, bits).message(data, out, true),
    })
}

/// A connection's inflater: raw deflate with the largest window, which
/// reads what any window size produced. Boxed: its state is 150 bytes,
/// which every connection's reader would hold inline even with none.
pub(crate) struct Inflater {
    z: Box<Decompress>,
}

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

impl Inflater {
    /// One from this thread's spares, or a new one.
    pub fn take() -> Inflater {
        SPARE_INFLATERS
            .with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
            .unwrap_or_else(|| Inflater { z: Box::new(Decompress::new(false)) })
    }

    /// Resets it and keeps it for the next message of any connection on
    /// this thread (a few at most).
    pub fn give_back(mut self) {
        self.z.reset(false);
        SPARE_INFLATERS.with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                if s.len() < 4 {
                    s.push(self);
                }
            }
        });
    }

    /// Inflates the next part of a compressed message onto `out` (with the
    /// tail RFC 7692 strips, when `last`). Fails with 1009 as soon as `out`
    /// would pass `max`, so a small message that inflates hugely is never
    /// held whole; `check` sees each new piece of output (UTF-8 for text).
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        max: usize,
        check: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Violation> {
        self.inflate_part(input, out, max, check)?;
        if last {
            self.inflate_part(&TAIL, out, max, check)?;
        }
        Ok(())
    }

    fn inflate_part(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
        check: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<(), Violation> {
        const BAD: Violation = Violation { code: INVALID_PAYLOAD, reason: "compressed data is not valid deflate" };
        const BIG: Violation = Violation { code: TOO_BIG, reason: "message over the size limit" };
        loop {
            if out.len() == out.capacity() {
                // Grow by doubling, but never past the limit (+1 to see it passed).
                let cap = (out.capacity() * 2).max(input.len() * 2).max(4096).min(max + 1);
                if cap <= out.len() {
                    return Err(BIG);
                }
                out.reserve_exact(cap - out.len());
            }
            let (start, before_in) = (out.len(), self.z.total_in());
            let status = self.z.decompress_vec(input, out, FlushDecompress::Sync).map_err(|_| BAD)?;
            let took = (self.z.total_in() - before_in) as usize;
            input = &input[took..];
            if out.len() > max {
                return Err(BIG);
            }
            if !check(&out[start..]) {
                return Err(Violation { code: INVALID_PAYLOAD, reason: "text message is not UTF-8" });
            }
            let made = out.len() - start;
            if status == Status::StreamEnd {
                // A final block ends this stream: what follows starts a new one.
                self.z.reset(false);
            }
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(()); // all taken, and room was left: nothing pending
            }
            if took == 0 && made == 0 && out.len() < out.capacity() && status != Status::StreamEnd {
                return Err(BAD); // no progress with input and room: corrupt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(offer: &str, keep: bool) -> Option<String> {
        negotiate(std::iter::once(offer), keep).map(|(_, a)| a)
    }

    #[test]
    fn negotiation_takes_the_first_offer_it_can_honour() {
        assert_eq!(
            answer("permessage-deflate", false).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        assert_eq!(answer("permessage-deflate; client_max_window_bits", true).as_deref(), Some("permessage-deflate"));
        assert_eq!(
            answer("permessage-deflate; server_no_context_takeover", true).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=10", true).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=\"12\"; client_no_context_takeover", true).as_deref(),
            Some("permessage-deflate; client_no_context_takeover; server_max_window_bits=12")
        );
        // 8 bits cannot be honoured: the next offer is taken.
        let (d, a) = negotiate(
            ["x-webkit-deflate-frame", "permessage-deflate; server_max_window_bits=8, permessage-deflate"].into_iter(),
            true,
        )
        .unwrap();
        assert_eq!((d.server_window_bits, a.as_str()), (15, "permessage-deflate"));
    }

    #[test]
    fn negotiation_refuses_malformed_offers() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits=8",
            "deflate-frame",
        ] {
            assert_eq!(answer(bad, true), None, "{bad}");
        }
    }

    fn roundtrip(data: &[u8], c: &mut Compressor, reset: bool, inf: &mut Inflater) -> Vec<u8> {
        let mut z = Vec::new();
        c.message(data, &mut z, reset);
        let mut out = Vec::new();
        inf.inflate(&z, true, &mut out, 1 << 24, &mut |_| true).unwrap();
        out
    }

    #[test]
    fn compresses_and_inflates_with_and_without_context() {
        let json = br#"{"user":"alice","text":"hello, world","room":"general","n":1}"#.repeat(50);
        for bits in [9, 12, 15] {
            for reset in [true, false] {
                let (mut c, mut inf) = (Compressor::new(1, bits), Inflater::take());
                for i in 0..3 {
                    let msg = [&json[..], &[i as u8]].concat();
                    assert_eq!(roundtrip(&msg, &mut c, reset, &mut inf), msg, "bits {bits} reset {reset}");
                }
            }
        }
        let mut z = Vec::new();
        compress_once(1, 15, &json, &mut z);
        assert!(z.len() * 10 < json.len(), "{} -> {}", json.len(), z.len());
        let mut again = Vec::new();
        compress_once(1, 15, &json, &mut again);
        assert_eq!(z, again, "a reset context compresses the same message the same way");
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let mut z = Vec::new();
        Compressor::new(9, 15).message(&zeros, &mut z, true);
        assert!(z.len() < 20_000, "a bomb: {} bytes", z.len());
        let mut out = Vec::new();
        let err = Inflater::take().inflate(&z, true, &mut out, 1 << 20, &mut |_| true).unwrap_err();
        assert_eq!(err.code, TOO_BIG);
        assert!(out.capacity() <= (1 << 20) + 1, "never held more than the limit: {}", out.capacity());
        let err = Inflater::take().inflate(&[0xff, 0xff, 0xff], true, &mut Vec::new(), 100, &mut |_| true).unwrap_err();
        assert_eq!(err.code, INVALID_PAYLOAD);
    }
}
