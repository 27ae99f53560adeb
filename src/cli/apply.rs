//! `apply`: show the plan, ask for `yes`, and carry the approved plan out through the reconcile path.

use super::args::{ApplyArgs, Output};
use super::context::{Access, Context};
use super::live::Live;
use super::output::{ErrPrinter, Printer, note_uncommitted, plural, quiet, text_style};
use crate::apply::{Outcome, Report};
use crate::model;
use crate::plan::PlanOptions;
use crate::plan::render::{self, GREEN, RED, Style};
use crate::reconcile::{self, Announce, ApplyRequest, Scope};
use anyhow::{Result, bail};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// The version of `apply -o json`'s document.
pub const FORMAT_VERSION: u32 = 1;

pub async fn run(ctx: &Context<'_>, args: &ApplyArgs) -> Result<ExitCode> {
    let json = args.output == Output::Json;
    if json && !args.auto_approve {
        bail!(
            "apply -o json cannot ask for confirmation (its stdout is the JSON document); review `tenantctl plan`, then run again with --auto-approve"
        );
    }
    let started_at = crate::store::now_unix();
    let access = Access::Write { adopt: args.adopt };
    let Some(loaded) = ctx.load(&args.r#ref, false, access).await? else {
        return Ok(ExitCode::from(1));
    };
    if args.adopt {
        let runtime = loaded.runtime.observe().await?;
        let adopted =
            super::adopt::adopt(ctx.namespace(), &runtime, &loaded.store, &loaded.desired).await?;
        for id in adopted.installations.iter().filter(|_| !quiet()) {
            println!(
                "Took over the objects of installation {id} into installation {} (each carries the new id once it is next replaced).",
                loaded.store.installation_id()
            );
        }
        if !quiet() {
            println!(
                "Adopted {} tenant row{} from the running containers (their API keys kept).\n",
                adopted.rows,
                plural(adopted.rows)
            );
        }
    }
    let style = text_style(args.no_color);
    let opts = PlanOptions {
        namespace: ctx.namespace().to_string(),
        revision: loaded.revision(),
        prune: args.tuning.prune,
        tenants: vec![],
    };
    let observed = loaded.observe().await?;
    let plan = loaded.plan(&observed, &opts).plan;
    note_uncommitted(&loaded.repo)?;
    // Notifications go out beside the apply, never holding it up (see `crate::notify`).
    let sender = Sender::start(&loaded);
    if plan.is_empty() && json {
        let document = json_report(
            &loaded.revision(),
            started_at,
            0,
            None,
            args.keys_file.as_deref(),
        );
        println!("{}", serde_json::to_string_pretty(&document)?);
        sender.finish(&loaded.store).await;
        loaded.store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    if plan.is_empty() {
        if !quiet() {
            render::write_text(std::io::stdout(), &plan, style)?;
            println!("Apply complete! Nothing to do.");
        }
        sender.finish(&loaded.store).await;
        loaded.store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    // -q: the plan is still shown when someone is asked to approve it.
    if !json && (!quiet() || !args.auto_approve) {
        render::write_text(std::io::stdout(), &plan, style)?;
    }
    let max_destroy = (!args.allow_destroy).then_some(args.tuning.destroy.max_destroy);
    // Refused before anyone is asked: the same check runs again under the lock.
    if let Some(refused) = max_destroy.and_then(|l| reconcile::mass_destroy(&plan, &observed, l)) {
        loaded.store.close().await;
        return Err(reconcile::ReconcileError::MassDestroy(refused).into());
    }
    if !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!(
                "apply needs confirmation and standard input is not a terminal; review the plan, then run again with --auto-approve"
            );
        }
        print!(
            "\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: "
        );
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            println!("Apply cancelled.");
            return Ok(ExitCode::from(1));
        }
    }
    let request = ApplyRequest {
        desired: &loaded.desired,
        config: args.tuning.config(ctx.namespace(), loaded.revision()),
        opts,
        lock_wait: args.lock_timeout,
        approved: Some(&plan),
        scope: Scope::Plan,
        record_trial_ends: true,
        announce: Announce::BlankLine,
        max_destroy,
    };
    // On a terminal the progress is live (see `live.rs`); piped, it is the plain lines.
    let live = (!json && super::live::wanted_here()).then(|| Arc::new(Live::start(style.color)));
    let progress: Arc<dyn crate::apply::Progress> = match &live {
        _ if json => Arc::new(ErrPrinter),
        Some(live) => live.clone(),
        None => Arc::new(Printer),
    };
    let planned = plan.changes.len();
    let applied = reconcile::apply(&loaded.runtime, &loaded.store, progress, request).await;
    if let Some(live) = &live {
        live.clear();
    }
    let applied = applied?;
    let unpublished = |slug: &str| applied.report.unpublished.contains(slug);
    if json {
        let document = json_report(
            &loaded.revision(),
            started_at,
            planned,
            Some(&applied.report),
            args.keys_file.as_deref(),
        );
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print_report(
            &applied.report,
            style,
            &unpublished,
            args.keys_file.as_deref(),
        );
        print_edge(
            &applied.report,
            &loaded.desired,
            loaded.repo.root(),
            ctx.namespace(),
        )?;
    }
    sender.finish(&loaded.store).await;
    loaded.store.close().await;
    Ok(
        if applied.report.failed() > 0 || applied.report.edge_error.is_some() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// How long an apply waits at its end for the notifications it queued (and any left by earlier
/// runs); what is not delivered by then stays queued for the next apply or watch.
const NOTIFY_DRAIN: std::time::Duration = std::time::Duration::from_secs(8);

/// The background sender of an apply that has notifications in git.
struct Sender {
    task: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Sender {
    fn start(loaded: &super::context::Loaded) -> Sender {
        if loaded.desired.notifications.is_empty() {
            return Sender { task: None };
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let store = loaded.store.clone();
        let task = tokio::spawn(async move {
            crate::notify::deliver::run(store, async {
                let _ = stopped.await;
            })
            .await;
        });
        Sender {
            task: Some((task, stop)),
        }
    }

    /// Stops the background sender, then sends what is still due for a few seconds.
    async fn finish(self, store: &crate::store::Store) {
        let Some((task, stop)) = self.task else {
            return;
        };
        let _ = stop.send(());
        let _ = task.await;
        send_due(store).await;
    }
}

/// Sends the notifications due (this command's and any left over) for a few seconds, and
/// says on stderr what is still queued.
pub(super) async fn send_due(store: &crate::store::Store) {
    match crate::notify::deliver::drain(store, NOTIFY_DRAIN).await {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "{n} notification{} not delivered yet; the next apply or watch sends {} (see `tenantctl events --kind 'notification.*'`)",
            plural(n),
            if n == 1 { "it" } else { "them" }
        ),
        Err(e) => eprintln!("sending notifications failed: {e}"),
    }
}

/// `apply -o json`: what was applied and each tenant's outcome. New keys are in the document,
/// unless `--keys-file` takes them (then only their tenants are listed, and the file named).
fn json_report(
    revision: &str,
    started_at: i64,
    planned: usize,
    report: Option<&Report>,
    keys_file: Option<&Path>,
) -> serde_json::Value {
    use serde_json::json;
    let rfc3339 = crate::calendar::rfc3339;
    let tenants: Vec<serde_json::Value> = report
        .map(|r| {
            r.outcomes
                .iter()
                .map(|(slug, outcome)| match outcome {
                    Outcome::Converged { url } => json!({
                        "tenant": slug,
                        "outcome": "converged",
                        "url": url,
                        "error": null,
                    }),
                    Outcome::Failed { reason } => json!({
                        "tenant": slug,
                        "outcome": "failed",
                        "url": null,
                        "error": reason,
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let empty = Default::default();
    let new_keys = report.map_or(&empty, |r| &r.new_keys);
    let keys: Vec<serde_json::Value> = match keys_file {
        Some(path) if !new_keys.is_empty() => {
            for line in crate::store::keys_file::hand_over(path, new_keys) {
                eprintln!("{line}");
            }
            new_keys
                .keys()
                .map(|slug| json!({ "tenant": slug, "key": null, "keys_file": path.display().to_string() }))
                .collect()
        }
        _ => new_keys
            .iter()
            .map(|(slug, key)| json!({ "tenant": slug, "key": key, "keys_file": null }))
            .collect(),
    };
    json!({
        "format_version": FORMAT_VERSION,
        "revision": revision,
        "run_id": report.map(|r| r.run_id),
        "started_at": rfc3339(started_at),
        "finished_at": rfc3339(crate::store::now_unix()),
        "changes_planned": planned,
        "changes_applied": report.map_or(0, |r| r.changes_applied),
        "failed": report.map_or(0, Report::failed),
        "tenants": tenants,
        "new_keys": keys,
    })
}

fn print_report(
    report: &Report,
    style: Style,
    unpublished: &dyn Fn(&str) -> bool,
    keys_file: Option<&Path>,
) {
    // -q: only failed tenants and new keys remain (a key is shown once).
    if quiet() {
        for (slug, outcome) in &report.outcomes {
            if let Outcome::Failed { reason } = outcome {
                eprintln!("{slug}: FAILED: {}", model::printable(reason));
            }
        }
    } else {
        print_summary(report, style, unpublished);
    }
    print_keys(report, keys_file);
}

fn print_summary(report: &Report, style: Style, unpublished: &dyn Fn(&str) -> bool) {
    let failed = report.failed();
    println!();
    if failed == 0 {
        println!(
            "{}",
            style.paint(
                GREEN,
                &format!(
                    "Apply complete! {} changes applied.",
                    report.changes_applied
                )
            )
        );
    } else {
        println!(
            "{}",
            style.paint(
                RED,
                &format!(
                    "Apply finished with errors: {failed} tenant{} failed.",
                    plural(failed)
                )
            )
        );
    }
    if !report.outcomes.is_empty() {
        println!("\nTenants:");
        for (slug, outcome) in &report.outcomes {
            match outcome {
                Outcome::Converged { url: Some(url) } => println!("  {slug:<24} {url}"),
                Outcome::Converged { url: None } if unpublished(slug) => {
                    println!("  {slug:<24} running (no published port)")
                }
                Outcome::Converged { url: None } => println!("  {slug:<24} (not running)"),
                Outcome::Failed { reason } => {
                    println!(
                        "  {slug:<24} {} {}",
                        style.paint(RED, "FAILED:"),
                        model::printable(reason)
                    )
                }
            }
        }
    }
}

/// Where the edge listens, and its internal CA written next to the state database (0644: a
/// certificate, no secret) so `curl --cacert` can verify the tenants' HTTPS.
fn print_edge(
    report: &Report,
    desired: &model::DesiredState,
    root: &Path,
    namespace: &str,
) -> Result<()> {
    let Some(edge) = &desired.edge else {
        return Ok(());
    };
    if let Some(why) = &report.edge_error {
        eprintln!("edge: {}", model::printable(why));
    }
    let ca = match &report.edge_ca {
        Some(pem) => {
            let dir = root.join(".tenantctl");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{namespace}-edge-ca.pem"));
            std::fs::write(&path, pem)?;
            Some(path)
        }
        None => None,
    };
    if quiet() {
        return Ok(());
    }
    println!(
        "\nEdge: http on {}{}",
        edge.http,
        edge.https
            .as_deref()
            .map(|h| format!(", https on {h} (tls {})", edge.tls.mode()))
            .unwrap_or_default()
    );
    if let Some(path) = ca {
        println!(
            "  internal CA certificate: {} (e.g. curl --cacert {} URL)",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn print_keys(report: &Report, keys_file: Option<&Path>) {
    if let Some(path) = keys_file.filter(|_| !report.new_keys.is_empty()) {
        println!();
        for line in crate::store::keys_file::hand_over(path, &report.new_keys) {
            println!("{line}");
        }
    } else if !report.new_keys.is_empty() {
        println!(
            "\nNew API keys (shown once; only their SHA-256 is stored — rotate with `tenantctl keys rotate SLUG`):"
        );
        for (slug, key) in &report.new_keys {
            println!("  {slug:<24} {key}");
        }
    }
}
