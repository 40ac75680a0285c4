//! wss://'s TLS 1.3 record layer after the handshake (src/tls13_records.rs),
//! its server side fed records a client sealed.
//!
//! Byte 0: the suite (mod 3); bit 7 feeds the rest as raw bytes instead.
//! Otherwise the rest is records, each `len` (1 byte) then `len` bytes of
//! inner plaintext: content, then its content type, then padding (the
//! client seals it as given, so any type, padding or KeyUpdate goes); a
//! record whose length byte is 0xff is flipped in one byte once sealed,
//! and must not open.
//!
//! Checks: nothing panics; raw bytes are refused, incomplete, or opened
//! within the record's length; a record the server opens is whatever its
//! inner plaintext says (application data: the content without padding);
//! once the server refuses a record it is never asked again; and what the
//! server sends back after each record (the KeyUpdate it owes, then the
//! data echoed) the client opens to the same data.
#![no_main]
use wsserver::fuzzing::{Opened, Tls13Pair};

fn echo(pair: &mut Tls13Pair, data: &[u8]) {
    let mut wire = Vec::new();
    pair.server_seal(data, &mut wire);
    let (mut at, mut back) = (0, Vec::new());
    while at < wire.len() {
        match pair.client_open(&mut wire[at..]) {
            Ok(Some((n, Opened::Data(d)))) => {
                back.extend_from_slice(&d);
                at += n;
            }
            Ok(Some((n, Opened::Nothing))) => at += n,
            other => panic!("the client could not open the server's record: {other:?}"),
        }
    }
    assert_eq!(back, data, "echoed through the server's records");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [cfg, rest @ ..] = data else { return };
    let mut pair = Tls13Pair::new(*cfg);
    if cfg & 0x80 != 0 {
        let mut raw = rest.to_vec();
        if let Ok(Some((n, _))) = pair.server_open(&mut raw) {
            assert!(n <= rest.len());
        }
        return;
    }
    let mut rest = rest;
    while let [len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (inner, tail) = tail.split_at(n);
        rest = tail;
        let Some((&typ, content)) = inner.split_last() else { continue };
        let mut wire = Vec::new();
        pair.client_seal(typ, content, &mut wire);
        if *len == 0xff {
            // Header (the AAD), ciphertext or tag: never opened.
            let i = content.len() % wire.len();
            wire[i] ^= 0x20;
            let r = pair.server_open(&mut wire);
            assert!(!matches!(r, Ok(Some(_))), "a changed record opened: {r:?}");
            return;
        }
        match pair.server_open(&mut wire) {
            Ok(Some((n, opened))) => {
                assert_eq!(n, wire.len(), "one whole record");
                // What the inner plaintext says, padding off.
                let end = inner.iter().rposition(|&b| b != 0).expect("a content type");
                let (body, ty) = (&inner[..end], inner[end]);
                match opened {
                    Opened::Data(d) => {
                        assert_eq!((ty, &d[..]), (23, body));
                        echo(&mut pair, &d);
                    }
                    Opened::CloseNotify => {
                        assert_eq!((ty, body.get(1)), (21, Some(&0)));
                        return;
                    }
                    Opened::Nothing => assert!(ty == 21 || ty == 22, "type {ty} gave nothing"),
                }
            }
            Ok(None) => panic!("a whole record read as incomplete"),
            // Refused (the connection ends): nothing more is asked of it.
            Err(_) => return,
        }
    }
});
