//! `logs`: a tenant's container logs on stdout.

use super::args::LogsArgs;
use super::context::Context;
use crate::model::{self, slug_problem};
use crate::runtime::{LogEnd, LogEvent, LogOptions};
use anyhow::{Result, bail};
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

/// Streams the tenant's container logs to stdout until done, or with --follow until Ctrl-C
/// (exit 0) or the container stops or goes away.
pub async fn run(ctx: &Context<'_>, args: &LogsArgs) -> Result<ExitCode> {
    let slug = args.slug.as_str();
    if let Some(problem) = slug_problem(slug) {
        bail!("tenant {problem}");
    }
    let since = match &args.since {
        Some(text) => Some(
            crate::status::time::parse_since(text, crate::store::now_unix())
                .map_err(|e| anyhow::anyhow!("--since {e}"))?,
        ),
        None => None,
    };
    let runtime = ctx.runtime().await?;
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        since,
        timestamps: args.timestamps,
    };
    // `logs edge`: the namespace's edge (no tenant may be named `edge` beside one).
    if slug == "edge"
        && let Some(edge) = runtime.observe().await?.edge
    {
        return edge_logs(&runtime, &edge.container, &options).await;
    }
    let Some(container) = runtime.log_container(slug).await? else {
        if !in_git_at_head(ctx, slug) {
            bail!(
                "no tenant {slug}: it is not in git at HEAD and namespace {} has no container for it",
                ctx.namespace()
            );
        }
        bail!(
            "tenant {slug} has no container; is it applied? suspended tenants keep their container stopped: their past logs still show"
        );
    };
    let stdout = std::io::stdout();
    let streamed = runtime.stream_logs(slug, &container, options, |event| match event {
        LogEvent::Output { bytes, .. } => {
            let mut out = stdout.lock();
            // A closed pipe (`| head`) ends the stream quietly.
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
        LogEvent::Note(note) => {
            eprintln!("tenantctl: {note}");
            ControlFlow::Continue(())
        }
    });
    tokio::select! {
        end = streamed => match end? {
            LogEnd::Done | LogEnd::Cancelled => {}
            LogEnd::Stopped { state } => {
                eprintln!("tenantctl: container {} is {state}; no more lines", container.name)
            }
            LogEnd::Removed => {
                eprintln!("tenantctl: container {} was removed; no more lines", container.name)
            }
        },
        // Ctrl-C ends a follow: that is how it is meant to stop, so exit 0.
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The edge's access log and messages, until done or (following) Ctrl-C or its end.
async fn edge_logs(
    runtime: &crate::runtime::Runtime,
    edge: &crate::runtime::types::ObservedContainer,
    options: &LogOptions,
) -> Result<ExitCode> {
    use futures_util::StreamExt;
    let backend = runtime.backend();
    let mut stream = backend.logs(edge, options);
    let stdout = std::io::stdout();
    let copy = async {
        while let Some(event) = stream.next().await {
            match event? {
                LogEvent::Output { bytes, .. } => {
                    let mut out = stdout.lock();
                    if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
                LogEvent::Note(note) => eprintln!("tenantctl: {note}"),
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    tokio::select! {
        done = copy => done?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the repository around (or at --repo) names `slug` at HEAD; `true` when that cannot
/// be told, so the error falls back to the "not applied" wording.
fn in_git_at_head(ctx: &Context, slug: &str) -> bool {
    let desired = ctx
        .repo()
        .ok()
        .and_then(|repo| repo.snapshot_at("HEAD").ok())
        .and_then(|snap| model::load(&snap.files).ok());
    desired.is_none_or(|d| d.tenants.contains_key(slug))
}
