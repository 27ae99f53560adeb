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
