//! The planner at scale: validate and plan 1,000 / 10,000 / 100,000 synthetic tenants.
//!
//! `cargo bench --bench planner`. Each plan run is against a converged observed state with 1% of
//! tenants changed (env edit) and 1% stopped, so it diffs and renders real changes.

use divan::{AllocProfiler, Bencher, black_box};
use tenantctl::model::{DesiredState, SourceContent, SourceFile, load};
use tenantctl::plan::converged::converged;
use tenantctl::plan::render::{Style, json, text};
use tenantctl::plan::{ObservedState, PlanOptions, compute};
use tenantctl::runtime::ContainerState;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn main() {
    divan::main();
}

fn files(n: usize, env: &str) -> Vec<SourceFile> {
    let mut files = Vec::with_capacity(n + 6);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for p in [
        "plans/starter.yaml",
        "plans/professional.yaml",
        "plans/enterprise.yaml",
        "themes/modern.yaml",
        "themes/classic.yaml",
        "themes/minimal.yaml",
    ] {
        files.push(SourceFile {
            path: p.into(),
            content: SourceContent::Bytes(std::fs::read(repo.join(p)).unwrap()),
        });
    }
    let plans = ["starter", "professional", "enterprise"];
    let themes = ["modern", "classic", "minimal"];
    for i in 0..n {
        let text = format!(
            "kind: Tenant\nname: tenant-{i}\nspec:\n  displayName: Tenant {i}\n  owner: ops@tenant-{i}.example\n  plan: {}\n  theme: {}\n  domain: shop.tenant-{i}.example\n  env: {{ LOG_LEVEL: {} }}\n",
            plans[i % 3],
            themes[(i / 3) % 3],
            if i % 100 == 0 { env } else { "info" },
        );
        files.push(SourceFile {
            path: format!("tenants/t{i:06}.yaml"),
            content: SourceContent::Bytes(text.into_bytes()),
        });
    }
    files
}

fn opts() -> PlanOptions {
    PlanOptions {
        namespace: "tenantctl".into(),
        revision: "0".repeat(40),
        prune: false,
        tenants: vec![],
    }
}

fn states(n: usize) -> (DesiredState, ObservedState) {
    let before = load(&files(n, "info")).unwrap();
    let mut observed = converged(&before, &opts());
    for c in observed.runtime.containers.iter_mut().step_by(100).skip(1) {
        c.state = ContainerState::Exited;
    }
    let after = load(&files(n, "debug")).unwrap();
    (after, observed)
}

#[divan::bench(args = SIZES, sample_count = 5)]
fn validate(bencher: Bencher, n: usize) {
    let input = files(n, "info");
    bencher.bench(|| load(black_box(&input)).unwrap());
}

#[divan::bench(args = SIZES, sample_count = 5)]
fn plan(bencher: Bencher, n: usize) {
    let (desired, observed) = states(n);
    bencher.bench(|| {
        let plan = compute(black_box(&desired), black_box(&observed), &opts());
        assert_eq!(plan.summary().replace, n / 100);
        plan
    });
}

#[divan::bench(args = SIZES, sample_count = 5)]
fn plan_and_render(bencher: Bencher, n: usize) {
    let (desired, observed) = states(n);
    bencher.bench(|| {
        let plan = compute(black_box(&desired), black_box(&observed), &opts());
        (
            text(&plan, Style { color: false }).len(),
            json(&plan).to_string().len(),
        )
    });
}

/// What a `plan` process holds at once: the desired state parsed from files, the observed state
/// (every container inspected, with its env and labels), and the plan. `max alloc` is its peak heap.
#[divan::bench(args = SIZES, sample_count = 3)]
fn whole_plan_in_memory(bencher: Bencher, n: usize) {
    let before = files(n, "info");
    let after = files(n, "debug");
    bencher.bench(|| {
        let observed = converged(&load(&before).unwrap(), &opts());
        let desired = load(black_box(&after)).unwrap();
        compute(&desired, &observed, &opts()).changes.len()
    });
}
