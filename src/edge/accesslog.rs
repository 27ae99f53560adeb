//! One access-log line per request on stdout, written by a thread of its own so that a request
//! never waits for the terminal or Docker's log driver: lines queue (bounded) and are written
//! together, at most every 20 ms.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::Duration;

/// Lines waiting at most; beyond, lines are dropped and counted
/// (`tenantctl_edge_access_log_dropped_total`).
const QUEUE: usize = 64 * 1024;

#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<String>,
}

impl AccessLog {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<AccessLog> {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("edge-access-log".into())
            .spawn(move || write_lines(rx))?;
        Ok(AccessLog { tx })
    }

    /// Queues a line; false when it had to be dropped.
    pub fn log(&self, line: String) -> bool {
        match self.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// How long the writer gathers lines after the first one before writing them out: under load
/// a request then never wakes the writer (it is asleep, not waiting on the queue), and one
/// write carries many lines; an idle edge's line still shows within this delay.
const GATHER: Duration = Duration::from_millis(20);

fn write_lines(rx: Receiver<String>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        std::thread::sleep(GATHER);
        loop {
            match rx.try_recv() {
                Ok(more) => {
                    let _ = out.write_all(more.as_bytes());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        let _ = out.flush();
    }
}

/// A value for a `key=value` log field: as is when plain, else JSON-quoted.
pub fn field(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=')
    {
        std::borrow::Cow::Borrowed(value)
    } else {
        std::borrow::Cow::Owned(serde_json::to_string(value).unwrap_or_default())
    }
}
