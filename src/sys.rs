//! The socket system calls of the per-message path, made with syscall(2).
//! glibc's read/send/sendmsg are pthread cancellation points: in a
//! multi-threaded process each call switches asynchronous cancellation on
//! and off around the system call (~80 user-space instructions of the
//! ~2,000 an echoed message costs). Only our own I/O threads and callers of
//! `ws_server_send` make these calls, and cancelling a thread inside the
//! library is undefined anyway (it would skip Rust's unwinding), so the
//! cancellation point buys nothing. Results are those of the libc calls:
//! the byte count, or -1 with errno set.

use std::os::fd::RawFd;

/// read(2) of at most `len` bytes into `buf`.
///
/// # Safety
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn read(fd: RawFd, buf: *mut u8, len: usize) -> isize {
    // SAFETY: the caller's promise; the kernel writes at most `len` bytes.
    unsafe { libc::syscall(libc::SYS_read, fd, buf, len) as isize }
}

/// send(2) of `bytes` with `flags` (sendto with no address, as glibc's
/// send is).
pub fn send(fd: RawFd, bytes: &[u8], flags: libc::c_int) -> isize {
    let none: *const libc::sockaddr = std::ptr::null();
    // SAFETY: `bytes` is a live buffer of its length; no address is given.
    unsafe {
        libc::syscall(libc::SYS_sendto, fd, bytes.as_ptr(), bytes.len(), flags, none, 0 as libc::socklen_t) as isize
    }
}

/// sendmsg(2) of `msg` with `flags`.
///
/// # Safety
/// `msg` and the buffers it points to must be valid for the call.
pub unsafe fn sendmsg(fd: RawFd, msg: &libc::msghdr, flags: libc::c_int) -> isize {
    // SAFETY: the caller's promise.
    unsafe { libc::syscall(libc::SYS_sendmsg, fd, msg as *const libc::msghdr, flags) as isize }
}

#[cfg(test)]
mod tests {
    use std::io::{Error, IoSlice};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_calls_move_bytes_and_report_errors_as_libc_does() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(super::send(a.as_raw_fd(), b"abc", libc::MSG_NOSIGNAL), 3);
        let parts = [IoSlice::new(b"de"), IoSlice::new(b"f")];
        let msg = libc::msghdr {
            msg_name: std::ptr::null_mut(),
            msg_namelen: 0,
            msg_iov: parts.as_ptr() as *mut libc::iovec,
            msg_iovlen: parts.len(),
            msg_control: std::ptr::null_mut(),
            msg_controllen: 0,
            msg_flags: 0,
        };
        // SAFETY: `msg` points at live slices.
        assert_eq!(unsafe { super::sendmsg(a.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) }, 3);
        let mut buf = [0u8; 16];
        // SAFETY: `buf` has room for its length.
        let n = unsafe { super::read(b.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        assert_eq!(&buf[..n as usize], b"abcdef");
        // No such descriptor (-1: never one, unlike a closed number that a
        // parallel test may reuse): -1 and EBADF, as from libc.
        // SAFETY: as above; the kernel refuses the fd before touching `buf`.
        assert_eq!(unsafe { super::read(-1, buf.as_mut_ptr(), buf.len()) }, -1);
        assert_eq!(Error::last_os_error().raw_os_error(), Some(libc::EBADF));
        assert_eq!(super::send(-1, b"x", 0), -1);
        assert_eq!(Error::last_os_error().raw_os_error(), Some(libc::EBADF));
        // A peer gone: EPIPE, and no SIGPIPE with MSG_NOSIGNAL.
        drop(b);
        assert_eq!(super::send(a.as_raw_fd(), b"x", libc::MSG_NOSIGNAL), -1);
        assert_eq!(Error::last_os_error().raw_os_error(), Some(libc::EPIPE));
    }
}
