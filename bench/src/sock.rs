//! The hot loops' socket calls, also included by the peers in `src/bin/`:
//! recv(2)/send(2), not read(2)/write(2), whose VFS layer showed in profiles.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One recv(2) into `buf` on a non-blocking socket. `Ok(0)`: the peer closed
/// its side; `WouldBlock` and `Interrupted` come back as errors.
#[inline]
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: receiving into a live, writable slice of the given length.
    check(unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) })
}

/// A system call's result: its error when negative.
#[inline]
fn check(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Errors after which the socket is still fine: nothing to read or write
/// yet, or a signal arrived.
pub fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Sends all of `data` on a non-blocking socket (MSG_NOSIGNAL: a closed peer
/// is an error, not a SIGPIPE). In the rare case the socket buffer is full it
/// waits for room (poll, 1 s at most a time), `give_up` in all.
#[inline]
pub fn send_all(fd: RawFd, mut data: &[u8], give_up: Duration) -> io::Result<()> {
    let mut deadline: Option<Instant> = None;
    while !data.is_empty() {
        // SAFETY: sending from a live slice of the given length.
        match check(unsafe { libc::send(fd, data.as_ptr() as *const libc::c_void, data.len(), libc::MSG_NOSIGNAL) }) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "send returned 0")),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let end = *deadline.get_or_insert_with(|| Instant::now() + give_up);
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let why = format!("socket not writable for {} s", give_up.as_secs());
                    return Err(io::Error::new(io::ErrorKind::TimedOut, why));
                }
                let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                let ms = left.min(Duration::from_secs(1)).as_millis().max(1) as i32;
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, ms) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A level-triggered epoll instance, closed on drop: the event loop of the
/// load generator's hot loops and of the raw TCP echo peer.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the fd it returns is ours alone.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as isize)?;
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) } })
    }

    /// Watches `fd` for input; its events carry `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: our epoll fd, ev lives across the call.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } as isize).map(drop)
    }

    /// Stops watching `fd` (an fd not watched fails harmlessly).
    pub fn del(&self, fd: RawFd) {
        // SAFETY: our epoll fd; DEL takes no event.
        unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    /// One epoll_wait into `events`, `ms` at most; the events that came.
    /// A signal ends the wait with no events rather than an error.
    pub fn wait<'a>(&self, events: &'a mut [libc::epoll_event], ms: i32) -> io::Result<&'a [libc::epoll_event]> {
        // SAFETY: events has room for its length.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, ms) };
        match check(n as isize) {
            Ok(n) => Ok(&events[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(&[]),
            Err(e) => Err(e),
        }
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM or SIGINT has come, from the first call on (the peer
/// servers stop on it; a blocking epoll_wait returns EINTR).
#[allow(dead_code)] // the peers' (src/bin/), not wsbench's
pub fn stopped() -> bool {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    // SAFETY: the handler only stores to an atomic.
    INSTALLED.call_once(|| unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    });
    STOP.load(Ordering::SeqCst)
}
