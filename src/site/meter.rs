//! Rate limit and monthly quotas of the tenant's API: pure bookkeeping over times passed in.
//!
//! The rate limit is a sliding-window log: a request is admitted when fewer than
//! `PLAN_RATE_LIMIT_RPM` requests were admitted in the `rate_window` (one minute) before it, so
//! no 60-second span ever holds more than the limit (a fixed window would allow twice the limit
//! across a boundary). A refused request waits for the oldest admitted one to leave the window:
//! that is its `Retry-After`. The log holds at most `limit` instants (48 KiB at 3000 rpm).
//! A tenant has one API key, so there is one window; it belongs to that key.

use super::config::Limits;
use super::usage::Counters;
use crate::site::clock::{month_key, next_month_start};
use std::collections::VecDeque;
use std::time::Duration;

/// A sliding-window log of admitted requests.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    limit: u32,
    window: Duration,
    admitted: VecDeque<Duration>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        SlidingWindow {
            limit,
            window,
            admitted: VecDeque::new(),
        }
    }

    /// Admits a request at monotonic time `now`, or says how long until one would be admitted.
    pub(crate) fn try_acquire(&mut self, now: Duration) -> Result<(), Duration> {
        while let Some(&t) = self.admitted.front() {
            if now.saturating_sub(t) >= self.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < self.limit as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        let oldest = self.admitted.front().copied().unwrap_or(now);
        Err((oldest + self.window).saturating_sub(now))
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1 (0 would invite a busy loop).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Which monthly quota refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quota {
    ApiCalls,
    AiInteractions,
}

/// What happens to one authenticated API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed {
        api_calls_month: u64,
        ai_interactions_month: u64,
    },
    RateLimited {
        limit: u32,
        retry_after: Duration,
    },
    QuotaExhausted {
        quota: Quota,
        limit: u64,
        used: u64,
        month: String,
        /// Unix time when the month (and the quota) rolls over.
        resets_at: i64,
    },
}

/// The counters and the rate-limit window of one site.
#[derive(Debug)]
pub(crate) struct Meter {
    counters: Counters,
    limits: Limits,
    window: Option<SlidingWindow>,
    /// Bumped on every change, so the flusher writes only when something changed.
    generation: u64,
}

impl Meter {
    pub(crate) fn new(counters: Counters, limits: Limits, rate_window: Duration) -> Self {
        Meter {
            counters,
            limits,
            window: limits
                .rate_limit_rpm
                .map(|rpm| SlidingWindow::new(rpm, rate_window)),
            generation: 0,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The counters as of `now_unix`, month counters reset if the month has changed.
    pub(crate) fn snapshot(&mut self, now_unix: i64) -> Counters {
        self.roll_month(now_unix);
        self.counters.clone()
    }

    /// Starts a new month's counters when the calendar month (UTC) differs from theirs.
    pub(crate) fn roll_month(&mut self, now_unix: i64) {
        let month = month_key(now_unix);
        if self.counters.month != month {
            self.counters.month = month;
            self.counters.api_calls_month = 0;
            self.counters.ai_interactions_month = 0;
            self.generation += 1;
        }
    }

    /// A request without a valid key.
    pub(crate) fn unauthorized(&mut self) {
        self.counters.unauthorized_total += 1;
        self.generation += 1;
    }

    /// Decides an authenticated request: rate limit first, then the monthly quotas (an AI call
    /// needs room in both). Only admitted requests count as calls; a refusal by quota still took
    /// a rate-limit slot, as the limiter had already let it through.
    pub(crate) fn admit(&mut self, now: Duration, now_unix: i64, ai: bool) -> Decision {
        self.roll_month(now_unix);
        self.generation += 1;
        if let Some(window) = &mut self.window
            && let Err(retry_after) = window.try_acquire(now)
        {
            self.counters.rate_limited_total += 1;
            return Decision::RateLimited {
                limit: window.limit,
                retry_after,
            };
        }
        let c = &mut self.counters;
        let exhausted = |quota, limit: Option<u64>, used: u64| {
            limit
                .filter(|&l| used >= l)
                .map(|limit| Decision::QuotaExhausted {
                    quota,
                    limit,
                    used,
                    month: c.month.clone(),
                    resets_at: next_month_start(now_unix),
                })
        };
        let refusal = exhausted(
            Quota::ApiCalls,
            self.limits.api_calls_per_month,
            c.api_calls_month,
        )
        .or_else(|| {
            if ai {
                exhausted(
                    Quota::AiInteractions,
                    self.limits.ai_interactions_per_month,
                    c.ai_interactions_month,
                )
            } else {
                None
            }
        });
        if let Some(refusal) = refusal {
            c.quota_rejections_total += 1;
            return refusal;
        }
        c.api_calls_total += 1;
        c.api_calls_month += 1;
        if ai {
            c.ai_interactions_month += 1;
        }
        Decision::Allowed {
            api_calls_month: c.api_calls_month,
            ai_interactions_month: c.ai_interactions_month,
        }
    }
}
