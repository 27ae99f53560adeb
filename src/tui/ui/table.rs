//! The tenants table: which columns fit the terminal's width, in the order an on-call engineer
//! needs them, and each row's cells.

use super::*;

/// Columns by how much an on-call engineer needs them: narrow terminals drop the last first.
pub(super) const PRIORITY: [Column; 11] = [
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

pub(super) fn min_width(c: Column) -> u16 {
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

pub(super) fn cell(row: &BoardRow, column: Column, p: Palette, now: i64) -> Vec<Span<'static>> {
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
pub(super) fn fixed(spans: Vec<Span<'static>>, width: u16) -> Vec<Span<'static>> {
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

pub(super) fn draw_table(frame: &mut Frame, app: &mut App, p: Palette, area: Rect) {
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
