//! The table filter's small grammar: `health=degraded plan=pro acme`.
//!
//! Terms are separated by spaces and all must match. `key=value` compares a column (a value list
//! `health=degraded,missing` matches any of them); `key!=value` excludes; a bare word matches any
//! tenant whose slug, plan, theme or URL contains it. Matching ignores case; a column's value
//! matches by prefix, so `plan=pro` finds `professional`.

use super::data::BoardRow;

/// Columns a term can name.
pub const KEYS: &[&str] = &["slug", "plan", "theme", "state", "sync", "health"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Field {
        key: &'static str,
        values: Vec<String>,
        negate: bool,
    },
    Word(String),
}

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    terms: Vec<Term>,
}

impl Filter {
    /// Parses `text`, or says which term is wrong and what would be right.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                terms.push(Term::Word(word.to_lowercase()));
                continue;
            };
            let (key, negate) = match key.strip_suffix('!') {
                Some(k) => (k, true),
                None => (key, false),
            };
            let key = key.to_lowercase();
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                return Err(format!(
                    "`{word}`: unknown column `{key}`; use one of {}",
                    KEYS.join(", ")
                ));
            };
            let values: Vec<String> = value
                .split(',')
                .filter(|v| !v.is_empty())
                .map(normalise)
                .collect();
            if values.is_empty() {
                return Err(format!("`{word}`: give a value after `=`, e.g. `{key}=x`"));
            }
            terms.push(Term::Field {
                key: known,
                values,
                negate,
            });
        }
        Ok(Filter { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, row: &BoardRow) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Word(w) => [
                Some(row.slug.as_str()),
                row.plan.as_deref(),
                row.theme.as_deref(),
                row.url.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|f| f.to_lowercase().contains(w.as_str())),
            Term::Field {
                key,
                values,
                negate,
            } => {
                let field = normalise(&field(row, key));
                let hit = values.iter().any(|v| field.starts_with(v.as_str()));
                hit != *negate
            }
        })
    }
}

/// Lowercase without `-` and `_`, so `outofsync`, `out-of-sync` and `OutOfSync` are one value.
fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn field(row: &BoardRow, key: &str) -> String {
    match key {
        "slug" => row.slug.clone(),
        "plan" => row.plan.clone().unwrap_or_default(),
        "theme" => row.theme.clone().unwrap_or_default(),
        "state" => row.state.clone().unwrap_or_default(),
        "sync" => row.sync.map(|s| s.as_str()).unwrap_or("").to_string(),
        "health" => row.health.map(|h| h.as_str()).unwrap_or("").to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Health, SyncStatus};

    fn row(slug: &str, plan: &str, health: Health, sync: SyncStatus) -> BoardRow {
        BoardRow {
            slug: slug.into(),
            plan: Some(plan.into()),
            theme: Some("modern".into()),
            state: Some("active".into()),
            health: Some(health),
            sync: Some(sync),
            ..BoardRow::default()
        }
    }

    #[test]
    fn terms_combine_with_and_and_values_with_or() {
        let rows = [
            row("acme", "professional", Health::Degraded, SyncStatus::Synced),
            row("acme-eu", "starter", Health::Degraded, SyncStatus::Synced),
            row(
                "globex",
                "professional",
                Health::Healthy,
                SyncStatus::OutOfSync,
            ),
            row(
                "initech",
                "professional",
                Health::Missing,
                SyncStatus::OutOfSync,
            ),
        ];
        let hits = |f: &str| -> Vec<&str> {
            let f = Filter::parse(f).unwrap();
            rows.iter()
                .filter(|r| f.matches(r))
                .map(|r| r.slug.as_str())
                .collect()
        };
        assert_eq!(hits("health=degraded plan=pro acme"), ["acme"]);
        assert_eq!(hits("health=degraded"), ["acme", "acme-eu"]);
        assert_eq!(
            hits("health=degraded,missing plan=pro"),
            ["acme", "initech"]
        );
        assert_eq!(hits("sync=out-of-sync"), ["globex", "initech"]);
        assert_eq!(hits("health!=healthy plan=PRO"), ["acme", "initech"]);
        assert_eq!(hits("ACME"), ["acme", "acme-eu"]);
        assert_eq!(hits("starter"), ["acme-eu"]);
        assert_eq!(hits(""), ["acme", "acme-eu", "globex", "initech"]);
        assert_eq!(hits("nobody"), Vec::<&str>::new());
    }

    #[test]
    fn bad_terms_say_what_is_wrong() {
        let e = Filter::parse("healt=degraded").unwrap_err();
        assert!(e.contains("unknown column `healt`"), "{e}");
        assert!(e.contains("health"), "{e}");
        let e = Filter::parse("plan=").unwrap_err();
        assert!(e.contains("give a value"), "{e}");
    }
}
