//! Hostile input at volume: many clients send random bytes, before and
//! after the handshake, and random-but-plausible frames. Whatever arrives,
//! the process survives, each connection ends with a close code the RFC
//! allows (or a plain TCP end), event order holds, and an honest client
//! keeps being served. Deterministic (a fixed-seed xorshift), bounded.
use crate::common::*;
use std::time::{Duration, Instant};
use wsserver::Config;

/// xorshift64*: a fixed seed makes a failure reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A frame with random header bits, mostly masked, random length forms.
fn plausible_frame(rng: &mut Rng) -> Vec<u8> {
    let b0 = rng.next() as u8;
    let len = match rng.below(4) {
        0 => rng.below(126) as usize,
        1 => 126 + rng.below(2000) as usize,
        2 => rng.below(10) as usize,
        _ => 70_000 + rng.below(100) as usize,
    };
    let payload = rng.bytes(len.min(80_000));
    let mask = if rng.below(8) == 0 { None } else { Some((rng.next() as u32).to_be_bytes()) };
    let mut f = encode_frame_b0(b0, &payload, mask);
    if rng.below(10) == 0 {
        f.truncate(rng.below(f.len() as u64 + 1) as usize); // cut short
    }
    f
}

/// Reads what the server sends until it ends the connection, goes quiet
/// for 400 ms, or 3 s pass; returns the close code of the first close frame
/// seen after the 101, if any.
fn drain(c: &mut RawClient) -> Option<u16> {
    c.set_read_timeout(Duration::from_millis(400));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut code = None;
    while Instant::now() < deadline {
        match c.try_read_frame() {
            Ok(f) if f.opcode == OP_CLOSE => {
                code = code.or(f.close_code().or(Some(1005)));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    code
}

#[test]
fn random_bytes_and_frames_end_only_their_connection() {
    for seed in [0x5EED_CAFE_F00D_D00D, 0x0123_4567_89AB_CDEF, 0xDEAD_BEEF_0BAD_F00D, 42] {
        hostile_clients(seed);
    }
}

/// 300 hostile clients against one server, from `seed`.
fn hostile_clients(seed: u64) {
    let config = Config {
        max_message_size: 64 << 10,
        max_frame_size: 64 << 10,
        handshake_timeout: Duration::from_millis(500),
        close_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let (server, rec, port) = start(config, true);
    let mut honest = RawClient::open(port, "/honest");
    let mut rng = Rng(seed);
    for round in 0..300 {
        if round % 5 == 0 {
            // garbage instead of a handshake: an HTTP error or a drop
            let mut c = RawClient::connect(port);
            let n = 1 + rng.below(3000) as usize;
            let _ = c.try_write(&rng.bytes(n));
            drain(&mut c);
            continue;
        }
        let mut c = RawClient::open(port, "/fuzz");
        let mut burst = Vec::new();
        for _ in 0..1 + rng.below(6) {
            if rng.below(3) == 0 {
                let n = 1 + rng.below(200) as usize;
                burst.extend(rng.bytes(n));
            } else {
                burst.extend(plausible_frame(&mut rng));
            }
        }
        let _ = c.try_write(&burst);
        if let Some(code) = drain(&mut c) {
            assert!(
                matches!(code, 1000..=1003 | 1005 | 1007..=1011),
                "seed {seed:#x} round {round}: close code {code} is not one the server may send here"
            );
        }
        if round % 50 == 0 {
            honest.roundtrip(&format!("still served after round {round}"));
        }
    }
    honest.roundtrip("the end");
    honest.write(&close_frame(1000, b"bye"));
    assert_eq!(drain(&mut honest), Some(1000));
    let opened = rec.opened().len();
    assert!(opened >= 200, "only {opened} fuzzed connections got through the handshake");
    assert!(
        rec.wait_until(Duration::from_secs(5), |ev| ev.iter().filter(|e| matches!(e, Ev::Close(..))).count() == opened),
        "every fuzzed connection must be reported closed"
    );
    check_event_order(&rec.snapshot());
    server.close(Duration::from_millis(500));
}

/// A client that sends part of a frame and is gone at once — its end (FIN,
/// or a reset) arrives with the bytes, so the epoll set reports data and
/// hang-up in one edge and no other follows. The server must still read
/// to the end and report the close: a read that stops at the short one
/// (the socket looked empty) would hold the connection, and its share of
/// the memory budget, for ever.
#[test]
fn a_client_gone_mid_frame_is_reported_closed() {
    let (_server, rec, port) = start(Config { threads: 1, ..Config::default() }, true);
    let mut part = encode_frame_b0(0x82, &[5u8; 4000], Some([1, 2, 3, 4]));
    part.truncate(3000);
    for reset in [false, true] {
        let before = rec.closes().len();
        for _ in 0..10 {
            let mut c = RawClient::open(port, "/");
            if reset {
                // SO_LINGER 0: the close sends RST instead of FIN.
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: plain setsockopt on a socket this test owns.
                let rc = unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(&c.stream),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&linger as *const libc::linger).cast(),
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    )
                };
                assert_eq!(rc, 0);
            }
            c.write(&part);
            if !reset {
                c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            }
            drop(c);
        }
        let ended = |ev: &[Ev]| ev.iter().filter(|e| matches!(e, Ev::Close(..))).count() == before + 10;
        let how = if reset { "reset" } else { "FIN" };
        assert!(rec.wait_until(Duration::from_secs(3), ended), "not every client gone by {how} was reported closed");
        assert!(rec.closes()[before..].iter().all(|c| c.1 == 1006), "{:?}", rec.closes());
    }
}
