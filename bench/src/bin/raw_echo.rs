//! The ceiling: a plain TCP server with the same load shape as the WebSocket
//! peers but no WebSocket at all. Echo mode returns every byte as received;
//! `--broadcast` relays every chunk read from any client to all clients.
//! The load generator's frames pass through unchanged (still masked), and
//! its parser accepts masked frames, so the same workloads run against it.
//!
//! Usage: raw_echo PORT [--broadcast]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::spawn_local;

type Peers = Rc<RefCell<HashMap<u64, mpsc::UnboundedSender<Bytes>>>>;

async fn echo(mut s: TcpStream) {
    // Idle connections hold no buffer, like the WebSocket servers at best.
    // (readable() may wake spuriously; peek waits for real data.)
    if !matches!(s.peek(&mut [0u8; 1]).await, Ok(n) if n > 0) {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn relay(s: TcpStream, id: u64, peers: Peers) {
    let (mut rd, mut wr) = s.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    peers.borrow_mut().insert(id, tx);
    spawn_local(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    if !matches!(rd.peek(&mut [0u8; 1]).await, Ok(n) if n > 0) {
        peers.borrow_mut().remove(&id);
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        for tx in peers.borrow().values() {
            let _ = tx.send(chunk.clone());
        }
    }
    peers.borrow_mut().remove(&id);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: raw_echo PORT [--broadcast]");
    let broadcast = args.any(|a| a == "--broadcast");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("listening on tcp://127.0.0.1:{port}");
        let peers: Peers = Rc::new(RefCell::new(HashMap::new()));
        let mut term = signal(SignalKind::terminate()).unwrap();
        let mut int = signal(SignalKind::interrupt()).unwrap();
        let mut next_id = 0u64;
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let Ok((s, _)) = r else { continue };
                    let _ = s.set_nodelay(true);
                    next_id += 1;
                    if broadcast {
                        spawn_local(relay(s, next_id, peers.clone()));
                    } else {
                        spawn_local(echo(s));
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
    });
}
