//! Event-queue mode through the Rust API: the host takes events with
//! `poll_event` and answers opens itself, with raw clients over loopback.
use crate::common::*;
use std::sync::Arc;
use std::time::Duration;
use wsserver::{Config, Event, Handler, Kind, Server};

struct Nothing;
impl Handler for Nothing {}

fn start_queued(config: Config) -> (Server, u16) {
    let server = Server::new(Config { event_queue: true, ..config }, Arc::new(Nothing));
    let port = server.listen("127.0.0.1", 0).expect("listen").port();
    (server, port)
}

/// The next event that is not a log line, waiting up to 5 s.
fn next(server: &Server) -> (Event, usize) {
    loop {
        let p = server.poll_event(Some(Duration::from_secs(5))).expect("poll").expect("an event within 5 s");
        if !matches!(p.event, Event::Log { .. }) {
            return (p.event, p.user_data);
        }
    }
}

#[test]
fn host_answers_opens_chooses_the_subprotocol_and_gets_events_in_order() {
    let (server, port) = start_queued(Config::default());
    let mut client = RawClient::connect(port);
    client.write(upgrade_request("/room?id=7", "Sec-WebSocket-Protocol: a, b\r\n").as_bytes());
    let (open, _) = next(&server);
    let Event::Open { conn, request } = open else { panic!("expected open, got {open:?}") };
    assert_eq!((request.path(), request.query()), ("/room", "id=7"));
    assert_eq!(request.offered_subprotocols().collect::<Vec<_>>(), ["a", "b"]);
    assert!(server.accept(conn, Some("c")).is_err(), "c was not offered");
    server.set_user_data(conn, 42).unwrap();
    server.accept(conn, Some("b")).unwrap();
    assert!(server.accept(conn, None).is_err(), "answered twice");
    let response = client.expect_upgrade();
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("b"));
    client.text("hi");
    let (message, user_data) = next(&server);
    assert!(matches!(&message, Event::Message { data, kind: Kind::Text, .. } if data == b"hi"), "{message:?}");
    assert_eq!(user_data, 42, "user data comes with the event");
    server.send(conn, b"back", Kind::Text).unwrap();
    client.expect_message(1, b"back");
    client.write(&close_frame(1000, b"bye"));
    let (close, user_data) = next(&server);
    assert!(matches!(&close, Event::Close { code: 1000, reason, .. } if reason == "bye"), "{close:?}");
    assert_eq!(user_data, 42);
    assert!(server.user_data(conn).is_err(), "gone after its close");
    server.close(Duration::from_secs(1));
    while let Ok(Some(_)) = server.poll_event(Some(Duration::ZERO)) {}
    assert!(server.poll_event(None).is_err(), "closed and drained");
}

#[test]
fn refused_and_unanswered_opens() {
    let (server, port) = start_queued(Config { handshake_timeout: Duration::from_millis(300), ..Config::default() });
    let mut refused = RawClient::connect(port);
    refused.write(upgrade_request("/", "").as_bytes());
    let Event::Open { conn, .. } = next(&server).0 else { panic!("expected open") };
    assert!(server.refuse(conn, 200).is_err(), "not an error status");
    server.refuse(conn, 401).unwrap();
    assert_eq!(refused.read_refusal().status, 401);

    let mut ignored = RawClient::connect(port);
    ignored.write(upgrade_request("/", "").as_bytes());
    let Event::Open { conn, .. } = next(&server).0 else { panic!("expected open") };
    assert_eq!(ignored.read_refusal().status, 503, "unanswered within the handshake timeout");
    let (close, _) = next(&server);
    assert!(matches!(close, Event::Close { conn: c, code: 1006, .. } if c == conn), "{close:?}");
    assert!(server.accept(conn, None).is_err(), "too late");
}

#[test]
fn a_host_that_stops_polling_stops_the_reading_and_loses_nothing() {
    let (server, port) = start_queued(Config { auto_accept: true, event_queue_events: 50, ..Config::default() });
    let mut client = RawClient::open(port, "/");
    let payload = vec![b'x'; 1000];
    let sender = std::thread::spawn(move || {
        for i in 0..2_000u32 {
            let mut m = i.to_be_bytes().to_vec();
            m.extend_from_slice(&payload);
            client.send(true, 2, &m);
        }
        client
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut queued = 0;
    while let Ok(Some(p)) = server.poll_event(Some(Duration::ZERO)) {
        queued += matches!(p.event, Event::Message { .. }) as usize;
    }
    assert!(queued < 400, "the queue holds about its limit, not all 2,000 ({queued})");
    let mut seen = queued as u32;
    while seen < 2_000 {
        if let Event::Message { data, .. } = next(&server).0 {
            assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), seen, "in order");
            seen += 1;
        }
    }
    drop(sender.join().unwrap());
}
