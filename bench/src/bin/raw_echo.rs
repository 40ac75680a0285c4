//! The ceiling: a plain TCP server with the same load shape as the WebSocket
//! peers but no WebSocket at all. Echo mode returns every byte as received,
//! on bare level-triggered epoll (one read and one write per message, as
//! cheap as a server can be); `--broadcast` relays every chunk read from any
//! client to all clients (tokio, one thread).
//! The load generator's frames pass through unchanged (still masked), and
//! its parser accepts masked frames, so the same workloads run against it.
//!
//! Usage: raw_echo PORT [--broadcast]

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::spawn_local;

type Peers = Rc<RefCell<HashMap<u64, mpsc::UnboundedSender<Bytes>>>>;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn write_all_nb(fd: RawFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: writing from a live slice.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::WouldBlock => {
                let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut p, 1, 5000) } <= 0 {
                    return false;
                }
            }
            std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    true
}

/// Echo mode: one thread, level-triggered epoll. A connection gets its
/// buffer when it first has data, so idle connections cost almost nothing.
fn epoll_echo(port: u16) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
    listener.set_nonblocking(true).unwrap();
    println!("listening on tcp://127.0.0.1:{port}");
    let lfd = listener.as_raw_fd();
    // SAFETY: plain syscalls on fds we own; events outlive each call.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: u64::MAX };
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, &mut ev) };
    let mut conns: HashMap<RawFd, (std::net::TcpStream, Vec<u8>)> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    while !STOP.load(Ordering::SeqCst) {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 1000) };
        for ev in events.iter().take(n.max(0) as usize) {
            if ev.u64 == u64::MAX {
                for _ in 0..1024 {
                    let Ok((s, _)) = listener.accept() else { break };
                    let _ = s.set_nonblocking(true);
                    let _ = s.set_nodelay(true);
                    let fd = s.as_raw_fd();
                    let mut cev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
                    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut cev) };
                    conns.insert(fd, (s, Vec::new()));
                }
                continue;
            }
            let fd = ev.u64 as RawFd;
            let Some((_, buf)) = conns.get_mut(&fd) else { continue };
            if buf.is_empty() {
                buf.resize(64 * 1024, 0);
            }
            let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            let keep = if r > 0 {
                write_all_nb(fd, &buf[..r as usize])
            } else {
                r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
            };
            if !keep {
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
                conns.remove(&fd);
            }
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
    if !broadcast {
        // SAFETY: the handler only stores to an atomic; epoll_wait returns EINTR.
        unsafe {
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        }
        epoll_echo(port);
        return;
    }
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
                    spawn_local(relay(s, next_id, peers.clone()));
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
    });
}
