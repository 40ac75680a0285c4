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
