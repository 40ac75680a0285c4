//! The protocol-layer harness behind the `reader` and `reader_deflate`
//! targets: arbitrary bytes fed to a connection's reader after a valid
//! handshake, cut into chunks the input chooses, through a sink that
//! checks what a host may rely on. The same bytes fed whole must give the
//! same messages and the same outcome (however TCP cuts them).
//!
//! Input: byte 0 picks the limits (and, for deflate, the context mode),
//! bytes 1..=3 the chunk sizes (cycled; 0 = all the rest), the rest is what
//! the client sent after its handshake.
use wsserver::fuzzing::{Compression, ProtocolReader, Sink};
use wsserver::Kind;

const FRAME_LIMITS: [usize; 4] = [1 << 20, 200, 16, 70_000];
const MESSAGE_LIMITS: [usize; 4] = [1 << 20, 300, 20, 70_000];

/// What the reader delivered, in order.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Message(Kind, Vec<u8>),
    Ping(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// A sink that checks every delivery as it happens.
struct Checker {
    max_message: usize,
    seen: Vec<Seen>,
    closed: bool,
}

impl Sink for Checker {
    fn message(&mut self, data: &[u8], kind: Kind) {
        assert!(!self.closed, "a message after the close frame");
        assert!(data.len() <= self.max_message, "a message of {} bytes over the limit {}", data.len(), self.max_message);
        if kind == Kind::Text {
            assert!(std::str::from_utf8(data).is_ok(), "a text message that is not UTF-8: {data:?}");
        }
        self.seen.push(Seen::Message(kind, data.to_vec()));
    }
    fn ping(&mut self, payload: &[u8]) {
        assert!(!self.closed, "a ping after the close frame");
        assert!(payload.len() <= 125, "a ping of {} bytes", payload.len());
        self.seen.push(Seen::Ping(payload.to_vec()));
    }
    fn close(&mut self, parsed: Option<(u16, &str)>) {
        assert!(!self.closed, "a second close frame");
        if let Some((code, reason)) = parsed {
            assert!(matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999), "close code {code} passed");
            assert!(reason.len() <= 123, "a close reason of {} bytes", reason.len());
        }
        self.closed = true;
        self.seen.push(Seen::Close(parsed.map(|(c, r)| (c, r.to_string()))));
    }
}

/// How a run ended: Ok (input exhausted) or the close code it failed with.
type Outcome = Result<(), u16>;

/// Feeds `input` in pieces of the sizes in `chunks` (cycled), keeping the
/// unconsumed rest and handing it back with the next piece, as a
/// connection does with its socket.
fn run(compression: Compression, limits: (usize, usize), chunks: &[usize], input: &[u8]) -> (Vec<Seen>, Outcome) {
    let (max_frame, max_message) = limits;
    let mut reader = ProtocolReader::after_handshake(compression);
    assert_eq!(reader.extensions.is_some(), compression != Compression::Off, "deflate negotiated as asked");
    let mut sink = Checker { max_message, seen: Vec::new(), closed: false };
    let mut held: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let size = match chunks[i % chunks.len()] {
            0 => input.len() - pos,
            n => n.min(input.len() - pos),
        };
        i += 1;
        held.extend_from_slice(&input[pos..pos + size]);
        pos += size;
        match reader.feed(&mut held, max_frame, max_message, &mut sink) {
            Ok(used) => {
                assert!(used <= held.len(), "consumed {used} of {} bytes", held.len());
                if sink.closed {
                    assert_eq!(used, held.len(), "after the close frame all input counts as consumed");
                }
                held.drain(..used);
                let need = reader.need();
                if need != 0 {
                    assert!(need > held.len(), "need {need} with {} bytes held: the frame is complete", held.len());
                    assert!(need <= 14 + max_frame, "need {need} over a frame's largest size");
                }
            }
            Err((code, reason)) => {
                assert!(matches!(code, 1002 | 1007 | 1009), "failed with close code {code} ({reason})");
                assert!(!reason.is_empty(), "a violation without a reason");
                return (sink.seen, Err(code));
            }
        }
    }
    (sink.seen, Ok(()))
}

/// The whole check for one input.
pub fn check(data: &[u8], deflate: bool) {
    let Some((&cfg, rest)) = data.split_first() else { return };
    let (chunks, input) = rest.split_at(rest.len().min(3));
    let chunks: Vec<usize> = match chunks {
        [] => vec![0],
        c => c.iter().map(|&b| b as usize).collect(),
    };
    let compression = match (deflate, cfg & 0x10 != 0) {
        (false, _) => Compression::Off,
        (true, false) => Compression::NoContext,
        (true, true) => Compression::Context,
    };
    let limits = (FRAME_LIMITS[(cfg & 3) as usize], MESSAGE_LIMITS[((cfg >> 2) & 3) as usize]);
    let chunked = run(compression, limits, &chunks, input);
    let whole = run(compression, limits, &[0], input);
    assert!(chunked == whole, "cut into {chunks:?} the input gives {chunked:?}, whole it gives {whole:?}");
}
