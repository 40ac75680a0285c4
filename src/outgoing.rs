//! One message on its way to one connection or many. Its frames are made
//! on first need and shared: the plain frame for connections without
//! deflate, one compressed frame per window size for connections whose
//! server keeps no context (a broadcast or publish compresses once), and a
//! frame of its own for each connection that keeps its context.
use crate::config::Config;
use crate::protocol::deflate::{self, Compressor, Deflate};
use crate::protocol::frame::{self, OpCode};
use crate::{Error, Kind};
use bytes::Bytes;
use std::cell::{OnceCell, RefCell};

/// A connection's side of permessage-deflate, for sending; it lives in the
/// connection's outbox, so it is used under the outbox lock and frames are
/// queued in the order they were compressed.
pub(crate) struct ConnDeflate {
    pub params: Deflate,
    /// With context takeover: the connection's own compressor, made at its
    /// first compressed message (none without: nothing held per connection).
    own: Option<Box<Compressor>>,
}

impl ConnDeflate {
    pub fn new(params: Deflate) -> ConnDeflate {
        ConnDeflate { params, own: None }
    }
}

pub(crate) struct Outgoing<'a> {
    data: &'a [u8],
    opcode: OpCode,
    /// Compress for connections that negotiated deflate.
    compress: bool,
    level: u32,
    /// For one connection ([`Outgoing::for_one`]): its frame is made and
    /// handed over, not kept and shared (sharing a `Bytes` allocates).
    one: bool,
    /// Frames shared by many recipients, by server window bits ([`PLAIN`]
    /// for the uncompressed one; compressed ones are made without context),
    /// made on first need. Boxed on first need too: a message for one
    /// connection makes none, and its drop is one pointer check, not a call.
    shared: OnceCell<Box<SharedFrames>>,
}

/// The key of the plain frame among the shared ones (window bits are 9..=15).
const PLAIN: u8 = 0;

/// Frames by window bits (see `Outgoing::shared`).
#[derive(Default)]
struct SharedFrames(RefCell<Vec<(u8, Bytes)>>);

/// The opcode of a message of `kind`; text must be UTF-8.
pub(crate) fn data_opcode(data: &[u8], kind: Kind) -> Result<OpCode, Error> {
    match kind {
        Kind::Text if !crate::protocol::utf8::is_utf8(data) => Err(Error::InvalidUtf8),
        Kind::Text => Ok(OpCode::Text),
        Kind::Binary => Ok(OpCode::Binary),
    }
}

impl<'a> Outgoing<'a> {
    /// A message to send; text must be UTF-8. `compress`: false keeps it
    /// uncompressed whatever was negotiated (already compressed data).
    pub fn new(data: &'a [u8], kind: Kind, config: &Config, compress: bool) -> Result<Outgoing<'a>, Error> {
        Ok(Outgoing::checked(data, data_opcode(data, kind)?, config, compress))
    }

    /// As [`Outgoing::new`] for data whose [`data_opcode`] was found.
    pub fn checked(data: &'a [u8], opcode: OpCode, config: &Config, compress: bool) -> Outgoing<'a> {
        Outgoing {
            data,
            opcode,
            compress: compress && config.deflate && data.len() >= config.deflate_min_size.max(1),
            level: config.deflate_level,
            one: false,
            shared: OnceCell::new(),
        }
    }

    /// The same message for one connection only: [`Outgoing::frame_for`]
    /// may then be called once.
    pub fn for_one(self) -> Outgoing<'a> {
        Outgoing { one: true, ..self }
    }

    /// Whether a connection that keeps its context compresses it with its
    /// own compressor (then [`Outgoing::frame_for`] must be called only
    /// once the frame will be queued: its context moves on).
    pub fn uses_own_context(&self, deflate: Option<&ConnDeflate>) -> bool {
        self.compress && deflate.is_some_and(|d| !d.params.server_no_takeover)
    }

    /// The frame for a connection with `deflate` (None: not negotiated).
    pub fn frame_for(&self, deflate: Option<&mut ConnDeflate>) -> Bytes {
        let Some(d) = deflate.filter(|_| self.compress) else {
            if self.one {
                return frame::encode(self.opcode, self.data);
            }
            return self.shared_frame(PLAIN, || frame::encode(self.opcode, self.data));
        };
        let bits = d.params.server_window_bits;
        if d.params.server_no_takeover {
            let compress = || {
                let mut z = Vec::new();
                deflate::compress_once(self.level, bits, self.data, &mut z);
                frame::encode_compressed(self.opcode, &z)
            };
            if self.one {
                return compress();
            }
            return self.shared_frame(bits, compress);
        }
        let compressor = d.own.get_or_insert_with(|| Box::new(Compressor::new(self.level, bits)));
        let mut z = Vec::new();
        compressor.message(self.data, &mut z, false);
        frame::encode_compressed(self.opcode, &z)
    }

    /// The shared frame for window bits `bits` (or [`PLAIN`]), made by `make`
    /// the first time.
    fn shared_frame(&self, bits: u8, make: impl FnOnce() -> Bytes) -> Bytes {
        let mut shared = self.shared.get_or_init(Box::default).0.borrow_mut();
        if let Some((_, f)) = shared.iter().find(|(b, _)| *b == bits) {
            return f.clone();
        }
        let f = make();
        shared.push((bits, f.clone()));
        f
    }

    /// The message's length.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// The most bytes any of its frames can take: deflate may grow
    /// incompressible data by a few bytes per 16 KiB block.
    pub fn max_frame_len(&self) -> usize {
        self.data.len() + self.data.len() / 1024 + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(server_no_takeover: bool, bits: u8) -> ConnDeflate {
        ConnDeflate::new(Deflate { server_no_takeover, client_no_takeover: true, server_window_bits: bits })
    }

    #[test]
    fn one_compression_shared_per_window_and_own_frames_for_contexts() {
        let config = Config { deflate: true, ..Config::default() };
        let data = br#"{"type":"tick","n":1,"room":"general"}"#.repeat(20);
        let out = Outgoing::new(&data, Kind::Text, &config, true).unwrap();
        let (mut a, mut b, mut small, mut ctx) = (conn(true, 15), conn(true, 15), conn(true, 10), conn(false, 15));
        let (fa, fb) = (out.frame_for(Some(&mut a)), out.frame_for(Some(&mut b)));
        assert_eq!(fa.as_ptr(), fb.as_ptr(), "compressed once, the frame shared");
        assert_eq!(fa[0], 0xC1, "FIN, RSV1, text");
        assert!(fa.len() < data.len() / 4);
        assert_ne!(out.frame_for(Some(&mut small)).as_ptr(), fa.as_ptr(), "another window, another frame");
        let plain = out.frame_for(None);
        assert_eq!((plain[0], plain.len()), (0x81, data.len() + 4));
        assert_eq!(plain.as_ptr(), out.frame_for(None).as_ptr(), "the plain frame is shared too");
        assert!(out.uses_own_context(Some(&ctx)) && !out.uses_own_context(Some(&a)));
        let (first, second) = (out.frame_for(Some(&mut ctx)), out.frame_for(Some(&mut ctx)));
        assert!(second.len() < first.len(), "its own context remembers the first copy");
        let raw = Outgoing::new(&data, Kind::Text, &config, false).unwrap();
        assert_eq!(raw.frame_for(Some(&mut a))[0], 0x81, "compress=false: plain even with deflate");
        let one = Outgoing::new(&data, Kind::Text, &config, true).unwrap().for_one();
        assert_eq!(one.frame_for(Some(&mut conn(true, 15))), fa, "for one connection: the same frame");
        assert_eq!(Outgoing::new(&data, Kind::Text, &config, true).unwrap().for_one().frame_for(None), plain);
        let short = Outgoing::new(b"hi", Kind::Text, &config, true).unwrap();
        assert_eq!(short.frame_for(Some(&mut a))[0], 0x81, "under the minimum size: plain");
        assert!(Outgoing::new(&[0xff], Kind::Text, &config, true).is_err());
    }
}
