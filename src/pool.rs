//! A small process-wide cache of large byte buffers. In event-queue mode a
//! message's bytes are allocated on an I/O thread and freed on the host's
//! (and a reply's frame the other way round); glibc then keeps returning
//! the memory to the kernel and faulting it back in, which cost more than
//! the copies. Reusing buffers of 4 KiB..256 KiB keeps that memory in use;
//! at most 4 MiB is kept.
use parking_lot::Mutex;

const MIN: usize = 4 << 10;
const MAX: usize = 256 << 10;
const KEEP_BYTES: usize = 4 << 20;

static POOL: Mutex<(Vec<Vec<u8>>, usize)> = Mutex::new((Vec::new(), 0));

/// An empty buffer with room for at least `capacity` bytes.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if (MIN..=MAX).contains(&capacity) {
        let mut pool = POOL.lock();
        if let Some(i) = pool.0.iter().rposition(|b| b.capacity() >= capacity) {
            let buf = pool.0.swap_remove(i);
            pool.1 -= buf.capacity();
            return buf;
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back for reuse (or frees it).
pub(crate) fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if (MIN..=MAX).contains(&cap) {
        let mut pool = POOL.lock();
        if pool.1 + cap <= KEEP_BYTES {
            buf.clear();
            pool.1 += cap;
            pool.0.push(buf);
        }
    }
}

/// A buffer that goes back to the pool when the last `Bytes` sharing it
/// is dropped.
pub(crate) struct Pooled(pub Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_come_back_small_ones_do_not() {
        let big = take(100_000);
        let ptr = big.as_ptr();
        give(big);
        let again = take(90_000);
        assert_eq!(again.as_ptr(), ptr, "reused");
        assert!(again.is_empty() && again.capacity() >= 90_000);
        give(vec![0u8; 100]);
        assert!(POOL.lock().0.iter().all(|b| b.capacity() >= MIN));
        let bytes = bytes::Bytes::from_owner(Pooled(again));
        drop(bytes);
        assert!(POOL.lock().0.iter().any(|b| b.as_ptr() == ptr), "back after the last Bytes");
    }
}
