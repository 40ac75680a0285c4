//! The I/O threads' scheduling policy. Its own test binary: it looks at
//! every thread of the process, so no other test's server may run beside it.
use std::sync::Arc;
use std::time::Duration;
use wsserver::{Config, Handler, Server};

struct Nothing;
impl Handler for Nothing {}

/// The scheduling policy of each of this process's threads named `name`.
fn policies_of_threads_named(name: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let tid: i32 = task.file_name().to_str().unwrap().parse().unwrap();
            // SAFETY: takes a thread id, no pointers.
            found.push(unsafe { libc::sched_getscheduler(tid) });
        }
    }
    found
}

#[test]
fn io_threads_run_as_batch_threads_only_in_event_queue_mode() {
    // Event-queue mode: the I/O threads must not preempt the host thread
    // at each send (see io_threads::prefer_batches).
    let queued = Server::new(Config { event_queue: true, threads: 2, ..Config::default() }, Arc::new(Nothing));
    queued.listen("127.0.0.1", 0).expect("listen");
    let policies = policies_of_threads_named("wsserver-io");
    assert!(policies.len() >= 2, "{policies:?}");
    assert!(policies.iter().all(|&p| p == libc::SCHED_BATCH), "{policies:?}");
    queued.close(Duration::from_millis(100));
    drop(queued);
    let callbacks = Server::new(Config { threads: 1, ..Config::default() }, Arc::new(Nothing));
    callbacks.listen("127.0.0.1", 0).expect("listen");
    let policies = policies_of_threads_named("wsserver-io");
    assert_eq!(policies, [libc::SCHED_OTHER], "callback mode keeps the normal policy");
}
