//! `logs`: a tenant's stored log history, then its container's live lines, on stdout; and
//! `logs sync`, which copies every tenant container's new lines into the database.

use super::args::{LogsArgs, LogsCommand, LogsSyncArgs, Output};
use super::context::{Access, Context};
use crate::loghistory::{Sequencer, split_timestamped, stream_of};
use crate::model::{self, slug_problem};
use crate::runtime::{LogEnd, LogEvent, LogOptions, Tail};
use crate::store::{LogLineRow, Store};
use anyhow::{Result, bail};
use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

/// Shows the tenant's stored history (what `watch` or `logs sync` copied, also of containers
/// gone since) merged with its container's lines the history does not hold yet, the last
/// --tail of them; with --follow, then new lines until Ctrl-C (exit 0) or the container stops
/// or goes away.
pub async fn run(ctx: &Context<'_>, args: &LogsArgs) -> Result<ExitCode> {
    if let Some(LogsCommand::Sync(sync_args)) = &args.command {
        return sync(ctx, sync_args).await;
    }
    let Some(slug) = args.slug.as_deref() else {
        bail!("name a tenant: tenantctl logs SLUG (or tenantctl logs sync)");
    };
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
    // `logs edge`: the namespace's edge (no tenant may be named `edge` beside one).
    if slug == "edge"
        && let Some(edge) = runtime.observe().await?.edge
    {
        let options = LogOptions {
            follow: args.follow,
            tail: args.tail,
            since,
            timestamps: args.timestamps,
        };
        return edge_logs(&runtime, &edge.container, &options).await;
    }
    let container = runtime.log_container(slug).await?;
    let stored = history(ctx, slug, since, args.tail).await?;
    let live = match &container {
        Some(c) => live_lines(&runtime, c, since, args.tail).await?,
        None => Vec::new(),
    };
    let Some(container) = container else {
        if !stored.is_empty() {
            // The container is gone (a cancelled tenant): its history is all there is.
            print_lines(&merge(stored, Vec::new(), args.tail), args.timestamps);
            if args.follow {
                eprintln!("tenantctl: tenant {slug} has no container; no more lines");
            }
            return Ok(ExitCode::SUCCESS);
        }
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
    // Following goes on from the second of the newest line shown, skipping what was shown.
    let newest = live.iter().map(|l| l.at_ns).max();
    let shown: HashSet<_> = live.iter().map(Line::key).collect();
    if !print_lines(&merge(stored, live, args.tail), args.timestamps) {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let options = LogOptions {
        follow: true,
        tail: Tail::All,
        since: newest.map(|ns| ns.div_euclid(1_000_000_000)).or(since),
        timestamps: true,
    };
    let stdout = std::io::stdout();
    let mut seq = Sequencer::default();
    // The first container's lines are numbered as above; a replacement's are all new.
    let mut first = true;
    let streamed = runtime.stream_logs(slug, &container, options, |event| match event {
        LogEvent::Output { source, bytes } => {
            let Some((at_ns, text)) = split_timestamped(&bytes) else {
                return ControlFlow::Continue(());
            };
            let kind = stream_of(source);
            let n = seq.seq(at_ns, kind);
            if first && shown.contains(&(container.id.clone(), at_ns, kind.code(), n)) {
                return ControlFlow::Continue(());
            }
            let mut out = stdout.lock();
            let written = if args.timestamps {
                writeln!(out, "{} {text}", engine_time(at_ns))
            } else {
                writeln!(out, "{text}")
            };
            // A closed pipe (`| head`) ends the stream quietly.
            match written.and_then(|()| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
        LogEvent::Note(note) => {
            first = false;
            seq = Sequencer::default();
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

/// One line to show: when, which container (to tell lines apart), stream, place and text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    container_id: String,
    at_ns: i64,
    stream: i32,
    seq: i32,
    text: String,
}

impl Line {
    fn key(&self) -> (String, i64, i32, i32) {
        (self.container_id.clone(), self.at_ns, self.stream, self.seq)
    }
}

/// The stored lines of `slug` (none when the database does not exist yet).
async fn history(
    ctx: &Context<'_>,
    slug: &str,
    since: Option<i64>,
    tail: Tail,
) -> Result<Vec<Line>> {
    let url = ctx.read_url()?;
    let Some(store) = Store::open_existing(&url).await? else {
        return Ok(Vec::new());
    };
    let limit = match tail {
        Tail::All => None,
        Tail::Lines(n) => Some(i64::try_from(n).unwrap_or(i64::MAX)),
    };
    let rows = store
        .log_lines(
            slug,
            since.unwrap_or(0).saturating_mul(1_000_000_000),
            limit,
        )
        .await;
    store.close().await;
    Ok(rows?
        .into_iter()
        .map(|r: LogLineRow| Line {
            container_id: r.container_id,
            at_ns: r.at_ns,
            stream: r.stream,
            seq: r.seq,
            text: r.line,
        })
        .collect())
}

/// The container's lines as the engine holds them now, numbered as a sync numbers them.
async fn live_lines(
    runtime: &crate::runtime::Runtime,
    c: &crate::runtime::ObservedContainer,
    since: Option<i64>,
    tail: Tail,
) -> Result<Vec<Line>> {
    use futures_util::StreamExt;
    // Numbering needs every line of the first second read: with a tail, read from the start
    // of the second of the first line the tail holds.
    let from = match (tail, since) {
        (Tail::All, s) => s,
        (Tail::Lines(_), s) => {
            let options = LogOptions {
                follow: false,
                tail,
                since: s,
                timestamps: true,
            };
            let mut first = runtime.backend().logs(c, &options);
            let mut at = None;
            while let Some(event) = first.next().await {
                if let LogEvent::Output { bytes, .. } = event? {
                    at = split_timestamped(&bytes).map(|(ns, _)| ns.div_euclid(1_000_000_000));
                    break;
                }
            }
            match at {
                Some(at) => Some(at.max(s.unwrap_or(0))),
                None => return Ok(Vec::new()),
            }
        }
    };
    let options = LogOptions {
        follow: false,
        tail: Tail::All,
        since: from,
        timestamps: true,
    };
    let mut stream = runtime.backend().logs(c, &options);
    let mut seq = Sequencer::default();
    let mut lines = Vec::new();
    while let Some(event) = stream.next().await {
        let LogEvent::Output { source, bytes } = event? else {
            continue;
        };
        let Some((at_ns, text)) = split_timestamped(&bytes) else {
            continue;
        };
        let stream_kind = stream_of(source);
        let n = seq.seq(at_ns, stream_kind);
        lines.push(Line {
            container_id: c.id.clone(),
            at_ns,
            stream: stream_kind.code(),
            seq: n,
            text,
        });
    }
    Ok(lines)
}

/// History and live lines as one, by time, each line once; the last `tail` of them.
fn merge(stored: Vec<Line>, live: Vec<Line>, tail: Tail) -> Vec<Line> {
    let known: HashSet<_> = stored.iter().map(Line::key).collect();
    let mut all = stored;
    all.extend(live.into_iter().filter(|l| !known.contains(&l.key())));
    // Stable: lines of one timestamp keep their order.
    all.sort_by_key(|l| l.at_ns);
    if let Tail::Lines(n) = tail {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if all.len() > n {
            all.drain(..all.len() - n);
        }
    }
    all
}

/// Prints `lines` on stdout; false when stdout closed (`| head`).
fn print_lines(lines: &[Line], timestamps: bool) -> bool {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for l in lines {
        let written = if timestamps {
            writeln!(out, "{} {}", engine_time(l.at_ns), l.text)
        } else {
            writeln!(out, "{}", l.text)
        };
        if written.is_err() {
            return false;
        }
    }
    out.flush().is_ok()
}

/// Unix nanoseconds as the engine writes them: `2026-12-07T01:02:03.000000042Z`.
fn engine_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let whole = crate::calendar::rfc3339(secs);
    match whole.strip_suffix('Z') {
        Some(stem) => format!("{stem}.{nanos:09}Z"),
        None => whole,
    }
}

/// `logs sync`: every tenant container's new lines into the database, old ones pruned.
async fn sync(ctx: &Context<'_>, args: &LogsSyncArgs) -> Result<ExitCode> {
    if let Some(slug) = &args.tenant
        && let Some(problem) = slug_problem(slug)
    {
        bail!("--tenant: {problem}");
    }
    let root = ctx.repo()?.root().to_path_buf();
    let (runtime, store) = ctx.connect(&root, Access::Write { adopt: false }).await?;
    let started = std::time::Instant::now();
    let summary = crate::loghistory::sync(
        &runtime,
        &store,
        args.log_retention,
        crate::store::now_unix(),
        args.tenant.as_deref(),
    )
    .await;
    store.close().await;
    let summary = summary?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                serde_json::to_value(&summary)?,
                1
            ))?
        ),
        Output::Text if super::output::quiet() => {}
        Output::Text => println!(
            "{} line{} read from {} container{}: {} new, {} already stored; {} older than {} deleted ({:.1}s).",
            summary.read,
            super::output::plural(summary.read as usize),
            summary.containers,
            super::output::plural(summary.containers),
            summary.stored,
            summary.read.saturating_sub(summary.stored),
            summary.pruned,
            whole_unit(args.log_retention),
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// A duration as its largest whole unit: `90d`, `12h`, `30m`, `45s`.
fn whole_unit(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_ns: i64, seq: i32, text: &str) -> Line {
        Line {
            container_id: "c1".into(),
            at_ns,
            stream: 1,
            seq,
            text: text.into(),
        }
    }

    #[test]
    fn history_and_live_lines_merge_by_time_each_once_and_keep_the_tail() {
        let stored = vec![line(1, 0, "a"), line(2, 0, "b"), line(2, 1, "c")];
        let live = vec![line(2, 0, "b"), line(2, 1, "c"), line(3, 0, "d")];
        let all = merge(stored.clone(), live.clone(), Tail::All);
        let texts: Vec<&str> = all.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c", "d"]);
        let last = merge(stored, live, Tail::Lines(2));
        let texts: Vec<&str> = last.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["c", "d"]);
    }

    #[test]
    fn engine_times_keep_their_nanoseconds() {
        assert_eq!(
            engine_time(1_796_605_323_000_000_042),
            "2026-12-07T01:02:03.000000042Z"
        );
        assert_eq!(
            whole_unit(std::time::Duration::from_secs(90 * 86_400)),
            "90d"
        );
        assert_eq!(whole_unit(std::time::Duration::from_secs(1)), "1s");
    }
}
