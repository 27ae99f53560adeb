//! `apply`'s live display on a terminal (indicatif): a header with the tenants converged, failed
//! and at work; one line per tenant at work with its step (`network` … `record`, the health wait
//! with its elapsed time); one line per image being pulled or built with its latest status. The
//! plain progress lines scroll above it as they would without it, and the display is cleared
//! before the summary. Only on a terminal, never with `-q` or `TERM=dumb` (see [`wanted`]).

use super::output::quiet;
use crate::apply::Progress;
use crate::apply::progress::Step;
use crate::model;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// How often a spinner and an elapsed time move.
const TICK: Duration = Duration::from_millis(120);

/// Whether `apply` shows the live display: standard output is a terminal that can move its
/// cursor (not `TERM=dumb`) and `-q` is not given. Colour is decided apart (`--color`, `NO_COLOR`).
pub fn wanted(quiet: bool, var: impl Fn(&str) -> Option<OsString>, terminal: bool) -> bool {
    terminal && !quiet && var("TERM").is_none_or(|t| t != "dumb")
}

/// [`wanted`] for this process.
pub fn wanted_here() -> bool {
    wanted(
        quiet(),
        |name| std::env::var_os(name),
        std::io::stdout().is_terminal(),
    )
}

/// What a tenant's line says at `step`: its place among the steps and what it waits for.
pub fn step_text(step: Step) -> String {
    let index = Step::ALL.iter().position(|s| *s == step).unwrap_or(0) + 1;
    let what = match step {
        Step::Network => "network: making its network",
        Step::Volume => "volume: making its data volume",
        Step::Image => "image: making its image ready",
        Step::Container => "container: creating its container",
        Step::Start => "start: starting its container",
        Step::Health => "health: waiting for its health check",
        Step::Record => "record: recording the outcome",
    };
    format!("[{index}/{}] {what}", Step::ALL.len())
}

/// The live display; a [`Progress`] for the applier. [`Live::clear`] it before printing more.
pub struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    styles: Styles,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tenants: BTreeMap<String, ProgressBar>,
    images: BTreeMap<String, ProgressBar>,
    converged: usize,
    failed: usize,
}

struct Styles {
    step: ProgressStyle,
    health: ProgressStyle,
    image: ProgressStyle,
}

impl Styles {
    fn new(color: bool) -> Styles {
        // Without colour the templates carry no style at all.
        let (spin, name) = if color {
            ("{spinner:.cyan}", "{prefix:<24.bold}")
        } else {
            ("{spinner}", "{prefix:<24}")
        };
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
        };
        Styles {
            step: style(&format!("  {spin} {name} {{msg}}")),
            health: style(&format!("  {spin} {name} {{msg}} ({{elapsed}})")),
            image: style(&format!(
                "  {spin} image {{prefix}} ({{elapsed}}): {{wide_msg}}"
            )),
        }
    }
}

impl Live {
    /// Starts the display on standard output; `color` as `--color`/`NO_COLOR` decided.
    pub fn start(color: bool) -> Live {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let header = multi.add(ProgressBar::new_spinner());
        let template = if color {
            "{spinner:.cyan} {msg} ({elapsed})"
        } else {
            "{spinner} {msg} ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            header.set_style(style);
        }
        header.set_message("applying");
        header.enable_steady_tick(TICK);
        Live {
            multi,
            header,
            styles: Styles::new(color),
            state: Mutex::new(State::default()),
        }
    }

    /// Removes the display from the screen; the lines printed above it stay.
    pub fn clear(&self) {
        if let Ok(mut state) = self.state.lock() {
            for bar in state.tenants.values().chain(state.images.values()) {
                bar.finish_and_clear();
            }
            state.tenants.clear();
            state.images.clear();
        }
        self.header.finish_and_clear();
        let _ = self.multi.clear();
    }

    fn bar(&self, style: &ProgressStyle, prefix: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(style.clone());
        bar.set_prefix(model::printable(prefix).to_string());
        bar.enable_steady_tick(TICK);
        bar
    }

    fn update_header(&self, state: &State) {
        let mut parts = vec![format!("applying: {} converged", state.converged)];
        if state.failed > 0 {
            parts.push(format!("{} failed", state.failed));
        }
        parts.push(format!("{} at work", state.tenants.len()));
        self.header.set_message(parts.join(", "));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Progress for Live {
    fn line(&self, tenant: Option<&str>, message: &str) {
        let text = match tenant {
            Some(t) => format!("{}: {}", model::printable(t), model::printable(message)),
            None => model::printable(message).to_string(),
        };
        let _ = self.multi.println(text);
    }

    fn step(&self, tenant: &str, step: Step) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let bar = match state.tenants.get(tenant) {
            Some(bar) => bar.clone(),
            None => {
                let bar = self.bar(&self.styles.step, tenant);
                state.tenants.insert(tenant.to_string(), bar.clone());
                self.update_header(&state);
                bar
            }
        };
        // The elapsed time is that of the step: the health wait counts from its start.
        bar.set_style(if step == Step::Health {
            self.styles.health.clone()
        } else {
            self.styles.step.clone()
        });
        bar.reset_elapsed();
        bar.set_message(step_text(step));
    }

    fn finished(&self, tenant: &str, failed: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(bar) = state.tenants.remove(tenant) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if failed {
            state.failed += 1;
        } else {
            state.converged += 1;
        }
        self.update_header(&state);
    }

    /// The image's line shows its latest status; the status lines do not scroll above.
    fn image(&self, image: &str, line: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let bar = match state.images.get(image) {
            Some(bar) => bar.clone(),
            None => {
                let bar = self.bar(&self.styles.image, image);
                state.images.insert(image.to_string(), bar.clone());
                bar
            }
        };
        bar.set_message(model::printable(line).to_string());
    }

    fn image_done(&self, image: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(bar) = state.images.remove(image) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(quiet: bool, term: Option<&str>, terminal: bool) -> bool {
        wanted(
            quiet,
            |name| (name == "TERM").then(|| term.map(OsString::from)).flatten(),
            terminal,
        )
    }

    #[test]
    fn the_live_display_needs_a_terminal_that_moves_its_cursor_and_no_quiet() {
        assert!(decide(false, Some("xterm-256color"), true));
        assert!(decide(false, None, true));
        assert!(!decide(false, Some("xterm"), false), "piped");
        assert!(!decide(false, Some("dumb"), true), "TERM=dumb");
        assert!(!decide(true, Some("xterm"), true), "-q");
    }

    #[test]
    fn each_step_says_its_place_and_what_it_waits_for() {
        assert_eq!(
            step_text(Step::Network),
            "[1/7] network: making its network"
        );
        assert_eq!(
            step_text(Step::Health),
            "[6/7] health: waiting for its health check"
        );
        assert_eq!(
            step_text(Step::Record),
            "[7/7] record: recording the outcome"
        );
    }
}
