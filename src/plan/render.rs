//! A plan as people read it (Terraform's symbols, unified diffs) and as scripts read it (JSON).

use super::{Action, Change, Plan, Resource, Summary};
use crate::model::printable;
use anstyle::{AnsiColor, Style as Look};
use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;
use std::fmt::Write;
use std::io::{self, Write as _};

/// Colours for a terminal; plain text everywhere else (see `--color`).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

pub const BOLD: Look = Look::new().bold();
pub const RED: Look = AnsiColor::Red.on_default();
pub const GREEN: Look = AnsiColor::Green.on_default();
pub const YELLOW: Look = AnsiColor::Yellow.on_default();
pub const MAGENTA: Look = AnsiColor::Magenta.on_default();
pub const CYAN: Look = AnsiColor::Cyan.on_default();

impl Style {
    /// `text` in `look` when the style has colour, else as it is.
    pub fn paint(&self, look: Look, text: &str) -> String {
        if self.color {
            format!("{look}{text}{look:#}")
        } else {
            text.to_string()
        }
    }
    fn action(&self, action: Action, text: &str) -> String {
        let look = match action {
            Action::Create | Action::Start => GREEN,
            Action::Update => YELLOW,
            Action::Replace | Action::Stop => MAGENTA,
            Action::Destroy => RED,
        };
        self.paint(look, text)
    }
}

/// The one line that ends every plan, as Terraform writes it.
pub fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to destroy.",
        s.create, s.update, s.replace, s.destroy
    )
}

/// The whole plan as text; [`write_text`] without holding it all at once is what `plan` prints.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and only `str`s are written, so it is UTF-8.
    let _ = write_text(&mut out, plan, style);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes [`text`] change by change, so a plan of many tenants is never held as one string.
pub fn write_text(out: impl io::Write, plan: &Plan, style: Style) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    // One change's text at a time, reused: the largest change bounds what is held.
    let mut buf = String::new();
    let rev = &plan.revision[..plan.revision.len().min(12)];
    if plan.is_empty() {
        let _ = writeln!(
            buf,
            "No changes. Revision {rev} matches what is running in namespace `{}`.",
            plan.namespace
        );
        notes(&mut buf, plan, style);
        out.write_all(buf.as_bytes())?;
        return out.flush();
    }
    let _ = writeln!(
        buf,
        "tenantctl will perform the following actions (revision {rev}, namespace `{}`):\n",
        plan.namespace
    );
    for change in &plan.changes {
        one(&mut buf, change, style);
        out.write_all(buf.as_bytes())?;
        buf.clear();
    }
    notes(&mut buf, plan, style);
    let s = plan.summary();
    let _ = writeln!(buf, "{}", style.paint(BOLD, &summary_line(plan)));
    if s.start + s.stop > 0 {
        let _ = writeln!(buf, "State: {} to start, {} to stop.", s.start, s.stop);
    }
    out.write_all(buf.as_bytes())?;
    out.flush()
}

fn notes(out: &mut String, plan: &Plan, style: Style) {
    for n in &plan.notes {
        let _ = writeln!(out, "{} {}\n", style.paint(YELLOW, "Note:"), printable(n));
    }
}

fn one(out: &mut String, c: &Change, style: Style) {
    let address = c.address();
    let _ = writeln!(out, "  # {address} {}", c.action.verb());
    for r in &c.reasons {
        let _ = writeln!(out, "  #   {}", printable(r));
    }
    let _ = writeln!(
        out,
        "{:>3} {address}",
        style.action(c.action, c.action.symbol())
    );
    let body = match (c.action, &c.before, &c.after) {
        (Action::Create, _, Some(after)) => prefixed(&to_lines(after), "+ ", style, GREEN),
        (Action::Destroy, Some(before), _) => prefixed(&to_lines(before), "- ", style, RED),
        (Action::Update | Action::Replace, Some(before), Some(after)) => {
            diff(&to_lines(before), &to_lines(after), style)
        }
        _ => String::new(),
    };
    for line in body.lines() {
        let _ = writeln!(out, "      {line}");
    }
    out.push('\n');
}

fn prefixed(text: &str, prefix: &str, style: Style, look: Look) -> String {
    text.lines()
        .map(|l| style.paint(look, &format!("{prefix}{l}")) + "\n")
        .collect()
}

/// A unified diff of two renderings, three lines of context.
pub fn diff(before: &str, after: &str, style: Style) -> String {
    let d = TextDiff::from_lines(before, after);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header("observed", "desired")
        .to_string();
    if !style.color {
        return text;
    }
    text.lines()
        .map(|l| {
            let look = match l.chars().next() {
                Some('+') => GREEN,
                Some('-') => RED,
                Some('@') => CYAN,
                _ => Look::new(),
            };
            style.paint(look, l) + "\n"
        })
        .collect()
}

/// Renders a JSON object as indented `key: value` lines, the shape a diff reads best in.
/// Nulls are left out, so a field that goes away shows as a removed line.
pub fn to_lines(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out
}

fn write_value(out: &mut String, v: &Value, indent: usize) {
    let Value::Object(map) = v else {
        let _ = writeln!(out, "{}{}", " ".repeat(indent), scalar(v));
        return;
    };
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::Object(inner) if inner.values().all(Value::is_null) => {}
            Value::Object(_) => {
                let _ = writeln!(out, "{}{k}:", " ".repeat(indent));
                write_value(out, v, indent + 2);
            }
            _ => {
                let _ = writeln!(out, "{}{k}: {}", " ".repeat(indent), scalar(v));
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s)
            if s.is_empty()
                || s.contains(": ")
                || s.contains(" #")
                || s.contains('\n')
                || s.trim() != s =>
        {
            printable(&serde_json::to_string(s).unwrap_or_default()).into_owned()
        }
        Value::String(s) => printable(s).into_owned(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(scalar).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    }
}

/// One JSON document: revision, namespace, summary, changes (tenant, resource, action, before, after).
pub fn json(plan: &Plan) -> Value {
    // Serialising these borrowed shapes cannot fail: every map key is a string.
    serde_json::to_value(JsonPlan::of(plan)).unwrap_or_default()
}

/// Writes [`json`] pretty-printed with a final newline, straight from the plan: no copy of the
/// changes as a `Value` and no whole-document string.
pub fn write_json(out: impl io::Write, plan: &Plan) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &JsonPlan::of(plan))?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The JSON document's shape, borrowing from the plan; field order is the output's key order.
#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'static str,
    revision: &'a str,
    namespace: &'a str,
    summary: Summary,
    #[serde(serialize_with = "json_changes")]
    changes: &'a [Change],
    notes: &'a [String],
}

impl<'a> JsonPlan<'a> {
    fn of(plan: &'a Plan) -> Self {
        JsonPlan {
            format_version: "1",
            revision: &plan.revision,
            namespace: &plan.namespace,
            summary: plan.summary(),
            changes: &plan.changes,
            notes: &plan.notes,
        }
    }
}

#[derive(Serialize)]
struct JsonChange<'a> {
    address: String,
    tenant: &'a Option<String>,
    resource: Resource,
    name: &'a str,
    action: Action,
    reasons: &'a [String],
    before: &'a Option<Value>,
    after: &'a Option<Value>,
}

fn json_changes<S: serde::Serializer>(changes: &&[Change], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(changes.iter().map(|c| JsonChange {
        address: c.address(),
        tenant: &c.tenant,
        resource: c.resource,
        name: &c.name,
        action: c.action,
        reasons: &c.reasons,
        before: &c.before,
        after: &c.after,
    }))
}

/// Writes the plan as Markdown for a pull request: a summary (counts, revision, namespace) and
/// a collapsible `diff` block per tenant (plan and theme rows first), change by change as
/// [`write_text`] shows it without colour. Repository text can never break the layout: text in
/// HTML (summaries) and in paragraphs is written with entities, and every fence is longer than
/// any backtick run inside it.
pub fn write_markdown(out: impl io::Write, plan: &Plan) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let mut buf = String::new();
    let rev = md_text(&plan.revision[..plan.revision.len().min(12)]);
    let ns = md_text(&plan.namespace);
    buf.push_str("### tenantctl plan\n\n");
    if plan.is_empty() {
        let _ = writeln!(
            buf,
            "**No changes.** Revision <code>{rev}</code> matches what is running in namespace <code>{ns}</code>.\n"
        );
    } else {
        let s = plan.summary();
        let _ = writeln!(
            buf,
            "Revision <code>{rev}</code>, namespace <code>{ns}</code>: **{}** to create, **{}** to update, **{}** to replace, **{}** to destroy.\n",
            s.create, s.update, s.replace, s.destroy
        );
        if s.start + s.stop > 0 {
            let _ = writeln!(
                buf,
                "State: **{}** to start, **{}** to stop.\n",
                s.start, s.stop
            );
        }
    }
    for n in &plan.notes {
        let _ = writeln!(buf, "> **Note:** {}\n", md_text(n));
    }
    out.write_all(buf.as_bytes())?;
    // Groups in order of first appearance: plan and theme rows, then each tenant in apply order.
    let mut groups: Vec<(Option<&str>, Vec<&Change>)> = Vec::new();
    for c in &plan.changes {
        let key = c.tenant.as_deref();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(c),
            None => groups.push((key, vec![c])),
        }
    }
    for (tenant, changes) in groups {
        buf.clear();
        let mut symbols: Vec<&str> = Vec::new();
        for c in &changes {
            if !symbols.contains(&c.action.symbol()) {
                symbols.push(c.action.symbol());
            }
        }
        let who = tenant.unwrap_or("plans and themes");
        let n = changes.len();
        let _ = writeln!(
            buf,
            "<details><summary>{}: {} {n} change{}</summary>\n",
            md_text(who),
            symbols.join(" "),
            if n == 1 { "" } else { "s" }
        );
        let mut body = String::new();
        for c in &changes {
            md_change(&mut body, c);
        }
        // One blank line between changes, none before the closing fence.
        body.truncate(body.trim_end_matches('\n').len());
        body.push('\n');
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        let _ = writeln!(buf, "{fence}diff\n{body}{fence}\n\n</details>\n");
        out.write_all(buf.as_bytes())?;
    }
    out.flush()
}

/// One change as [`write_text`] shows it, without colour, its diff lines unindented so a
/// `diff` block highlights them.
fn md_change(out: &mut String, c: &Change) {
    let plain = Style { color: false };
    let _ = writeln!(
        out,
        "# {} {} {}",
        c.action.symbol(),
        c.address(),
        c.action.verb()
    );
    for r in &c.reasons {
        let _ = writeln!(out, "#   {}", printable(r));
    }
    let body = match (c.action, &c.before, &c.after) {
        (Action::Create, _, Some(after)) => prefixed(&to_lines(after), "+ ", plain, GREEN),
        (Action::Destroy, Some(before), _) => prefixed(&to_lines(before), "- ", plain, RED),
        (Action::Update | Action::Replace, Some(before), Some(after)) => {
            diff(&to_lines(before), &to_lines(after), plain)
        }
        _ => String::new(),
    };
    out.push_str(&body);
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
}

/// The longest run of backticks in `text`: a fence must be longer to hold it.
pub fn longest_backtick_run(text: &str) -> usize {
    text.split(|ch| ch != '`').map(str::len).max().unwrap_or(0)
}

/// Text for Markdown outside code (HTML summaries, paragraphs): controls shown as escapes, one
/// line, and every character Markdown or HTML gives a meaning written as an entity.
pub fn md_text(text: &str) -> String {
    let text = printable(text);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            '`' | '*' | '_' | '[' | ']' | '|' | '\\' | '~' => {
                let _ = write!(out, "&#{};", ch as u32);
            }
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests;
