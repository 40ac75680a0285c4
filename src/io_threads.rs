//! The server's I/O threads: each runs its own single-threaded tokio
//! runtime, and connections are dealt out to them round-robin. One runtime
//! per thread keeps scheduling FIFO and fair (a work-stealing scheduler with
//! a bounded local queue starved some of 1,000 busy connections) and needs
//! no cross-thread synchronisation on the hot path.
use crate::wakes::RemoteWakes;
use crate::Error;
use std::cell::Cell;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// The server whose I/O thread this is (its address), or 0.
    static IO_THREAD_OF: Cell<usize> = const { Cell::new(0) };
}

/// Whether the calling thread is one of the I/O threads of server `owner`.
pub(crate) fn is_io_thread_of(owner: usize) -> bool {
    IO_THREAD_OF.with(|c| c.get()) == owner
}

/// Blocks SIGPIPE on this (I/O) thread: a write to a socket the peer reset
/// then fails with EPIPE instead of killing a C host that never ignored
/// SIGPIPE (Rust programs ignore it; C programs usually do not). Only our
/// own threads are touched, never the host's signal dispositions.
fn block_sigpipe() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Marks this (I/O) thread SCHED_BATCH: the kernel then does not let it
/// preempt the thread that woke it. In event-queue mode the host's thread
/// and the I/O threads hand work back and forth; on a shared core each
/// send from the host would otherwise switch to the I/O thread at once (to
/// write one message) instead of after the host's batch. Measured with the
/// poll example, 100 clients, both threads on one core: 22,000 context
/// switches for 85,000 echoes before, 2,200 after. Needs no privilege
/// (the nice value stays); failure only costs that batching.
fn prefer_batches() {
    // SAFETY: a zeroed sched_param is valid for SCHED_BATCH (priority 0); pid 0 is this thread.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
    }
}

struct Thread {
    handle: Handle,
    wakes: Arc<RemoteWakes>,
    stop: oneshot::Sender<()>,
    join: std::thread::JoinHandle<()>,
}

/// Running I/O threads, stopped (and joined) by [`IoThreads::stop`].
pub(crate) struct IoThreads {
    threads: Vec<Thread>,
}

impl IoThreads {
    /// Starts `count` threads named "wsserver-io" for server `owner`;
    /// `batch`: they hand events to a host thread ([`prefer_batches`]).
    pub fn start(count: usize, owner: usize, batch: bool) -> Result<IoThreads, Error> {
        let mut io = IoThreads { threads: Vec::with_capacity(count) };
        for _ in 0..count {
            match spawn_one(owner, batch) {
                Ok(t) => io.threads.push(t),
                Err(e) => {
                    io.stop();
                    return Err(e);
                }
            }
        }
        Ok(io)
    }

    /// The threads' runtimes, for spawning work on them (never empty),
    /// each with its list for waking its connections from other threads.
    pub fn handles(&self) -> Vec<(Handle, Arc<RemoteWakes>)> {
        self.threads.iter().map(|t| (t.handle.clone(), t.wakes.clone())).collect()
    }

    /// Stops every thread and waits for it: tasks still there are dropped
    /// on their own thread. Must not be called from one of these threads.
    pub fn stop(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.stop.send(());
            let _ = t.join.join();
        }
    }
}

impl Drop for IoThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_one(owner: usize, batch: bool) -> Result<Thread, Error> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let wakes = Arc::new(RemoteWakes::new());
    let (drainer, driven) = (wakes.clone(), wakes.clone());
    let join = std::thread::Builder::new()
        .name("wsserver-io".into())
        .spawn(move || {
            IO_THREAD_OF.with(|c| c.set(owner));
            block_sigpipe();
            if batch {
                prefer_batches();
            }
            let rt = match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(rt.handle().clone()));
            rt.block_on(async {
                tokio::spawn(drainer.drain());
                tokio::spawn(crate::events::signal_batches());
                // The connection driver is this thread's main future (it is
                // not Send): stopping drops it here, with its connections,
                // while the runtime still runs their timers.
                tokio::select! {
                    _ = stop_rx => {}
                    _ = crate::driver::run(driven) => {}
                }
            });
        })
        .map_err(|e| Error::Io(format!("cannot start an I/O thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(handle)) => Ok(Thread { handle, wakes, stop, join }),
        Ok(Err(e)) => Err(Error::Io(format!("cannot start an I/O runtime: {e}"))),
        Err(_) => Err(Error::Io("an I/O thread died while starting".into())),
    }
}
