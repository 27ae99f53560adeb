//! What every command prints the same way: colour, plurals, progress lines, the uncommitted-edits note.

use crate::apply::Progress;
use crate::model;
use crate::plan::render::Style;
use crate::plan::trial;
use crate::source::Repo;
use anyhow::Result;
use std::io::IsTerminal;

/// Colour on a terminal, unless `--no-color` or `NO_COLOR` says otherwise.
pub fn text_style(no_color: bool) -> Style {
    Style {
        color: !no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
    }
}

/// `text` in the ANSI colour `code` when the style has colour.
pub fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Prints apply progress as it happens, one line per step.
pub struct Printer;

impl Progress for Printer {
    fn line(&self, tenant: Option<&str>, message: &str) {
        match tenant {
            Some(t) => println!("{}: {}", model::printable(t), model::printable(message)),
            None => println!("{}", model::printable(message)),
        }
    }
}

/// Watch output: one line per event, with the UTC time.
pub struct TimedPrinter;

impl Progress for TimedPrinter {
    fn line(&self, tenant: Option<&str>, message: &str) {
        let now = crate::store::now_unix();
        let clock = format!(
            "{}T{:02}:{:02}:{:02}Z",
            trial::date(now),
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
        match tenant {
            Some(t) => println!(
                "{clock} {}: {}",
                model::printable(t),
                model::printable(message)
            ),
            None => println!("{clock} {}", model::printable(message)),
        }
    }
}

/// Says on stderr when state files have uncommitted edits that a plan of a commit leaves out.
pub fn note_uncommitted(repo: &Repo) -> Result<()> {
    let pending = repo.uncommitted_changes()?;
    if !pending.is_empty() {
        let shown: Vec<&str> = pending.iter().take(5).map(String::as_str).collect();
        let more = if pending.len() > 5 {
            format!(" and {} more", pending.len() - 5)
        } else {
            String::new()
        };
        eprintln!(
            "\nNote: {} uncommitted edit{} under plans/, themes/ or tenants/ {} not included ({}{more}). Commit them to deploy, or preview them with --worktree.",
            pending.len(),
            plural(pending.len()),
            if pending.len() == 1 { "is" } else { "are" },
            shown.join(", "),
        );
    }
    Ok(())
}
