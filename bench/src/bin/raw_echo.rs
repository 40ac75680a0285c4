//! The ceiling: plain TCP on bare epoll in one thread, no WebSocket; echoes
//! every chunk (`--broadcast`: to every client), our frames passing through.
//!
//! Usage: raw_echo PORT [--broadcast]

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

#[path = "../sock.rs"]
mod sock;

/// A non-blocking listener with a long accept queue (std's is 128).
fn listen(port: u16) -> io::Result<TcpListener> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    s.listen(4096)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("usage: raw_echo PORT [--broadcast]");
    let broadcast = args.any(|a| a == "--broadcast");
    sock::stopped();
    let listener = listen(port).expect("bind");
    println!("listening on tcp://127.0.0.1:{port}");
    let lfd = listener.as_raw_fd();
    let ep = sock::Epoll::new().expect("epoll_create1");
    ep.add(lfd, u64::MAX).expect("epoll_ctl");
    // Indexed by fd: the epoll data of each connection is its fd.
    let mut conns: Vec<Option<TcpStream>> = Vec::new();
    // One buffer for all: a chunk is written back before the next read.
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut dead: Vec<RawFd> = Vec::new();
    while !sock::stopped() {
        for ev in ep.wait(&mut events, 1000).unwrap_or_default() {
            if ev.u64 == u64::MAX {
                for _ in 0..1024 {
                    let Ok((s, _)) = listener.accept() else { break };
                    let _ = s.set_nonblocking(true);
                    let _ = s.set_nodelay(true);
                    let fd = s.as_raw_fd();
                    let _ = ep.add(fd, fd as u64);
                    let i = fd as usize;
                    if i >= conns.len() {
                        conns.resize_with(i + 1, || None);
                    }
                    conns[i] = Some(s);
                }
                continue;
            }
            let fd = ev.u64 as RawFd;
            if conns.get(fd as usize).is_none_or(|c| c.is_none()) {
                continue;
            }
            match sock::recv(fd, &mut buf) {
                Ok(0) => dead.push(fd),
                Ok(n) => {
                    // Whether sending the chunk to `to` failed (5 s at most if its socket is full).
                    let failed = |to: &RawFd| sock::send_all(*to, &buf[..n], Duration::from_secs(5)).is_err();
                    if broadcast {
                        dead.extend(conns.iter().flatten().map(|s| s.as_raw_fd()).filter(failed));
                    } else if failed(&fd) {
                        dead.push(fd);
                    }
                }
                Err(e) if sock::transient(&e) => {}
                Err(_) => dead.push(fd),
            }
            for fd in dead.drain(..) {
                ep.del(fd);
                conns[fd as usize] = None;
            }
        }
    }
}
