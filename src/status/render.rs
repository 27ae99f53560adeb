//! `tenantctl status` output: an aligned table with notes below it, or one JSON document.

use super::{Health, Report, SyncStatus, TenantStatus, time};
use crate::plan::render::{RED, Style, YELLOW};
use anstyle::Style as Look;
use std::fmt::Write as _;

/// The table never grows past this many columns (the widest column, the URL, is cut first).
pub const WIDTH: usize = 100;

/// The report as one JSON document (what `--output json` prints).
pub fn json(report: &Report) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
}

fn sync_color(s: SyncStatus) -> Option<Look> {
    match s {
        SyncStatus::OutOfSync => Some(YELLOW),
        _ => None,
    }
}

fn health_color(h: Health) -> Option<Look> {
    match h {
        Health::Degraded | Health::Missing => Some(RED),
        _ => None,
    }
}

/// Cuts `text` to `width` characters, marking the cut with `…`.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

fn short(rev: &str) -> String {
    rev.chars().take(7).collect()
}

/// The human view: header line, table, notes per tenant that needs one, summary line.
/// `now` (Unix seconds) only words trial ends ("in 3 days").
pub fn text(report: &Report, style: Style, now: i64) -> String {
    let mut out = String::new();
    let rev = report
        .revision
        .as_deref()
        .map(|r| r.chars().take(12).collect::<String>())
        .unwrap_or_else(|| "(unknown)".into());
    let runtime = match report.runtime {
        crate::runtime::RuntimeKind::Docker => "",
        crate::runtime::RuntimeKind::Swarm => ", swarm services",
    };
    let _ = writeln!(
        out,
        "Revision {rev}, namespace {}{runtime}.",
        report.namespace
    );
    if let Some(r) = &report.reconciler {
        let _ = writeln!(out, "{}", reconciler_line(r));
    }
    if let Some(e) = &report.error {
        let _ = writeln!(
            out,
            "{}",
            style.paint(YELLOW, &format!("Sync is Unknown for every tenant: {e}"))
        );
    }
    if report.tenants.is_empty() {
        let _ = writeln!(out, "\nNo tenants in git, the database or the engine.");
        return out;
    }
    out.push('\n');
    let dash = || "-".to_string();
    let rows: Vec<[String; 9]> = report
        .tenants
        .iter()
        .map(|t| {
            [
                t.slug.clone(),
                t.sync.as_str().to_string(),
                t.health.as_str().to_string(),
                t.plan.clone().unwrap_or_else(dash),
                t.theme.clone().unwrap_or_else(dash),
                t.state.clone().unwrap_or_else(dash),
                t.applied_revision
                    .as_deref()
                    .map(short)
                    .unwrap_or_else(dash),
                t.probe.as_ref().map(|p| p.short()).unwrap_or_else(dash),
                t.url.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    let header = [
        "TENANT", "SYNC", "HEALTH", "PLAN", "THEME", "STATE", "APPLIED", "PROBE", "URL",
    ];
    let caps = [24, 9, 11, 16, 16, 9, 7, 10, usize::MAX];
    let mut widths: Vec<usize> = (0..9)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
                .min(caps[i])
        })
        .collect();
    let fixed: usize = widths[..8].iter().sum::<usize>() + 2 * 8;
    widths[8] = widths[8].min(WIDTH.saturating_sub(fixed)).max(3);
    let line = |cells: &[String], colors: [Option<Look>; 9]| -> String {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let text = fit(cell, widths[i]);
            let pad = widths[i].saturating_sub(text.chars().count());
            let shown = match colors[i] {
                Some(look) => style.paint(look, &text),
                None => text,
            };
            l.push_str(&shown);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_string()
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(out, "{}", line(&head, [None; 9]));
    for (row, t) in rows.iter().zip(&report.tenants) {
        let mut colors = [None; 9];
        colors[1] = sync_color(t.sync);
        colors[2] = health_color(t.health);
        colors[7] = t.probe.as_ref().filter(|p| p.fails()).map(|_| RED);
        let _ = writeln!(out, "{}", line(row, colors));
    }
    let notes: Vec<String> = report
        .tenants
        .iter()
        .filter_map(|t| notes(t, now))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

/// `Reconciler: h:1:…:watch leads (term 3; lease renewed 2s ago, lapses in 8s). Standing by: h2:7:…:watch.`
pub fn reconciler_line(r: &super::Reconciler) -> String {
    let secs = |ms: i64| format!("{}s", (ms as f64 / 1000.0).round() as i64);
    let mut line = match &r.leader {
        Some(l) if l.live => format!(
            "Reconciler: {} leads (term {}; lease renewed {} ago, lapses in {}).",
            l.holder,
            l.term,
            secs(l.renewed_ms_ago),
            secs(l.expires_in_ms)
        ),
        Some(l) => format!(
            "Reconciler: no leader (the last, {} in term {}, let its lease lapse {} ago).",
            l.holder,
            l.term,
            secs(-l.expires_in_ms)
        ),
        None if r.standbys.is_empty() => {
            "Reconciler: none (no `tenantctl watch` runs against this database).".to_string()
        }
        None => "Reconciler: no leader yet.".to_string(),
    };
    if !r.standbys.is_empty() {
        line.push_str(&format!(" Standing by: {}.", r.standbys.join(", ")));
    }
    line
}

/// What the table cannot hold for one tenant: sync reasons, health reason, last error, trial end.
fn notes(t: &TenantStatus, now: i64) -> Option<String> {
    let mut lines = Vec::new();
    for r in &t.sync_reasons {
        lines.push(format!("  out of sync: {r}"));
    }
    // Healthy and Suspended need no words: that is what was asked for.
    if let Some(r) = &t.health_reason
        && !matches!(t.health, Health::Healthy | Health::Suspended)
    {
        lines.push(format!("  {}: {r}", t.health.as_str()));
    }
    match (&t.pending, &t.last_error) {
        (Some(p), _) => lines.push(format!("  {p}")),
        (None, Some(e)) => lines.push(format!("  last error: {e}")),
        (None, None) => {}
    }
    if let Some(p) = progress_note(t) {
        lines.push(format!("  {p}"));
    }
    if let Some(n) = storage_note(t) {
        lines.push(format!("  {n}"));
    }
    if let Some(end) = t.trial_ends_at {
        let date: String = time::rfc3339(end).chars().take(10).collect();
        let days = (end - now + 86_399).div_euclid(86_400);
        lines.push(if end > now {
            format!(
                "  trial ends {date} (in {} day{})",
                days,
                if days == 1 { "" } else { "s" }
            )
        } else {
            format!("  trial ended {date}")
        });
    }
    (!lines.is_empty()).then(|| format!("{}:\n{}\n", t.slug, lines.join("\n")))
}

/// Storage worth a note: the data volume at 80 % of the plan's `storage` or more.
pub fn storage_note(t: &TenantStatus) -> Option<String> {
    let (used, limit) = (t.storage_bytes?, t.storage_limit_bytes?);
    let pct = crate::usage::threshold::percent(
        u64::try_from(used).ok()?,
        Some(u64::try_from(limit).ok()?),
    )?;
    (pct >= 80).then(|| {
        format!(
            "storage at {pct}% of {} ({} used)",
            crate::usage::human_bytes(limit),
            crate::usage::human_bytes(used)
        )
    })
}

/// The provisioning progress worth a note: a step in flight (`provisioning: at health (71%)`)
/// or the step the last failure happened at (`failed at step health (71%)`); none once done.
pub fn progress_note(t: &TenantStatus) -> Option<String> {
    let percent = t
        .progress_percent
        .map(|p| format!(" ({p}%)"))
        .unwrap_or_default();
    match t.progress_step.as_deref()? {
        "done" => None,
        "failed" => Some(match &t.error_step {
            Some(step) => format!("provisioning failed at step {step}{percent}"),
            None => "provisioning failed".to_string(),
        }),
        step => Some(format!("provisioning: at step {step}{percent}")),
    }
}

/// `6 tenants. Sync: 5 Synced, 1 OutOfSync. Health: 4 Healthy, 1 Degraded, 1 Suspended.`
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let list = |pairs: &[(usize, &str)]| {
        let parts: Vec<String> = pairs
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, name)| format!("{n} {name}"))
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    };
    format!(
        "{} tenant{}. Sync: {}. Health: {}.",
        s.tenants,
        if s.tenants == 1 { "" } else { "s" },
        list(&[
            (s.sync.synced, "Synced"),
            (s.sync.out_of_sync, "OutOfSync"),
            (s.sync.unknown, "Unknown"),
        ]),
        list(&[
            (s.health.healthy, "Healthy"),
            (s.health.progressing, "Progressing"),
            (s.health.degraded, "Degraded"),
            (s.health.suspended, "Suspended"),
            (s.health.missing, "Missing"),
            (s.health.unknown, "Unknown"),
        ]),
    )
}
