//! Time for the site: a monotonic clock for rate-limit windows and a wall clock for months,
//! behind a trait so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the site reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Time since a fixed origin; never goes backwards (rate-limit windows).
    fn monotonic(&self) -> Duration;
    /// Seconds since the Unix epoch, UTC (calendar months, timestamps).
    fn unix_seconds(&self) -> i64;
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn unix_seconds(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // A clock set before 1970 is broken; counting from the epoch keeps months sane.
            Err(_) => 0,
        }
    }
}

/// A clock that moves only when told to: for tests of windows, quotas and month rollover.
#[derive(Debug)]
pub struct ManualClock {
    monotonic_ms: AtomicU64,
    unix: AtomicI64,
}

impl ManualClock {
    /// Starts at monotonic zero and the given wall-clock time.
    pub fn new(unix_seconds: i64) -> Self {
        ManualClock {
            monotonic_ms: AtomicU64::new(0),
            unix: AtomicI64::new(unix_seconds),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.monotonic_ms.fetch_add(ms, Ordering::SeqCst);
        self.unix.fetch_add(
            i64::try_from(by.as_secs()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Sets the wall clock only (a month boundary without waiting a month).
    pub fn set_unix_seconds(&self, unix_seconds: i64) {
        self.unix.store(unix_seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.monotonic_ms.load(Ordering::SeqCst))
    }

    fn unix_seconds(&self) -> i64 {
        self.unix.load(Ordering::SeqCst)
    }
}

pub(crate) use crate::calendar::{civil, days_from_civil, month_key, rfc3339};

/// Unix time of the first second of the month after the one holding `unix` (when quotas reset).
pub(crate) fn next_month_start(unix: i64) -> i64 {
    let c = civil(unix);
    let (y, m) = if c.month == 12 {
        (c.year + 1, 1)
    } else {
        (c.year, c.month + 1)
    };
    days_from_civil(y, m, 1) * 86_400
}
