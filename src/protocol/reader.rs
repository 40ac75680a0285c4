//! A connection's inbound protocol state: fed the bytes a client sent, it
//! parses and unmasks frames, reassembles fragmented messages, inflates
//! compressed ones, checks text for UTF-8 as it arrives, and hands each
//! message, ping and close to a [`Sink`]. A broken rule is a [`Violation`]:
//! the close code and reason the connection fails with.
use super::deflate::{Deflate, Inflater};
use super::frame::{self, Header, OpCode, Violation, INVALID_PAYLOAD, PROTOCOL_ERROR, TOO_BIG};
use super::utf8::{is_utf8, Utf8};
use crate::Kind;

/// The size limits a reader enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest frame payload (as sent: compressed, if it is).
    pub max_frame: usize,
    /// Largest message (after inflating).
    pub max_message: usize,
}

/// Where a reader's results go.
pub(crate) trait Sink {
    /// A whole message (text is valid UTF-8).
    fn message(&mut self, data: &[u8], kind: Kind);
    /// A ping: its payload, for the pong.
    fn ping(&mut self, payload: &[u8]);
    /// The client's close frame: `None` when it was empty (1005), else its
    /// code and reason. Nothing after it is read.
    fn close(&mut self, parsed: Option<(u16, &str)>);
}

const TOO_BIG_MESSAGE: Violation = Violation { code: TOO_BIG, reason: "message over the size limit" };
const BAD_UTF8: Violation = Violation { code: INVALID_PAYLOAD, reason: "text message is not UTF-8" };

const fn unexpected(reason: &'static str) -> Violation {
    Violation { code: PROTOCOL_ERROR, reason }
}

/// A message that spans frames (fragmented, or compressed).
struct Assembly {
    kind: Kind,
    data: Vec<u8>,
    compressed: bool,
}

/// One connection's reader (small: an idle connection holds no buffer).
#[derive(Default)]
pub(crate) struct Reader {
    /// permessage-deflate, when negotiated.
    deflate: Option<Deflate>,
    /// A message whose later frames are still to come (boxed: an idle
    /// connection holds a pointer, not the assembly's 32 bytes).
    message: Option<Box<Assembly>>,
    /// The current text message's UTF-8 state.
    utf8: Utf8,
    /// Held while a compressed message arrives, and for good when the
    /// client keeps its compression context.
    inflater: Option<Inflater>,
    /// Payload bytes of the partial frame at the input's start that are
    /// already unmasked and checked.
    done: usize,
    /// Size of the partial frame at the input's start, once its header is read.
    need: usize,
    /// The client's close frame was read.
    closed: bool,
}

impl Reader {
    pub fn new(deflate: Option<Deflate>) -> Reader {
        Reader { deflate, ..Reader::default() }
    }

    /// Bytes it holds between reads: a message being assembled, and an
    /// inflater (its window and state, about 44 KiB) while it has one.
    pub fn held_bytes(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity()) + if self.inflater.is_some() { 44 << 10 } else { 0 }
    }

    /// Size of the frame the unconsumed input starts, once known (0: not known).
    pub fn need(&self) -> usize {
        self.need
    }

    /// Handles the frames at the start of `buf` (unmasking in place) and
    /// returns the bytes consumed; the caller keeps the rest, and hands it
    /// back with more bytes after it. Once the close frame is read, all
    /// input counts as consumed.
    pub fn feed<S: Sink + ?Sized>(&mut self, buf: &mut [u8], limits: Limits, sink: &mut S) -> Result<usize, Violation> {
        let mut pos = 0;
        self.need = 0;
        while !self.closed && pos < buf.len() {
            pos += match self.small_message(&mut buf[pos..], limits, sink)? {
                Some(len) => len,
                None => match self.frame(&mut buf[pos..], limits, sink)? {
                    Some(len) => len,
                    None => break,
                },
            };
        }
        Ok(if self.closed { buf.len() } else { pos })
    }

    /// Any frame at the start of `buf` (the general path, out of line so
    /// that the small-message loop stays short): the bytes it took, or
    /// None if it is not all here (`need` then says how much it is).
    #[inline(never)]
    fn frame<S: Sink + ?Sized>(
        &mut self,
        buf: &mut [u8],
        limits: Limits,
        sink: &mut S,
    ) -> Result<Option<usize>, Violation> {
        let Some(h) = frame::parse_header(buf, limits.max_frame, self.deflate.is_some())? else { return Ok(None) };
        self.check_size(&h, limits)?;
        let start = h.header_len;
        let end = start + h.payload_len;
        if end > buf.len() {
            self.need = end;
            self.check_partial(&h, &mut buf[start..])?;
            return Ok(None);
        }
        let done = std::mem::take(&mut self.done);
        frame::unmask_from(&mut buf[start + done..end], h.mask, done);
        self.on_frame(h, &buf[start..end], done, limits, sink)?;
        Ok(Some(end))
    }

    /// One whole, final, uncompressed data frame of at most 125 bytes with
    /// no message in progress (most chat and JSON traffic), handled with
    /// only the checks that can fail for it; Ok(None) leaves anything else
    /// (or a frame over a limit, for its error) to the general path.
    #[inline]
    fn small_message<S: Sink + ?Sized>(
        &mut self,
        buf: &mut [u8],
        limits: Limits,
        sink: &mut S,
    ) -> Result<Option<usize>, Violation> {
        let [b0, b1, m0, m1, m2, m3, ..] = *buf else { return Ok(None) };
        let kind = match b0 {
            0x81 => Kind::Text,
            0x82 => Kind::Binary,
            _ => return Ok(None),
        };
        let len = (b1 & 0x7f) as usize;
        let whole = b1 & 0x80 != 0 && len <= 125 && buf.len() >= 6 + len;
        if !whole || len > limits.max_frame.min(limits.max_message) || self.message.is_some() || self.done != 0 {
            return Ok(None);
        }
        let payload = &mut buf[6..6 + len];
        let ascii = frame::unmask(payload, [m0, m1, m2, m3]);
        if kind == Kind::Text && !ascii && !is_utf8(payload) {
            return Err(BAD_UTF8);
        }
        sink.message(payload, kind);
        Ok(Some(6 + len))
    }

    /// Refuses a frame that would take its message past the limit, before
    /// any of its payload is held (compressed sizes are checked inflating).
    fn check_size(&self, h: &Header, limits: Limits) -> Result<(), Violation> {
        let held = match (h.opcode, &self.message) {
            (OpCode::Text | OpCode::Binary, _) if !h.rsv1 => 0,
            (OpCode::Continuation, Some(m)) if !m.compressed => m.data.len(),
            _ => return Ok(()),
        };
        if held + h.payload_len > limits.max_message {
            return Err(TOO_BIG_MESSAGE);
        }
        Ok(())
    }

    /// Checks the part of an uncompressed text frame that has arrived, so
    /// bad UTF-8 fails as soon as its byte is here (not when the frame ends).
    fn check_partial(&mut self, h: &Header, arrived: &mut [u8]) -> Result<(), Violation> {
        let text = match (h.opcode, &self.message) {
            (OpCode::Text, None) => !h.rsv1,
            (OpCode::Continuation, Some(m)) => m.kind == Kind::Text && !m.compressed,
            _ => false,
        };
        if !text || arrived.len() <= self.done {
            return Ok(());
        }
        if self.done == 0 && h.opcode == OpCode::Text {
            self.utf8 = Utf8::default();
        }
        frame::unmask_from(&mut arrived[self.done..], h.mask, self.done);
        if !self.utf8.feed(&arrived[self.done..]) {
            return Err(BAD_UTF8);
        }
        self.done = arrived.len();
        Ok(())
    }

    /// One whole, unmasked frame; its first `done` payload bytes were
    /// checked already (see `check_partial`).
    fn on_frame<S: Sink + ?Sized>(
        &mut self,
        h: Header,
        payload: &[u8],
        done: usize,
        limits: Limits,
        sink: &mut S,
    ) -> Result<(), Violation> {
        let keep = self.deflate.is_some_and(|d| !d.client_no_takeover);
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(unexpected("new data frame inside a fragmented message"));
                }
                let kind = if h.opcode == OpCode::Text { Kind::Text } else { Kind::Binary };
                if done == 0 {
                    self.utf8 = Utf8::default();
                }
                if h.rsv1 {
                    let mut data = Vec::new();
                    inflate(&mut self.inflater, keep, &mut self.utf8, payload, h.fin, kind, &mut data, limits)?;
                    self.message = Some(Box::new(Assembly { kind, data, compressed: true }));
                } else {
                    if kind == Kind::Text && !self.utf8.feed(&payload[done..]) {
                        return Err(BAD_UTF8);
                    }
                    if h.fin {
                        if !self.utf8.complete() {
                            return Err(BAD_UTF8);
                        }
                        sink.message(payload, kind);
                        return Ok(());
                    }
                    self.message = Some(Box::new(Assembly { kind, data: payload.to_vec(), compressed: false }));
                }
            }
            OpCode::Continuation => {
                let Some(m) = self.message.as_mut() else {
                    return Err(unexpected("continuation frame with no message to continue"));
                };
                if m.compressed {
                    inflate(&mut self.inflater, keep, &mut self.utf8, payload, h.fin, m.kind, &mut m.data, limits)?;
                } else {
                    if m.kind == Kind::Text && !self.utf8.feed(&payload[done..]) {
                        return Err(BAD_UTF8);
                    }
                    m.data.extend_from_slice(payload);
                }
            }
            OpCode::Ping => {
                sink.ping(payload);
                return Ok(());
            }
            OpCode::Pong => return Ok(()),
            OpCode::Close => {
                let parsed = frame::parse_close(payload)?;
                self.closed = true;
                sink.close(parsed);
                return Ok(());
            }
        }
        if h.fin {
            if let Some(m) = self.message.take() {
                if m.kind == Kind::Text && !self.utf8.complete() {
                    return Err(BAD_UTF8);
                }
                sink.message(&m.data, m.kind);
            }
        }
        Ok(())
    }
}

/// Inflates one compressed frame's payload onto `data` with the reader's
/// inflater (taken from the thread's spares when it has none), checking
/// text as it comes out; at the message's end gives the inflater back
/// unless the client keeps its context (`keep`).
#[allow(clippy::too_many_arguments)]
fn inflate(
    slot: &mut Option<Inflater>,
    keep: bool,
    utf8: &mut Utf8,
    payload: &[u8],
    last: bool,
    kind: Kind,
    data: &mut Vec<u8>,
    limits: Limits,
) -> Result<(), Violation> {
    let inflater = slot.get_or_insert_with(Inflater::take);
    let mut check = |piece: &[u8]| kind == Kind::Binary || utf8.feed(piece);
    let result = inflater.inflate(payload, last, data, limits.max_message, &mut check);
    if last && !keep {
        if let Some(inflater) = slot.take() {
            inflater.give_back();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::deflate::Compressor;

    #[derive(Default)]
    struct Seen {
        messages: Vec<(Kind, Vec<u8>)>,
        pings: Vec<Vec<u8>>,
        close: Option<Option<(u16, String)>>,
    }

    impl Sink for Seen {
        fn message(&mut self, data: &[u8], kind: Kind) {
            self.messages.push((kind, data.to_vec()));
        }
        fn ping(&mut self, payload: &[u8]) {
            self.pings.push(payload.to_vec());
        }
        fn close(&mut self, parsed: Option<(u16, &str)>) {
            self.close = Some(parsed.map(|(c, r)| (c, r.to_string())));
        }
    }

    const LIMITS: Limits = Limits { max_frame: 1 << 20, max_message: 1 << 20 };

    /// A masked client frame with first byte `b0`.
    fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        frame::masked(b0, payload, [0x37, 0xfa, 0x21, 0x3d])
    }

    /// Feeds `input` in pieces of `step` bytes, keeping the unconsumed
    /// rest as a connection does.
    fn feed_in_steps(r: &mut Reader, input: &[u8], step: usize, seen: &mut Seen) -> Result<(), Violation> {
        let mut held = Vec::new();
        for piece in input.chunks(step) {
            held.extend_from_slice(piece);
            let used = r.feed(&mut held, LIMITS, seen)?;
            held.drain(..used);
        }
        Ok(())
    }

    #[test]
    fn messages_pings_and_close_however_the_bytes_are_cut() {
        let mut input = frame(0x81, "héllo".as_bytes());
        input.extend(frame(0x01, b"frag"));
        input.extend(frame(0x89, b"ping!"));
        input.extend(frame(0x80, "ment €".as_bytes()));
        input.extend(frame(0x82, &[0, 1, 2]));
        input.extend(frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
        input.extend(frame(0x81, b"after the close: ignored"));
        for step in [1, 2, 3, 7, input.len()] {
            let (mut r, mut seen) = (Reader::new(None), Seen::default());
            feed_in_steps(&mut r, &input, step, &mut seen).unwrap();
            assert_eq!(
                seen.messages,
                [
                    (Kind::Text, "héllo".as_bytes().to_vec()),
                    (Kind::Text, "fragment €".as_bytes().to_vec()),
                    (Kind::Binary, vec![0, 1, 2])
                ],
                "step {step}"
            );
            assert_eq!(seen.pings, [b"ping!".to_vec()]);
            assert_eq!(seen.close, Some(Some((1000, "bye".to_string()))));
        }
    }

    #[test]
    fn bad_utf8_fails_as_soon_as_its_byte_arrives() {
        // A 200-byte text frame whose 10th byte is invalid: fails with only
        // 20 bytes of the frame here (Autobahn 6.4.3/6.4.4, strictly).
        let mut text = b"0123456789".repeat(20);
        text[9] = 0xff;
        let f = frame(0x81, &text);
        let (mut r, mut seen) = (Reader::new(None), Seen::default());
        let mut part = f[..20].to_vec();
        assert_eq!(r.feed(&mut part, LIMITS, &mut seen).unwrap_err().code, INVALID_PAYLOAD);
        // Same in a continuation, the bad sequence split across frames.
        let mut input = frame(0x01, &[b'a', 0xce]);
        input.extend(frame(0x80, &[0x28]));
        let (mut r, mut seen) = (Reader::new(None), Seen::default());
        assert_eq!(feed_in_steps(&mut r, &input, 1, &mut seen).unwrap_err().code, INVALID_PAYLOAD);
        // Text ending inside a sequence.
        let (mut r, mut seen) = (Reader::new(None), Seen::default());
        assert_eq!(r.feed(&mut frame(0x81, &[0xe2, 0x82]), LIMITS, &mut seen).unwrap_err().code, INVALID_PAYLOAD);
    }

    #[test]
    fn protocol_errors() {
        let fail = |input: Vec<u8>| {
            let (mut r, mut seen) = (Reader::new(None), Seen::default());
            feed_in_steps(&mut r, &input, 1, &mut seen).unwrap_err()
        };
        assert_eq!(fail(frame(0x80, b"x")).code, PROTOCOL_ERROR, "continuation first");
        assert_eq!(fail([frame(0x01, b"a"), frame(0x81, b"b")].concat()).code, PROTOCOL_ERROR);
        assert_eq!(fail(frame(0xC1, b"x")).code, PROTOCOL_ERROR, "RSV1 without deflate");
        assert_eq!(fail(frame(0x88, &[0x03])).code, PROTOCOL_ERROR, "one-byte close");
        let big = Limits { max_frame: 1 << 20, max_message: 10 };
        let (mut r, mut seen) = (Reader::new(None), Seen::default());
        let mut input = [frame(0x02, &[0; 6]), frame(0x00, &[0; 6])].concat();
        let err = r.feed(&mut input[..24], big, &mut seen).unwrap_err();
        assert_eq!(err.code, TOO_BIG, "refused at the second header, before its payload");
    }

    #[test]
    fn small_whole_frames_keep_every_rule() {
        // The small-frame path: limits under 125 bytes, bad text, a frame
        // inside a fragmented message, and a binary frame passed as is.
        let fail = |input: &[u8], limits: Limits| {
            let (mut r, mut seen) = (Reader::new(None), Seen::default());
            let err = r.feed(&mut input.to_vec(), limits, &mut seen).unwrap_err();
            assert!(seen.messages.is_empty());
            err.code
        };
        let hello = frame(0x81, b"hello");
        assert_eq!(fail(&hello, Limits { max_frame: 4, max_message: 1 << 20 }), TOO_BIG);
        assert_eq!(fail(&hello, Limits { max_frame: 1 << 20, max_message: 4 }), TOO_BIG);
        assert_eq!(fail(&frame(0x81, b"ok\xff"), LIMITS), INVALID_PAYLOAD);
        assert_eq!(fail(&[frame(0x01, b"a"), hello.clone()].concat(), LIMITS), PROTOCOL_ERROR);
        let (mut r, mut seen) = (Reader::new(None), Seen::default());
        let mut input = [frame(0x82, &[0xff, 0]), hello].concat();
        assert_eq!(r.feed(&mut input, LIMITS, &mut seen).unwrap(), input.len());
        assert_eq!(seen.messages, [(Kind::Binary, vec![0xff, 0]), (Kind::Text, b"hello".to_vec())]);
        // Either side of the 125-byte boundary, whole (the small-frame path
        // up to 125) and byte by byte (the general path): the same messages.
        let lens = [0, 7, 8, 125, 126, 300];
        let texts: Vec<Vec<u8>> = lens.iter().map(|&n| ("é".repeat(n / 2) + &"a".repeat(n % 2)).into_bytes()).collect();
        let input: Vec<u8> = texts.iter().flat_map(|t| frame(0x81, t)).collect();
        assert!(texts.iter().zip(lens).all(|(t, n)| t.len() == n));
        let want: Vec<_> = texts.iter().map(|t| (Kind::Text, t.clone())).collect();
        for step in [input.len(), 1] {
            let (mut r, mut seen) = (Reader::new(None), Seen::default());
            feed_in_steps(&mut r, &input, step, &mut seen).unwrap();
            assert_eq!(seen.messages, want, "step {step}");
        }
    }

    fn deflate(server_no_takeover: bool, client_no_takeover: bool) -> Option<Deflate> {
        Some(Deflate { server_no_takeover, client_no_takeover, server_window_bits: 15 })
    }

    #[test]
    fn compressed_messages_whole_and_fragmented_with_and_without_context() {
        for client_no_takeover in [true, false] {
            let mut c = Compressor::new(6, 15);
            let text = "the same words again and again, ".repeat(40);
            let mut input = Vec::new();
            for _ in 0..2 {
                let mut z = Vec::new();
                c.message(text.as_bytes(), &mut z, client_no_takeover);
                input.extend(frame(0xC1, &z));
                let mut z = Vec::new();
                c.message(&[7u8; 3000], &mut z, client_no_takeover);
                let (a, b) = z.split_at(z.len() / 2);
                input.extend(frame(0x42, a));
                input.extend(frame(0x89, b"in between"));
                input.extend(frame(0x80, b));
            }
            input.extend(frame(0x81, b"plain"));
            for step in [1, 5, input.len()] {
                let (mut r, mut seen) = (Reader::new(deflate(true, client_no_takeover)), Seen::default());
                feed_in_steps(&mut r, &input, step, &mut seen).unwrap();
                let m = &seen.messages;
                assert_eq!(m.len(), 5, "step {step}");
                assert_eq!((m[0].0, &m[0].1[..]), (Kind::Text, text.as_bytes()));
                assert_eq!((m[1].0, &m[1].1[..]), (Kind::Binary, &[7u8; 3000][..]));
                assert_eq!(m[2], m[0]);
                assert_eq!(m[3], m[1]);
                assert_eq!(m[4].1, b"plain");
                assert_eq!(r.inflater.is_some(), !client_no_takeover, "an inflater is kept only for a context");
            }
        }
    }

    #[test]
    fn compressed_bombs_and_bad_text_fail_while_inflating() {
        let mut z = Vec::new();
        Compressor::new(9, 15).message(&vec![b'a'; 4 << 20], &mut z, true);
        let (mut r, mut seen) = (Reader::new(deflate(true, true)), Seen::default());
        let err = r.feed(&mut frame(0xC1, &z), LIMITS, &mut seen).unwrap_err();
        assert_eq!(err.code, TOO_BIG);
        assert!(seen.messages.is_empty());
        let mut z = Vec::new();
        Compressor::new(1, 15).message(&[b'o', b'k', 0xff, b'!'], &mut z, true);
        let (mut r, mut seen) = (Reader::new(deflate(true, true)), Seen::default());
        assert_eq!(r.feed(&mut frame(0xC1, &z), LIMITS, &mut seen).unwrap_err().code, INVALID_PAYLOAD);
    }
}
