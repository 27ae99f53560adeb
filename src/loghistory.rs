//! Log history: each tenant container's output copied into the database (`watch`, beside the
//! loop, and `tenantctl logs sync`), so it outlives the engine's json-file rotation and the
//! container itself, and `tenantctl logs` reads it back before the live lines.
//!
//! A sync reads each managed container's log with the engine's timestamps from the second of
//! the newest line it stored for that container on (never before the retention), numbers the
//! lines of each timestamp and stream in order (`seq`), and stores them in batches; the key
//! (container, timestamp, stream, seq) makes a line read again — a second sync, a restarted
//! container whose file still holds it — one row. Lines older than the retention are neither
//! stored nor kept.

use crate::runtime::types::{LogEvent, LogOptions, LogSource, ObservedContainer, Tail};
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{LogStream, NewLogLine, Store, StoreError};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

/// How many lines a sync gathers before storing them (one transaction each).
const FLUSH: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Containers read.
    pub containers: usize,
    /// Lines read from the engine (already stored ones included).
    pub read: u64,
    /// Lines stored now (new ones).
    pub stored: u64,
    /// Lines older than the retention deleted.
    pub pruned: u64,
}

/// Unix nanoseconds of an engine timestamp (RFC 3339 with up to nine fraction digits).
pub fn parse_engine_time(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text).ok()?;
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(d.as_nanos()).ok()
}

/// Splits a line the engine prefixed with its timestamp (`2026-12-07T01:02:03.456789012Z text`)
/// into the time (unix ns) and the text without its newline.
pub fn split_timestamped(bytes: &[u8]) -> Option<(i64, String)> {
    let space = bytes.iter().position(|b| *b == b' ')?;
    let at = parse_engine_time(std::str::from_utf8(&bytes[..space]).ok()?)?;
    let mut rest = &bytes[space + 1..];
    if let Some(stripped) = rest.strip_suffix(b"\n") {
        rest = stripped;
    }
    if let Some(stripped) = rest.strip_suffix(b"\r") {
        rest = stripped;
    }
    // PostgreSQL text holds no NUL; neither is worth keeping.
    let text = String::from_utf8_lossy(rest).replace('\0', "\u{fffd}");
    Some((at, text))
}

/// Numbers the lines of one read in order: the n-th line of a timestamp and stream gets seq n.
/// A read always starts at the beginning of a second, so a line gets the same number however
/// often it is read.
#[derive(Debug, Default)]
pub struct Sequencer {
    at: i64,
    next: HashMap<LogStream, i32>,
}

impl Sequencer {
    pub fn seq(&mut self, at: i64, stream: LogStream) -> i32 {
        if at != self.at {
            self.at = at;
            self.next.clear();
        }
        let n = self.next.entry(stream).or_insert(0);
        let seq = *n;
        *n += 1;
        seq
    }
}

pub fn stream_of(source: LogSource) -> LogStream {
    match source {
        LogSource::Stdout => LogStream::Stdout,
        LogSource::Stderr => LogStream::Stderr,
    }
}

/// Copies every managed container's new lines into the database, then prunes lines older than
/// `retention` (now is `now` unix seconds).
pub async fn sync(
    runtime: &Runtime,
    store: &Store,
    retention: Duration,
    now: i64,
    only: Option<&str>,
) -> Result<SyncSummary, SyncError> {
    let keep_from_ns = now
        .saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX))
        .saturating_mul(1_000_000_000);
    let observed = runtime.observe().await?;
    let mut summary = SyncSummary::default();
    for c in &observed.containers {
        let Some(tenant) = c.tenant.as_deref() else {
            continue;
        };
        if only.is_some_and(|o| o != tenant) {
            continue;
        }
        let (read, stored) = sync_container(runtime, store, tenant, c, keep_from_ns, now).await?;
        summary.containers += 1;
        summary.read += read;
        summary.stored += stored;
    }
    summary.pruned = store.prune_log_lines(keep_from_ns).await?;
    Ok(summary)
}

/// One container: (lines read, lines stored).
async fn sync_container(
    runtime: &Runtime,
    store: &Store,
    tenant: &str,
    c: &ObservedContainer,
    keep_from_ns: i64,
    now: i64,
) -> Result<(u64, u64), SyncError> {
    let source = store.log_source(tenant, &c.id, &c.name, now).await?;
    let last = store.last_log_at(source).await?;
    // Everything of the newest stored line's second is read again (the engine's `since` counts
    // whole seconds), so the sequence numbers of that second come out the same.
    let from_ns = last.unwrap_or(0).max(keep_from_ns);
    let options = LogOptions {
        follow: false,
        tail: Tail::All,
        since: Some(from_ns.div_euclid(1_000_000_000)),
        timestamps: true,
    };
    let mut stream = runtime.backend().logs(c, &options);
    let mut seq = Sequencer::default();
    let (mut read, mut stored) = (0u64, 0u64);
    let mut batch: Vec<NewLogLine> = Vec::new();
    while let Some(event) = stream.next().await {
        let LogEvent::Output { source: s, bytes } = event? else {
            continue;
        };
        let Some((at_ns, line)) = split_timestamped(&bytes) else {
            continue;
        };
        read += 1;
        let stream_kind = stream_of(s);
        let n = seq.seq(at_ns, stream_kind);
        // Older than the newest stored line: stored by an earlier sync; older than the
        // retention: not kept.
        if at_ns < from_ns {
            continue;
        }
        batch.push(NewLogLine {
            at_ns,
            stream: stream_kind,
            seq: n,
            line,
        });
        if batch.len() >= FLUSH {
            stored += store.insert_log_lines(source, &batch).await?;
            batch.clear();
        }
    }
    stored += store.insert_log_lines(source, &batch).await?;
    Ok((read, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_lines_split_into_nanoseconds_and_text() {
        let (at, text) =
            split_timestamped(b"2026-12-07T01:02:03.000000042Z GET /health 200\n").unwrap();
        assert_eq!(at, 1_796_605_323_000_000_042);
        assert_eq!(text, "GET /health 200");
        let (at, text) = split_timestamped(b"2026-12-07T01:02:03Z \n").unwrap();
        assert_eq!(at, 1_796_605_323_000_000_000);
        assert_eq!(text, "");
        assert_eq!(split_timestamped(b"no timestamp here"), None);
        assert_eq!(split_timestamped(b"nospace"), None);
    }

    #[test]
    fn lines_of_one_timestamp_and_stream_are_numbered_in_order() {
        let mut s = Sequencer::default();
        assert_eq!(s.seq(5, LogStream::Stdout), 0);
        assert_eq!(s.seq(5, LogStream::Stdout), 1);
        assert_eq!(s.seq(5, LogStream::Stderr), 0);
        assert_eq!(s.seq(5, LogStream::Stdout), 2);
        assert_eq!(s.seq(6, LogStream::Stdout), 0);
    }
}
