//! The dashboard's frame cost: draw one whole frame (header, table, hints; diffed into a test
//! terminal like a real one) with 50, 1,000 and 10,000 tenants, on an 80x24 and a 200x60 screen,
//! and fold a new observation of all tenants into the state (filter and sort).
//!
//! `cargo bench --bench tui`. Target: a frame with 10,000 tenants in under 5 ms.

use divan::{Bencher, black_box};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tenantctl::status::{Health, SyncStatus};
use tenantctl::tui::app::{App, Msg};
use tenantctl::tui::data::{Board, BoardRow, Header, Update};
use tenantctl::tui::ui;

const NOW: i64 = 1_795_780_800;

fn main() {
    divan::main();
}

fn board(n: usize) -> Board {
    let healths = [
        Health::Healthy,
        Health::Healthy,
        Health::Healthy,
        Health::Degraded,
        Health::Progressing,
        Health::Suspended,
    ];
    let rows = (0..n)
        .map(|i| BoardRow {
            slug: format!("tenant-{i:05}"),
            plan: Some(["starter", "professional", "enterprise"][i % 3].into()),
            theme: Some(["modern", "classic"][i % 2].into()),
            state: Some("active".into()),
            sync: Some(if i % 50 == 0 {
                SyncStatus::OutOfSync
            } else {
                SyncStatus::Synced
            }),
            health: Some(healths[i % healths.len()]),
            cpu_percent: Some((i % 97) as f64),
            cpu_limit: Some(1.0),
            memory_bytes: Some((i as u64 % 500) << 20),
            memory_limit: Some(512 << 20),
            api_calls: Some((i as i64 * 37) % 100_000),
            api_quota: Some(100_000),
            started_at: Some(NOW - i as i64 * 60),
            url: Some(format!("http://127.0.0.1:{}/", 20_000 + i)),
            file: Some(format!("tenants/tenant-{i:05}.yaml")),
            ..BoardRow::default()
        })
        .collect();
    Board {
        header: Header {
            namespace: "tenantctl".into(),
            revision: Some("4f2a9c1e0b7d".into()),
            applied_revision: Some("4f2a9c1e0b7d".into()),
            pending_changes: n / 50,
            last_reconcile: Some(NOW - 5),
            last_reconcile_status: Some("ok".into()),
            ..Header::default()
        },
        rows,
        at: NOW,
    }
}

fn app(n: usize) -> App {
    let mut app = App::new(true, 5_000, NOW);
    app.update(Msg::Update(Update::Board(Box::new(board(n)))));
    app
}

/// One frame, as the loop draws it after any event: build, diff, write to the (test) terminal.
#[divan::bench(args = [50, 1_000, 10_000])]
fn frame_200x60(bencher: Bencher, n: usize) {
    let mut app = app(n);
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    // Somewhere in the middle, sorted by health: the work of a real on-call session.
    app.sort_by(tenantctl::tui::app::Column::Health);
    app.selected = n / 2;
    bencher.bench_local(|| {
        terminal
            .draw(|f| ui::draw(f, black_box(&mut app)))
            .expect("draw");
    });
}

#[divan::bench(args = [50, 10_000])]
fn frame_80x24(bencher: Bencher, n: usize) {
    let mut app = app(n);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    bencher.bench_local(|| {
        terminal
            .draw(|f| ui::draw(f, black_box(&mut app)))
            .expect("draw");
    });
}

/// A new observation of every tenant arrives: replace, filter and re-sort (once per refresh,
/// not per frame).
#[divan::bench(args = [50, 10_000])]
fn new_observation(bencher: Bencher, n: usize) {
    let mut app = app(n);
    let next = board(n);
    bencher
        .with_inputs(|| Box::new(next.clone()))
        .bench_local_values(|s| app.update(Msg::Update(Update::Board(s))));
}
