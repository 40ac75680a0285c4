//! The integration tests that may share a process, as one test binary: one
//! link of the library and its dependencies instead of one per file (each
//! took ~30 s of `make test`). The tests that must run alone stay their own
//! binaries: tests/budget.rs and tests/churn.rs (thousands of clients),
//! tests/hostile_clients.rs (honest clients' latency under attack),
//! tests/io_thread_policy.rs (looks at every thread of the process).
#[path = "../common/mod.rs"]
mod common;

mod api;
mod conformance;
mod echo;
mod events;
mod hostile;
mod http;
mod tls;
