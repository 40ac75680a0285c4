//! UTF-8 validation of a text message that arrives in pieces (fragments,
//! parts of a frame, inflated chunks): bad text fails on the piece that
//! holds the bad byte, not when the message ends.

/// Whether `data` is UTF-8. Short ASCII text (most chat and JSON messages)
/// is checked a word at a time first: the standard library's validator
/// costs about 200 instructions on 16 bytes for its alignment set-up.
pub(crate) fn is_utf8(data: &[u8]) -> bool {
    is_short_ascii(data) || std::str::from_utf8(data).is_ok()
}

#[inline]
fn is_short_ascii(data: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = data.len();
    let any = match n {
        0..=3 => data.iter().fold(0, |a, &b| a | u64::from(b)),
        4..=7 => {
            let (head, tail) = (data.first_chunk::<4>(), data.last_chunk::<4>());
            u64::from(head.map_or(0, |h| u32::from_ne_bytes(*h)) | tail.map_or(0, |t| u32::from_ne_bytes(*t)))
        }
        // Whole words, and the last eight bytes (overlapping): no bytes
        // one at a time.
        8..=256 => {
            let last = data.last_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w));
            data.chunks_exact(8).fold(last, |a, w| a | u64::from_ne_bytes(w.try_into().unwrap_or_default()))
        }
        _ => return false,
    };
    any & HIGH == 0
}

/// A validator fed a message's bytes in order.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8 {
    /// The start of a sequence the last piece ended inside (at most 3 bytes).
    tail: [u8; 4],
    tail_len: u8,
}

impl Utf8 {
    /// Checks the next piece; false once the text can no longer be valid.
    /// Inlined for short ASCII text with no sequence open (the common case:
    /// a call of its own cost about as much as the check).
    #[inline]
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        (self.tail_len == 0 && is_short_ascii(piece)) || self.feed_any(piece)
    }

    fn feed_any(&mut self, mut piece: &[u8]) -> bool {
        if self.tail_len > 0 {
            // Complete the sequence the last piece cut, one byte at a time.
            let mut seq = self.tail;
            let mut len = self.tail_len as usize;
            while len < 4 && !piece.is_empty() {
                seq[len] = piece[0];
                len += 1;
                piece = &piece[1..];
                match std::str::from_utf8(&seq[..len]) {
                    Ok(_) => {
                        self.tail_len = 0;
                        break;
                    }
                    Err(e) if e.error_len().is_some() => return false,
                    Err(_) => {}
                }
            }
            if self.tail_len > 0 {
                self.tail = seq;
                self.tail_len = len as u8;
                return len < 4;
            }
        }
        if is_short_ascii(piece) {
            return true;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => true,
            Err(e) if e.error_len().is_some() => false,
            Err(e) => {
                let rest = &piece[e.valid_up_to()..];
                self.tail[..rest.len()].copy_from_slice(rest);
                self.tail_len = rest.len() as u8;
                true
            }
        }
    }

    /// Whether the text may end here (no sequence left open).
    pub fn complete(&self) -> bool {
        self.tail_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split_everywhere(text: &[u8]) -> (bool, bool) {
        let mut whole = Utf8::default();
        let expected = (whole.feed(text), whole.complete());
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let mut v = Utf8::default();
                let ok = v.feed(&text[..cut]) && v.feed(&text[cut..cut2]) && v.feed(&text[cut2..]);
                let got = (ok, ok && v.complete());
                assert_eq!(got.0 && got.1, expected.0 && expected.1, "{text:?} cut at {cut}, {cut2}");
            }
        }
        expected
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_standard_validator() {
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"hello, world 123".to_vec(), "κόσμε".into(), vec![0xff]];
        // Every length to 20 with a non-ASCII byte at every position (the
        // 4-byte and 8-byte steps overlap), then longer ones.
        for len in (1..=20).chain([255, 256, 257, 300]) {
            let spots: Vec<usize> = if len <= 20 { (0..len).collect() } else { vec![0, len / 2, len - 1] };
            for bad in std::iter::once(None).chain(spots.into_iter().map(Some)) {
                let mut v = vec![b'a'; len];
                if let Some(i) = bad {
                    v[i] = 0x80;
                }
                cases.push(v);
            }
        }
        for c in cases {
            assert_eq!(is_utf8(&c), std::str::from_utf8(&c).is_ok(), "{c:?}");
            assert_eq!(Utf8::default().feed(&c), std::str::from_utf8(&c).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn valid_text_passes_however_it_is_cut() {
        assert_eq!(check_split_everywhere("κόσμε €𝄞 ok".as_bytes()), (true, true));
        assert_eq!(check_split_everywhere(b""), (true, true));
    }

    #[test]
    fn bad_bytes_fail_in_the_piece_that_holds_them() {
        let mut v = Utf8::default();
        assert!(v.feed("κόσμε".as_bytes()));
        assert!(!v.feed(&[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]));
        let mut v = Utf8::default();
        assert!(v.feed(&[0xf4]), "could still be U+10xxxx");
        assert!(!v.feed(&[0x90]), "over U+10FFFF: fails on this byte");
        let mut v = Utf8::default();
        assert!(v.feed(&[0xe2, 0x82]));
        assert!(!v.complete(), "ends inside a sequence");
        assert!(v.feed(&[0xac]));
        assert!(v.complete());
        for bad in [&[0xff][..], &[0xc0, 0xaf], &[0xed, 0xa0, 0x80], &[0x80]] {
            assert!(!check_split_everywhere(bad).0 || !check_split_everywhere(bad).1, "{bad:?}");
        }
    }
}
