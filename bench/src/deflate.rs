//! permessage-deflate (RFC 7692) for the client: the offer (a browser's plus
//! client_no_context_takeover), the answer, compressing ours once at level
//! 6, inflating every message in full; and the deflate rows' JSON-like text.

use std::cell::RefCell;
use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The `Sec-WebSocket-Extensions` value we offer.
pub const OFFER: &str = "permessage-deflate; client_no_context_takeover; client_max_window_bits";

/// What the server's answer settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// The server compresses every message afresh: our inflater is reset
    /// after each one.
    pub server_no_context: bool,
    /// The window our compressor may use (client_max_window_bits).
    pub client_bits: u8,
}

/// Malformed input from the server (handshake, frame or deflate stream).
pub fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The permessage-deflate parameters of a 101 response head, None when it
/// agreed no extension. An extension or parameter we did not offer is an error.
pub fn agreed(head: &[u8]) -> io::Result<Option<Agreed>> {
    let head = String::from_utf8_lossy(head);
    let mut out = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else { continue };
        if !name.trim().eq_ignore_ascii_case("sec-websocket-extensions") {
            continue;
        }
        for ext in value.split(',').filter(|e| !e.trim().is_empty()) {
            let mut params = ext.split(';').map(str::trim);
            let name = params.next().unwrap_or("");
            if name != "permessage-deflate" || out.is_some() {
                return Err(bad(format!("server agreed an extension we did not offer: {}", ext.trim())));
            }
            let mut a = Agreed { server_no_context: false, client_bits: 15 };
            for p in params {
                let (k, v) =
                    p.split_once('=').map(|(k, v)| (k.trim(), Some(v.trim().trim_matches('"')))).unwrap_or((p, None));
                match (k, v) {
                    ("server_no_context_takeover", None) => a.server_no_context = true,
                    ("client_no_context_takeover", None) => {}
                    ("server_max_window_bits", Some(_)) => {} // inflating with 15 bits reads any smaller window
                    ("client_max_window_bits", Some(v)) => match v.parse::<u8>() {
                        Ok(b @ 9..=15) => a.client_bits = b,
                        _ => return Err(bad(format!("client_max_window_bits={v}: we compress with 9 to 15"))),
                    },
                    _ => return Err(bad(format!("permessage-deflate parameter we cannot honour: {p}"))),
                }
            }
            out = Some(a);
        }
    }
    Ok(out)
}

/// One message compressed afresh with a window of `bits`, the trailing
/// 00 00 ff ff of the sync flush removed (RFC 7692 §7.2.1).
pub fn compress(payload: &[u8], bits: u8) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(6), false, bits);
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    loop {
        out.reserve(4096);
        let done = c.total_in() as usize;
        c.compress_vec(&payload[done..], &mut out, FlushCompress::Sync).expect("deflate of an in-memory buffer");
        if c.total_in() as usize == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    debug_assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

thread_local! {
    /// Where inflated bytes go: only the first 16 of a message are kept.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 32 << 10]);
}

/// One connection's inflater (the server's context, when it keeps one).
pub struct Inflater {
    z: Decompress,
    reset_each: bool,
    /// Inside a compressed message (its first frame had RSV1).
    pub active: bool,
    len: usize,
    prefix: [u8; 16],
}

impl Inflater {
    pub fn new(reset_each: bool) -> Box<Inflater> {
        Box::new(Inflater { z: Decompress::new(false), reset_each, active: false, len: 0, prefix: [0; 16] })
    }

    /// Inflates one frame's (unmasked) payload of the current message; at
    /// `fin`, returns the message's first 16 bytes and its inflated length.
    pub fn feed(&mut self, data: &[u8], fin: bool) -> io::Result<Option<([u8; 16], usize)>> {
        self.run(data)?;
        if !fin {
            return Ok(None);
        }
        self.run(&[0, 0, 0xff, 0xff])?;
        let out = (self.prefix, self.len);
        (self.active, self.len, self.prefix) = (false, 0, [0; 16]);
        if self.reset_each {
            self.z.reset(false);
        }
        Ok(Some(out))
    }

    fn run(&mut self, mut input: &[u8]) -> io::Result<()> {
        SCRATCH.with(|s| {
            let out = &mut s.borrow_mut()[..];
            loop {
                let (i0, o0) = (self.z.total_in(), self.z.total_out());
                let st =
                    self.z.decompress(input, out, FlushDecompress::None).map_err(|e| bad(format!("inflate: {e}")))?;
                let (ni, no) = ((self.z.total_in() - i0) as usize, (self.z.total_out() - o0) as usize);
                if self.len < 16 {
                    let k = no.min(16 - self.len);
                    self.prefix[self.len..self.len + k].copy_from_slice(&out[..k]);
                }
                self.len += no;
                input = &input[ni..];
                if st == Status::StreamEnd {
                    // A final block (BFINAL): what follows starts afresh.
                    self.z.reset(false);
                } else if (input.is_empty() && no < out.len()) || (ni == 0 && no == 0) {
                    return Ok(());
                }
            }
        })
    }
}

/// Deterministic JSON-like text of exactly `size` bytes: an array of chat
/// and event objects with the same keys and varying values (ids, users,
/// rooms, timestamps, sentences from a small vocabulary), `head` (a JSON
/// value) first when not empty. `seed` picks the values.
pub fn json_doc(size: usize, seed: u64, head: &str) -> Vec<u8> {
    const USERS: [&str; 12] =
        ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar"];
    const ROOMS: [&str; 6] = ["general", "random", "dev", "ops", "support", "design"];
    const KINDS: [&str; 4] = ["message", "message", "reaction", "edit"];
    let vocab: Vec<&str> = "the build is green again after we fixed flaky test deploy tonight please review my pull \
        request lunch at noon server latency looks fine on staging who owns this alert thanks merged ship it rollback \
        done meeting moved to friday"
        .split(' ')
        .collect();
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |n: usize| {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    };
    let text = |rnd: &mut dyn FnMut(usize) -> usize, n: usize| {
        (0..n).map(|_| vocab[rnd(vocab.len())]).collect::<Vec<_>>().join(" ")
    };
    let mut out = String::with_capacity(size + 512);
    out.push('[');
    out.push_str(head);
    let (mut id, mut ts) = (100_000 + seed * 7919, 1_767_225_600_000 + seed * 60_000);
    loop {
        let sep = if out.len() > 1 { "," } else { "" };
        id += 1 + rnd(5) as u64;
        ts += rnd(20_000) as u64;
        let u = rnd(USERS.len());
        let words = 3 + rnd(14);
        let obj = format!(
            r#"{sep}{{"id":{id},"type":"{}","room":"{}","user":{{"id":{},"name":"{}"}},"ts":{ts},"text":"{}","reactions":{},"edited":{}}}"#,
            KINDS[rnd(KINDS.len())],
            ROOMS[rnd(ROOMS.len())],
            1000 + u,
            USERS[u],
            text(&mut rnd, words),
            rnd(4),
            rnd(5) == 0
        );
        if out.len() + obj.len() + 1 > size {
            // Fill to the exact size: one last object with a shorter text,
            // or blanks when not even that fits.
            let room = size.saturating_sub(out.len() + 1);
            let shell = format!(r#"{sep}{{"text":""}}"#);
            if room > shell.len() {
                let mut t = text(&mut rnd, 40);
                t.truncate(room - shell.len());
                out.push_str(&format!(r#"{sep}{{"text":"{t}"}}"#));
            }
            out.extend(std::iter::repeat_n(' ', (size - 1).saturating_sub(out.len())));
            out.push(']');
            return out.into_bytes();
        }
        out.push_str(&obj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(inf: &mut Inflater, parts: &[&[u8]]) -> ([u8; 16], usize) {
        for p in &parts[..parts.len() - 1] {
            assert_eq!(inf.feed(p, false).unwrap(), None);
        }
        inf.feed(parts[parts.len() - 1], true).unwrap().expect("message end")
    }

    #[test]
    fn json_docs_are_exact_deterministic_compressible_json() {
        for size in [64, 300, 2048, 16384] {
            let d = json_doc(size, 3, "");
            assert_eq!(d.len(), size);
            assert_eq!(d, json_doc(size, 3, ""), "same seed, same text");
            assert_ne!(d, json_doc(size, 4, ""), "another seed, other values");
            let s = std::str::from_utf8(&d).unwrap();
            assert!(s.starts_with(if size > 300 { "[{\"id\":" } else { "[{\"" }) && s.ends_with(']'), "{s}");
            // Balanced, no quote left open: a cheap JSON shape check.
            assert_eq!(s.matches('{').count(), s.matches('}').count());
            assert_eq!(s.matches('"').count() % 2, 0);
        }
        let d = json_doc(16384, 1, "\"BC00000000\"");
        assert!(d.starts_with(b"[\"BC00000000\",{\"id\":"));
        let z = compress(&d, 15);
        assert!(z.len() * 3 < d.len(), "JSON-like text compresses ({} of {})", z.len(), d.len());
    }

    #[test]
    fn compressed_messages_inflate_whole_fragmented_and_one_after_another() {
        let a = json_doc(16384, 1, "");
        let b = json_doc(5000, 2, "");
        for bits in [9, 12, 15] {
            let za = compress(&a, bits);
            // Fresh context per message, no reset needed in between...
            let mut inf = Inflater::new(false);
            let (p, n) = inflate_all(&mut inf, &[&za]);
            assert_eq!((&p[..], n), (&a[..16], a.len()));
            let zb = compress(&b, bits);
            let (mid, rest) = zb.split_at(zb.len() / 3);
            let (p, n) = inflate_all(&mut inf, &[&mid[..1], &mid[1..], rest, &[]]);
            assert_eq!((&p[..], n), (&b[..16], b.len()));
            // ...and with one.
            let mut inf = Inflater::new(true);
            for _ in 0..3 {
                assert_eq!(inflate_all(&mut inf, &[&za]).1, a.len());
            }
        }
        // A server that keeps its context: the second message refers back.
        let mut c = Compress::new(Compression::new(1), false);
        let mut inf = Inflater::new(false);
        for _ in 0..2 {
            let mut z = Vec::with_capacity(20000);
            c.compress_vec(&a, &mut z, FlushCompress::Sync).unwrap();
            z.truncate(z.len() - 4);
            assert_eq!(inflate_all(&mut inf, &[&z]).1, a.len());
        }
        assert!(Inflater::new(false).feed(b"\xff\xff\xff\xff", true).is_err(), "garbage is an error");
    }

    #[test]
    fn the_servers_answer() {
        let head =
            |ext: &str| format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n{ext}Connection: Upgrade");
        assert_eq!(agreed(head("").as_bytes()).unwrap(), None);
        let a = agreed(head("sec-websocket-extensions: permessage-deflate\r\n").as_bytes()).unwrap();
        assert_eq!(a, Some(Agreed { server_no_context: false, client_bits: 15 }));
        let h = head(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=\"10\"\r\n",
        );
        assert_eq!(agreed(h.as_bytes()).unwrap(), Some(Agreed { server_no_context: true, client_bits: 10 }));
        for wrong in
            ["x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits=8", "permessage-deflate; foo"]
        {
            assert!(agreed(head(&format!("Sec-WebSocket-Extensions: {wrong}\r\n")).as_bytes()).is_err(), "{wrong}");
        }
    }
}
