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

mod panes;
mod table;
use panes::*;
pub use table::fit_columns;
use table::*;

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
