//! The dashboard's state and its one update function: every key, mouse event, resize and
//! background update is a [`Msg`] folded into [`App`]; what the background should do next comes
//! out as [`Request`]s. No IO here, so every interaction is a plain unit test.

use super::data::{Board, BoardRow, Detail, LoopRunner, Request, Update, UserAction};
use super::filter::Filter;
use super::keymap::{self, Act, Scope};
use super::logbuf::LogBuffer;
use crate::status::{Health, SyncStatus};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use std::cmp::Ordering;
use std::collections::VecDeque;

/// How many activity lines (the loop's progress, action results) are kept.
const ACTIVITY_LINES: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Term(Event),
    Update(Update),
    /// The clock moved on (uptimes, "12s ago").
    Tick(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Detail,
    /// The in-process loop's progress and action results, newest last.
    Activity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Spec,
    Diff,
    Events,
    Logs,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Overview, Tab::Spec, Tab::Diff, Tab::Events, Tab::Logs];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Spec => "Spec",
            Tab::Diff => "Diff",
            Tab::Events => "Events",
            Tab::Logs => "Logs",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Table columns, in display order; every one sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Slug,
    Plan,
    Theme,
    State,
    Sync,
    Health,
    Cpu,
    Memory,
    Api,
    Uptime,
    Url,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::Slug,
        Column::Plan,
        Column::Theme,
        Column::State,
        Column::Sync,
        Column::Health,
        Column::Cpu,
        Column::Memory,
        Column::Api,
        Column::Uptime,
        Column::Url,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Slug => "TENANT",
            Column::Plan => "PLAN",
            Column::Theme => "THEME",
            Column::State => "STATE",
            Column::Sync => "SYNC",
            Column::Health => "HEALTH",
            Column::Cpu => "CPU",
            Column::Memory => "MEMORY",
            Column::Api => "API CALLS",
            Column::Uptime => "UPTIME",
            Column::Url => "URL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    LogSearch,
    LogFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
    /// What the field held before, restored by Esc or by a filter that does not parse.
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Confirm(UserAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where the last frame put things, for mouse hit-testing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    /// The table's header row and body.
    pub table_header: Rect,
    pub table_body: Rect,
    /// Each shown column's x range `[start, end)`.
    pub columns: Vec<(Column, u16, u16)>,
    /// The detail tabs' x ranges on the tab row.
    pub tabs: Vec<(Tab, u16, u16)>,
    pub tabs_row: Rect,
    /// Rows the scrolling pane (table body, detail text, logs) has.
    pub page: u16,
}

pub struct App {
    pub board: Board,
    /// Has any observation arrived yet?
    pub loaded: bool,
    /// Indices into `board.rows`, filtered and sorted.
    pub visible: Vec<usize>,
    /// Index into `visible`.
    pub selected: usize,
    /// First row of `visible` on screen.
    pub offset: usize,
    pub sort: Column,
    pub descending: bool,
    pub filter_text: String,
    filter: Filter,
    pub view: View,
    pub tab: Tab,
    /// The tenant the detail view shows.
    pub detail_slug: Option<String>,
    pub detail: Option<Detail>,
    /// Lines scrolled in the Spec, Diff and Events tabs.
    pub detail_scroll: usize,
    pub logs: LogBuffer,
    pub input: Option<Input>,
    pub overlay: Option<Overlay>,
    pub message: Option<(Level, String)>,
    pub activity: VecDeque<String>,
    /// A background fault (engine or database down); cleared by the next board.
    pub fault: Option<String>,
    pub now: i64,
    pub color: bool,
    /// Capture the mouse (clicks, wheel); off lets the terminal select text.
    pub mouse: bool,
    pub quit: bool,
    pub hits: Hits,
    /// Last left click (row, time) to tell a double click.
    last_click: Option<(u16, u16)>,
    requests: Vec<Request>,
    log_tail: u64,
}

impl App {
    pub fn new(color: bool, log_capacity: usize, now: i64) -> App {
        App {
            board: Board::default(),
            loaded: false,
            visible: Vec::new(),
            selected: 0,
            offset: 0,
            sort: Column::Slug,
            descending: false,
            filter_text: String::new(),
            filter: Filter::default(),
            view: View::Table,
            tab: Tab::Overview,
            detail_slug: None,
            detail: None,
            detail_scroll: 0,
            logs: LogBuffer::new(log_capacity),
            input: None,
            overlay: None,
            message: None,
            activity: VecDeque::new(),
            fault: None,
            now,
            color,
            mouse: true,
            quit: false,
            hits: Hits::default(),
            last_click: None,
            requests: Vec::new(),
            log_tail: log_capacity.min(1000) as u64,
        }
    }

    /// What the background should do, in order; empties the queue.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    pub fn selected_row(&self) -> Option<&BoardRow> {
        self.visible
            .get(self.selected)
            .and_then(|i| self.board.rows.get(*i))
    }

    /// The row of the tenant the detail view shows.
    pub fn detail_row(&self) -> Option<&BoardRow> {
        let slug = self.detail_slug.as_deref()?;
        self.board.rows.iter().find(|r| r.slug == slug)
    }

    /// The key scope of what is on screen.
    pub fn scope(&self) -> Scope {
        match (self.view, self.tab) {
            (View::Table, _) => Scope::Table,
            (View::Activity, _) => Scope::Activity,
            (View::Detail, Tab::Logs) => Scope::Logs,
            (View::Detail, _) => Scope::Detail,
        }
    }

    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Tick(now) => self.now = now,
            Msg::Update(u) => self.background(u),
            Msg::Term(Event::Key(k)) if k.kind != KeyEventKind::Release => self.key(k),
            Msg::Term(Event::Mouse(m)) => self.mouse(m),
            Msg::Term(_) => {}
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn background(&mut self, u: Update) {
        match u {
            Update::Board(s) => {
                let keep = self.selected_row().map(|r| r.slug.clone());
                self.board = *s;
                self.loaded = true;
                self.fault = None;
                self.refresh_visible(keep.as_deref());
            }
            Update::Detail(d) => {
                if self.detail_slug.as_deref() == Some(d.slug.as_str()) {
                    self.detail = Some(*d);
                }
            }
            Update::Logs { slug, lines } => {
                if self.detail_slug.as_deref() == Some(slug.as_str()) {
                    self.logs.push(lines);
                }
            }
            Update::LogNote { slug, message } => {
                if self.detail_slug.as_deref() == Some(slug.as_str()) {
                    self.logs.note = Some(message);
                }
            }
            Update::Activity(line) => self.activity_line(line),
            Update::ActionDone { action, result } => match result {
                Ok(m) => {
                    self.activity_line(format!("{}: {m}", action.describe()));
                    self.say(Level::Info, format!("{}: {m}", action.describe()));
                }
                Err(e) => {
                    self.activity_line(format!("{} failed: {e}", action.describe()));
                    self.say(Level::Error, format!("{} failed: {e}", action.describe()));
                }
            },
            Update::Fault(f) => self.fault = Some(f),
        }
    }

    fn activity_line(&mut self, line: String) {
        if self.activity.len() == ACTIVITY_LINES {
            self.activity.pop_front();
        }
        let stamp = crate::calendar::rfc3339(self.now);
        let clock = stamp.get(11..19).unwrap_or("");
        self.activity.push_back(format!("{clock} {line}"));
    }

    /// Re-filters and re-sorts, keeping `keep` selected when it is still shown.
    fn refresh_visible(&mut self, keep: Option<&str>) {
        let rows = &self.board.rows;
        let mut visible: Vec<usize> = (0..rows.len())
            .filter(|i| self.filter.matches(&rows[*i]))
            .collect();
        let (column, descending) = (self.sort, self.descending);
        visible.sort_by(|a, b| {
            let o = compare(&rows[*a], &rows[*b], column)
                .then_with(|| rows[*a].slug.cmp(&rows[*b].slug));
            if descending { o.reverse() } else { o }
        });
        self.visible = visible;
        if let Some(slug) = keep
            && let Some(i) = self
                .visible
                .iter()
                .position(|i| self.board.rows[*i].slug == slug)
        {
            self.selected = i;
        }
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
        self.keep_selection_on_screen();
    }

    fn page(&self) -> usize {
        usize::from(self.hits.page.max(1))
    }

    fn keep_selection_on_screen(&mut self) {
        let page = self.page();
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(self.visible.len().saturating_sub(page));
    }

    fn key(&mut self, k: KeyEvent) {
        if self.input.is_some() {
            return self.input_key(k);
        }
        match self.overlay.take() {
            Some(Overlay::Help) => {
                // Any key closes help; q still quits.
                if keymap::lookup(self.scope(), &k) == Some(Act::Quit) {
                    self.quit = true;
                }
                return;
            }
            Some(Overlay::Confirm(action)) => {
                match k.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                        self.say(Level::Info, format!("{}…", action.describe()));
                        self.requests.push(Request::Run(action));
                    }
                    _ => self.say(Level::Info, "cancelled"),
                }
                return;
            }
            None => {}
        }
        if let Some(act) = keymap::lookup(self.scope(), &k) {
            self.act(act);
        }
    }

    fn act(&mut self, act: Act) {
        let page = self.page();
        match act {
            Act::Quit => self.quit = true,
            Act::Help => self.overlay = Some(Overlay::Help),
            Act::Up => self.move_by(-1),
            Act::Down => self.move_by(1),
            Act::PageUp => self.move_by(-(page as isize)),
            Act::PageDown => self.move_by(page as isize),
            Act::Top => self.move_to_top(),
            Act::Bottom => self.move_to_bottom(),
            Act::Open => self.open(Tab::Overview),
            Act::Logs => self.open(Tab::Logs),
            Act::Back => self.back(),
            Act::Filter => {
                self.input = Some(Input {
                    kind: InputKind::Filter,
                    text: self.filter_text.clone(),
                    original: self.filter_text.clone(),
                })
            }
            Act::SortNext => {
                let i = Column::ALL
                    .iter()
                    .position(|c| *c == self.sort)
                    .unwrap_or(0);
                self.sort_by(Column::ALL[(i + 1) % Column::ALL.len()]);
            }
            Act::SortReverse => {
                self.descending = !self.descending;
                self.resort();
            }
            Act::SyncAll => self.run(UserAction::SyncAll),
            Act::SyncTenant => {
                if let Some(slug) = self.current_slug() {
                    self.run(UserAction::SyncTenant(slug));
                }
            }
            Act::Restart => {
                if let Some(slug) = self.current_slug() {
                    if self.reconciler_is_external() {
                        self.say(Level::Warn, self.read_only_reason());
                    } else {
                        self.overlay = Some(Overlay::Confirm(UserAction::Restart(slug)));
                    }
                }
            }
            Act::Suspend => self.git_change("suspended"),
            Act::Resume => self.git_change("active"),
            Act::NextTab => self.switch_tab(1),
            Act::PrevTab => self.switch_tab(-1),
            Act::Follow => self.logs.toggle_follow(),
            Act::Wrap => self.logs.wrap = !self.logs.wrap,
            Act::Timestamps => self.logs.timestamps = !self.logs.timestamps,
            Act::Search => {
                self.input = Some(Input {
                    kind: InputKind::LogSearch,
                    text: self.logs.search.clone(),
                    original: self.logs.search.clone(),
                })
            }
            Act::LogFilter => {
                self.input = Some(Input {
                    kind: InputKind::LogFilter,
                    text: self.logs.filter.clone(),
                    original: self.logs.filter.clone(),
                })
            }
            Act::Mouse => {
                self.mouse = !self.mouse;
                self.say(
                    Level::Info,
                    if self.mouse {
                        "mouse on: click and wheel work (m turns it off to select text)"
                    } else {
                        "mouse off: select and copy text with the mouse (m turns it on)"
                    },
                );
            }
            Act::GoTab(n) => {
                if let Some(t) = Tab::ALL.get(usize::from(n).saturating_sub(1)) {
                    self.tab = *t;
                    self.detail_scroll = 0;
                }
            }
            Act::Activity => {
                self.view = View::Activity;
                self.detail_scroll = usize::MAX / 2;
            }
            Act::NextMatch | Act::PrevMatch => {
                if self.logs.search.is_empty() {
                    self.say(Level::Info, "no search: press / first");
                } else if !self.logs.jump_to_match(act == Act::NextMatch) {
                    self.say(
                        Level::Info,
                        format!("no more matches of `{}`", self.logs.search),
                    );
                }
            }
        }
    }

    fn reconciler_is_external(&self) -> bool {
        !matches!(
            self.board.header.reconciler,
            LoopRunner::InProcess | LoopRunner::Standby { .. }
        )
    }

    fn read_only_reason(&self) -> String {
        match &self.board.header.reconciler {
            LoopRunner::External { holder } => format!(
                "read-only: `tenantctl watch` ({holder}) reconciles; act through it or stop it and run `tenantctl tui`"
            ),
            _ => "read-only: no reconciler runs here (started with --read-only)".to_string(),
        }
    }

    fn run(&mut self, action: UserAction) {
        self.say(Level::Info, format!("{}…", action.describe()));
        self.requests.push(Request::Run(action));
    }

    /// Suspend and resume are desired state: the dashboard says how, and never edits git itself.
    fn git_change(&mut self, state: &str) {
        let Some(row) = self.current_row() else {
            return;
        };
        let verb = if state == "active" {
            "Resume"
        } else {
            "Suspend"
        };
        let text = match &row.file {
            Some(file) => format!(
                "{verb} is a git change: set `state: {state}` in {file} and commit; the loop applies it"
            ),
            None => format!(
                "{} is not in git: nothing to {}",
                row.slug,
                verb.to_lowercase()
            ),
        };
        self.say(Level::Warn, text);
    }

    fn current_row(&self) -> Option<&BoardRow> {
        match self.view {
            View::Table | View::Activity => self.selected_row(),
            View::Detail => self.detail_row(),
        }
    }

    fn current_slug(&self) -> Option<String> {
        match self.view {
            View::Table | View::Activity => self.selected_row().map(|r| r.slug.clone()),
            View::Detail => self.detail_slug.clone(),
        }
    }

    fn move_by(&mut self, delta: isize) {
        match (self.view, self.tab) {
            (View::Table, _) => {
                let last = self.visible.len().saturating_sub(1);
                self.selected = self.selected.saturating_add_signed(delta).min(last);
                self.keep_selection_on_screen();
            }
            (View::Detail, Tab::Logs) => {
                if delta < 0 {
                    self.logs.scroll_up(delta.unsigned_abs());
                } else {
                    self.logs.scroll_down(delta.unsigned_abs());
                }
            }
            (View::Detail | View::Activity, _) => {
                self.detail_scroll = self.detail_scroll.saturating_add_signed(delta);
            }
        }
    }

    fn move_to_top(&mut self) {
        match (self.view, self.tab) {
            (View::Table, _) => {
                self.selected = 0;
                self.keep_selection_on_screen();
            }
            (View::Detail, Tab::Logs) => self.logs.top(),
            (View::Detail | View::Activity, _) => self.detail_scroll = 0,
        }
    }

    fn move_to_bottom(&mut self) {
        match (self.view, self.tab) {
            (View::Table, _) => {
                self.selected = self.visible.len().saturating_sub(1);
                self.keep_selection_on_screen();
            }
            (View::Detail, Tab::Logs) => self.logs.bottom(),
            (View::Detail | View::Activity, _) => self.detail_scroll = usize::MAX / 2,
        }
    }

    fn open(&mut self, tab: Tab) {
        let Some(slug) = self.selected_row().map(|r| r.slug.clone()) else {
            return;
        };
        if self.detail_slug.as_deref() != Some(slug.as_str()) {
            self.detail = None;
            self.logs.reset();
        }
        self.view = View::Detail;
        self.detail_scroll = 0;
        self.detail_slug = Some(slug.clone());
        self.requests.push(Request::Detail(Some(slug.clone())));
        self.requests.push(Request::Logs {
            slug: Some(slug),
            tail: self.log_tail,
        });
        self.tab = tab;
    }

    fn back(&mut self) {
        match self.view {
            View::Activity => self.view = View::Table,
            View::Detail => {
                self.view = View::Table;
                self.detail_slug = None;
                self.detail = None;
                self.logs.reset();
                self.requests.push(Request::Detail(None));
                self.requests.push(Request::Logs {
                    slug: None,
                    tail: 0,
                });
            }
            View::Table => {
                if !self.filter_text.is_empty() {
                    self.set_filter(String::new());
                }
            }
        }
    }

    fn switch_tab(&mut self, delta: isize) {
        let n = Tab::ALL.len() as isize;
        let i = (self.tab.index() as isize + delta).rem_euclid(n);
        self.tab = Tab::ALL[i as usize];
        self.detail_scroll = 0;
    }

    pub fn sort_by(&mut self, column: Column) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = false;
        }
        self.resort();
    }

    fn resort(&mut self) {
        let keep = self.selected_row().map(|r| r.slug.clone());
        self.refresh_visible(keep.as_deref());
    }

    fn set_filter(&mut self, text: String) {
        match Filter::parse(&text) {
            Ok(f) => {
                self.filter = f;
                self.filter_text = text;
                self.message = None;
                self.resort();
            }
            Err(e) => self.say(Level::Error, format!("filter: {e}")),
        }
    }

    fn restore_filter(&mut self, original: &str) {
        self.filter = Filter::parse(original).unwrap_or_default();
        self.filter_text = original.to_string();
        self.resort();
    }

    fn input_key(&mut self, k: KeyEvent) {
        let Some(mut input) = self.input.take() else {
            return;
        };
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => {
                // Esc leaves the input and undoes what it typed.
                if input.kind == InputKind::Filter {
                    self.restore_filter(&input.original);
                }
                return;
            }
            KeyCode::Enter => {
                self.commit_input(&input);
                return;
            }
            KeyCode::Backspace => {
                input.text.pop();
            }
            KeyCode::Char('u') if ctrl => input.text.clear(),
            KeyCode::Char('c') if ctrl => {
                if input.kind == InputKind::Filter {
                    self.restore_filter(&input.original);
                }
                return;
            }
            KeyCode::Char(c) if !ctrl => input.text.push(c),
            _ => {}
        }
        // The table filters as the user types; a half-typed term that does not parse yet waits.
        if input.kind == InputKind::Filter {
            match Filter::parse(&input.text) {
                Ok(f) => {
                    self.filter = f;
                    self.filter_text = input.text.clone();
                    self.message = None;
                    self.resort();
                }
                Err(e) => self.say(Level::Error, format!("filter: {e}")),
            }
        }
        self.input = Some(input);
    }

    fn commit_input(&mut self, input: &Input) {
        match input.kind {
            InputKind::Filter => {
                if let Err(e) = Filter::parse(&input.text) {
                    self.restore_filter(&input.original);
                    self.say(Level::Error, format!("filter: {e}"));
                } else {
                    self.set_filter(input.text.trim().to_string());
                }
            }
            InputKind::LogSearch => {
                self.logs.search = input.text.clone();
                if !input.text.is_empty() {
                    let n = self.logs.matches();
                    self.say(
                        Level::Info,
                        format!(
                            "{n} line{} match `{}` (n older, N newer)",
                            if n == 1 { "" } else { "s" },
                            input.text
                        ),
                    );
                }
            }
            InputKind::LogFilter => self.logs.set_filter(input.text.clone()),
        }
    }

    fn mouse(&mut self, m: MouseEvent) {
        if self.overlay.is_some() || self.input.is_some() {
            return;
        }
        match m.kind {
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::Down(MouseButton::Left) => self.click(m.column, m.row),
            _ => {}
        }
    }

    fn click(&mut self, x: u16, y: u16) {
        let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        match self.view {
            View::Table => {
                if inside(self.hits.table_header) {
                    if let Some((c, _, _)) =
                        self.hits.columns.iter().find(|(_, a, b)| x >= *a && x < *b)
                    {
                        self.sort_by(*c);
                    }
                } else if inside(self.hits.table_body) {
                    let i = self.offset + usize::from(y - self.hits.table_body.y);
                    if i < self.visible.len() {
                        // A second click on the selected row opens it.
                        if self.selected == i && self.last_click == Some((x, y)) {
                            self.open(Tab::Overview);
                        }
                        self.selected = i;
                        self.last_click = Some((x, y));
                    }
                }
            }
            View::Activity => {}
            View::Detail => {
                if inside(self.hits.tabs_row)
                    && let Some((t, _, _)) =
                        self.hits.tabs.iter().find(|(_, a, b)| x >= *a && x < *b)
                {
                    self.tab = *t;
                    self.detail_scroll = 0;
                }
            }
        }
    }
}

/// Worst first, so sorting by health puts what needs attention on top.
fn health_rank(h: Option<Health>) -> u8 {
    match h {
        Some(Health::Degraded) => 0,
        Some(Health::Missing) => 1,
        Some(Health::Progressing) => 2,
        Some(Health::Unknown) | None => 3,
        Some(Health::Suspended) => 4,
        Some(Health::Healthy) => 5,
    }
}

fn sync_rank(s: Option<SyncStatus>) -> u8 {
    match s {
        Some(SyncStatus::OutOfSync) => 0,
        Some(SyncStatus::Unknown) | None => 1,
        Some(SyncStatus::Synced) => 2,
    }
}

/// Share of the limit used, for sorting gauges (usage without a limit sorts after).
fn share(used: Option<f64>, limit: Option<f64>) -> f64 {
    match (used, limit) {
        (Some(u), Some(l)) if l > 0.0 => u / l,
        (Some(u), _) => u,
        _ => -1.0,
    }
}

/// Usage columns sort biggest first by default: the busiest tenant is the interesting one.
fn compare(a: &BoardRow, b: &BoardRow, column: Column) -> Ordering {
    let f = |x: f64, y: f64| y.partial_cmp(&x).unwrap_or(Ordering::Equal);
    match column {
        Column::Slug => a.slug.cmp(&b.slug),
        Column::Plan => a.plan.cmp(&b.plan),
        Column::Theme => a.theme.cmp(&b.theme),
        Column::State => a.state.cmp(&b.state),
        Column::Sync => sync_rank(a.sync).cmp(&sync_rank(b.sync)),
        Column::Health => health_rank(a.health).cmp(&health_rank(b.health)),
        Column::Cpu => f(
            share(a.cpu_percent, a.cpu_limit.map(|c| c * 100.0)),
            share(b.cpu_percent, b.cpu_limit.map(|c| c * 100.0)),
        ),
        Column::Memory => f(
            share(
                a.memory_bytes.map(|m| m as f64),
                a.memory_limit.map(|m| m as f64),
            ),
            share(
                b.memory_bytes.map(|m| m as f64),
                b.memory_limit.map(|m| m as f64),
            ),
        ),
        Column::Api => f(
            share(a.api_calls.map(|m| m as f64), a.api_quota.map(|m| m as f64)),
            share(b.api_calls.map(|m| m as f64), b.api_quota.map(|m| m as f64)),
        ),
        // Longest running first.
        Column::Uptime => a
            .started_at
            .unwrap_or(i64::MAX)
            .cmp(&b.started_at.unwrap_or(i64::MAX)),
        Column::Url => a.url.cmp(&b.url),
    }
}
