//! What every command prints the same way: colour, plurals, progress lines, the uncommitted-edits note.

use super::args::{ColorWhen, Conventions};
use crate::apply::Progress;
use crate::model;
use crate::plan::render::Style;
use crate::plan::trial;
use crate::source::Repo;
use anyhow::Result;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static COLOR: AtomicU8 = AtomicU8::new(0);
static QUIET: AtomicBool = AtomicBool::new(false);

/// Remembers the global `--color` and `-q` for the printing below.
pub fn set_conventions(conventions: &Conventions) {
    COLOR.store(conventions.color as u8, Ordering::Relaxed);
    QUIET.store(conventions.quiet, Ordering::Relaxed);
}

/// `-q`: print only errors and the lines a script needs.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn color_when() -> ColorWhen {
    match COLOR.load(Ordering::Relaxed) {
        x if x == ColorWhen::Always as u8 => ColorWhen::Always,
        x if x == ColorWhen::Never as u8 => ColorWhen::Never,
        _ => ColorWhen::Auto,
    }
}

/// Whether output is coloured. `--color always|never` decides alone (a command line outranks
/// the environment, as no-color.org asks). `auto`, in this order: a non-empty `NO_COLOR` →
/// never; `CLICOLOR_FORCE` set to anything but empty or `0` → always; `TERM=dumb` → never;
/// otherwise colour only when the stream is a terminal.
pub fn color_enabled(
    when: ColorWhen,
    var: impl Fn(&str) -> Option<OsString>,
    terminal: bool,
) -> bool {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto if set("NO_COLOR").is_some() => false,
        ColorWhen::Auto if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") => true,
        ColorWhen::Auto if var("TERM").is_some_and(|v| v == "dumb") => false,
        ColorWhen::Auto => terminal,
    }
}

/// The style of standard output: `--color` and the environment decide, and a command's
/// `--no-color` means `--color never`.
pub fn text_style(no_color: bool) -> Style {
    let when = if no_color {
        ColorWhen::Never
    } else {
        color_when()
    };
    Style {
        color: color_enabled(
            when,
            |name| std::env::var_os(name),
            std::io::stdout().is_terminal(),
        ),
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Prints apply progress as it happens, one line per step.
pub struct Printer;

impl Progress for Printer {
    fn line(&self, tenant: Option<&str>, message: &str) {
        if quiet() {
            return;
        }
        match tenant {
            Some(t) => println!("{}: {}", model::printable(t), model::printable(message)),
            None => println!("{}", model::printable(message)),
        }
    }
}

/// [`Printer`] on stderr: progress beside a JSON document on stdout.
pub struct ErrPrinter;

impl Progress for ErrPrinter {
    fn line(&self, tenant: Option<&str>, message: &str) {
        if quiet() {
            return;
        }
        match tenant {
            Some(t) => eprintln!("{}: {}", model::printable(t), model::printable(message)),
            None => eprintln!("{}", model::printable(message)),
        }
    }
}

/// Watch output: one line per event, with the UTC time.
pub struct TimedPrinter;

impl Progress for TimedPrinter {
    fn line(&self, tenant: Option<&str>, message: &str) {
        if quiet() {
            return;
        }
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
    if !pending.is_empty() && !quiet() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `color_enabled` with these variables set and stdout a terminal or not.
    fn decide(when: ColorWhen, vars: &[(&str, &str)], terminal: bool) -> bool {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        color_enabled(when, lookup, terminal)
    }

    /// `--color`, the variables set, stdout a terminal, colour expected.
    type Row<'a> = (ColorWhen, &'a [(&'a str, &'a str)], bool, bool);

    #[test]
    fn the_colour_decision_table() {
        use ColorWhen::{Always, Auto, Never};
        let rows: &[Row] = &[
            // auto: the terminal decides when nothing else does
            (Auto, &[], true, true),
            (Auto, &[], false, false),
            (Auto, &[("TERM", "xterm-256color")], true, true),
            // NO_COLOR: any non-empty value turns colour off; empty is unset
            (Auto, &[("NO_COLOR", "1")], true, false),
            (Auto, &[("NO_COLOR", "0")], true, false),
            (Auto, &[("NO_COLOR", "")], true, true),
            // CLICOLOR_FORCE: anything but 0 forces colour, through a pipe too
            (Auto, &[("CLICOLOR_FORCE", "1")], false, true),
            (Auto, &[("CLICOLOR_FORCE", "0")], false, false),
            (Auto, &[("CLICOLOR_FORCE", "")], false, false),
            // NO_COLOR outranks CLICOLOR_FORCE
            (
                Auto,
                &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
                true,
                false,
            ),
            // TERM=dumb: never, unless forced
            (Auto, &[("TERM", "dumb")], true, false),
            (
                Auto,
                &[("TERM", "dumb"), ("CLICOLOR_FORCE", "1")],
                false,
                true,
            ),
            // the command line outranks the environment
            (Always, &[], false, true),
            (Always, &[("NO_COLOR", "1"), ("TERM", "dumb")], false, true),
            (Never, &[], true, false),
            (Never, &[("CLICOLOR_FORCE", "1")], true, false),
        ];
        for (when, vars, terminal, expected) in rows {
            assert_eq!(
                decide(*when, vars, *terminal),
                *expected,
                "--color {when:?}, {vars:?}, terminal {terminal}"
            );
        }
    }

    #[test]
    fn paint_writes_ansi_codes_only_with_colour() {
        use crate::plan::render::{GREEN, RED};
        let on = Style { color: true };
        assert_eq!(on.paint(GREEN, "ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(on.paint(RED, "no"), "\x1b[31mno\x1b[0m");
        assert_eq!(Style { color: false }.paint(GREEN, "ok"), "ok");
    }
}

/// A JSON document as every command prints it: `format_version` first, and beside each Unix
/// time (a key `at`, `…_at`, `…_start` holding an integer) the same time in RFC 3339 as
/// `<key>_rfc3339`; the integers stay, so readers of the older documents keep working.
pub fn versioned(document: serde_json::Value, version: u32) -> serde_json::Value {
    fn times(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                let mut added = Vec::new();
                for (k, value) in map.iter_mut() {
                    let is_time = k == "at" || k.ends_with("_at") || k.ends_with("_start");
                    match value.as_i64() {
                        Some(unix) if is_time && unix >= 0 => added.push((
                            format!("{k}_rfc3339"),
                            serde_json::Value::String(crate::calendar::rfc3339(unix)),
                        )),
                        _ => times(value),
                    }
                }
                for (k, t) in added {
                    map.insert(k, t);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(times),
            _ => {}
        }
    }
    let mut document = document;
    times(&mut document);
    match document {
        serde_json::Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len() + 1);
            out.insert("format_version".into(), version.into());
            out.extend(map.into_iter().filter(|(k, _)| k != "format_version"));
            serde_json::Value::Object(out)
        }
        other => other,
    }
}

#[cfg(test)]
mod versioned_tests {
    use serde_json::json;

    #[test]
    fn unix_times_get_an_rfc3339_sibling_and_the_version_comes_first() {
        let doc = super::versioned(
            json!({
                "generated_at": 1_796_000_000,
                "month": "2026-11",
                "attempts": 3,
                "tenants": [{ "window_start": 0, "samples": [{ "at": 86_400, "cpu": 1.5 }] }],
                "trial_ends_at": null,
            }),
            1,
        );
        assert_eq!(
            doc.as_object().unwrap().keys().next().unwrap(),
            "format_version"
        );
        assert_eq!(doc["format_version"], 1);
        assert_eq!(doc["generated_at"], 1_796_000_000, "the integer stays");
        assert_eq!(doc["generated_at_rfc3339"], "2026-11-30T00:53:20Z");
        assert_eq!(
            doc["tenants"][0]["window_start_rfc3339"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            doc["tenants"][0]["samples"][0]["at_rfc3339"],
            "1970-01-02T00:00:00Z"
        );
        assert!(doc.get("attempts_rfc3339").is_none() && doc.get("month_rfc3339").is_none());
        assert!(
            doc.get("trial_ends_at_rfc3339").is_none(),
            "null stays null"
        );
    }
}
