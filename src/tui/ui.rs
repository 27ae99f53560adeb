//! Drawing: a pure function of [`App`] into a ratatui frame. Only the rows on screen are built,
//! so a frame costs the same with 50 tenants or 10,000.

use super::app::{App, Column, Input, InputKind, Level, Overlay, Tab, View};
use super::data::{BoardRow, LoopRunner, Series};
use super::keymap;
use super::logbuf::match_ranges;
use crate::calendar::rfc3339;
use crate::status::{Health, SyncStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Sparkline, Wrap};

/// An observation this old (seconds) is flagged in the header: the engine or database is slow
/// or down, and the worker is still waiting or retrying.
const STALE_AFTER: i64 = 15;

/// Styles that read on dark and light terminals: the 16 named colours only, never a fixed
/// background; with colour off (`NO_COLOR`) only bold, reverse and underline remain.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    color: bool,
}

impl Palette {
    pub fn new(color: bool) -> Palette {
        Palette { color }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default()
        }
    }
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn title(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn match_style(self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Yellow)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        }
    }

    pub fn health(self, h: Option<Health>) -> Style {
        match h {
            Some(Health::Healthy) => self.good(),
            Some(Health::Progressing) => self.accent(),
            Some(Health::Degraded) | Some(Health::Missing) => self.bad(),
            Some(Health::Suspended) => self.dim(),
            Some(Health::Unknown) | None => self.warn(),
        }
    }

    pub fn sync(self, s: Option<SyncStatus>) -> Style {
        match s {
            Some(SyncStatus::Synced) => self.good(),
            Some(SyncStatus::OutOfSync) => self.warn(),
            _ => self.dim(),
        }
    }

    /// Green below 70 %, yellow below 90 %, red from there.
    fn level(self, percent: f64) -> Style {
        if percent >= 90.0 {
            self.bad()
        } else if percent >= 70.0 {
            self.warn()
        } else {
            self.good()
        }
    }
}

pub fn draw(frame: &mut Frame, app: &mut App) {
    let p = Palette::new(app.color);
    let area = frame.area();
    let head = header_lines(app, p, area.width);
    let [header, body, message, hints] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(head), header);
    match app.view {
        View::Table => draw_table(frame, app, p, body),
        View::Detail => draw_detail(frame, app, p, body),
        View::Activity => {
            let block = Block::default().borders(Borders::TOP).title(Span::styled(
                " Activity (the loop's progress and actions, newest last) ",
                p.title(),
            ));
            let inner = block.inner(body);
            frame.render_widget(block, body);
            app.hits.page = inner.height;
            let lines: Vec<Line<'static>> = if app.activity.is_empty() {
                vec![Line::styled("nothing yet", p.dim())]
            } else {
                app.activity.iter().map(|a| Line::raw(a.clone())).collect()
            };
            draw_scrolled(frame, app, lines, inner);
        }
    }
    draw_message(frame, app, p, message);
    draw_hints(frame, app, p, hints);
    match &app.overlay {
        Some(Overlay::Help) => draw_help(frame, app, p, area),
        Some(Overlay::Confirm(action)) => {
            let lines = vec![
                Line::styled(format!("{}?", capitalise(&action.describe())), p.title()),
                Line::from("y or Enter: yes    any other key: no"),
            ];
            draw_popup(frame, p, area, "Confirm", lines, 50);
        }
        None => {}
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn short(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

/// "12s", "5m", "3h", "2d" (largest unit, or two for days and hours).
pub fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h{}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// The header's pieces: what runs and where it stands, then the counts. Pieces flow onto
/// further lines on narrow terminals rather than being cut off.
fn header_groups(app: &App, p: Palette) -> Vec<Vec<Vec<Span<'static>>>> {
    let h = &app.board.header;
    let mut first = vec![vec![
        Span::styled("tenantctl ", p.title()),
        Span::styled(h.namespace.clone(), p.accent()),
    ]];
    if !app.loaded {
        first.push(vec![Span::styled("observing…", p.dim())]);
        return vec![first];
    }
    let rev = h.revision.as_deref().map(short).unwrap_or("-").to_string();
    let reference = if h.reference.is_empty() {
        "HEAD"
    } else {
        h.reference.as_str()
    };
    let mut head = vec![Span::raw(format!("{reference} {rev} "))];
    // Nothing pending means the engine and database match this commit, whichever run last
    // changed something; otherwise say which commit was applied last.
    match h.applied_revision.as_deref().map(short) {
        _ if h.pending_changes == 0 && h.revision.is_some() && h.error.is_none() => {
            head.push(Span::styled("in sync", p.good()))
        }
        Some(a) if a == rev => head.push(Span::styled("applied", p.good())),
        Some(a) => head.push(Span::styled(format!("(applied {a})"), p.warn())),
        None => head.push(Span::styled("(never applied)", p.warn())),
    }
    first.push(head);
    let pending = h.pending_changes;
    first.push(vec![Span::styled(
        format!("{pending} pending"),
        if pending == 0 { p.good() } else { p.warn() },
    )]);
    first.push(match h.last_reconcile {
        Some(t) => {
            let failed = h.last_reconcile_status.as_deref() == Some("failed");
            let what = match h.reconciler {
                LoopRunner::InProcess | LoopRunner::Standby { .. } => "reconciled",
                _ => "last apply",
            };
            vec![Span::styled(
                format!(
                    "{what} {} ago{}",
                    ago(app.now - t),
                    if failed { " (failed)" } else { "" }
                ),
                if failed { p.bad() } else { p.dim() },
            )]
        }
        None => vec![Span::styled(
            match h.reconciler {
                LoopRunner::InProcess | LoopRunner::Standby { .. } => "first pass…",
                _ => "never applied",
            },
            p.dim(),
        )],
    });
    first.push(vec![Span::styled(
        match &h.reconciler {
            LoopRunner::InProcess => "loop: in-process".to_string(),
            LoopRunner::Standby { leader: Some(l) } => {
                format!("loop: in-process, standing by (leader {l})")
            }
            LoopRunner::Standby { leader: None } => {
                "loop: in-process, standing by (no live leader yet)".to_string()
            }
            LoopRunner::External { holder } => format!("read-only, loop: {holder}"),
            LoopRunner::None => "read-only, no loop".to_string(),
        },
        p.dim(),
    )]);
    if let Some(e) = &h.error {
        first.push(vec![Span::styled(e.clone(), p.bad())]);
    }
    // The figures shown are only as fresh as the last observation: say so when it is old.
    let age = app.now - app.board.at;
    if age >= STALE_AFTER {
        first.push(vec![Span::styled(
            format!("data {} old", ago(age)),
            p.bad(),
        )]);
    }
    let s = crate::status::Summary::of_counts(app.board.rows.iter().map(|r| (r.sync, r.health)));
    let mut second = vec![vec![Span::styled(
        format!("{} tenants", s.tenants),
        p.title(),
    )]];
    // Zero counts are left out (but for the two that say all is well) to keep the header short.
    let mut count = |label: &str, n: usize, style: Style| {
        if n > 0 || label == "Synced" || label == "Healthy" {
            let style = if n == 0 { p.dim() } else { style };
            second.push(vec![Span::styled(format!("{label} {n}"), style)]);
        }
    };
    count("Synced", s.sync.synced, p.good());
    count("OutOfSync", s.sync.out_of_sync, p.warn());
    count("Healthy", s.health.healthy, p.good());
    count("Progressing", s.health.progressing, p.accent());
    count("Degraded", s.health.degraded, p.bad());
    count("Missing", s.health.missing, p.bad());
    count("Suspended", s.health.suspended, p.dim());
    if s.sync.unknown > 0 || s.health.unknown > 0 {
        count("Unknown", s.sync.unknown.max(s.health.unknown), p.warn());
    }
    first.extend(second);
    vec![first]
}

fn width_of(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.content.chars().count()).sum()
}

/// Lays pieces out greedily, two spaces apart; each group starts a new line.
fn flow(groups: Vec<Vec<Vec<Span<'static>>>>, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let mut lines = Vec::new();
    for group in groups {
        let mut line: Vec<Span<'static>> = Vec::new();
        for piece in group {
            let used = width_of(&line);
            if !line.is_empty() && used + 2 + width_of(&piece) > width {
                lines.push(Line::from(std::mem::take(&mut line)));
            }
            if !line.is_empty() {
                line.push(Span::raw("  "));
            }
            line.extend(piece);
        }
        lines.push(Line::from(line));
    }
    lines
}

/// The header's lines at `width` (at most three).
fn header_lines(app: &App, p: Palette, width: u16) -> Vec<Line<'static>> {
    let mut lines = flow(header_groups(app, p), width);
    lines.truncate(3);
    lines
}

/// A bar of `width` cells filled to `percent` (0–100+), e.g. `███░░`.
pub fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    let mut s = "█".repeat(filled.min(width));
    s.push_str(&"░".repeat(width - filled.min(width)));
    s
}

/// Compact binary size: `512M`, `1.5G`, `900K`.
pub fn size(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b >= K * K * K {
        format!("{:.1}G", b / (K * K * K))
    } else if b >= K * K {
        format!("{:.0}M", b / (K * K))
    } else if b >= K {
        format!("{:.0}K", b / K)
    } else {
        format!("{bytes}B")
    }
}

/// Compact count: `950`, `1.2k`, `100k`, `2.5M`.
pub fn count(n: i64) -> String {
    let f = n as f64;
    if n >= 1_000_000 {
        format!("{:.1}M", f / 1e6)
    } else if n >= 10_000 {
        format!("{:.0}k", f / 1e3)
    } else if n >= 1_000 {
        format!("{:.1}k", f / 1e3)
    } else {
        n.to_string()
    }
}

/// Columns by how much an on-call engineer needs them: narrow terminals drop the last first.
const PRIORITY: [Column; 11] = [
    Column::Slug,
    Column::Health,
    Column::Sync,
    Column::Memory,
    Column::Cpu,
    Column::Plan,
    Column::Api,
    Column::Url,
    Column::Uptime,
    Column::State,
    Column::Theme,
];

fn min_width(c: Column) -> u16 {
    match c {
        Column::Slug => 14,
        Column::Plan => 12,
        Column::Theme => 10,
        Column::State => 9,
        Column::Sync => 9,
        Column::Health => 11,
        Column::Cpu => 10,
        Column::Memory => 15,
        Column::Api => 10,
        Column::Uptime => 6,
        Column::Url => 22,
    }
}

/// Which columns fit in `width`, in display order, with their widths.
pub fn fit_columns(width: u16) -> Vec<(Column, u16)> {
    let mut chosen = Vec::new();
    let mut used = 0u16;
    for c in PRIORITY {
        let w = min_width(c) + 1;
        if used + w <= width {
            chosen.push(c);
            used += w;
        }
    }
    let mut spare = width.saturating_sub(used);
    let mut out: Vec<(Column, u16)> = Column::ALL
        .iter()
        .filter(|c| chosen.contains(c))
        .map(|c| (*c, min_width(*c)))
        .collect();
    // Spare room widens the slug (up to 30) and then the URL.
    for (c, w) in &mut out {
        if *c == Column::Slug {
            let more = spare.min(30u16.saturating_sub(*w));
            *w += more;
            spare -= more;
        }
    }
    for (c, w) in &mut out {
        if *c == Column::Url {
            *w += spare;
            spare = 0;
        }
    }
    out
}

fn cell(row: &BoardRow, column: Column, p: Palette, now: i64) -> Vec<Span<'static>> {
    let dash = || vec![Span::styled("-", p.dim())];
    match column {
        Column::Slug => vec![Span::raw(row.slug.clone())],
        Column::Plan => vec![Span::raw(row.plan.clone().unwrap_or_default())],
        Column::Theme => vec![Span::raw(row.theme.clone().unwrap_or_default())],
        Column::State => vec![Span::raw(row.state.clone().unwrap_or_default())],
        Column::Sync => vec![Span::styled(
            row.sync.map_or("-", |s| s.as_str()),
            p.sync(row.sync),
        )],
        Column::Health => vec![Span::styled(
            row.health.map_or("-", |h| h.as_str()),
            p.health(row.health),
        )],
        Column::Cpu => match (row.cpu_percent, row.cpu_limit) {
            (Some(used), Some(limit)) if limit > 0.0 => {
                let pct = used / limit;
                vec![
                    Span::styled(bar(pct, 5), p.level(pct)),
                    Span::raw(format!("{:>4.0}%", pct)),
                ]
            }
            (Some(used), _) => vec![Span::raw(format!("{used:.0}%"))],
            _ => dash(),
        },
        Column::Memory => match (row.memory_bytes, row.memory_limit) {
            (Some(used), Some(limit)) if limit > 0 => {
                let pct = used as f64 * 100.0 / limit as f64;
                vec![
                    Span::styled(bar(pct, 5), p.level(pct)),
                    Span::raw(format!(" {}/{}", size(used), size(limit))),
                ]
            }
            (Some(used), _) => vec![Span::raw(size(used))],
            _ => dash(),
        },
        Column::Api => match (row.api_calls, row.api_quota) {
            (Some(used), Some(quota)) if quota > 0 => {
                let pct = used as f64 * 100.0 / quota as f64;
                vec![Span::styled(
                    format!("{}/{}", count(used), count(quota)),
                    p.level(pct),
                )]
            }
            (Some(used), _) => vec![Span::raw(count(used))],
            _ => dash(),
        },
        Column::Uptime => match row.started_at {
            Some(t) => vec![Span::raw(ago(now - t))],
            None => dash(),
        },
        Column::Url => match &row.url {
            Some(u) => vec![Span::styled(u.clone(), p.accent())],
            None => dash(),
        },
    }
}

/// Pads or cuts spans to exactly `width` columns (by chars).
fn fixed(spans: Vec<Span<'static>>, width: u16) -> Vec<Span<'static>> {
    let mut left = usize::from(width);
    let mut out = Vec::new();
    for s in spans {
        if left == 0 {
            break;
        }
        let n = s.content.chars().count();
        if n <= left {
            left -= n;
            out.push(s);
        } else {
            let cut: String = s.content.chars().take(left.saturating_sub(1)).collect();
            out.push(Span::styled(format!("{cut}…"), s.style));
            left = 0;
        }
    }
    if left > 0 {
        out.push(Span::raw(" ".repeat(left)));
    }
    out
}

fn draw_table(frame: &mut Frame, app: &mut App, p: Palette, area: Rect) {
    let shown = app.visible.len();
    let total = app.board.rows.len();
    let mut title = vec![Span::styled(
        format!(" Tenants {shown}/{total} "),
        p.title(),
    )];
    title.push(Span::styled(
        format!(
            "sort: {} {} ",
            app.sort.title().to_lowercase(),
            if app.descending { "↓" } else { "↑" }
        ),
        p.dim(),
    ));
    if !app.filter_text.is_empty() {
        title.push(Span::styled(
            format!("filter: {} ", app.filter_text),
            p.accent(),
        ));
    }
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let columns = fit_columns(inner.width);
    // Remember the geometry for mouse clicks and paging.
    app.hits.table_header = head;
    app.hits.table_body = body;
    app.hits.page = body.height;
    app.hits.columns.clear();
    let mut x = head.x;
    let mut header = Vec::new();
    for (c, w) in &columns {
        app.hits.columns.push((*c, x, x + w + 1));
        x += w + 1;
        let mut t = c.title().to_string();
        if *c == app.sort {
            t.push(if app.descending { '↓' } else { '↑' });
        }
        header.extend(fixed(vec![Span::styled(t, p.title())], *w));
        header.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(header)), head);
    if !app.loaded {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "observing the engine and the database…",
                p.dim(),
            )),
            body,
        );
        return;
    }
    if app.visible.is_empty() {
        let text = if total == 0 {
            "no tenants: commit a file under tenants/ (see `tenantctl validate`)".to_string()
        } else {
            format!(
                "no tenant matches `{}` (Esc clears the filter)",
                app.filter_text
            )
        };
        frame.render_widget(Paragraph::new(Span::styled(text, p.dim())), body);
        return;
    }
    // The selection may have moved off screen through a resize.
    let page = usize::from(body.height.max(1));
    if app.selected >= app.offset + page {
        app.offset = app.selected + 1 - page;
    }
    app.offset = app.offset.min(app.selected);
    let mut lines = Vec::with_capacity(page);
    for (i, index) in app.visible.iter().enumerate().skip(app.offset).take(page) {
        let row = &app.board.rows[*index];
        let mut spans = Vec::new();
        for (c, w) in &columns {
            spans.extend(fixed(cell(row, *c, p, app.now), *w));
            spans.push(Span::raw(" "));
        }
        let mut line = Line::from(spans);
        if i == app.selected {
            line = line.style(p.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), body);
}

fn draw_detail(frame: &mut Frame, app: &mut App, p: Palette, area: Rect) {
    let slug = app.detail_slug.clone().unwrap_or_default();
    let [tabs_row, content] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    // Tab row: "acme │ Overview  Spec  Diff  Events  Logs".
    let mut spans = vec![Span::styled(
        format!(" {slug} "),
        p.title().add_modifier(Modifier::REVERSED),
    )];
    spans.push(Span::raw(" "));
    let mut x = tabs_row.x + slug.chars().count() as u16 + 3;
    app.hits.tabs.clear();
    app.hits.tabs_row = Rect {
        height: 1,
        ..tabs_row
    };
    for (i, t) in Tab::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, t.title());
        let w = label.chars().count() as u16;
        app.hits.tabs.push((*t, x, x + w));
        x += w + 1;
        let style = if *t == app.tab {
            p.selected().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs_row);
    app.hits.page = content.height;
    match app.tab {
        Tab::Overview => draw_overview(frame, app, p, content),
        Tab::Spec => {
            let text = app
                .detail
                .as_ref()
                .map_or_else(|| "loading…".to_string(), |d| d.spec.clone());
            draw_scrolled(frame, app, text_lines(&text, p, false), content);
        }
        Tab::Diff => {
            let lines = match &app.detail {
                None => vec![Line::from("loading…")],
                Some(d) if d.diff.trim().is_empty() => {
                    vec![Line::styled(
                        "No changes: the tenant matches git.",
                        p.good(),
                    )]
                }
                Some(d) => text_lines(&d.diff, p, true),
            };
            draw_scrolled(frame, app, lines, content);
        }
        Tab::Events => {
            let lines = match &app.detail {
                None => vec![Line::from("loading…")],
                Some(d) if d.events.is_empty() => vec![Line::styled("no events yet", p.dim())],
                Some(d) => d
                    .events
                    .iter()
                    .map(|e| {
                        Line::from(vec![
                            Span::styled(rfc3339(e.at), p.dim()),
                            Span::raw(" "),
                            Span::styled(format!("{:<22}", e.kind), event_style(&e.kind, p)),
                            Span::raw(e.message.clone()),
                        ])
                    })
                    .collect(),
            };
            draw_scrolled(frame, app, lines, content);
        }
        Tab::Logs => draw_logs(frame, app, p, content),
    }
}

fn event_style(kind: &str, p: Palette) -> Style {
    if kind.contains("fail") || kind.contains("error") {
        p.bad()
    } else if kind.contains("threshold") || kind.contains("trial") || kind.contains("drift") {
        p.warn()
    } else {
        p.accent()
    }
}

/// Lines of `text`; with `diff`, coloured like `plan`'s unified diff.
fn text_lines(text: &str, p: Palette, diff: bool) -> Vec<Line<'static>> {
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let style = if !diff {
                Style::default()
            } else if t.starts_with("+++") || t.starts_with("---") {
                p.title()
            } else if t.starts_with("-/+") || t.starts_with('~') {
                p.warn()
            } else if t.starts_with('+') || t.starts_with('>') {
                p.good()
            } else if t.starts_with('-') || t.starts_with('.') {
                p.fg(Color::Red)
            } else if t.starts_with("@@") {
                p.accent()
            } else if t.starts_with('#') {
                p.title()
            } else {
                Style::default()
            };
            Line::styled(l.to_string(), style)
        })
        .collect()
}

fn draw_scrolled(frame: &mut Frame, app: &mut App, lines: Vec<Line<'static>>, area: Rect) {
    let max = lines.len().saturating_sub(usize::from(area.height));
    app.detail_scroll = app.detail_scroll.min(max);
    let shown: Vec<Line> = lines
        .into_iter()
        .skip(app.detail_scroll)
        .take(usize::from(area.height))
        .collect();
    frame.render_widget(Paragraph::new(shown), area);
}

fn draw_overview(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
    let Some(row) = app.detail_row() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "this tenant is gone from git and the engine",
                p.dim(),
            )),
            area,
        );
        return;
    };
    let [facts, charts] = Layout::vertical([Constraint::Min(4), Constraint::Length(8)]).areas(area);
    let label = |s: &'static str| Span::styled(format!("{s:<11}"), p.dim());
    let mut lines = vec![
        Line::from(vec![
            label("plan"),
            Span::raw(row.plan.clone().unwrap_or_default()),
            Span::styled("   theme ", p.dim()),
            Span::raw(row.theme.clone().unwrap_or_default()),
            Span::styled("   state ", p.dim()),
            Span::raw(row.state.clone().unwrap_or_default()),
        ]),
        Line::from(vec![
            label("sync"),
            Span::styled(row.sync.map_or("-", |s| s.as_str()), p.sync(row.sync)),
            Span::styled("   health ", p.dim()),
            Span::styled(row.health.map_or("-", |h| h.as_str()), p.health(row.health)),
            Span::raw(
                row.health_reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
            ),
        ]),
        Line::from(vec![
            label("url"),
            Span::styled(row.url.clone().unwrap_or("-".into()), p.accent()),
            Span::raw(
                row.probe
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
            ),
            Span::styled("   up ", p.dim()),
            Span::raw(row.started_at.map_or("-".into(), |t| ago(app.now - t))),
        ]),
    ];
    if let (Some(used), Some(quota)) = (row.api_calls, row.api_quota) {
        lines.push(Line::from(vec![
            label("api calls"),
            Span::raw(format!(
                "{} of {} this month ({:.0}%)",
                count(used),
                count(quota),
                used as f64 * 100.0 / quota.max(1) as f64
            )),
        ]));
    }
    if let Some(used) = row.storage_bytes {
        let text = match row.storage_limit {
            Some(limit) => format!(
                "{} of {} ({:.0}%)",
                size(u64::try_from(used).unwrap_or(0)),
                size(u64::try_from(limit).unwrap_or(0)),
                used as f64 * 100.0 / limit.max(1) as f64
            ),
            None => format!("{} (no limit)", size(u64::try_from(used).unwrap_or(0))),
        };
        lines.push(Line::from(vec![label("storage"), Span::raw(text)]));
    }
    if let Some(e) = &row.last_error {
        lines.push(Line::from(vec![
            label("last error"),
            Span::styled(e.clone(), p.bad()),
        ]));
    }
    if let Some(progress) = &row.progress {
        let look = if progress.contains("failed") {
            p.bad()
        } else {
            p.warn()
        };
        lines.push(Line::from(vec![
            label("progress"),
            Span::styled(progress.clone(), look),
        ]));
    }
    if let Some(file) = &row.file {
        lines.push(Line::from(vec![label("file"), Span::raw(file.clone())]));
    }
    if !row.sync_reasons.is_empty() {
        lines.push(Line::styled("pending:", p.warn()));
        for r in &row.sync_reasons {
            lines.push(Line::styled(format!("  {r}"), p.warn()));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), facts);
    let [cpu, mem] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let empty = Series::default();
    let detail = app.detail.as_ref();
    let cpu_title = match (row.cpu_percent, row.cpu_limit) {
        (Some(u), Some(l)) => format!(" CPU {u:.1}% of {l} CPU "),
        (Some(u), None) => format!(" CPU {u:.1}% (no limit) "),
        _ => " CPU ".to_string(),
    };
    let mem_title = match (row.memory_bytes, row.memory_limit) {
        (Some(u), Some(l)) => format!(" memory {} of {} ", size(u), size(l)),
        (Some(u), None) => format!(" memory {} (no limit) ", size(u)),
        _ => " memory ".to_string(),
    };
    spark(frame, p, cpu, &cpu_title, detail.map_or(&empty, |d| &d.cpu));
    spark(
        frame,
        p,
        mem,
        &mem_title,
        detail.map_or(&empty, |d| &d.memory),
    );
}

/// A sparkline scaled to the plan's limit (a full column is the limit), newest on the right.
fn spark(frame: &mut Frame, p: Palette, area: Rect, title: &str, series: &Series) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title.to_string(), p.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if series.points.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("no samples yet", p.dim())),
            inner,
        );
        return;
    }
    let width = usize::from(inner.width);
    let points = &series.points[series.points.len().saturating_sub(width)..];
    let peak = points.iter().copied().max().unwrap_or(0);
    let max = series.limit.unwrap_or(peak).max(peak).max(1);
    let pct = points.last().copied().unwrap_or(0) as f64 * 100.0 / max as f64;
    let s = Sparkline::default()
        .data(points.iter().copied())
        .max(max)
        .style(p.level(pct));
    frame.render_widget(s, inner);
}

fn draw_logs(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
    let logs = &app.logs;
    let mut title = vec![Span::styled(" logs ", p.title())];
    title.push(if logs.follow {
        Span::styled("following ", p.good())
    } else {
        Span::styled("paused (s or End follows) ", p.warn())
    });
    let flag = |on: bool, name: &str| format!("{name}:{} ", if on { "on" } else { "off" });
    title.push(Span::styled(flag(logs.wrap, "wrap"), p.dim()));
    title.push(Span::styled(flag(logs.timestamps, "time"), p.dim()));
    if !logs.filter.is_empty() {
        title.push(Span::styled(format!("filter:{} ", logs.filter), p.accent()));
    }
    if !logs.search.is_empty() {
        title.push(Span::styled(format!("search:{} ", logs.search), p.accent()));
    }
    if logs.dropped > 0 {
        title.push(Span::styled(
            format!("({} older lines dropped) ", logs.dropped),
            p.dim(),
        ));
    }
    if let Some(n) = &logs.note {
        title.push(Span::styled(format!("— {n} "), p.warn()));
    }
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if logs.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "the container has written no log lines yet (the built-in site logs warnings only unless the tenant sets RUST_LOG: info)",
                p.dim(),
            ))
            .wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let lines: Vec<Line> = logs
        .window(inner.width, inner.height)
        .into_iter()
        .map(|l| {
            let mut spans = Vec::new();
            if let Some(t) = l.timestamp {
                spans.push(Span::styled(format!("{t} "), p.dim()));
            }
            let base = if l.stderr { p.warn() } else { Style::default() };
            let mut at = 0;
            for (a, b) in match_ranges(l.text, &logs.search) {
                spans.push(Span::styled(l.text[at..a].to_string(), base));
                spans.push(Span::styled(l.text[a..b].to_string(), p.match_style()));
                at = b;
            }
            spans.push(Span::styled(l.text[at..].to_string(), base));
            Line::from(spans)
        })
        .collect();
    let mut para = Paragraph::new(lines);
    if logs.wrap {
        para = para.wrap(Wrap { trim: false });
        // Wrapped lines may need more rows than the window counted: keep the newest visible.
        let rows: usize = logs
            .window(inner.width, inner.height)
            .iter()
            .map(|l| super::logbuf::row_count(l, inner.width))
            .sum();
        let extra = rows.saturating_sub(usize::from(inner.height));
        para = para.scroll((u16::try_from(extra).unwrap_or(u16::MAX), 0));
    }
    frame.render_widget(para, inner);
}

fn draw_message(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
    let line = if let Some(input) = &app.input {
        input_line(input, p)
    } else if let Some(f) = &app.fault {
        Line::styled(format!("! {f}"), p.bad())
    } else if let Some((level, text)) = &app.message {
        let style = match level {
            Level::Info => Style::default(),
            Level::Warn => p.warn(),
            Level::Error => p.bad(),
        };
        Line::styled(text.clone(), style)
    } else if let Some(a) = app.activity.back() {
        Line::styled(a.clone(), p.dim())
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(line), area);
    if let Some(input) = &app.input {
        let prompt = input_prompt(input.kind).chars().count() + input.text.chars().count();
        let x = area.x
            + u16::try_from(prompt)
                .unwrap_or(u16::MAX)
                .min(area.width.saturating_sub(1));
        frame.set_cursor_position((x, area.y));
    }
}

fn input_prompt(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Filter => "filter (e.g. health=degraded plan=pro acme): /",
        InputKind::LogSearch => "search logs: /",
        InputKind::LogFilter => "show only lines with: ",
    }
}

fn input_line(input: &Input, p: Palette) -> Line<'static> {
    Line::from(vec![
        Span::styled(input_prompt(input.kind), p.accent()),
        Span::raw(input.text.clone()),
    ])
}

fn draw_hints(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
    let hints = if app.input.is_some() {
        vec![
            ("Enter".to_string(), "apply"),
            ("Esc".to_string(), "cancel"),
            ("C-u".to_string(), "clear"),
        ]
    } else {
        keymap::hints(app.scope())
    };
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, help) in hints {
        let piece = format!("<{key}>").chars().count() + help.chars().count() + 3;
        // Whole hints only: one cut in half helps nobody.
        if used + piece > usize::from(area.width) {
            break;
        }
        used += piece;
        spans.push(Span::styled(
            format!("<{key}>"),
            p.accent().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {help}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
    let help = keymap::help(app.scope());
    let key_width = help
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let entry = |(keys, what): &(String, &'static str)| {
        Line::from(vec![
            Span::styled(format!("{keys:>key_width$}  "), p.accent()),
            Span::raw(*what),
        ])
    };
    let mut footer = Vec::new();
    if app.scope() == keymap::Scope::Table {
        footer.push(Line::styled(
            "filter: health=degraded plan=pro acme (key=a,b any; key!=x not; words: slug plan theme url)",
            p.dim(),
        ));
    }
    footer.push(Line::styled("any key closes this", p.dim()));
    // One column when it fits the screen, else two side by side.
    let room = usize::from(area.height.saturating_sub(4)).saturating_sub(footer.len() + 1);
    let columns = if help.len() <= room { 1 } else { 2 };
    let per_column = help.len().div_ceil(columns);
    let width = (if columns == 1 { 76 } else { 120 }).min(area.width.saturating_sub(2));
    let height = (per_column + footer.len() + 3).min(usize::from(area.height)) as u16;
    let popup = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys ", p.title()));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [body, _, foot] = Layout::vertical([
        Constraint::Length(per_column as u16),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let halves =
        Layout::horizontal(vec![Constraint::Ratio(1, columns as u32); columns]).split(body);
    for (i, chunk) in help.chunks(per_column).enumerate() {
        let lines: Vec<Line> = chunk.iter().map(entry).collect();
        frame.render_widget(Paragraph::new(lines), halves[i]);
    }
    frame.render_widget(Paragraph::new(footer).wrap(Wrap { trim: false }), foot);
}

fn draw_popup(
    frame: &mut Frame,
    p: Palette,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    width: u16,
) {
    let w = width.min(area.width.saturating_sub(2)).max(10);
    let inner = usize::from(w - 2);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let h = (u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(2)).min(area.height);
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(w)) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(format!(" {title} "), p.title()));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
