//! The audit log as `tenantctl events` shows it, without IO: what a change event records (the
//! fields that changed, before and after, secrets redacted), the `--kind` glob, the `--since`
//! time, and the text and JSON renderings of [`AuditRow`]s.

use crate::model::printable;
use crate::plan::container::{SECRET_ENV, SENSITIVE_WORDS, shown_env_value};
use crate::store::AuditRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The version of `events -o json`'s document (and of each JSON line with `-f`).
pub const FORMAT_VERSION: u32 = 1;

/// One field an event changed. `field` is a dotted path into the plan's view of the object
/// (`owner`, `resources.memory`, `env.LOG_LEVEL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// The leaves that differ between two views (objects are walked, anything else is a leaf), in
/// path order, with sensitive values redacted. Empty when nothing differs.
pub fn field_changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    fn walk(path: &str, b: Option<&Value>, a: Option<&Value>, out: &mut Vec<FieldChange>) {
        match (b, a) {
            (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
                let keys: BTreeSet<&String> = bo.keys().chain(ao.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(&p, bo.get(k), ao.get(k), out);
                }
            }
            (b, a) if b != a => out.push(FieldChange {
                field: path.to_string(),
                before: redact(path, b.cloned().unwrap_or(Value::Null)),
                after: redact(path, a.cloned().unwrap_or(Value::Null)),
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// What an event row stores in `detail`: `None` when nothing changed.
pub fn detail_json(changes: &[FieldChange]) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    serde_json::to_string(changes).ok()
}

/// Whether a field's name marks its value as a secret: the API key's digest, or a name holding
/// one of the words plans treat as sensitive (`SECRET`, `TOKEN`, `PASSWORD`, …), compared
/// without case, `_`, `-` or `.`.
fn sensitive(name: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | '.'))
            .flat_map(char::to_uppercase)
            .collect::<String>()
    };
    let name = norm(name);
    SECRET_ENV.iter().any(|s| name.contains(&norm(s)))
        || SENSITIVE_WORDS.iter().any(|w| name.contains(&norm(w)))
        || name.contains("APIKEY")
        || name.contains("SHA256")
        || name.contains("DIGEST")
}

/// A value as the audit log may hold it: under a sensitive name, a string becomes the plans'
/// `(sensitive, sha256:…)` fingerprint (kept if it is one already) and anything else but null
/// `(sensitive)`.
fn redact(path: &str, value: Value) -> Value {
    let last = path.rsplit('.').next().unwrap_or(path);
    if !path.split('.').any(sensitive) {
        return value;
    }
    match value {
        Value::Null => Value::Null,
        Value::String(s) if s.starts_with("(sensitive") => Value::String(s),
        Value::String(s) if !SECRET_ENV.contains(&last) => {
            // Always a fingerprint, whatever word made the path sensitive.
            let shown = shown_env_value("SECRET", &s);
            Value::String(shown)
        }
        _ => Value::String("(sensitive)".into()),
    }
}

/// `--kind`: an exact kind, or a glob where `*` matches any run of characters and `?` one.
#[derive(Debug, Clone, PartialEq)]
pub struct KindFilter(String);

impl KindFilter {
    pub fn new(pattern: &str) -> Result<KindFilter, String> {
        if pattern.trim().is_empty() {
            return Err("--kind is empty; give a kind (tenant.failed) or a glob (tenant.*)".into());
        }
        Ok(KindFilter(pattern.to_string()))
    }

    pub fn matches(&self, kind: &str) -> bool {
        fn glob(p: &[char], k: &[char]) -> bool {
            match p.split_first() {
                None => k.is_empty(),
                Some(('*', rest)) => (0..=k.len()).any(|i| glob(rest, &k[i..])),
                Some(('?', rest)) => !k.is_empty() && glob(rest, &k[1..]),
                Some((c, rest)) => k.first() == Some(c) && glob(rest, &k[1..]),
            }
        }
        let p: Vec<char> = self.0.chars().collect();
        let k: Vec<char> = kind.chars().collect();
        glob(&p, &k)
    }

    /// The same pattern for SQL `LIKE … ESCAPE '\'` (the database narrows, [`Self::matches`]
    /// decides: SQLite's `LIKE` ignores ASCII case).
    pub fn like(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            match c {
                '*' => out.push('%'),
                '?' => out.push('_'),
                '%' | '_' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }
}

/// `--since`: an RFC 3339 time, or a duration back from `now` (`30m`, `1h30m`, `2d`, as
/// `humantime` reads them; a bare number is seconds). Unix seconds.
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Some(at) = crate::calendar::parse_rfc3339(t) {
        return at;
    }
    let duration = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().map(std::time::Duration::from_secs).ok()
    } else {
        humantime::parse_duration(t).ok()
    };
    let Some(d) = duration else {
        return Err(format!(
            "`{text}` is neither a duration (30m, 1h30m, 2d) nor an RFC 3339 time (2026-12-06T22:00:00Z)"
        ));
    };
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    Ok(now.saturating_sub(secs))
}

/// The changes a row records, if it records any readable ones.
pub fn changes_of(row: &AuditRow) -> Option<Vec<FieldChange>> {
    serde_json::from_str(row.detail.as_deref()?).ok()
}

/// One event as `-o json` shows it.
pub fn json_event(row: &AuditRow) -> Value {
    json!({
        "id": row.id,
        "time": crate::calendar::rfc3339(row.at),
        "tenant": row.tenant,
        "kind": row.kind,
        "revision": row.revision,
        "term": row.term,
        "runId": row.run_id,
        "message": row.message,
        "changes": changes_of(row),
    })
}

/// The whole `-o json` document.
pub fn json_document(rows: &[AuditRow]) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "events": rows.iter().map(json_event).collect::<Vec<_>>(),
    })
}

/// Column widths of the text output; they only grow, so a followed log stays aligned.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Widths {
    pub tenant: usize,
    pub kind: usize,
}

impl Widths {
    pub fn fit(&mut self, rows: &[AuditRow]) {
        for r in rows {
            let tenant = r
                .tenant
                .as_deref()
                .map_or(1, |t| printable(t).chars().count());
            self.tenant = self.tenant.max(tenant);
            self.kind = self.kind.max(printable(&r.kind).chars().count());
        }
    }
}

/// A value in a text line: strings as they are (escaped), nothing as `(none)`, others as JSON.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => printable(s).into_owned(),
        other => printable(&other.to_string()).into_owned(),
    }
}

/// One text line: time, tenant (`-` for none), kind, `rev` and the short revision (`-` for
/// none), then what changed (`field: before → after; …`) or, without that, the message.
pub fn text_line(row: &AuditRow, w: Widths) -> String {
    let tenant = row.tenant.as_deref().map_or("-".into(), printable);
    let kind = printable(&row.kind);
    let rev = row
        .revision
        .as_deref()
        .map_or("-", |r| r.get(..7).unwrap_or(r));
    let mut line = format!(
        "{}  {:<tw$}  {:<kw$}  rev {:<7}  ",
        crate::calendar::rfc3339(row.at),
        tenant,
        kind,
        printable(rev),
        tw = w.tenant,
        kw = w.kind,
    );
    match changes_of(row).filter(|c| !c.is_empty()) {
        Some(changes) => {
            for (i, c) in changes.iter().enumerate() {
                if i > 0 {
                    line.push_str("; ");
                }
                let _ = write!(
                    line,
                    "{}: {} → {}",
                    printable(&c.field),
                    shown(&c.before),
                    shown(&c.after)
                );
            }
        }
        None => line.push_str(&printable(&row.message)),
    }
    line.trim_end().to_string()
}

#[cfg(test)]
mod tests;
