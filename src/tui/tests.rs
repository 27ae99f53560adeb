//! Scripted keys and mouse events through [`App::update`], whole screens drawn on ratatui's
//! `TestBackend` and compared with insta snapshots (`src/tui/snapshots/`), and cell-level checks
//! of colours and geometry.

use super::app::{App, Column, Msg, Overlay, Tab, View};
use super::data::{
    Board, BoardRow, Detail, EventLine, Header, LogLine, LoopRunner, Request, Series, Update,
    UserAction,
};
use super::ui;
use crate::status::{Health, SyncStatus};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

/// 2026-11-27T12:00:00Z.
const NOW: i64 = 1_795_780_800;
const MI: u64 = 1024 * 1024;

#[allow(clippy::too_many_arguments)]
fn row(
    slug: &str,
    plan: &str,
    state: &str,
    sync: SyncStatus,
    health: Health,
    cpu: Option<f64>,
    mem: Option<u64>,
    api: Option<i64>,
) -> BoardRow {
    let (cpu_limit, memory_limit, api_quota) = match plan {
        "starter" => (0.5, 256 * MI, 10_000),
        _ => (1.0, 512 * MI, 100_000),
    };
    BoardRow {
        slug: slug.into(),
        plan: Some(plan.into()),
        theme: Some(
            if slug.starts_with('g') {
                "classic"
            } else {
                "modern"
            }
            .into(),
        ),
        state: Some(state.into()),
        sync: Some(sync),
        health: Some(health),
        health_reason: (health == Health::Degraded).then(|| "OOM-killed, exit 137".to_string()),
        sync_reasons: if sync == SyncStatus::OutOfSync {
            vec!["~ container memory changed (plan `professional` resources.memory)".into()]
        } else {
            vec![]
        },
        cpu_percent: cpu,
        cpu_limit: Some(cpu_limit),
        memory_bytes: mem,
        memory_limit: Some(memory_limit),
        api_calls: api,
        api_quota: Some(api_quota),
        started_at: cpu.map(|_| NOW - 3 * 3_600 - 120),
        url: Some(format!("http://127.0.0.1:{}/", 32768 + slug.len())),
        probe: None,
        last_error: (health == Health::Degraded).then(|| "health check failed 3 times".into()),
        progress: None,
        storage_bytes: None,
        storage_limit: None,
        file: Some(format!("tenants/{slug}.yaml")),
    }
}

fn board() -> Board {
    use Health::*;
    use SyncStatus::*;
    Board {
        header: Header {
            namespace: "tenantctl".into(),
            reference: "HEAD".into(),
            revision: Some("4f2a9c1e0b7d".into()),
            applied_revision: Some("4f2a9c1e0b7d".into()),
            pending_changes: 2,
            last_reconcile: Some(NOW - 12),
            last_reconcile_status: Some("ok".into()),
            reconciler: LoopRunner::InProcess,
            error: None,
        },
        rows: vec![
            row(
                "acme",
                "professional",
                "active",
                OutOfSync,
                Degraded,
                Some(96.0),
                Some(500 * MI),
                Some(91_000),
            ),
            row(
                "globex",
                "starter",
                "active",
                Synced,
                Healthy,
                Some(4.0),
                Some(60 * MI),
                Some(1_200),
            ),
            row(
                "initech",
                "professional",
                "active",
                Synced,
                Healthy,
                Some(35.0),
                Some(300 * MI),
                Some(20_000),
            ),
            row(
                "hooli",
                "starter",
                "suspended",
                Synced,
                Suspended,
                None,
                None,
                Some(9_900),
            ),
            row(
                "umbrella",
                "enterprise",
                "active",
                OutOfSync,
                Missing,
                None,
                None,
                None,
            ),
            row(
                "stark",
                "professional",
                "active",
                Synced,
                Progressing,
                Some(75.0),
                Some(128 * MI),
                Some(0),
            ),
        ],
        at: NOW,
    }
}

fn detail() -> Detail {
    Detail {
        slug: "acme".into(),
        spec: "kind: Tenant\nname: acme\nspec:\n  displayName: ACME Corp\n  plan: professional\n  theme: modern\n  owner: ops@acme.test\n".into(),
        diff: "  # container.acme will be replaced\n-/+ container.acme\n      memory changed (plan `professional` resources.memory)\n      --- observed\n      +++ desired\n      @@ -1 +1 @@\n      -memory: 256Mi\n      +memory: 512Mi\n".into(),
        events: vec![
            EventLine { at: NOW - 300, kind: "tenant.created".into(), message: "container started".into() },
            EventLine { at: NOW - 60, kind: "usage.threshold".into(), message: "memory at 100% of 512Mi".into() },
            EventLine { at: NOW - 30, kind: "tenant.failed".into(), message: "health check failed 3 times".into() },
        ],
        cpu: Series { points: (0..60).map(|i| (i * 150) % 9_600).collect(), limit: Some(10_000) },
        memory: Series { points: (0..60).map(|i| (200 + i * 5) * MI).collect(), limit: Some(512 * MI) },
    }
}

fn app() -> App {
    let mut app = App::new(true, 1_000, NOW);
    app.update(Msg::Update(Update::Board(Box::new(board()))));
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Term(Event::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))));
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn mouse(app: &mut App, kind: MouseEventKind, column: u16, row: u16) {
    app.update(Msg::Term(Event::Mouse(MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    })));
}

fn terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).unwrap()
}

/// Draws `app` and returns the screen as text, trailing spaces trimmed.
fn screen(app: &mut App, width: u16, height: u16) -> String {
    let mut t = terminal(width, height);
    t.draw(|f| ui::draw(f, app)).unwrap();
    text(t.backend().buffer())
}

fn text(buffer: &ratatui::buffer::Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn log(text: &str) -> LogLine {
    LogLine {
        timestamp: Some("2026-11-27T11:59:58.120Z".into()),
        stderr: text.contains("error"),
        text: text.into(),
    }
}

#[test]
fn table_at_80x24() {
    let mut app = app();
    insta::assert_snapshot!(screen(&mut app, 80, 24));
}

#[test]
fn table_on_a_large_terminal_shows_every_column() {
    let mut app = app();
    let s = screen(&mut app, 160, 30);
    for c in Column::ALL {
        assert!(s.contains(c.title()), "{} missing:\n{s}", c.title());
    }
    insta::assert_snapshot!(s);
}

#[test]
fn before_the_first_observation_the_table_says_so() {
    let mut app = App::new(true, 100, NOW);
    insta::assert_snapshot!(screen(&mut app, 80, 10));
}

#[test]
fn filter_narrows_the_table_as_the_user_types() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "health=degraded,missing");
    insta::assert_snapshot!("filter_typing", screen(&mut app, 80, 12));
    key(&mut app, KeyCode::Enter);
    let shown: Vec<&str> = app
        .visible
        .iter()
        .map(|i| app.board.rows[*i].slug.as_str())
        .collect();
    assert_eq!(shown, ["acme", "umbrella"]);
    // Esc while typing undoes the typing; Esc on the table clears the filter.
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, " plan=starter");
    assert_eq!(app.visible.len(), 0);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.filter_text, "health=degraded,missing");
    assert_eq!(app.visible.len(), 2);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.visible.len(), 6);
}

#[test]
fn a_bad_filter_says_why_and_keeps_the_rows() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "healt=x");
    key(&mut app, KeyCode::Enter);
    let s = screen(&mut app, 100, 12);
    assert!(s.contains("unknown column `healt`"), "{s}");
    assert_eq!(app.visible.len(), 6, "a bad filter must not hide rows");
}

#[test]
fn sorting_by_health_puts_trouble_first_and_o_reverses() {
    let mut app = app();
    app.sort_by(Column::Health);
    let order = |app: &App| -> Vec<String> {
        app.visible
            .iter()
            .map(|i| app.board.rows[*i].slug.clone())
            .collect()
    };
    assert_eq!(
        order(&app),
        ["acme", "umbrella", "stark", "hooli", "globex", "initech"]
    );
    key(&mut app, KeyCode::Char('O'));
    assert_eq!(order(&app)[0], "initech");
    // Memory sorts by share of the plan's limit, biggest first.
    app.sort_by(Column::Memory);
    assert_eq!(order(&app)[..2], ["acme", "initech"]);
}

#[test]
fn moving_keeps_the_selection_on_screen_and_survives_a_new_snapshot() {
    let mut app = App::new(false, 100, NOW);
    let mut s = board();
    s.rows = (0..100)
        .map(|i| {
            row(
                &format!("t{i:03}"),
                "starter",
                "active",
                SyncStatus::Synced,
                Health::Healthy,
                Some(1.0),
                Some(MI),
                Some(1),
            )
        })
        .collect();
    app.update(Msg::Update(Update::Board(Box::new(s.clone()))));
    screen(&mut app, 80, 24); // learns the page height
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::Char('j'));
    let page = usize::from(app.hits.page);
    assert_eq!(app.selected, page + 1);
    key(&mut app, KeyCode::End);
    assert_eq!(app.selected_row().unwrap().slug, "t099");
    let shown = screen(&mut app, 80, 24);
    assert!(shown.contains("t099"), "{shown}");
    key(&mut app, KeyCode::Home);
    assert_eq!(app.selected, 0);
    // A new observation with a row gone keeps the same tenant selected.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected_row().unwrap().slug, "t002");
    s.rows.remove(0);
    app.update(Msg::Update(Update::Board(Box::new(s))));
    assert_eq!(app.selected_row().unwrap().slug, "t002");
}

#[test]
fn mouse_click_sorts_selects_and_opens_and_the_wheel_scrolls() {
    let mut app = app();
    screen(&mut app, 120, 24);
    let (_, x, _) = *app
        .hits
        .columns
        .iter()
        .find(|(c, _, _)| *c == Column::Health)
        .unwrap();
    let header_y = app.hits.table_header.y;
    mouse(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        x + 1,
        header_y,
    );
    assert_eq!(app.sort, Column::Health);
    screen(&mut app, 120, 24);
    let body_y = app.hits.table_body.y;
    mouse(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        2,
        body_y + 2,
    );
    assert_eq!(app.selected, 2);
    assert_eq!(app.view, View::Table);
    mouse(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        2,
        body_y + 2,
    );
    assert_eq!(app.view, View::Detail, "a second click opens the tenant");
    key(&mut app, KeyCode::Esc);
    mouse(&mut app, MouseEventKind::ScrollUp, 2, body_y);
    assert_eq!(app.selected, 0);
    mouse(&mut app, MouseEventKind::ScrollDown, 2, body_y);
    assert_eq!(app.selected, 3);
}

#[test]
fn enter_opens_the_detail_and_asks_for_its_data_and_logs() {
    let mut app = app();
    app.take_requests();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Detail);
    assert_eq!(
        app.take_requests(),
        [
            Request::Detail(Some("acme".into())),
            Request::Logs {
                slug: Some("acme".into()),
                tail: 1_000
            }
        ]
    );
    app.update(Msg::Update(Update::Detail(Box::new(detail()))));
    insta::assert_snapshot!("detail_overview", screen(&mut app, 80, 24));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Table);
    assert_eq!(
        app.take_requests(),
        [
            Request::Detail(None),
            Request::Logs {
                slug: None,
                tail: 0
            }
        ]
    );
}

#[test]
fn detail_tabs_show_spec_diff_and_events() {
    let mut app = app();
    key(&mut app, KeyCode::Enter);
    app.update(Msg::Update(Update::Detail(Box::new(detail()))));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Spec);
    insta::assert_snapshot!("detail_spec", screen(&mut app, 80, 16));
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!("detail_diff", screen(&mut app, 80, 16));
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!("detail_events", screen(&mut app, 80, 12));
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.tab, Tab::Spec, "number keys jump to a tab");
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.tab, Tab::Logs);
    key(&mut app, KeyCode::Char('1'));
    assert_eq!(
        app.tab,
        Tab::Overview,
        "number keys work from the logs pane too"
    );
    // Detail of another tenant (a late answer) is ignored.
    let mut other = detail();
    other.slug = "globex".into();
    other.events.clear();
    app.update(Msg::Update(Update::Detail(Box::new(other))));
    assert_eq!(app.detail.as_ref().unwrap().slug, "acme");
}

#[test]
fn logs_follow_pause_search_and_wrap() {
    let mut app = app();
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.tab, Tab::Logs);
    let lines: Vec<LogLine> = (0..40)
        .map(|i| log(&format!("GET /api/orders/{i} 200 {}ms", i % 7)))
        .chain([log("error: database timeout after 5s")])
        .collect();
    app.update(Msg::Update(Update::Logs {
        slug: "acme".into(),
        lines,
    }));
    // Lines of another tenant's stream (a late batch) never show.
    app.update(Msg::Update(Update::Logs {
        slug: "globex".into(),
        lines: vec![log("not acme")],
    }));
    insta::assert_snapshot!("logs_following", screen(&mut app, 80, 14));
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Char('k'));
    assert!(!app.logs.follow, "scrolling up turns follow off");
    app.update(Msg::Update(Update::Logs {
        slug: "acme".into(),
        lines: vec![log("GET /new 200 1ms")],
    }));
    key(&mut app, KeyCode::Char('t'));
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "orders/3");
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("logs_paused_search_timestamps", screen(&mut app, 80, 14));
    key(&mut app, KeyCode::Char('s'));
    assert!(app.logs.follow, "s follows again");
    key(&mut app, KeyCode::Char('f'));
    keys(&mut app, "error");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('w'));
    insta::assert_snapshot!("logs_filtered_wrapped", screen(&mut app, 40, 10));
}

#[test]
fn restart_asks_first_and_only_yes_runs_it() {
    let mut app = app();
    app.take_requests();
    key(&mut app, KeyCode::Char('R'));
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(UserAction::Restart("acme".into())))
    );
    insta::assert_snapshot!("confirm_restart", screen(&mut app, 80, 12));
    key(&mut app, KeyCode::Char('n'));
    assert!(app.take_requests().is_empty(), "n cancels");
    key(&mut app, KeyCode::Char('R'));
    key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        app.take_requests(),
        [Request::Run(UserAction::Restart("acme".into()))]
    );
    app.update(Msg::Update(Update::ActionDone {
        action: UserAction::Restart("acme".into()),
        result: Err("engine: no such container".into()),
    }));
    let s = screen(&mut app, 100, 12);
    assert!(
        s.contains("restart the container of acme failed: engine: no such container"),
        "{s}"
    );
}

#[test]
fn sync_keys_ask_the_background_at_once() {
    let mut app = app();
    app.take_requests();
    key(&mut app, KeyCode::Char('S'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(
        app.take_requests(),
        [
            Request::Run(UserAction::SyncAll),
            Request::Run(UserAction::SyncTenant("globex".into()))
        ]
    );
}

#[test]
fn suspend_is_a_git_change_and_the_ui_says_so() {
    let mut app = app();
    app.take_requests();
    key(&mut app, KeyCode::Char('z'));
    assert!(
        app.take_requests().is_empty(),
        "the dashboard never edits desired state"
    );
    let s = screen(&mut app, 120, 12);
    assert!(
        s.contains(
            "Suspend is a git change: set `state: suspended` in tenants/acme.yaml and commit"
        ),
        "{s}"
    );
}

#[test]
fn read_only_dashboards_refuse_restarts_with_the_reason() {
    let mut app = App::new(true, 100, NOW);
    let mut s = board();
    s.header.reconciler = LoopRunner::External {
        holder: "host-a:4242:watch".into(),
    };
    app.update(Msg::Update(Update::Board(Box::new(s))));
    key(&mut app, KeyCode::Char('R'));
    assert_eq!(app.overlay, None);
    let screen = screen(&mut app, 140, 12);
    assert!(
        screen.contains("read-only, loop: host-a:4242:watch"),
        "{screen}"
    );
    assert!(
        screen.contains("read-only: `tenantctl watch` (host-a:4242:watch) reconciles"),
        "{screen}"
    );
}

#[test]
fn help_is_generated_from_the_key_map_of_the_view() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help_table", screen(&mut app, 80, 24));
    let wide = screen(&mut app, 120, 40);
    assert!(wide.contains("restart container (asks)"), "{wide}");
    key(&mut app, KeyCode::Char('x'));
    assert_eq!(app.overlay, None, "any key closes help");
    key(&mut app, KeyCode::Char('l'));
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&mut app, 80, 30);
    assert!(
        s.contains("follow on/off") && s.contains("timestamps"),
        "{s}"
    );
    assert!(
        !s.contains("sync all now"),
        "help shows the keys of the current view:\n{s}"
    );
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut app = app();
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    let mut app = self::app();
    key(&mut app, KeyCode::Char('l'));
    app.update(Msg::Term(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    ))));
    assert!(app.quit);
}

#[test]
fn colours_mark_health_and_vanish_with_no_color() {
    let find = |buffer: &ratatui::buffer::Buffer, word: &str| -> (u16, u16) {
        let t = text(buffer);
        for (y, line) in t.lines().enumerate() {
            if let Some(x) = line.find(word) {
                return (line[..x].chars().count() as u16, y as u16);
            }
        }
        panic!("{word} not on screen:\n{t}");
    };
    let mut app = app();
    let mut t = terminal(120, 12);
    t.draw(|f| ui::draw(f, &mut app)).unwrap();
    let b = t.backend().buffer();
    assert_eq!(b[find(b, "Degraded ")].fg, Color::Red);
    assert_eq!(b[find(b, "Healthy ")].fg, Color::Green);

    let mut plain = App::new(false, 100, NOW);
    plain.update(Msg::Update(Update::Board(Box::new(board()))));
    let mut t = terminal(120, 12);
    t.draw(|f| ui::draw(f, &mut plain)).unwrap();
    let b = t.backend().buffer();
    assert!(
        b.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no cell may carry a colour"
    );
    // The selection stays visible without colour.
    let (x, y) = find(b, "acme ");
    assert!(
        b[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED)
    );
}

#[test]
fn narrow_terminals_drop_the_least_needed_columns_first() {
    let cols = |w| {
        ui::fit_columns(w)
            .into_iter()
            .map(|(c, _)| c)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cols(80),
        [
            Column::Slug,
            Column::Plan,
            Column::Sync,
            Column::Health,
            Column::Cpu,
            Column::Memory
        ]
    );
    assert_eq!(cols(200).len(), Column::ALL.len());
    let total: u16 = ui::fit_columns(97).iter().map(|(_, w)| w + 1).sum();
    assert!(total <= 97);
}

#[test]
fn gauges_and_numbers_are_compact() {
    assert_eq!(ui::bar(0.0, 5), "░░░░░");
    assert_eq!(ui::bar(50.0, 4), "██░░");
    assert_eq!(ui::bar(250.0, 3), "███");
    assert_eq!(ui::size(512 * MI), "512M");
    assert_eq!(ui::size(3 * 512 * MI), "1.5G");
    assert_eq!(ui::count(91_000), "91k");
    assert_eq!(ui::count(1_200), "1.2k");
    assert_eq!(ui::ago(3 * 3_600 + 120), "3h2m");
    assert_eq!(ui::ago(2 * 86_400 + 7_200), "2d2h");
}

#[test]
fn background_faults_show_until_the_next_observation() {
    let mut app = app();
    app.update(Msg::Update(Update::Fault(
        "engine: cannot connect to unix:///var/run/docker.sock".into(),
    )));
    let s = screen(&mut app, 100, 10);
    assert!(s.contains("! engine: cannot connect"), "{s}");
    app.update(Msg::Update(Update::Board(Box::new(board()))));
    assert!(app.fault.is_none());
}

#[test]
fn activity_keeps_what_the_loop_and_actions_said() {
    let mut app = app();
    for i in 0..300 {
        app.update(Msg::Update(Update::Activity(format!(
            "pass {i}: no changes"
        ))));
    }
    app.update(Msg::Update(Update::ActionDone {
        action: UserAction::SyncAll,
        result: Ok("1 change applied".into()),
    }));
    assert_eq!(app.activity.len(), 200, "bounded");
    key(&mut app, KeyCode::Char('a'));
    assert_eq!(app.view, View::Activity);
    insta::assert_snapshot!("activity", screen(&mut app, 80, 12));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Table);
}

#[test]
fn m_lets_the_terminal_have_the_mouse_for_copying() {
    let mut app = app();
    assert!(app.mouse);
    key(&mut app, KeyCode::Char('m'));
    assert!(!app.mouse);
    let s = screen(&mut app, 100, 10);
    assert!(s.contains("mouse off: select and copy text"), "{s}");
    key(&mut app, KeyCode::Char('m'));
    assert!(app.mouse);
}

#[test]
fn the_header_names_the_ref_and_says_in_sync_when_nothing_is_pending() {
    let mut app = App::new(true, 100, NOW);
    let mut s = board();
    s.header.reference = "release".into();
    s.header.applied_revision = Some("0123456789ab".into());
    app.update(Msg::Update(Update::Board(Box::new(s.clone()))));
    let shown = screen(&mut app, 120, 10);
    assert!(
        shown.contains("release 4f2a9c1 (applied 0123456)"),
        "{shown}"
    );
    s.header.pending_changes = 0;
    app.update(Msg::Update(Update::Board(Box::new(s.clone()))));
    let shown = screen(&mut app, 120, 10);
    assert!(shown.contains("release 4f2a9c1 in sync"), "{shown}");
    s.header.error =
        Some("revision 4f2a9c1 is invalid: tenants/x.yaml:3:7: unknown field `plna`".into());
    app.update(Msg::Update(Update::Board(Box::new(s))));
    let shown = screen(&mut app, 120, 10);
    assert!(shown.contains("unknown field `plna`"), "{shown}");
    assert!(!shown.contains("in sync"), "{shown}");
}

#[test]
fn tiny_terminals_never_panic_in_any_view() {
    for (w, h) in [(1, 1), (5, 2), (10, 4), (20, 6), (30, 8), (40, 10)] {
        let mut app = app();
        screen(&mut app, w, h);
        key(&mut app, KeyCode::Char('?'));
        screen(&mut app, w, h);
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char('R'));
        screen(&mut app, w, h);
        key(&mut app, KeyCode::Char('n'));
        key(&mut app, KeyCode::Enter);
        app.update(Msg::Update(Update::Detail(Box::new(detail()))));
        for tab in ['1', '2', '3', '4', '5'] {
            key(&mut app, KeyCode::Char(tab));
            screen(&mut app, w, h);
        }
        app.update(Msg::Update(Update::Logs {
            slug: "acme".into(),
            lines: vec![log("x"); 50],
        }));
        key(&mut app, KeyCode::Char('w'));
        screen(&mut app, w, h);
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char('a'));
        screen(&mut app, w, h);
        key(&mut app, KeyCode::Char('/'));
        keys(&mut app, "health=degraded");
        screen(&mut app, w, h);
    }
}

#[test]
fn an_old_observation_is_flagged_in_the_header() {
    let mut app = app();
    assert!(!screen(&mut app, 120, 8).contains(" old"));
    app.update(Msg::Tick(NOW + 40));
    let s = screen(&mut app, 120, 8);
    assert!(s.contains("data 40s old"), "{s}");
    let mut fresh = board();
    fresh.at = NOW + 40;
    app.update(Msg::Update(Update::Board(Box::new(fresh))));
    assert!(!screen(&mut app, 120, 8).contains(" old"));
}

#[test]
fn a_standby_loop_says_who_leads() {
    let mut app = App::new(true, 100, NOW);
    let mut s = board();
    s.header.reconciler = LoopRunner::Standby {
        leader: Some("host-b:77:1:watch".into()),
    };
    app.update(Msg::Update(Update::Board(Box::new(s))));
    let shown = screen(&mut app, 160, 8);
    assert!(
        shown.contains("loop: in-process, standing by (leader host-b:77:1:watch)"),
        "{shown}"
    );
    key(&mut app, KeyCode::Char('R'));
    assert!(
        matches!(app.overlay, Some(Overlay::Confirm(_))),
        "restart is not a desired-state change"
    );
}
