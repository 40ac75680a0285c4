//! The server-wide memory budget (`WS_OPT_MEMORY_BUDGET`): the bytes the
//! server holds for all connections together — partial incoming frames and
//! messages, send queues, the event queue. Past it, connections stop
//! reading (TCP pushes back on the clients) and new handshakes get 503,
//! instead of the process growing; reading resumes once enough is released
//! (below 7/8 of the budget, so it does not flap at the edge).
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub(crate) struct Budget {
    /// 0: no budget (nothing is counted).
    limit: AtomicUsize,
    held: AtomicUsize,
    over: AtomicBool,
    /// Connections waiting to read again.
    waiting: Mutex<Vec<Waker>>,
}

impl Budget {
    /// Sets the limit (at listen, before anything is counted).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes held.
    pub fn add(&self, n: usize) {
        let limit = self.limit();
        if limit == 0 || n == 0 {
            return;
        }
        if self.held.fetch_add(n, Ordering::AcqRel) + n >= limit {
            self.over.store(true, Ordering::Release);
        }
    }

    /// Counts `n` bytes released; wakes the waiting readers once the total
    /// is back under 7/8 of the limit.
    pub fn release(&self, n: usize) {
        let limit = self.limit();
        if limit == 0 || n == 0 {
            return;
        }
        let now = self.held.fetch_sub(n, Ordering::AcqRel) - n;
        if now < limit - limit / 8 && self.over.load(Ordering::Acquire) {
            let waiting = {
                let mut w = self.waiting.lock();
                self.over.store(false, Ordering::Release);
                std::mem::take(&mut *w)
            };
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    /// Moves a holder's count from `*held` to `now`.
    #[inline]
    pub fn adjust(&self, held: &mut usize, now: usize) {
        if now == *held {
            return; // the common case, at every poll of every connection
        }
        if now > *held {
            self.add(now - *held);
        } else {
            self.release(*held - now);
        }
        *held = now;
    }

    /// Whether the budget is spent (new handshakes are refused).
    #[inline]
    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// Bytes held now (0 without a budget).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Ready while under budget; otherwise registers `cx` to be woken once
    /// enough is released.
    #[inline]
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.is_over() {
            return Poll::Ready(());
        }
        self.wait_for_room(cx)
    }

    #[cold]
    fn wait_for_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut waiting = self.waiting.lock();
        // Checked again under the lock `release` wakes under: no lost wake-up.
        if !self.is_over() {
            return Poll::Ready(());
        }
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn over_at_the_limit_and_room_again_under_seven_eighths() {
        let b = Budget::default();
        b.add(1 << 30);
        assert!(!b.is_over() && b.held() == 0, "no limit: nothing counted");
        b.set_limit(800);
        let woken = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Count(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        let mut mine = 0;
        b.adjust(&mut mine, 799);
        assert!(b.poll_room(&mut cx).is_ready());
        b.add(1);
        assert!(b.is_over());
        assert!(b.poll_room(&mut cx).is_pending());
        b.adjust(&mut mine, 750);
        assert!(b.is_over(), "751 of 800: still over (under 700 frees it)");
        b.adjust(&mut mine, 600);
        assert!(!b.is_over());
        assert_eq!((woken.load(Ordering::SeqCst), b.held()), (1, 601));
        assert!(b.poll_room(&mut cx).is_ready());
    }
}
