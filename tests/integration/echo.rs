//! The Rust API with a real client (tokio-tungstenite) over loopback.
use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wsserver::{Config, Kind};

#[tokio::test]
async fn echoes_text_and_binary_and_reports_open_and_close_in_order() {
    let (server, rec, port) = start(Config::default(), true);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/chat?x=1")).await.unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    let big = vec![7u8; 200_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(big));
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    rec.wait_for(|e| matches!(e, Ev::Close(..)));
    let ev = rec.snapshot();
    assert_eq!(ev[0], Ev::Open(1, "/chat".into()));
    assert!(matches!(&ev[1], Ev::Message(1, d, Kind::Text) if d == b"hello"));
    assert_eq!(ev.last().unwrap(), &Ev::Close(1, 1005, String::new()));
    server.close(Duration::from_secs(1));
}
