//! The HTTP request / upgrade parser (src/handshake.rs `parse`), with plain
//! HTTP on or off (byte 0, bit 0), then what the server does with an
//! upgrade: permessage-deflate negotiation in both context modes and the
//! 101 answer. The rest of the input is what the client sent.
//!
//! Checks: a refusal has an HTTP status and a reason; an upgrade is a GET
//! with a 28-byte accept key, a subprotocol both sides named, and a 101
//! answer with no header the client could have injected; a plain request
//! only when HTTP is on; the bytes after the head are the input's tail; and
//! every prefix of a complete head is still incomplete (a head that
//! arrives in pieces is judged as the whole one is).
#![no_main]
use wsserver::fuzzing::{parse_request, Parsed};

const SUBPROTOCOLS: [&str; 3] = ["chat", "superchat", "v2.json"];

fn head_len(p: &Parsed, len: usize) -> Option<usize> {
    match p {
        Parsed::Upgrade { leftover, .. } | Parsed::Http { leftover, .. } => Some(len - leftover.len()),
        _ => None,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&cfg, buf)) = data.split_first() else { return };
    let http = cfg & 1 != 0;
    let subprotocols: Vec<String> = SUBPROTOCOLS.iter().map(|s| s.to_string()).collect();
    let parsed = parse_request(buf, &subprotocols, http);
    match &parsed {
        Parsed::Partial => {}
        Parsed::Refused(status, why) => {
            assert!(matches!(status, 400 | 405 | 411 | 426 | 431), "refused with {status}");
            assert!(!why.is_empty());
        }
        Parsed::Upgrade { request, accept_key, leftover, response, deflate } => {
            assert_eq!(request.method(), "GET");
            assert!(!request.path().contains('?'));
            assert_eq!(accept_key.len(), 28, "{accept_key}");
            assert!(buf.ends_with(leftover));
            if let Some(p) = request.subprotocol() {
                assert!(SUBPROTOCOLS.contains(&p) && request.offered_subprotocols().any(|o| o == p), "{p}");
            }
            for answer in deflate.iter().flatten() {
                assert!(answer.starts_with("permessage-deflate"), "{answer}");
            }
            let text = std::str::from_utf8(response).expect("the 101 answer is text");
            assert!(text.starts_with("HTTP/1.1 101 ") && text.ends_with("\r\n\r\n"), "{text:?}");
            let lines: Vec<&str> = text[..text.len() - 4].split("\r\n").collect();
            let expected = 4 + request.subprotocol().is_some() as usize + deflate[1].is_some() as usize;
            assert_eq!(lines.len(), expected, "header lines of the 101 answer: {text:?}");
            assert!(lines.iter().all(|l| !l.contains('\r') && !l.contains('\n')), "{text:?}");
        }
        Parsed::Http { request, content_length, leftover, .. } => {
            assert!(http, "a plain HTTP request while HTTP is off");
            assert!(request.path().starts_with('/'));
            assert!(buf.ends_with(leftover));
            if *content_length > 0 {
                assert!(request.header("Content-Length").is_some());
            }
        }
    }
    // The head arriving in pieces: every prefix of it is incomplete.
    if let Some(n) = head_len(&parsed, buf.len()) {
        for k in [n - 1, n / 2, n * (cfg as usize >> 1) / 128] {
            let k = k.min(n - 1);
            let prefix = parse_request(&buf[..k], &subprotocols, http);
            assert!(matches!(prefix, Parsed::Partial), "{k} of a {n}-byte head: {prefix:?}");
        }
    }
});
