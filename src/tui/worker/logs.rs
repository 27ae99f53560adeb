//! The log task: follows the shown tenant's container, hands lines to the UI in bounded batches,
//! and follows again after the stream ends.

use super::{Owned, Shared};
use crate::runtime::{LogEnd, LogEvent, LogOptions, LogSource, Tail};
use crate::store::now_unix;
use crate::tui::data::{LogLine, Update};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Log lines are handed to the UI this often, or sooner once this many wait.
const LOG_FLUSH: Duration = Duration::from_millis(50);
const LOG_BATCH: usize = 500;
/// A log stream that ended is followed again after this long, while its tenant is shown.
const LOG_RETRY: Duration = Duration::from_secs(3);

/// Lines waiting for the UI; bounded, so a tenant that logs faster than the UI draws costs
/// memory for at most the buffer the UI keeps anyway.
#[derive(Debug, Default)]
struct Batch {
    lines: VecDeque<LogLine>,
    /// Lines dropped (oldest first) since the last hand-over.
    dropped: u64,
    notes: Vec<String>,
}

impl Batch {
    fn push(&mut self, lines: Vec<LogLine>, cap: usize) {
        for line in lines {
            if self.lines.len() == cap {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines.push_back(line);
        }
    }

    /// Everything waiting, as the updates to send, in order: lines, then notes.
    fn take(&mut self, slug: &str) -> Vec<Update> {
        let mut out = Vec::new();
        if self.dropped > 0 {
            out.push(Update::LogNote {
                slug: slug.to_string(),
                message: format!(
                    "skipped {} lines: the tenant logs faster than the dashboard shows",
                    self.dropped
                ),
            });
            self.dropped = 0;
        }
        if !self.lines.is_empty() {
            out.push(Update::Logs {
                slug: slug.to_string(),
                lines: self.lines.drain(..).collect(),
            });
        }
        out.extend(self.notes.drain(..).map(|message| Update::LogNote {
            slug: slug.to_string(),
            message,
        }));
        out
    }
}

/// Splits an RFC 3339 timestamp (as the engine prefixes with `timestamps=true`) off a line.
fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    if let Some((head, rest)) = line.split_once(' ')
        && crate::status::time::parse_rfc3339(head).is_some()
    {
        return (Some(head), rest);
    }
    if crate::status::time::parse_rfc3339(line).is_some() {
        return (Some(line), "");
    }
    (None, line)
}

/// One chunk of a log stream as lines: split at newlines, `\r` and the final newline stripped,
/// each line's timestamp split off (a line without one shares its chunk's). Pure.
fn split_chunk(bytes: &[u8], stderr: bool) -> Vec<LogLine> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(bytes);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let mut last: Option<String> = None;
    body.split('\n')
        .map(|raw| {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let (timestamp, text) = split_timestamp(raw);
            let timestamp = timestamp.map(str::to_string).or_else(|| last.clone());
            last.clone_from(&timestamp);
            LogLine {
                timestamp,
                stderr,
                text: text.to_string(),
            }
        })
        .collect()
}

/// Follows `slug`'s container until the task is dropped: lines in batches, a note whenever the
/// stream ends, and a new follow a few seconds later.
pub(super) async fn follow_logs(shared: Arc<Shared>, slug: String, tail: u64) {
    let batch = Arc::new(Mutex::new(Batch::default()));
    let wake = Arc::new(Notify::new());
    let _flusher = Owned(tokio::spawn(flush_logs(
        shared.clone(),
        slug.clone(),
        batch.clone(),
        wake.clone(),
    )));
    let cap = shared.log_lines;
    let push = |lines: Vec<LogLine>| {
        if let Ok(mut b) = batch.lock() {
            b.push(lines, cap);
            if b.lines.len() >= LOG_BATCH {
                wake.notify_one();
            }
        }
    };
    let note = |message: String| {
        if let Ok(mut b) = batch.lock() {
            b.notes.push(message);
        }
        wake.notify_one();
    };
    let mut options = LogOptions {
        follow: true,
        tail: Tail::Lines(tail),
        since: None,
        timestamps: true,
    };
    let mut last_note: Option<String> = None;
    loop {
        let started = now_unix();
        let (message, streamed) = match shared.runtime.log_container(&slug).await {
            Err(e) => (format!("cannot read the logs: {e}"), false),
            Ok(None) => (
                format!("{slug} has no container; its logs show once it has one"),
                false,
            ),
            Ok(Some(container)) => {
                // After a note about the end of a stream, say that lines flow again.
                if last_note.is_some() {
                    let again = format!("following container {} again", container.name);
                    note(again.clone());
                    last_note = Some(again);
                }
                let end = shared
                    .runtime
                    .stream_logs(&slug, &container, options, |event| {
                        match event {
                            LogEvent::Output { source, bytes } => {
                                push(split_chunk(&bytes, source == LogSource::Stderr))
                            }
                            LogEvent::Note(n) => note(n),
                        }
                        ControlFlow::Continue(())
                    })
                    .await;
                let message = match end {
                    Ok(LogEnd::Stopped { state }) => format!(
                        "container {} is {state}; no more lines (followed again once it runs)",
                        container.name
                    ),
                    Ok(LogEnd::Removed) => format!(
                        "container {} was removed; no more lines (followed again once there is one)",
                        container.name
                    ),
                    Ok(LogEnd::Done | LogEnd::Cancelled) => "the log stream ended".to_string(),
                    Err(e) => format!("reading the logs failed: {e}"),
                };
                (message, true)
            }
        };
        if last_note.as_deref() != Some(message.as_str()) {
            note(message.clone());
            last_note = Some(message);
        }
        // Next time: what came after this stream ended (a line of that second may repeat), or,
        // when there was nothing to follow, everything since that was first found.
        let since = match (streamed, options.since) {
            (true, _) => Some(now_unix()),
            (false, None) => Some(started),
            (false, kept) => kept,
        };
        options = LogOptions {
            tail: Tail::All,
            since,
            ..options
        };
        tokio::time::sleep(LOG_RETRY).await;
    }
}

async fn flush_logs(
    shared: Arc<Shared>,
    slug: String,
    batch: Arc<Mutex<Batch>>,
    wake: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(LOG_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        let updates = match batch.lock() {
            Ok(mut b) => b.take(&slug),
            Err(_) => return,
        };
        for u in updates {
            if shared.updates.send(u).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_off_lines() {
        assert_eq!(
            split_timestamp("2026-01-02T03:04:05.123456789Z GET /x 404"),
            (Some("2026-01-02T03:04:05.123456789Z"), "GET /x 404")
        );
        assert_eq!(
            split_timestamp("2026-01-02T03:04:05Z"),
            (Some("2026-01-02T03:04:05Z"), "")
        );
        assert_eq!(split_timestamp("no time here"), (None, "no time here"));
        assert_eq!(
            split_timestamp("2026-13-02 nope"),
            (None, "2026-13-02 nope")
        );
    }

    #[test]
    fn chunks_become_lines() {
        let lines = split_chunk(b"2026-01-02T03:04:05Z first\r\nsecond\n", true);
        assert_eq!(
            lines,
            vec![
                LogLine {
                    timestamp: Some("2026-01-02T03:04:05Z".into()),
                    stderr: true,
                    text: "first".into()
                },
                LogLine {
                    timestamp: Some("2026-01-02T03:04:05Z".into()),
                    stderr: true,
                    text: "second".into()
                },
            ]
        );
        let one = split_chunk(b"2026-01-02T03:04:06Z \xffbad\n", false);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].text, "\u{fffd}bad");
        assert!(!one[0].stderr);
        assert_eq!(split_chunk(b"", false), vec![]);
        // An empty line is a line; a chunk without its newline is one too.
        assert_eq!(split_chunk(b"\n", false).len(), 1);
        assert_eq!(split_chunk(b"partial", false)[0].text, "partial");
    }

    fn line(text: &str) -> LogLine {
        LogLine {
            timestamp: None,
            stderr: false,
            text: text.into(),
        }
    }

    #[test]
    fn batches_are_bounded_and_keep_order() {
        let mut b = Batch::default();
        b.push((0..5).map(|i| line(&i.to_string())).collect(), 3);
        b.notes.push("container replaced".into());
        let updates = b.take("acme");
        assert_eq!(
            updates,
            vec![
                Update::LogNote {
                    slug: "acme".into(),
                    message: "skipped 2 lines: the tenant logs faster than the dashboard shows"
                        .into()
                },
                Update::Logs {
                    slug: "acme".into(),
                    lines: vec![line("2"), line("3"), line("4")]
                },
                Update::LogNote {
                    slug: "acme".into(),
                    message: "container replaced".into()
                },
            ]
        );
        assert!(b.take("acme").is_empty(), "taken once");
    }
}
