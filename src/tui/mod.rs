//! `tenantctl tui`: the dashboard. One loop folds terminal events, background updates and a
//! clock tick into [`App`] and draws; Docker, git and database work runs in [`worker`] tasks
//! and never blocks a frame.

pub mod app;
pub mod data;
pub mod filter;
pub mod keymap;
pub mod logbuf;
pub mod ui;
pub mod worker;

#[cfg(test)]
mod tests;

use crate::runtime::Runtime;
use crate::store::Store;
use crate::watch::WatchConfig;
use app::{App, Msg};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{IsTerminal, Stdout};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct TuiConfig {
    /// The repository's root (where `.tenantctl/` lives).
    pub repo: PathBuf,
    /// The ref the dashboard compares with (and the loop follows).
    pub reference: String,
    pub runtime: Runtime,
    pub store: Store,
    /// Run the reconcile loop in this process with this configuration; `None`: read-only.
    pub watch: Option<WatchConfig>,
    /// How often the engine and the database are observed.
    pub refresh: Duration,
    /// Log lines kept for the log pane.
    pub log_lines: usize,
    /// Colours on (off with `NO_COLOR` or `--no-color`).
    pub color: bool,
}

/// The dashboard's background side, as [`worker::spawn`] returns it.
pub struct Workers {
    pub requests: mpsc::UnboundedSender<data::Request>,
    /// Set to true to stop; the in-process loop finishes the pass in progress first.
    pub stop: tokio::sync::watch::Sender<bool>,
    pub done: tokio::task::JoinHandle<()>,
}

/// Puts the terminal back however the dashboard ends: normal exit, error or panic.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

/// Whether the dashboard holds the terminal: restoring twice (the panic hook, then the guard
/// while unwinding) would leave the alternate screen twice, and the second time moves the cursor
/// back over what the panic printed.
static TERMINAL_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn restore_terminal() {
    if !TERMINAL_TAKEN.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "tenantctl tui needs a terminal (stdin and stdout are not both a TTY); for scripts use `tenantctl status`"
            );
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        TERMINAL_TAKEN.store(true, std::sync::atomic::Ordering::SeqCst);
        enable_raw_mode()?;
        let mut stdout = std::io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture) {
            restore_terminal();
            return Err(e.into());
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Test hook of debug builds only: `TENANTCTL_TUI_TEST_PANIC=1` panics once a frame is drawn,
/// so the end-to-end tests can check that a panic gives the terminal back.
#[cfg(debug_assertions)]
fn panic_for_test() {
    if std::env::var_os("TENANTCTL_TUI_TEST_PANIC").is_some() {
        panic!("TENANTCTL_TUI_TEST_PANIC is set: panicking on purpose");
    }
}

/// Runs the dashboard until the user quits or SIGINT/SIGTERM arrives.
pub async fn run(config: TuiConfig) -> anyhow::Result<()> {
    let mut guard = TerminalGuard::enter()?;
    let mut app = App::new(config.color, config.log_lines, crate::store::now_unix());
    let (updates_tx, mut updates) = mpsc::channel(1024);
    let workers = worker::spawn(config, updates_tx);
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut mouse = true;
    let result = loop {
        if app.mouse != mouse {
            mouse = app.mouse;
            if mouse {
                execute!(std::io::stdout(), EnableMouseCapture)?;
            } else {
                execute!(std::io::stdout(), DisableMouseCapture)?;
            }
        }
        guard.terminal.draw(|f| ui::draw(f, &mut app))?;
        #[cfg(debug_assertions)]
        panic_for_test();
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(e)) => app.update(Msg::Term(e)),
                Some(Err(e)) => break Err(anyhow::Error::from(e).context("reading the terminal")),
                None => break Ok(()),
            },
            Some(u) = updates.recv() => {
                app.update(Msg::Update(u));
                // Fold everything already waiting into this frame.
                while let Ok(u) = updates.try_recv() {
                    app.update(Msg::Update(u));
                }
            }
            _ = tick.tick() => app.update(Msg::Tick(crate::store::now_unix())),
            _ = terminate.recv() => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
            _ = hangup.recv() => break Ok(()),
        }
        for r in app.take_requests() {
            let _ = workers.requests.send(r);
        }
        if app.quit {
            break Ok(());
        }
    };
    drop(guard);
    let _ = workers.stop.send(true);
    let mut done = workers.done;
    // Idle workers end at once; only a pass in progress is worth a word.
    if tokio::time::timeout(Duration::from_millis(500), &mut done)
        .await
        .is_err()
    {
        eprintln!("tenantctl tui: waiting for the reconcile pass in progress to finish…");
        let _ = done.await;
    }
    result
}
