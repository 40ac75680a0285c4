//! The measured window of the echo and broadcast hot loops: what counts is
//! done between the first loop turn at or after `start` and the first at or
//! after `end`, and the CPU marks are taken at those same two turns.

use std::time::{Duration, Instant};

use crate::procs::{CpuDelta, CpuMark};

pub struct Window {
    pid: u32,
    start: Instant,
    end: Instant,
    mark: Option<CpuMark>,
}

impl Window {
    /// The window from `start` to `end`, for the CPU use of process `pid`.
    pub fn new(pid: u32, start: Instant, end: Instant) -> Window {
        Window { pid, start, end, mark: None }
    }

    /// To be called at the top of every loop turn: opens the window at the
    /// first turn at or after `start`; at the first turn at or after `end`,
    /// closes it and returns the CPU used in it (then the loop ends).
    pub fn turn(&mut self, now: Instant) -> Option<CpuDelta> {
        if self.mark.is_none() && now >= self.start {
            self.mark = Some(CpuMark::now(self.pid));
        }
        if now >= self.end {
            return self.mark.as_ref().map(|m| m.since(self.pid));
        }
        None
    }

    /// The window is open: what happens now is counted.
    pub fn measuring(&self) -> bool {
        self.mark.is_some()
    }

    /// How long the next epoll_wait may block: until `end`, `cap` at most,
    /// 1 ms at least.
    pub fn wait_ms(&self, now: Instant, cap: Duration) -> i32 {
        (self.end.saturating_duration_since(now).min(cap).as_millis() as i32).max(1)
    }
}
