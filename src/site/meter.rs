//! Rate limit and monthly quotas of the tenant's API: pure bookkeeping over times passed in.
//!
//! The rate limit is a sliding-window log: a request is admitted when fewer than
//! `PLAN_RATE_LIMIT_RPM` requests were admitted in the `rate_window` (one minute) before it, so
//! no 60-second span ever holds more than the limit (a fixed window would allow twice the limit
//! across a boundary). A refused request waits for the oldest admitted one to leave the window:
//! that is its `Retry-After`. The log holds at most `limit` instants (48 KiB at 3000 rpm).
//! The window is the tenant's, shared by all its keys: a second key does not double the limit.
//! A plan without `rateLimit` gets [`DEFAULT_RATE_LIMIT_RPM`].

use super::config::Limits;
use super::usage::Counters;
use crate::site::clock::{month_key, next_month_start};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The limit of a plan that sets none: ten calls a second on average.
pub const DEFAULT_RATE_LIMIT_RPM: u32 = 600;

/// The rate-limit window as the `X-RateLimit-*` headers tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Until the oldest request in the window leaves it (one more call fits); zero when the
    /// window holds none.
    pub reset: Duration,
}

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

    /// The window at `now` without admitting anything.
    pub(crate) fn state(&self, now: Duration) -> RateState {
        let inside: Vec<Duration> = self
            .admitted
            .iter()
            .copied()
            .filter(|&t| now.saturating_sub(t) < self.window)
            .collect();
        RateState {
            limit: self.limit,
            remaining: self.limit.saturating_sub(inside.len() as u32),
            reset: inside
                .first()
                .map_or(Duration::ZERO, |&t| (t + self.window).saturating_sub(now)),
        }
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
    window: SlidingWindow,
    /// Key id → Unix second of its last admitted call (in memory: the usage meter reads it
    /// from `/usage` and stores it in `tenant_api_keys`).
    key_last_used: BTreeMap<String, i64>,
    /// Bumped on every change, so the flusher writes only when something changed.
    generation: u64,
}

impl Meter {
    pub(crate) fn new(counters: Counters, limits: Limits, rate_window: Duration) -> Self {
        Meter {
            counters,
            limits,
            window: SlidingWindow::new(
                limits.rate_limit_rpm.unwrap_or(DEFAULT_RATE_LIMIT_RPM),
                rate_window,
            ),
            key_last_used: BTreeMap::new(),
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

    /// The rate-limit window at monotonic `now`.
    pub(crate) fn rate_state(&self, now: Duration) -> RateState {
        self.window.state(now)
    }

    /// Key `id` made a call at `now_unix`.
    pub(crate) fn key_used(&mut self, id: &str, now_unix: i64) {
        match self.key_last_used.get_mut(id) {
            Some(t) => *t = (*t).max(now_unix),
            None => {
                self.key_last_used.insert(id.to_string(), now_unix);
            }
        }
    }

    /// Key id → the Unix second of its last call.
    pub(crate) fn key_last_used(&self) -> &BTreeMap<String, i64> {
        &self.key_last_used
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
        if let Err(retry_after) = self.window.try_acquire(now) {
            self.counters.rate_limited_total += 1;
            return Decision::RateLimited {
                limit: self.window.limit,
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
