//! `invoices`: the closed invoices; `invoices close`: close the period that ended last.

use super::args::{InvoicesArgs, InvoicesCommand, Output};
use super::context::{Access, Context};
use crate::model::slug_problem;
use crate::store::{InvoiceRow, Store};
use crate::usage::{InvoiceLine, money};
use anyhow::{Result, bail};
use std::fmt::Write as _;
use std::process::ExitCode;

/// The version of the `invoices -o json` documents (`format_version`).
const FORMAT_VERSION: u32 = 1;

pub async fn run(ctx: &Context<'_>, args: &InvoicesArgs) -> Result<ExitCode> {
    if let Some(InvoicesCommand::Close { output }) = &args.command {
        return close(ctx, *output).await;
    }
    if let Some(slug) = &args.slug
        && let Some(problem) = slug_problem(slug)
    {
        bail!("tenant {problem}");
    }
    if let Some(p) = &args.period
        && !is_period(p)
    {
        bail!("--period `{p}`: give a month as YYYY-MM (e.g. 2026-12) or a year as YYYY");
    }
    let url = ctx.read_url()?;
    let rows = match Store::open_existing(&url).await? {
        Some(store) => {
            let rows = store
                .invoices(args.slug.as_deref(), args.period.as_deref())
                .await;
            store.close().await;
            rows?
        }
        None => Vec::new(),
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                serde_json::json!({ "invoices": json(&rows) }),
                FORMAT_VERSION
            ))?
        ),
        Output::Text if rows.is_empty() => println!("No closed invoices."),
        Output::Text => print!("{}", text(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn close(ctx: &Context<'_>, output: Output) -> Result<ExitCode> {
    let root = ctx.repo()?.root().to_path_buf();
    let (_, store) = ctx.connect(&root, Access::Write { adopt: false }).await?;
    let summary = crate::usage::close_invoices(&store, crate::plan::trial::now()).await;
    store.close().await;
    let summary = summary?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                serde_json::json!({
                    "closed": json(&summary.closed),
                    "already_closed": summary.already_closed,
                }),
                FORMAT_VERSION
            ))?
        ),
        Output::Text => {
            if !summary.closed.is_empty() {
                print!("{}", text(&summary.closed));
            }
            println!(
                "Closed {} invoice{}; {} already closed.",
                summary.closed.len(),
                super::output::plural(summary.closed.len()),
                summary.already_closed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-12` or `2026`.
fn is_period(p: &str) -> bool {
    let b = p.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        4 => digits(b),
        7 => {
            digits(&b[..4])
                && b[4] == b'-'
                && digits(&b[5..])
                && p[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
        }
        _ => false,
    }
}

fn lines_of(r: &InvoiceRow) -> Vec<InvoiceLine> {
    serde_json::from_str::<Vec<serde_json::Value>>(&r.lines)
        .unwrap_or_default()
        .into_iter()
        .map(|l| InvoiceLine {
            description: l["description"].as_str().unwrap_or_default().to_string(),
            amount_cents: l["amount_cents"].as_i64().unwrap_or_default(),
        })
        .collect()
}

/// The JSON document: each invoice with its lines as objects.
fn json(rows: &[InvoiceRow]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["lines"] = serde_json::to_value(lines_of(r)).unwrap_or_default();
                v["closed_at"] = crate::calendar::rfc3339(r.closed_at).into();
                v
            })
            .collect(),
    )
}

fn text(rows: &[InvoiceRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(
            out,
            "{} {} ({}, {} {} – {}), closed {}",
            r.tenant,
            r.period,
            r.plan,
            r.cycle,
            r.period_start,
            r.period_end,
            crate::calendar::rfc3339(r.closed_at)
        );
        for l in lines_of(r) {
            let _ = writeln!(
                out,
                "    {:<56} {:>14}",
                l.description,
                money(l.amount_cents, &r.currency)
            );
        }
        let _ = writeln!(
            out,
            "    {:<56} {:>14}",
            "total",
            money(r.total_cents, &r.currency)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_months_or_years() {
        assert!(is_period("2026-12"));
        assert!(is_period("2026"));
        assert!(!is_period("2026-13"));
        assert!(!is_period("2026-1"));
        assert!(!is_period("12-2026"));
    }
}
