//! The socket system calls of the per-message path, made directly (rustix's
//! raw Linux system calls, inlined where they are called). glibc's
//! read/send/sendmsg are pthread cancellation points: in a multi-threaded
//! process each call switches asynchronous cancellation on and off around
//! the system call (~80 user-space instructions), and its syscall(2)
//! wrapper, which skips that, still costs ~11 a call. Only our own I/O
//! threads and callers of `ws_server_send` make these calls, and
//! cancelling a thread inside the library is undefined anyway (it would
//! skip Rust's unwinding), so the cancellation point buys nothing. EINTR
//! is retried here; every other error (EAGAIN included) is returned.

use rustix::io::Errno;
use rustix::net::SendFlags;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, RawFd};

/// Retries `call` while it is interrupted by a signal.
#[inline(always)]
fn retrying(mut call: impl FnMut() -> rustix::io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// read(2) into `buf`: the bytes read (0 at the end of input).
///
/// # Safety
/// `fd` must be an open descriptor for the whole call.
#[inline]
pub unsafe fn read(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the caller's promise.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    retrying(|| rustix::io::read(fd, &mut *buf).map(|(read, _)| read.len()))
}

/// send(2) of `bytes`, never raising SIGPIPE (a reset peer is EPIPE);
/// `wait: false` adds MSG_DONTWAIT (for a socket in blocking mode too).
///
/// # Safety
/// `fd` must be an open descriptor for the whole call.
#[inline]
pub unsafe fn send(fd: RawFd, bytes: &[u8], wait: bool) -> io::Result<usize> {
    // SAFETY: the caller's promise.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = if wait { SendFlags::NOSIGNAL } else { SendFlags::NOSIGNAL | SendFlags::DONTWAIT };
    retrying(|| rustix::net::send(fd, bytes, flags))
}

/// sendmsg(2) of `bufs` in order, as `send`.
///
/// # Safety
/// `fd` must be an open descriptor for the whole call.
#[inline]
pub unsafe fn sendmsg(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: the caller's promise.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let bufs = &bufs[..bufs.len().min(libc::UIO_MAXIOV as usize)];
    retrying(|| rustix::net::sendmsg(fd, bufs, &mut Default::default(), SendFlags::NOSIGNAL))
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, IoSlice};
    use std::mem::MaybeUninit;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_calls_move_bytes_and_report_errors_as_libc_does() {
        let (a, b) = UnixStream::pair().unwrap();
        let (pipe_read, pipe_write) = std::io::pipe().unwrap();
        // SAFETY (all calls below): the descriptors are open.
        unsafe {
            assert_eq!(super::send(a.as_raw_fd(), b"abc", true).unwrap(), 3);
            let parts = [IoSlice::new(b"de"), IoSlice::new(b"f")];
            assert_eq!(super::sendmsg(a.as_raw_fd(), &parts).unwrap(), 3);
            let mut buf = [MaybeUninit::<u8>::uninit(); 16];
            let n = super::read(b.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(buf[..n].iter().map(|b| b.assume_init()).collect::<Vec<u8>>(), b"abcdef");
            // Nothing to read on a non-blocking socket: WouldBlock (EAGAIN).
            b.set_nonblocking(true).unwrap();
            assert_eq!(super::read(b.as_raw_fd(), &mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            // A descriptor not open for reading: EBADF; not a socket:
            // ENOTSOCK, as from libc.
            assert_eq!(super::read(pipe_write.as_raw_fd(), &mut buf).unwrap_err().raw_os_error(), Some(libc::EBADF));
            assert_eq!(
                super::send(pipe_read.as_raw_fd(), b"x", false).unwrap_err().raw_os_error(),
                Some(libc::ENOTSOCK)
            );
            // A peer gone: EPIPE, and no SIGPIPE (the test would die of it).
            drop(b);
            assert_eq!(super::send(a.as_raw_fd(), b"x", false).unwrap_err().raw_os_error(), Some(libc::EPIPE));
            assert_eq!(super::sendmsg(a.as_raw_fd(), &[IoSlice::new(b"y")]).unwrap_err().kind(), ErrorKind::BrokenPipe);
        }
    }
}
