//! One access-log line per request on stdout, written by a thread of its own so that a request
//! never waits for the terminal or Docker's log driver: lines queue (bounded) and are flushed
//! together whenever the queue runs empty.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

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

fn write_lines(rx: Receiver<String>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        while let Ok(more) = rx.try_recv() {
            let _ = out.write_all(more.as_bytes());
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
