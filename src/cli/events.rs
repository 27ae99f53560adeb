//! `events`: the audit log from the database, newest last; `--follow` polls for new rows.

use super::args::{EventsArgs, Output};
use super::context::Context;
use crate::audit::{self, KindFilter, Widths};
use crate::model::slug_problem;
use crate::store::{AuditQuery, AuditRow, Store};
use anyhow::{Result, anyhow, bail};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Rows read per query while following.
const FOLLOW_BATCH: i64 = 1000;
/// How often `--follow` reads the database.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Prints the matching events (oldest of them first), then with --follow every new one until
/// Ctrl-C (exit 0) or a closed stdout.
pub async fn run(ctx: &Context<'_>, args: &EventsArgs) -> Result<ExitCode> {
    if let Some(slug) = &args.tenant
        && let Some(problem) = slug_problem(slug)
    {
        bail!("--tenant: {problem}");
    }
    let kind = args
        .kind
        .as_deref()
        .map(KindFilter::new)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let since = match &args.since {
        Some(text) => Some(
            audit::parse_since(text, crate::store::now_unix())
                .map_err(|e| anyhow!("--since {e}"))?,
        ),
        None => None,
    };
    let limit = args
        .limit
        .unwrap_or(if since.is_some() { i64::MAX } else { 100 });
    let mut query = AuditQuery {
        tenant: args.tenant.clone(),
        kind_like: kind.as_ref().map(KindFilter::like),
        since,
        after: None,
        limit,
    };
    let keep = |rows: Vec<AuditRow>| -> Vec<AuditRow> {
        rows.into_iter()
            .filter(|r| kind.as_ref().is_none_or(|k| k.matches(&r.kind)))
            .collect()
    };
    let mut out = Out::new(args.output, args.follow);

    let Some(store) = open(ctx, args.follow).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let start = store.last_event_id().await?;
    let rows = keep(store.audit_events(&query).await?);
    if !out.batch(&rows) {
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    query.after = Some(rows.last().map_or(start, |r| r.id.max(start)));
    query.limit = FOLLOW_BATCH;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            // Ctrl-C ends a follow: that is how it is meant to stop, so exit 0.
            _ = tokio::signal::ctrl_c() => break,
        }
        loop {
            let raw = store.audit_events(&query).await?;
            let Some(last) = raw.last().map(|r| r.id) else {
                break;
            };
            let full = raw.len() as i64 >= FOLLOW_BATCH;
            query.after = Some(last);
            if !out.batch(&keep(raw)) {
                store.close().await;
                return Ok(ExitCode::SUCCESS);
            }
            if !full {
                break;
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The database, read-only. Following a SQLite file that does not exist yet waits for the first
/// apply to make it (Ctrl-C: `None`); otherwise a missing file reads as an empty log.
async fn open(ctx: &Context<'_>, follow: bool) -> Result<Option<Store>> {
    if follow {
        let url = ctx.read_url()?;
        if let Some(file) = Store::missing_file(&url) {
            eprintln!(
                "note: no state database at {} yet: waiting for the first apply to make it",
                file.display()
            );
            loop {
                if let Some(store) = Store::open_existing(&url).await? {
                    return Ok(Some(store));
                }
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(None),
                }
            }
        }
    }
    Ok(Some(ctx.store().await?))
}

/// Where the events go: aligned text, one JSON document, or JSON lines when following.
struct Out {
    output: Output,
    follow: bool,
    widths: Widths,
}

impl Out {
    fn new(output: Output, follow: bool) -> Out {
        Out {
            output,
            follow,
            widths: Widths::default(),
        }
    }

    /// Writes one batch; false once stdout is closed (`| head`), which ends the command quietly.
    fn batch(&mut self, rows: &[AuditRow]) -> bool {
        let mut text = String::new();
        match (self.output, self.follow) {
            (Output::Text, _) => {
                self.widths.fit(rows);
                for r in rows {
                    text.push_str(&audit::text_line(r, self.widths));
                    text.push('\n');
                }
            }
            (Output::Json, false) => {
                let doc = audit::json_document(rows);
                text = serde_json::to_string_pretty(&doc).unwrap_or_default();
                text.push('\n');
            }
            (Output::Json, true) => {
                for r in rows {
                    let mut event = audit::json_event(r);
                    event["format_version"] = audit::FORMAT_VERSION.into();
                    text.push_str(&event.to_string());
                    text.push('\n');
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_ok()
    }
}
