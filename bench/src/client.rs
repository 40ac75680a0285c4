//! The load generator's WebSocket client: frames built once, masked; frames
//! parsed in place, only their first 16 payload bytes (inflated, with
//! deflate agreed) looked at; masked ones accepted (raw-tcp returns ours).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::deflate::{self, Agreed, Inflater};
use crate::tls::Stream;

pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;

/// Fixed masking key: the server must unmask whatever key we use, so a
/// constant one costs the server exactly as much as a random one.
const MASK: [u8; 4] = [0x5a, 0xc3, 0x17, 0x9e];

/// Largest frame we accept from a server (a guard, not a limit we test).
const MAX_FRAME: u64 = 64 << 20;

/// Builds one complete masked client frame (FIN set).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    rsv_frame(0, opcode, payload)
}

/// `size` bytes of a, b, c ... z, a, ...: the echo rows' binary message.
pub fn letters(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// One message as a frame: compressed (RSV1) when deflate was agreed.
pub fn message_frame(opcode: u8, payload: &[u8], agreed: Option<Agreed>) -> Vec<u8> {
    match agreed {
        Some(a) => rsv_frame(0x40, opcode, &deflate::compress(payload, a.client_bits)),
        None => client_frame(opcode, payload),
    }
}

fn rsv_frame(rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 14);
    f.push(0x80 | rsv | opcode);
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
    f
}

/// What the parser tells about one data frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    /// Payload bytes; of a compressed message: its inflated length on its
    /// last frame, 0 on the others.
    pub len: usize,
    /// First `min(16, len)` payload bytes, unmasked (and inflated).
    pub prefix: [u8; 16],
}

/// permessage-deflate not offered, or offered and to be declined (`Off`) or
/// accepted (`On`); a server that answers otherwise fails the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Deflate {
    #[default]
    NotOffered,
    Off,
    On,
}

/// Source address `i` of 16 (127.0.0.2, ...): past ~28k connections to a port.
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 16) as u8))
}

/// Received bytes and the frame parser over them, shared by the async
/// client below and the epoll hot loops.
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Pongs owed to the server, to be written before our next send.
    pub pending: Vec<u8>,
    /// With deflate agreed.
    inflate: Option<Box<Inflater>>,
}

impl FrameBuf {
    pub fn new(cap: usize) -> FrameBuf {
        FrameBuf { buf: vec![0; cap], start: 0, end: 0, pending: Vec::new(), inflate: None }
    }

    /// Free tail to read into (made non-empty, compacting or growing).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            self.make_room(self.buf.len() * 2);
        }
        &mut self.buf[self.end..]
    }

    /// Inflates compressed messages from now on when deflate was `agreed`,
    /// resetting the inflater after each with server_no_context_takeover.
    pub fn set_inflater(&mut self, agreed: Option<Agreed>) {
        self.inflate = agreed.map(|a| Inflater::new(a.server_no_context));
    }

    pub fn advance(&mut self, n: usize) {
        self.end += n;
    }

    pub fn filled(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Ensures `need` bytes from `start` fit in the buffer.
    fn make_room(&mut self, need: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need.next_power_of_two(), 0);
        }
    }

    /// Parses the next complete data frame out of the buffer, handling
    /// control frames on the way (ping: a pong is queued in `pending`; pong:
    /// skipped; close: returned with opcode 8). `None`: more bytes needed.
    pub fn try_parse(&mut self) -> io::Result<Option<Frame>> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (avail[0], avail[1]);
            // The length's extra bytes (126: 2, 127: 8), then the mask's 4.
            let ext = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let hl = 2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 };
            if avail.len() < hl {
                return Ok(None);
            }
            let len = match ext {
                0 => (b1 & 0x7f) as u64,
                2 => u16::from_be_bytes([avail[2], avail[3]]) as u64,
                _ => u64::from_be_bytes(avail[2..10].try_into().unwrap()),
            };
            let mask: [u8; 4] = if b1 & 0x80 != 0 { avail[hl - 4..hl].try_into().unwrap() } else { [0; 4] };
            if len > MAX_FRAME {
                return Err(deflate::bad(format!("frame of {len} bytes")));
            }
            let total = hl + len as usize;
            if avail.len() < total {
                if self.buf.len() - self.start < total {
                    self.make_room(total);
                }
                return Ok(None);
            }
            let opcode = b0 & 0x0f;
            let fin = b0 & 0x80 != 0;
            let (p0, p1) = (self.start + hl, self.start + total);
            let compressed = match self.inflate.as_mut() {
                Some(inf) if opcode < OP_CLOSE => {
                    inf.active |= b0 & 0x40 != 0 && opcode != 0;
                    inf.active
                }
                _ if b0 & 0x40 != 0 => return Err(deflate::bad("RSV1 without deflate".into())),
                _ => false,
            };
            let payload = &mut self.buf[p0..p1];
            let mut frame = Frame { fin, opcode, len: len as usize, prefix: [0; 16] };
            if compressed {
                payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i & 3]);
                let inf = self.inflate.as_mut().expect("compressed implies an inflater");
                (frame.prefix, frame.len) = inf.feed(payload, fin)?.unwrap_or_default();
            } else {
                for (i, p) in frame.prefix.iter_mut().enumerate().take(payload.len().min(16)) {
                    *p = payload[i] ^ mask[i & 3];
                }
            }
            self.start += total;
            match opcode {
                OP_PING => {
                    let body: Vec<u8> = self.buf[p0..p1].iter().enumerate().map(|(i, b)| b ^ mask[i & 3]).collect();
                    self.pending.extend_from_slice(&client_frame(OP_PONG, &body));
                }
                OP_PONG => {}
                _ => return Ok(Some(frame)),
            }
        }
    }
}

pub struct WsConn {
    /// The socket, or the socket under a TLS session (wss://, src/tls.rs).
    stream: Stream,
    fb: FrameBuf,
    /// permessage-deflate as agreed (raw TCP with `Deflate::On`: as if
    /// agreed, since it returns our own compressed frames).
    pub agreed: Option<Agreed>,
}

impl WsConn {
    /// Connects (from `src`, over TLS when `tls`) and, unless `raw`,
    /// handshakes; what follows the 101 stays buffered.
    pub async fn dial(addr: SocketAddr, src: Option<IpAddr>, raw: bool, dfl: Deflate, tls: bool) -> io::Result<WsConn> {
        let sock = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(ip) = src {
            // Choose the port at connect() time, per destination, instead of at
            // bind() time from one global pool.
            let (fd, one, opt) = (sock.as_raw_fd(), 1 as libc::c_int, libc::IP_BIND_ADDRESS_NO_PORT);
            // SAFETY: valid fd, option value points to a live c_int of the given size.
            unsafe { libc::setsockopt(fd, libc::IPPROTO_IP, opt, (&one as *const libc::c_int).cast(), 4) };
            sock.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = sock.connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream =
            if tls { Stream::Right(Box::new(crate::tls::connect(addr, tcp).await?)) } else { Stream::Left(tcp) };
        let mut c = WsConn { stream, fb: FrameBuf::new(4096), agreed: None };
        if !raw {
            c.handshake(addr, dfl).await?;
        } else if dfl == Deflate::On {
            c.agreed = Some(Agreed { server_no_context: true, client_bits: 15 });
        }
        match (dfl, c.agreed) {
            (Deflate::On, None) => Err(io::Error::other("the server declined permessage-deflate")),
            (Deflate::Off, Some(_)) => {
                Err(io::Error::other("permessage-deflate agreed by a server started without it"))
            }
            (_, agreed) => {
                c.fb.set_inflater(agreed);
                Ok(c)
            }
        }
    }

    async fn handshake(&mut self, addr: SocketAddr, dfl: Deflate) -> io::Result<()> {
        let ext = match dfl {
            Deflate::NotOffered => String::new(),
            _ => format!("Sec-WebSocket-Extensions: {}\r\n", deflate::OFFER),
        };
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
        );
        self.stream.write_all(req.as_bytes()).await?;
        self.stream.flush().await?;
        loop {
            if let Some(i) = self.fb.filled().windows(4).position(|w| w == b"\r\n\r\n") {
                let head = &self.fb.filled()[..i];
                let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
                if !line.starts_with(b"HTTP/1.1 101") {
                    return Err(deflate::bad(format!("handshake refused: {}", String::from_utf8_lossy(line))));
                }
                self.agreed = deflate::agreed(head)?;
                self.fb.start += i + 4;
                return Ok(());
            }
            if self.fb.filled().len() >= 16384 {
                return Err(deflate::bad("handshake response too long".into()));
            }
            self.fill().await?;
        }
    }

    /// Gives back the socket alone (idle connections need no buffer, nor
    /// TLS state: the server cannot tell).
    pub fn into_stream(self) -> TcpStream {
        match self.stream {
            Stream::Left(s) => s,
            Stream::Right(s) => s.into_inner().0,
        }
    }

    /// The stream and the parser state, for a hot loop.
    pub fn into_inner(self) -> (Stream, FrameBuf) {
        (self.stream, self.fb)
    }

    pub async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.flush_pending().await?;
        self.stream.write_all(frame).await?;
        self.stream.flush().await
    }

    /// Writes the pongs owed, if any.
    async fn flush_pending(&mut self) -> io::Result<()> {
        if !self.fb.pending.is_empty() {
            self.stream.write_all(&self.fb.pending).await?;
            self.fb.pending.clear();
        }
        Ok(())
    }

    /// Reads more bytes into the buffer. Cancel-safe: the only await is one
    /// `read` into the free tail of the buffer.
    pub async fn fill(&mut self) -> io::Result<()> {
        let n = self.stream.read(self.fb.spare()).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
        }
        self.fb.advance(n);
        Ok(())
    }

    /// One echo round trip: send `frame`, wait for the final frame of the
    /// next data message.
    pub async fn roundtrip(&mut self, frame: &[u8]) -> io::Result<Frame> {
        self.send(frame).await?;
        loop {
            if let Some(f) = self.fb.try_parse()? {
                if f.opcode == OP_CLOSE {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "server sent close"));
                }
                if f.fin {
                    self.flush_pending().await?;
                    return Ok(f);
                }
                continue;
            }
            self.flush_pending().await?;
            self.fill().await?;
        }
    }

    /// Closing handshake: send a close frame, then wait for the server's close
    /// frame or end of stream (both count as closed).
    pub async fn close(mut self) -> io::Result<()> {
        self.send(&client_frame(OP_CLOSE, &1000u16.to_be_bytes())).await?; // 1000: normal closure
        loop {
            match self.fb.try_parse()? {
                Some(f) if f.opcode == OP_CLOSE => return Ok(()),
                Some(_) => continue,
                None => {}
            }
            match self.fill().await {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => {
                    return Ok(())
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(client_frame(OP_BINARY, &[0; 16]).len(), 2 + 4 + 16);
        assert_eq!(client_frame(OP_BINARY, &[0; 16384]).len(), 4 + 4 + 16384);
        assert_eq!(client_frame(OP_BINARY, &[0; 70000]).len(), 10 + 4 + 70000);
    }

    /// Our own compressed frames as raw-tcp returns them (masked), whole and
    /// split in two fragments, between a plain ping: every message inflated.
    #[test]
    fn compressed_messages_are_inflated_as_parsed() {
        let doc = deflate::json_doc(16384, 5, "\"BC0000002a\"");
        let whole = message_frame(OP_TEXT, &doc, Some(Agreed { server_no_context: true, client_bits: 15 }));
        assert_eq!(whole[0], 0x80 | 0x40 | OP_TEXT);
        let z = deflate::compress(&doc, 15);
        let mut first = rsv_frame(0x40, OP_TEXT, &z[..100]);
        first[0] &= !0x80; // not final
        let mut bytes = [first, client_frame(OP_PING, b"p"), rsv_frame(0, 0, &z[100..])].concat();
        bytes.extend_from_slice(&whole);
        let mut fb = FrameBuf::new(64);
        fb.set_inflater(Some(Agreed { server_no_context: true, client_bits: 15 }));
        let mut got = Vec::new();
        for chunk in bytes.chunks(1000) {
            fb.make_room(fb.end + chunk.len());
            fb.buf[fb.end..fb.end + chunk.len()].copy_from_slice(chunk);
            fb.advance(chunk.len());
            while let Some(f) = fb.try_parse().unwrap() {
                got.push((f.fin, f.len, f.prefix));
            }
        }
        let p: [u8; 16] = doc[..16].try_into().unwrap();
        assert_eq!(got, vec![(false, 0, [0; 16]), (true, doc.len(), p), (true, doc.len(), p)]);
        assert_eq!(fb.pending, client_frame(OP_PONG, b"p"));
        // RSV1 where no deflate was agreed is an error.
        let small = rsv_frame(0x40, OP_TEXT, &deflate::compress(b"abc", 15));
        let mut fb = FrameBuf::new(64);
        fb.buf[..small.len()].copy_from_slice(&small);
        fb.advance(small.len());
        assert!(fb.try_parse().is_err());
    }
}
