//! The panes beside and below the table: a tenant's detail (overview with its sparklines,
//! events, plan diff), and the log pane.

use super::*;

pub(super) fn draw_detail(frame: &mut Frame, app: &mut App, p: Palette, area: Rect) {
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

pub(super) fn event_style(kind: &str, p: Palette) -> Style {
    if kind.contains("fail") || kind.contains("error") {
        p.bad()
    } else if kind.contains("threshold") || kind.contains("trial") || kind.contains("drift") {
        p.warn()
    } else {
        p.accent()
    }
}

/// Lines of `text`; with `diff`, coloured like `plan`'s unified diff.
pub(super) fn text_lines(text: &str, p: Palette, diff: bool) -> Vec<Line<'static>> {
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

pub(super) fn draw_scrolled(
    frame: &mut Frame,
    app: &mut App,
    lines: Vec<Line<'static>>,
    area: Rect,
) {
    let max = lines.len().saturating_sub(usize::from(area.height));
    app.detail_scroll = app.detail_scroll.min(max);
    let shown: Vec<Line> = lines
        .into_iter()
        .skip(app.detail_scroll)
        .take(usize::from(area.height))
        .collect();
    frame.render_widget(Paragraph::new(shown), area);
}

pub(super) fn draw_overview(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
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
pub(super) fn spark(frame: &mut Frame, p: Palette, area: Rect, title: &str, series: &Series) {
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

pub(super) fn draw_logs(frame: &mut Frame, app: &App, p: Palette, area: Rect) {
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
            .map(|l| super::super::logbuf::row_count(l, inner.width))
            .sum();
        let extra = rows.saturating_sub(usize::from(inner.height));
        para = para.scroll((u16::try_from(extra).unwrap_or(u16::MAX), 0));
    }
    frame.render_widget(para, inner);
}
