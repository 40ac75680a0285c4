//! The floor: the plain, idiomatic tokio-tungstenite echo server with default
//! settings on one tokio thread. `--broadcast` relays every text or binary
//! message to every connected client. `--tls CERT KEY`: echo over wss://,
//! tokio-rustls with its defaults (ring) on the PEM files (the wss:// rows).
//!
//! Usage: tungstenite_echo PORT [--broadcast | --tls CERT KEY]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_tungstenite::{accept_async, tungstenite::Message};

type Clients = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

async fn echo(stream: impl AsyncRead + AsyncWrite + Unpin) {
    let Ok(mut ws) = accept_async(stream).await else { return };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

async fn relay(stream: TcpStream, id: u64, clients: Clients) {
    let Ok(ws) = accept_async(stream).await else { return };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    clients.lock().unwrap().insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        if msg.is_text() || msg.is_binary() {
            for tx in clients.lock().unwrap().values() {
                let _ = tx.send(msg.clone());
            }
        }
    }
    clients.lock().unwrap().remove(&id);
    writer.abort();
}

/// The TLS acceptor of `--tls CERT KEY`.
fn acceptor(cert: &str, key: &str) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert).expect(cert).map(|c| c.expect(cert)).collect();
    let key = PrivateKeyDer::from_pem_file(key).expect(key);
    let cfg = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).expect("certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: tungstenite_echo PORT [--broadcast | --tls CERT KEY]";
    let port: u16 = args.first().and_then(|p| p.parse().ok()).expect(usage);
    let broadcast = args.iter().any(|a| a == "--broadcast");
    let tls = args.iter().position(|a| a == "--tls").map(|i| acceptor(&args[i + 1], &args[i + 2]));
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on {}://127.0.0.1:{port}", if tls.is_some() { "wss" } else { "ws" });
    let clients: Clients = Arc::default();
    let mut term = signal(SignalKind::terminate()).unwrap();
    let mut int = signal(SignalKind::interrupt()).unwrap();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((s, _)) = r else { continue };
                let _ = s.set_nodelay(true);
                next_id += 1;
                if let Some(tls) = &tls {
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        if let Ok(s) = tls.accept(s).await {
                            echo(s).await
                        }
                    });
                } else if broadcast {
                    tokio::spawn(relay(s, next_id, clients.clone()));
                } else {
                    tokio::spawn(echo(s));
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
}
