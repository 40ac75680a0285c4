//! Waking connections from outside their I/O thread, batched. A send from
//! the host's thread must wake the connection's task; waking a tokio task
//! from another thread costs a write to the runtime's eventfd each time.
//! Instead the waker goes on its thread's list, and only the first one of
//! a batch wakes the thread's drainer task, which then wakes the rest from
//! inside the runtime (no system call). A host answering 100 events sends
//! 100 messages for one wake-up of the I/O thread.
use atomic_waker::AtomicWaker;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::Arc;
use std::task::{Poll, Waker};

thread_local! {
    /// The wake list of the I/O thread this is, if it is one.
    static OWN: Cell<*const RemoteWakes> = const { Cell::new(std::ptr::null()) };
}

/// One I/O thread's list of connection wakers to wake.
pub(crate) struct RemoteWakes {
    pending: Mutex<Vec<Waker>>,
    drainer: AtomicWaker,
}

impl RemoteWakes {
    pub fn new() -> RemoteWakes {
        RemoteWakes { pending: Mutex::new(Vec::new()), drainer: AtomicWaker::new() }
    }

    /// Wakes the task registered in `task`: directly on its own thread,
    /// batched from any other.
    pub fn wake(self: &Arc<Self>, task: &AtomicWaker) {
        if self.is_own() {
            return task.wake();
        }
        if let Some(waker) = task.take() {
            self.defer(waker);
        }
    }

    /// Whether the calling thread is this list's I/O thread.
    pub fn is_own(self: &Arc<Self>) -> bool {
        OWN.with(|o| o.get()) == Arc::as_ptr(self)
    }

    /// Wakes `waker` from this list's I/O thread, batched (see the top).
    pub fn defer(&self, waker: Waker) {
        let mut pending = self.pending.lock();
        pending.push(waker);
        let first = pending.len() == 1;
        drop(pending);
        if first {
            self.drainer.wake();
        }
    }

    /// The drainer: runs on the I/O thread for its whole life (spawned by
    /// io_threads), marking the thread as this list's owner.
    pub async fn drain(self: Arc<Self>) {
        OWN.with(|o| o.set(Arc::as_ptr(&self)));
        std::future::poll_fn(|cx| {
            self.drainer.register(cx.waker());
            let batch = std::mem::take(&mut *self.pending.lock());
            batch.into_iter().for_each(Waker::wake);
            Poll::<()>::Pending
        })
        .await
    }
}
