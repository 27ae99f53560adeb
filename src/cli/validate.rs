//! `validate`: every file under plans/, themes/ and tenants/ checked; no engine or database.

use super::args::Output;
use super::context::Context;
use super::output::plural;
use crate::model::{self, DesiredState, Diagnostic};
use crate::source::{self, Repo};
use anyhow::{Result, bail};
use std::process::ExitCode;

/// The version of `validate -o json`'s document.
pub const FORMAT_VERSION: u32 = 1;

pub fn run(ctx: &Context, reference: Option<&str>, output: Output) -> Result<ExitCode> {
    let dir = ctx.dir()?;
    // validate also works on a plain folder, so a file can be checked before it is ever committed.
    let (files, label) = match (Repo::discover(&dir), reference) {
        (Ok(repo), Some(r)) => {
            let snap = repo.snapshot_at(r)?;
            let label = format!("revision {}", snap.short_revision());
            (snap.files, label)
        }
        (Ok(repo), None) => (repo.snapshot_worktree()?.files, "files on disk".to_string()),
        (Err(e), Some(_)) => return Err(e.into()),
        (Err(_), None) => (
            source::read_dirs(&dir, |_| false)?,
            "files on disk".to_string(),
        ),
    };
    if files.is_empty() {
        bail!(
            "no YAML files under plans/, themes/, tenants/ or notifications/ in {}",
            dir.display()
        );
    }
    if output == Output::Json {
        let (document, valid) = json(model::load(&files), &label);
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    match check(&files, &label) {
        Ok(_) if super::output::quiet() => Ok(ExitCode::SUCCESS),
        Ok(state) => {
            // Notifications are counted only where there are some (the line stays as it was).
            let notifications = match state.notifications.len() {
                0 => String::new(),
                n => format!(", {n} notification{}", plural(n)),
            };
            println!(
                "Valid: {} plan{}, {} theme{}, {} tenant{}{notifications}{} ({label}).",
                state.plans.len(),
                plural(state.plans.len()),
                state.themes.len(),
                plural(state.themes.len()),
                state.tenants.len(),
                plural(state.tenants.len()),
                if state.edge.is_some() {
                    ", an edge"
                } else {
                    ""
                },
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Ok(ExitCode::from(1)),
    }
}

/// Prints diagnostics the way compilers do, then a count; returns the desired state if there are none.
pub fn check(files: &[model::SourceFile], label: &str) -> Result<DesiredState, usize> {
    model::load(files).map_err(|diags: Vec<Diagnostic>| {
        for d in &diags {
            eprintln!("{d}");
        }
        let nfiles = diags
            .iter()
            .map(|d| &d.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        eprintln!(
            "\n{} problem{} in {nfiles} file{} ({label}); nothing was changed.",
            diags.len(),
            plural(diags.len()),
            plural(nfiles),
        );
        diags.len()
    })
}

/// `validate -o json`: the counts of a valid revision, or every problem (with its hint), and
/// whether it is valid.
pub fn json(
    loaded: Result<DesiredState, Vec<Diagnostic>>,
    label: &str,
) -> (serde_json::Value, bool) {
    use serde_json::json;
    match loaded {
        Ok(state) => (
            json!({
                "format_version": FORMAT_VERSION,
                "source": label,
                "valid": true,
                "counts": {
                    "plans": state.plans.len(),
                    "themes": state.themes.len(),
                    "tenants": state.tenants.len(),
                    "notifications": state.notifications.len(),
                },
                "problems": [],
            }),
            true,
        ),
        Err(diags) => (
            json!({
                "format_version": FORMAT_VERSION,
                "source": label,
                "valid": false,
                "counts": null,
                "problems": diags.iter().map(|d| json!({
                    "path": model::printable(&d.path),
                    "line": d.line,
                    "column": d.column,
                    "message": d.message,
                    "hint": d.hint,
                })).collect::<Vec<_>>(),
            }),
            false,
        ),
    }
}
