//! RFC 6455 framing: parse client frame headers (enforcing every rule a
//! server must check), unmask payloads, encode server frames, and validate
//! close frames.
use bytes::Bytes;

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate, first frame only).
    pub rsv1: bool,
    pub opcode: OpCode,
    pub mask: [u8; 4],
    /// Bytes taken by the header itself (2..=14).
    pub header_len: usize,
    pub payload_len: usize,
}

/// Why a connection must be failed: the close code to send and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

const fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// Close code for protocol errors.
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
/// Close code for text that is not UTF-8.
pub(crate) const INVALID_PAYLOAD: u16 = 1007;
/// Close code for a frame or message over the limit.
pub(crate) const TOO_BIG: u16 = 1009;

/// Parses a client frame header from the start of `buf`. `Ok(None)` means
/// more bytes are needed. A frame over `max_frame` fails with 1009 before
/// any of its payload is buffered. RSV1 passes only with `rsv1_ok` (an
/// extension gave it a meaning); RSV2 and RSV3 never do.
pub(crate) fn parse_header(buf: &[u8], max_frame: usize, rsv1_ok: bool) -> Result<Option<Header>, Violation> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && !rsv1_ok) {
        return Err(violation(PROTOCOL_ERROR, "reserved bits set"));
    }
    let opcode = match b0 & 0x0f {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        _ => return Err(violation(PROTOCOL_ERROR, "unknown opcode")),
    };
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(violation(PROTOCOL_ERROR, "client frame not masked"));
    }
    let is_control = (opcode as u8) >= 8;
    let len7 = (b1 & 0x7f) as usize;
    if is_control && !fin {
        return Err(violation(PROTOCOL_ERROR, "fragmented control frame"));
    }
    if rsv1 && (is_control || opcode == OpCode::Continuation) {
        return Err(violation(PROTOCOL_ERROR, "RSV1 set on a control or continuation frame"));
    }
    if is_control && len7 > 125 {
        return Err(violation(PROTOCOL_ERROR, "control frame payload over 125 bytes"));
    }
    let (payload_len, ext) = match len7 {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 2)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            let n = u64::from_be_bytes(b);
            if n >> 63 != 0 {
                return Err(violation(PROTOCOL_ERROR, "64-bit length with the high bit set"));
            }
            (n, 8)
        }
        n => (n as u64, 0),
    };
    if payload_len > max_frame as u64 {
        return Err(violation(TOO_BIG, "frame over the size limit"));
    }
    let header_len = 2 + ext + 4;
    if buf.len() < header_len {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[2 + ext..header_len]);
    Ok(Some(Header { fin, rsv1, opcode, mask, header_len, payload_len: payload_len as usize }))
}

/// XORs `data` with the 4-byte `mask`, eight bytes at a time; `data`
/// starts `offset` bytes into the payload (a frame unmasked in parts).
#[inline]
pub(crate) fn unmask_from(data: &mut [u8], mask: [u8; 4], offset: usize) {
    // A whole frame (offset 0, the common case) needs no rotation.
    let mask = match offset & 3 {
        0 => mask,
        _ => [0, 1, 2, 3].map(|i| mask[(i + offset) & 3]),
    };
    unmask(data, mask);
}

/// XORs `data` with the 4-byte `mask`, eight bytes at a time; returns
/// whether every unmasked byte is ASCII (short text then needs no other
/// UTF-8 check: one pass over the payload instead of two).
#[inline]
pub(crate) fn unmask(data: &mut [u8], mask: [u8; 4]) -> bool {
    let m4 = u32::from_ne_bytes(mask);
    let m = u64::from(m4) | (u64::from(m4) << 32);
    let mut seen = 0u64;
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ m;
        seen |= v;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    // The rest starts at a multiple of 8: the mask's first byte again.
    let mut rest = chunks.into_remainder();
    if rest.len() >= 4 {
        let (four, tail) = rest.split_at_mut(4);
        let v = u32::from_ne_bytes([four[0], four[1], four[2], four[3]]) ^ m4;
        seen |= u64::from(v);
        four.copy_from_slice(&v.to_ne_bytes());
        rest = tail;
    }
    for (b, m) in rest.iter_mut().zip(mask) {
        *b ^= m;
        seen |= u64::from(*b);
    }
    seen & 0x8080_8080_8080_8080 == 0
}

/// Encodes one unmasked, final server frame: a single allocation, shared by
/// every recipient of a broadcast.
pub(crate) fn encode(opcode: OpCode, payload: &[u8]) -> Bytes {
    encode_frame(0x80 | opcode as u8, payload)
}

/// Encodes a final frame whose payload is a compressed message (RSV1 set).
pub(crate) fn encode_compressed(opcode: OpCode, payload: &[u8]) -> Bytes {
    encode_frame(0xC0 | opcode as u8, payload)
}

fn encode_frame(first: u8, payload: &[u8]) -> Bytes {
    let (head, head_len) = header(first, payload.len());
    // Exact capacity: `Bytes::from` then takes the buffer without a copy or
    // a second allocation. Large frames come from (and go back to) the pool.
    let mut out = crate::pool::take(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    out.extend_from_slice(payload);
    if out.capacity() >= 4096 {
        Bytes::from_owner(crate::pool::Pooled(out))
    } else {
        Bytes::from(out)
    }
}

/// The header of an unmasked server frame with first byte `first` and a
/// payload of `len` bytes, and its length (2, 4 or 10).
pub(crate) fn header(first: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [first, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    match len {
        0..=125 => {
            h[1] = len as u8;
            (h, 2)
        }
        126..=0xffff => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            (h, 4)
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            (h, 10)
        }
    }
}

/// Encodes a close frame with `code` and `reason` (the caller checked both).
pub(crate) fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    encode(OpCode::Close, &payload)
}

/// Whether an endpoint may put `code` in a close frame (RFC 6455 §7.4 and
/// the IANA registry): 1000-1003, 1007-1014 and the 3000-4999 ranges.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Reads a client's close payload: `None` for an empty one (reported as
/// 1005), else the code and the UTF-8 reason.
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<(u16, &str)>, Violation> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(violation(PROTOCOL_ERROR, "close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(violation(PROTOCOL_ERROR, "invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| violation(INVALID_PAYLOAD, "close reason is not UTF-8"))?;
            Ok(Some((code, reason)))
        }
    }
}

/// A masked client frame with first byte `b0`, as a client would send it
/// (for the protocol layer's tests).
#[cfg(test)]
pub(crate) fn masked(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut v = vec![b0];
    let n = payload.len();
    if n < 126 {
        v.push(0x80 | n as u8);
    } else if n < 65536 {
        v.push(0x80 | 126);
        v.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        v.push(0x80 | 127);
        v.extend_from_slice(&(n as u64).to_be_bytes());
    }
    v.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    unmask(&mut p, mask);
    v.extend_from_slice(&p);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_length_form_and_roundtrips_the_mask() {
        for n in [0usize, 5, 125, 126, 1000, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut f = masked(0x82, &payload, [1, 2, 3, 4]);
            let h = parse_header(&f, 1 << 20, false).unwrap().unwrap();
            assert_eq!(h.payload_len, n);
            assert_eq!(h.opcode, OpCode::Binary);
            assert!(h.fin);
            assert_eq!(f.len(), h.header_len + n);
            for cut in [0, 1, h.header_len - 1] {
                assert_eq!(parse_header(&f[..cut], 1 << 20, false).unwrap(), None);
            }
            let body = &mut f[h.header_len..];
            unmask(body, h.mask);
            assert_eq!(body, &payload[..]);
        }
    }

    #[test]
    fn rejects_what_the_rfc_forbids() {
        let code = |b: &[u8]| parse_header(b, 100, false).unwrap_err().code;
        assert_eq!(code(&[0x81, 0x00]), PROTOCOL_ERROR, "unmasked");
        assert_eq!(code(&[0xC1, 0x80]), PROTOCOL_ERROR, "rsv1");
        assert_eq!(code(&[0x83, 0x80]), PROTOCOL_ERROR, "opcode 3");
        assert_eq!(code(&[0x8B, 0x80]), PROTOCOL_ERROR, "opcode 11");
        assert_eq!(code(&[0x09, 0x80]), PROTOCOL_ERROR, "fragmented ping");
        assert_eq!(code(&[0x89, 0xFE, 0, 126]), PROTOCOL_ERROR, "ping over 125");
        assert_eq!(code(&[0x82, 0xFE, 0, 101]), TOO_BIG, "frame over limit");
        assert_eq!(code(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]), PROTOCOL_ERROR);
        let deflate = |b: &[u8]| parse_header(b, 100, true);
        assert!(deflate(&[0xC1, 0x80, 0, 0, 0, 0]).unwrap().unwrap().rsv1, "RSV1 on a data frame");
        assert_eq!(deflate(&[0xA1, 0x80]).unwrap_err().code, PROTOCOL_ERROR, "RSV2 means nothing");
        assert_eq!(deflate(&[0x90, 0x80]).unwrap_err().code, PROTOCOL_ERROR, "RSV3 means nothing");
        assert_eq!(deflate(&[0xC9, 0x80]).unwrap_err().code, PROTOCOL_ERROR, "RSV1 on a ping");
        assert_eq!(deflate(&[0xC0, 0x80]).unwrap_err().code, PROTOCOL_ERROR, "RSV1 on a continuation");
    }

    #[test]
    fn unmasking_tells_whether_the_payload_is_ascii() {
        // Every length to 37 (words, the 4-byte step, the bytes after),
        // with one non-ASCII byte at every position.
        let mask = [0x5a, 0x81, 0x13, 0xf0];
        for len in 0..=37 {
            let masked = |plain: &[u8]| plain.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]).collect::<Vec<u8>>();
            let plain: Vec<u8> = (0..len as u8).map(|i| b'a' + i % 26).collect();
            let mut data = masked(&plain);
            assert!(unmask(&mut data, mask), "len {len}");
            assert_eq!(data, plain);
            for at in 0..len {
                let mut bad = plain.clone();
                bad[at] = 0xc3;
                let mut data = masked(&bad);
                assert!(!unmask(&mut data, mask), "len {len}, byte {at}");
                assert_eq!(data, bad);
            }
        }
    }

    #[test]
    fn unmasks_in_parts() {
        let data: Vec<u8> = (0..37).collect();
        let mask = [9, 8, 7, 6];
        let mut whole = data.clone();
        unmask(&mut whole, mask);
        let mut parts = data.clone();
        let (a, rest) = parts.split_at_mut(5);
        unmask_from(a, mask, 0);
        let (b, c) = rest.split_at_mut(14);
        unmask_from(b, mask, 5);
        unmask_from(c, mask, 19);
        assert_eq!(parts, whole);
    }

    #[test]
    fn encodes_server_frames_unmasked() {
        assert_eq!(&encode(OpCode::Text, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let f = encode(OpCode::Binary, &[7u8; 300]);
        assert_eq!(&f[..4], &[0x82, 126, 1, 44]);
        let f = encode(OpCode::Binary, &vec![0u8; 70_000]);
        assert_eq!(&f[..2], &[0x82, 127]);
        assert_eq!(f.len(), 70_010);
        assert_eq!(&encode_close(1001, "bye")[..], &[0x88, 5, 0x03, 0xE9, b'b', b'y', b'e']);
        assert_eq!(&encode_compressed(OpCode::Text, b"z")[..], &[0xC1, 1, b'z']);
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(&[]).unwrap(), None);
        assert_eq!(parse_close(&[3]).unwrap_err().code, PROTOCOL_ERROR);
        assert_eq!(parse_close(&[0x03, 0xE8, b'o', b'k']).unwrap(), Some((1000, "ok")));
        for bad in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert_eq!(parse_close(&bad.to_be_bytes()).unwrap_err().code, PROTOCOL_ERROR, "{bad}");
        }
        assert_eq!(parse_close(&[0x03, 0xE8, 0xff]).unwrap_err().code, INVALID_PAYLOAD);
    }
}
