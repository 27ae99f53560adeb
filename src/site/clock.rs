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

/// A UTC calendar date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Unix seconds to a UTC date (Howard Hinnant's civil_from_days; no date crate needed for this).
pub(crate) fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month: month as u32,
        day: day as u32,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
    }
}

/// Days since the epoch of a UTC date (the inverse of `civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM` of a Unix time, UTC: the key of the monthly quotas.
pub(crate) fn month_key(unix: i64) -> String {
    let c = civil(unix);
    format!("{:04}-{:02}", c.year, c.month)
}

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

/// RFC 3339 in UTC, to the second: `2025-06-01T12:00:00Z`.
pub(crate) fn rfc3339(unix: i64) -> String {
    let c = civil(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}
