//! The inflater alone (src/protocol/deflate.rs `Inflater`), with a limit.
//!
//! Byte 0: bits 0-1 pick the limit, bit 2 says each part is a message of
//! its own (a client keeping its context), bit 3 turns the rest into a
//! round trip through the server's compressor (bits 4-7: level and window).
//! Bytes 1-2 cut the rest into three parts, inflated as consecutive frames.
//!
//! Checks: the output never holds more than limit + 1 bytes of capacity;
//! a success is within the limit; a failure is 1007 or 1009 with a reason;
//! the check callback saw exactly the bytes produced; the parts inflate to
//! what the same bytes inflate to in one piece; and a compressed message
//! comes back as it was.
#![no_main]
use wsserver::fuzzing::{Compressor, Inflater};

const LIMITS: [usize; 4] = [16, 1000, 65_536, 1 << 20];

/// Inflates `parts` as frames (each its own message with `separate`):
/// the messages so far, and the first failure's close code.
fn inflate(parts: &[&[u8]], separate: bool, max: usize) -> (Vec<Vec<u8>>, Result<(), u16>) {
    let mut inflater = Inflater::take();
    let (mut messages, mut out) = (Vec::new(), Vec::new());
    for (i, part) in parts.iter().enumerate() {
        let last = separate || i + 1 == parts.len();
        let before = out.len();
        let mut checked = 0;
        let r = inflater.inflate(part, last, &mut out, max, &mut |piece| {
            checked += piece.len();
            true
        });
        assert!(out.capacity() <= max + 1, "capacity {} for a limit of {max}", out.capacity());
        if let Err((code, reason)) = r {
            assert!(code == 1007 || code == 1009, "failed with {code}");
            assert!(!reason.is_empty());
            return (messages, Err(code));
        }
        assert!(out.len() <= max, "{} bytes out for a limit of {max}", out.len());
        assert_eq!(checked, out.len() - before, "the check saw {checked} of {} new bytes", out.len() - before);
        if last {
            messages.push(std::mem::take(&mut out));
        }
    }
    inflater.give_back();
    (messages, Ok(()))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [cfg, a, b, rest @ ..] = data else { return };
    let max = LIMITS[(cfg & 3) as usize];
    let separate = cfg & 4 != 0;
    if cfg & 8 != 0 {
        // Round trip: two messages through one compressor, with and without a reset between.
        let level = 1 + (cfg >> 4) as u32 % 9;
        let bits = 9 + (cfg >> 4) % 7;
        let reset = cfg & 4 != 0;
        let (mut c, mut inflater) = (Compressor::new(level, bits), Inflater::take());
        for _ in 0..2 {
            let mut z = Vec::new();
            c.message(rest, &mut z, reset);
            let mut out = Vec::new();
            inflater.inflate(&z, true, &mut out, rest.len().max(1), &mut |_| true).expect("our own output inflates");
            assert!(out == rest, "compressed at level {level}, {bits} bits: {} bytes back for {}", out.len(), rest.len());
        }
        return;
    }
    let cut1 = rest.len() * *a as usize / 256;
    let cut2 = cut1 + (rest.len() - cut1) * *b as usize / 256;
    let parts = [&rest[..cut1], &rest[cut1..cut2], &rest[cut2..]];
    let split = inflate(&parts, separate, max);
    if !separate {
        let whole = inflate(&[rest], false, max);
        if split.1.is_ok() || whole.1.is_ok() {
            assert_eq!(split, whole, "inflated in parts cut at {cut1}, {cut2} vs in one piece");
        }
    }
});
