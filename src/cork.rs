//! The cork: frames a connection's own callbacks send while its task
//! handles a read, gathered on the task's stack and written with one
//! send(2) once the read is handled. The common echo then costs no
//! allocation, no queue and no second pass over the connection; what the
//! socket does not take goes to the front of the queue, for the task.
//! Plain TCP only (a TLS session is written through its stream).
use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;

/// The most bytes one read's replies gather before they go to the queue.
pub(crate) const CORK_SIZE: usize = 32 << 10;

/// Not `Sync` (its cell): it is used by one thread, the task's, and the
/// sends that reach it from callbacks on that thread.
pub(crate) struct Cork {
    buf: UnsafeCell<[MaybeUninit<u8>; CORK_SIZE]>,
    len: Cell<usize>,
    /// The most bytes it gathers: the send queue's soft limit, as the
    /// queue would take them, within CORK_SIZE.
    max: usize,
}

impl Cork {
    /// An empty cork in `slot` that gathers at most `max` bytes, made in
    /// place: a cork returned by value would be copied, 32 KiB at every poll.
    pub fn in_place(slot: &mut MaybeUninit<Cork>, max: usize) -> &Cork {
        let p = slot.as_mut_ptr();
        // SAFETY: the buffer's bytes may stay uninitialised (MaybeUninit);
        // with `len` and `max` written every field is valid.
        unsafe {
            std::ptr::addr_of_mut!((*p).len).write(Cell::new(0));
            std::ptr::addr_of_mut!((*p).max).write(max.min(CORK_SIZE));
            &*p
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    /// Appends one frame, its header (`frame::header`'s array and length)
    /// and payload, if the cork then holds at most its `max` bytes; false
    /// (and nothing appended) otherwise.
    #[inline]
    pub fn push(&self, (header, header_len): ([u8; 10], usize), payload: &[u8]) -> bool {
        let len = self.len.get();
        let total = len + header_len + payload.len();
        if total > self.max {
            return false;
        }
        // SAFETY: `total` fits the buffer, and so do the header's whole ten
        // bytes when there is room for them (a fixed-size copy, no call;
        // the payload then overwrites what is past the header). No
        // reference into the buffer outlives a method of this one-thread
        // type, so nothing else sees it meanwhile.
        unsafe {
            let at = (*self.buf.get()).as_mut_ptr().cast::<u8>().add(len);
            if len + header.len() <= CORK_SIZE {
                at.cast::<[u8; 10]>().write_unaligned(header);
            } else {
                std::ptr::copy_nonoverlapping(header.as_ptr(), at, header_len);
            }
            copy_payload(payload, at.add(header_len));
        }
        self.len.set(total);
        true
    }

    /// Hands the gathered bytes to `f` and empties the cork.
    pub fn drain<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let len = self.len.replace(0);
        // SAFETY: the first `len` bytes were written by `push`. Callers do
        // not send (push) from `f`, so nothing writes them while `f` reads.
        let bytes = unsafe { std::slice::from_raw_parts((*self.buf.get()).as_ptr().cast::<u8>(), len) };
        f(bytes)
    }
}

/// Copies `src` to `dst`; up to 16 bytes (a chat or JSON reply) as two
/// overlapping word copies, without a call to memcpy.
///
/// SAFETY: `dst` must have room for `src.len()` bytes.
#[inline(always)]
unsafe fn copy_payload(src: &[u8], dst: *mut u8) {
    let (n, p) = (src.len(), src.as_ptr());
    // SAFETY: every read is within `src`, every write within `dst`'s room.
    unsafe {
        if (8..=16).contains(&n) {
            dst.cast::<u64>().write_unaligned(p.cast::<u64>().read_unaligned());
            dst.add(n - 8).cast::<u64>().write_unaligned(p.add(n - 8).cast::<u64>().read_unaligned());
        } else if (4..8).contains(&n) {
            dst.cast::<u32>().write_unaligned(p.cast::<u32>().read_unaligned());
            dst.add(n - 4).cast::<u32>().write_unaligned(p.add(n - 4).cast::<u32>().read_unaligned());
        } else {
            std::ptr::copy_nonoverlapping(p, dst, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame;

    #[test]
    fn frames_gather_in_order_up_to_the_bound() {
        let mut slot = Box::new(MaybeUninit::uninit());
        let cork = Cork::in_place(&mut slot, 100);
        assert!(cork.is_empty());
        let head = |first, len| frame::header(first, len);
        assert!(cork.push(head(0x81, 2), b"hi"));
        assert!(cork.push(head(0x82, 3), b"abc"));
        assert!(!cork.push(head(0x81, 200), &[7; 200]), "past the bound: refused");
        assert_eq!(cork.drain(|b| b.to_vec()), [0x81, 2, b'h', b'i', 0x82, 3, b'a', b'b', b'c']);
        assert!(cork.is_empty());
        assert!(cork.push(head(0x81, 1), b"z"));
        assert_eq!(cork.drain(|b| b.len()), 3, "a drained cork starts again at its beginning");
        let mut slot = Box::new(MaybeUninit::uninit());
        let cork = Cork::in_place(&mut slot, usize::MAX);
        assert!(!cork.push(head(0x82, CORK_SIZE), &vec![0; CORK_SIZE]), "past the cork's size: refused");
        // Up to the last byte: the header's ten bytes no longer fit after
        // the first frame, and the frames still come out whole.
        let first = vec![1u8; CORK_SIZE - 10];
        assert!(cork.push(head(0x82, first.len()), &first));
        assert!(cork.push(head(0x82, 4), b"last"));
        assert!(!cork.push(head(0x82, 0), b""), "full");
        let bytes = cork.drain(|b| b.to_vec());
        assert_eq!(bytes.len(), CORK_SIZE);
        assert_eq!(&bytes[CORK_SIZE - 6..], [0x82, 4, b'l', b'a', b's', b't']);
    }

    #[test]
    fn every_small_length_is_copied_whole() {
        let mut slot = Box::new(MaybeUninit::uninit());
        let cork = Cork::in_place(&mut slot, usize::MAX);
        let source: Vec<u8> = (1..=40).collect();
        for n in 0..=40 {
            assert!(cork.push(frame::header(0x82, n), &source[..n]));
            assert!(cork.push(frame::header(0x81, 1), b"|"), "a frame right after it");
            let bytes = cork.drain(|b| b.to_vec());
            assert_eq!(&bytes[2..2 + n], &source[..n], "{n} bytes");
            assert_eq!(&bytes[2 + n..], [0x81, 1, b'|'], "after {n} bytes");
        }
    }
}
