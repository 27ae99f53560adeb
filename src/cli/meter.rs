//! `meter`: one metering pass, stored, and what it sampled.

use super::args::{MeterArgs, Output};
use super::context::{Access, Context};
use super::output::plural;
use crate::usage;
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(ctx: &Context<'_>, args: &MeterArgs) -> Result<ExitCode> {
    let Some(loaded) = ctx
        .load("HEAD", false, Access::Write { adopt: false })
        .await?
    else {
        return Ok(ExitCode::from(1));
    };
    let options = usage::MeterOptions {
        retention: args.retention,
        stats_source: args.stats_source.into(),
        ..usage::MeterOptions::default()
    };
    let now = crate::store::now_unix();
    let summary = usage::meter_once_with(
        &loaded.runtime,
        &loaded.store,
        &loaded.desired,
        now,
        &options,
    )
    .await?;
    loaded.store.close().await;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                serde_json::to_value(&summary)?,
                usage::FORMAT_VERSION
            ))?
        ),
        Output::Text if super::output::quiet() => {}
        Output::Text => print!("{}", text(&summary)),
    }
    Ok(ExitCode::SUCCESS)
}

fn text(s: &usage::MeterSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for x in &s.samples {
        let cpu = x
            .cpu_percent
            .map_or("-".to_string(), |c| format!("{c:.1}%"));
        let api = match (x.api_calls_month, x.ai_interactions_month, &x.month) {
            (Some(api), Some(ai), Some(month)) => {
                format!("api {api}, ai {ai} ({month})")
            }
            _ => "no site counters".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<24} cpu {cpu:>7}  mem {:>8} / {:<8} net {}/{}  blk {}/{}  disk {}  {api}",
            x.tenant,
            usage::human_bytes(x.memory_bytes),
            usage::human_bytes(x.memory_limit_bytes),
            usage::human_bytes(x.net_rx_bytes),
            usage::human_bytes(x.net_tx_bytes),
            usage::human_bytes(x.blk_read_bytes),
            usage::human_bytes(x.blk_write_bytes),
            x.storage_bytes.map_or("-".to_string(), usage::human_bytes),
        );
    }
    if let Some(e) = &s.storage_error {
        let _ = writeln!(out, "storage not measured: {e}");
    }
    for n in &s.failed {
        let _ = writeln!(out, "{:<24} not sampled: {}", n.tenant, n.message);
    }
    for n in &s.no_counters {
        let _ = writeln!(out, "{:<24} no counters: {}", n.tenant, n.message);
    }
    for n in &s.fallbacks {
        let _ = writeln!(
            out,
            "{:<24} read through the engine: {}",
            n.tenant, n.message
        );
    }
    for e in &s.events {
        let _ = writeln!(out, "{:<24} usage.threshold: {}", e.tenant, e.message);
    }
    let _ = writeln!(
        out,
        "\nStored {} sample{}; rolled up {} hourly and {} daily bucket{}; pruned {} old sample{}; {} threshold event{}.",
        s.samples.len(),
        plural(s.samples.len()),
        s.rollup.hourly,
        s.rollup.daily,
        plural(s.rollup.daily as usize),
        s.pruned,
        plural(s.pruned as usize),
        s.events.len(),
        plural(s.events.len()),
    );
    let _ = writeln!(out, "{}", sources(s));
    out
}

/// Where the counters came from, e.g. `Counters read from the cgroup files (5 tenants).`
fn sources(s: &usage::MeterSummary) -> String {
    use crate::runtime::ReadFrom;
    let count = |r: ReadFrom| s.read_from.values().filter(|&&x| x == r).count();
    let tenants = |n: usize| format!("{n} tenant{}", plural(n));
    match (count(ReadFrom::Cgroup), count(ReadFrom::Engine)) {
        (0, 0) => "No container counters read.".to_string(),
        (c, 0) => format!("Counters read from the cgroup files ({}).", tenants(c)),
        (0, e) => format!(
            "Counters read from the engine's stats endpoint ({}).",
            tenants(e)
        ),
        (c, e) => format!(
            "Counters read from the cgroup files ({}) and the engine's stats endpoint ({}).",
            tenants(c),
            tenants(e)
        ),
    }
}
