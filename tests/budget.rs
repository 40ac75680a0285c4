//! The server-wide memory budget (WS_OPT_MEMORY_BUDGET) under 2,000 clients
//! that each start a message of the maximum size: what the server holds
//! stays under the budget (plus a stated overhead), new handshakes get 503
//! while it is spent, and service resumes as clients finish or leave.
mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use wsserver::Config;

const BUDGET: usize = 32 << 20;
const MESSAGE: usize = 1 << 20;
const CLIENTS: usize = 2_000;
/// What may be held past the budget: reads already under way when it
/// was crossed (one 64 KiB read buffer's worth per I/O thread), one
/// message per I/O thread being echoed, and the accounting's 7/8 margin.
const OVERHEAD: usize = 4 * MESSAGE;

/// The header of a masked binary frame of `len` bytes with a zero mask
/// (so the payload goes out as is).
fn header(len: usize) -> Vec<u8> {
    let mut h = vec![0x82, 0x80 | 127];
    h.extend_from_slice(&(len as u64).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

#[test]
fn two_thousand_maximal_messages_stay_within_the_budget() {
    raise_fd_limit(2 * CLIENTS as u64 + 256);
    let config = Config {
        memory_budget: BUDGET,
        max_connections: 5_000,
        max_message_size: MESSAGE,
        max_frame_size: MESSAGE,
        send_queue_hard_limit: 2 * MESSAGE,
        log_level: wsserver::LogLevel::Error,
        ..Config::default()
    };
    let (server, _rec, port) = start(config, true);
    let mut clients: Vec<RawClient> = (0..CLIENTS).map(|_| RawClient::open(port, "/")).collect();
    let payload = vec![7u8; MESSAGE];
    let rss_before = rss();
    // Each starts a 1 MiB message: the header and its first 16 KiB.
    for c in &mut clients {
        c.stream.set_nonblocking(true).unwrap();
        let mut start = header(MESSAGE);
        start.extend_from_slice(&payload[..16 << 10]);
        c.stream.write_all(&start).expect("the start of a message fits the socket buffer");
    }
    let (mut peak, mut rss_peak) = (0, 0);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        peak = peak.max(server.stats().memory_held as usize);
        rss_peak = rss_peak.max(rss());
        std::thread::sleep(Duration::from_millis(10));
    }
    let grew = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "held at most {peak} bytes of a {BUDGET} byte budget with {CLIENTS} messages started; \
         RSS {} MiB before, grew by {} KiB",
        rss_before >> 20,
        grew >> 10
    );
    assert!(grew <= BUDGET + OVERHEAD, "RSS grew by {grew} bytes");
    assert!(peak >= BUDGET * 7 / 8, "the clients did push the server to its budget: {peak}");
    assert!(peak <= BUDGET + OVERHEAD, "held {peak} > budget {BUDGET} + {OVERHEAD}");
    // Spent: a new client is refused with 503, and says why.
    let mut late = RawClient::connect(port);
    late.write(upgrade_request("/", "").as_bytes());
    let refusal = late.read_refusal();
    assert_eq!(refusal.status, 503, "{}", refusal.head);

    // Half leave: their held bytes are released, and the other half can
    // finish their messages and get them back.
    let stayers = clients.split_off(CLIENTS / 2);
    drop(clients);
    let started = Instant::now();
    let mut done = 0;
    let mut state: Vec<(usize, usize)> = vec![(16 << 10, 0); stayers.len()]; // (sent of payload, echo bytes read)
    let echo_len = header(MESSAGE).len() - 4 + MESSAGE; // the server's frame has no mask
    let mut stayers = stayers;
    let mut buf = vec![0u8; 256 << 10];
    while done < stayers.len() {
        assert!(started.elapsed() < Duration::from_secs(120), "{done} of {} echoed in 120 s", stayers.len());
        let mut progressed = false;
        for (c, (sent, got)) in stayers.iter_mut().zip(state.iter_mut()) {
            if *got == echo_len {
                continue;
            }
            if *sent < MESSAGE {
                match c.stream.write(&payload[*sent..]) {
                    Ok(n) => {
                        *sent += n;
                        progressed = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("write: {e}"),
                }
            }
            match c.stream.read(&mut buf) {
                Ok(0) => panic!("a staying client was closed"),
                Ok(n) => {
                    *got += n;
                    progressed = true;
                    if *got == echo_len {
                        done += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    eprintln!("{} messages of 1 MiB echoed in {:?} after half the clients left", stayers.len(), started.elapsed());
    drop(stayers);
    assert!(poll_until(Duration::from_secs(10), || server.stats().memory_held == 0), "{:?}", server.stats());
    assert!(poll_until(Duration::from_secs(10), || server.stats().open_connections == 0));
}

#[test]
fn without_a_budget_nothing_is_counted() {
    let (server, _rec, port) = start(Config::default(), true);
    let mut c = RawClient::open(port, "/");
    c.roundtrip("hello");
    assert_eq!(server.stats().memory_held, 0);
}
