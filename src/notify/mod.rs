//! Notifications: events POSTed to receivers named in git (`notifications/<name>.yaml`).
//!
//! An event that matches a notification is written to the store's outbox in the transaction
//! that records the event (`Store::record_event_detail`), once per (notification, tenant, kind,
//! revision): the same condition at the same revision is never queued twice. A background task
//! ([`deliver::Deliverer`]) sends what is due, signs each body when the notification names a
//! `secretEnv`, retries with backoff, and records each delivery and failure as an event
//! (`notification.delivered`, `notification.failed`, `notification.abandoned`), which is never
//! itself notified. This module holds the logic without IO; `deliver` does the IO.

pub mod deliver;

use crate::audit::KindFilter;
use crate::model::{Notification, NotificationFormat};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use std::collections::BTreeMap;

/// The version of the JSON payload.
pub const FORMAT_VERSION: u32 = 1;

/// The header that carries the body's signature: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Tenantctl-Signature";

/// Event kinds a notification is most often for (shown in the hint of a bad pattern).
pub const KNOWN_KINDS: &[&str] = &[
    "tenant.failed",
    "tenant.degraded",
    "drift",
    "tenant.trial-ended",
    "usage.threshold",
    "tenant.attempt-failed",
    "revision.invalid",
    "revision.refused",
];

/// Events about notifications themselves are never notified (a failing receiver would feed
/// itself).
pub const OWN_PREFIX: &str = "notification.";

/// Attempts before a notification is given up (`notification.abandoned`): with the backoff
/// below, about an hour and a half of trying.
pub const MAX_ATTEMPTS: i64 = 24;

/// Checks a receiver URL: `http://` or `https://`, a host, nothing that is not printable.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("is empty".into());
    }
    let uri: hyper::Uri = url.parse().map_err(|e| format!("is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(format!(
                "has scheme `{other}`; only http and https are sent"
            ));
        }
        None => return Err("has no scheme; write http://… or https://…".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("carries a user name or password; put a secret in secretEnv instead".into());
    }
    Ok(())
}

/// Checks an `events` entry: a kind or a glob of one (lowercase letters, digits, `.`, `-`,
/// `_`, `*`, `?`).
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("is empty".into());
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_' | '*' | '?'))
    {
        return Err(format!(
            "holds `{}`; kinds are lowercase words joined by `.` and `-`",
            c.escape_default()
        ));
    }
    Ok(())
}

/// One notification as the outbox and the deliverer read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub url: String,
    pub secret_env: Option<String>,
    pub format: NotificationFormat,
    filters: Vec<KindFilter>,
}

impl Route {
    pub fn of(n: &Notification) -> Route {
        Route {
            name: n.name.clone(),
            url: n.url.clone(),
            secret_env: n.secret_env.clone(),
            format: n.format,
            filters: n
                .events
                .iter()
                .filter_map(|p| KindFilter::new(p).ok())
                .collect(),
        }
    }

    /// Whether an event of `kind` goes to this notification.
    pub fn wants(&self, kind: &str) -> bool {
        !kind.starts_with(OWN_PREFIX) && self.filters.iter().any(|f| f.matches(kind))
    }
}

/// The notifications of the revision being applied, and that revision (the dedupe key of an
/// event recorded outside a reconcile run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    /// `None` until a caller read the notifications from git: the deliverer then leaves rows
    /// alone rather than give up on a notification it cannot see.
    pub loaded: bool,
    pub revision: Option<String>,
    pub routes: BTreeMap<String, Route>,
}

impl Routes {
    pub fn of(notifications: &BTreeMap<String, Notification>, revision: &str) -> Routes {
        Routes {
            loaded: true,
            revision: Some(revision.to_string()),
            routes: notifications
                .iter()
                .map(|(k, n)| (k.clone(), Route::of(n)))
                .collect(),
        }
    }

    /// The notifications an event of `kind` goes to, by name.
    pub fn matching(&self, kind: &str) -> Vec<&str> {
        self.routes
            .values()
            .filter(|r| r.wants(kind))
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// What one outbox row tells of: its event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventView {
    pub id: i64,
    pub at: i64,
    pub tenant: Option<String>,
    pub kind: String,
    pub message: String,
    pub revision: Option<String>,
}

/// The body POSTed for `event` to notification `name`.
pub fn body(format: NotificationFormat, name: &str, event: &EventView) -> String {
    let at = crate::calendar::rfc3339(event.at);
    match format {
        NotificationFormat::Json => json!({
            "format_version": FORMAT_VERSION,
            "notification": name,
            "event": {
                "id": event.id,
                "time": at,
                "tenant": event.tenant,
                "kind": event.kind,
                "revision": event.revision,
                "message": event.message,
            }
        })
        .to_string(),
        NotificationFormat::Slack => {
            let who = event
                .tenant
                .as_deref()
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            let rev = event
                .revision
                .as_deref()
                .map(|r| format!(" at {}", &r[..12.min(r.len())]))
                .unwrap_or_default();
            json!({
                "text": format!(
                    "tenantctl:{who} {}{rev}: {} ({at})",
                    event.kind, event.message
                )
            })
            .to_string()
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, the [`SIGNATURE_HEADER`] value.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Seconds to wait after the `attempts`-th failure: 1, 2, 4 … capped at five minutes.
pub fn backoff(attempts: i64) -> i64 {
    let n = attempts.clamp(1, 20) - 1;
    (1i64 << n).min(300)
}

#[cfg(test)]
mod tests;
