//! Reading a state file's YAML: documents split at `---`, parsed with serde-saphyr's budgets,
//! directives checked, and parser errors located and explained.

use super::{Chunk, closest};
use crate::model::spec::Document;
use crate::model::{MAX_FILE_BYTES, Origin};
use serde::de::DeserializeOwned;
use serde_saphyr::Location;

pub(super) fn parse_as<S: DeserializeOwned>(text: &str, kind: &str) -> Option<Document<S>> {
    parse::<Document<S>>(text).ok().filter(|d| d.kind == kind)
}

pub(super) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// Tight budgets: a tenant file is small, so anything that expands far beyond that is refused fast.
pub(super) fn options() -> serde_saphyr::options::Options {
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_events = 200_000;
    budget.max_nodes = 100_000;
    budget.max_depth = 32;
    budget.max_total_scalar_bytes = 2 * MAX_FILE_BYTES as usize;
    budget.max_documents = 1;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 10_000;
    alias_limits.max_replay_stack_depth = 16;
    let mut o = serde_saphyr::options::Options::default();
    o.budget = Some(budget);
    o.alias_limits = alias_limits;
    o.with_snippet = false;
    o
}

/// Maps a location inside a document to the file.
pub(super) fn locate(path: &str, chunk: &Chunk<'_>, loc: Location) -> Origin {
    if loc.line() == 0 {
        return Origin {
            path: path.to_string(),
            line: chunk.first_line,
            column: 1,
        };
    }
    Origin {
        path: path.to_string(),
        line: loc.line() + chunk.first_line - 1,
        column: loc.column(),
    }
}

/// Cuts a file at its `---` / `...` markers (they are markers wherever they start a line, even
/// inside block scalars), keeping each piece's first line so errors point into the file.
pub(super) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let (mut start_byte, mut start_line, mut offset) = (0, 1u64, 0);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = ["---", "..."].into_iter().find(|m| {
            bare.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        });
        if let Some(m) = marker {
            chunks.push(Chunk {
                text: &text[start_byte..offset],
                first_line: start_line,
            });
            // `--- {inline: doc}` keeps its line: a leading marker still makes one document.
            let inline =
                m == "---" && !bare[3..].trim().is_empty() && !bare[3..].trim().starts_with('#');
            if inline {
                (start_byte, start_line) = (offset, i as u64 + 1);
            } else {
                (start_byte, start_line) = (offset + line.len(), i as u64 + 2);
            }
        }
        offset += line.len();
    }
    chunks.push(Chunk {
        text: &text[start_byte..],
        first_line: start_line,
    });
    chunks.retain(|c| has_content(c.text));
    chunks
}

/// YAML directives (`%` at the start of a line): only `%YAML 1.1`/`%YAML 1.2` and `%TAG`, each
/// followed by a `---` line. Returns (line, column, message, hint) for each that is not.
pub(super) fn directive_problems(text: &str) -> Vec<(u64, u64, String, &'static str)> {
    const HINT: &str = "tenantctl reads YAML 1.2: write `%YAML 1.2` and a `---` line, or leave directives out (a line may not start with `%` otherwise)";
    let mut problems = Vec::new();
    // The directive still waiting for its `---`, and whether `%YAML` was already given for it.
    let (mut pending, mut version_seen) = (None::<u64>, false);
    for (i, line) in text.lines().enumerate() {
        let number = i as u64 + 1;
        let bare = match line.find(" #").or_else(|| line.find("\t#")) {
            Some(end) => &line[..end],
            None => line,
        };
        let Some(directive) = bare.strip_prefix('%') else {
            let t = line.trim();
            if line.starts_with("---") || line.starts_with("...") {
                if line.starts_with("---") {
                    pending = None;
                }
                version_seen = false;
            } else if let Some(at) = pending
                && !t.is_empty()
                && !t.starts_with('#')
            {
                problems.push((
                    at,
                    1,
                    "a directive must be followed by a `---` line before the document".to_string(),
                    HINT,
                ));
                pending = None;
            }
            continue;
        };
        pending.get_or_insert(number);
        let mut words = directive.split_whitespace();
        let name = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let column_of = |word: &str| -> u64 {
            let offset = word.as_ptr() as usize - line.as_ptr() as usize;
            line[..offset].chars().count() as u64 + 1
        };
        match name {
            "" => problems.push((
                number,
                1,
                "a line starting with `%` is a YAML directive, and this one has no name"
                    .to_string(),
                HINT,
            )),
            "YAML" => match args.as_slice() {
                _ if version_seen => problems.push((
                    number,
                    1,
                    "`%YAML` is given twice for one document".to_string(),
                    HINT,
                )),
                ["1.1" | "1.2"] => version_seen = true,
                [version] => problems.push((
                    number,
                    column_of(version),
                    format!("YAML version `{version}` is not supported"),
                    HINT,
                )),
                _ => problems.push((
                    number,
                    1,
                    "`%YAML` takes exactly one version, e.g. `%YAML 1.2`".to_string(),
                    HINT,
                )),
            },
            "TAG" if args.len() == 2 => {}
            "TAG" => problems.push((
                number,
                1,
                "`%TAG` takes a handle and a prefix".to_string(),
                HINT,
            )),
            other => problems.push((
                number,
                1,
                format!("unknown YAML directive `%{other}`"),
                HINT,
            )),
        }
    }
    if let Some(at) = pending {
        problems.push((
            at,
            1,
            "a directive must be followed by a `---` line before the document".to_string(),
            HINT,
        ));
    }
    problems
}

fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
    })
}

/// Turns the parser's words into a message and a hint for people.
pub(super) fn explain(raw: &str) -> (String, Option<String>) {
    let msg = match raw.rfind(" at line ") {
        Some(i) if raw[i..].contains(", column ") => raw[..i].to_string(),
        _ => raw.to_string(),
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let options: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|s| s.trim_matches('`'))
            .filter(|s| !s.is_empty())
            .collect();
        let hint = match closest(field, options.iter().copied()) {
            Some(best) => format!(
                "did you mean `{best}`? allowed here: {}",
                options.join(", ")
            ),
            None => format!("allowed here: {}", options.join(", ")),
        };
        return (format!("unknown field `{field}`"), Some(hint));
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return (
            format!("key `{key}` appears twice in this mapping"),
            Some("remove one of them".into()),
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (
            format!("missing field `{field}`"),
            Some(format!("add `{field}:` here")),
        );
    }
    if let Some(ty) = msg.strip_prefix("invalid ") {
        let wanted = match ty {
            "u8" | "u16" | "u32" | "u64" => Some("a whole number, 0 or more"),
            "i8" | "i16" | "i32" | "i64" => Some("a whole number"),
            "floating point" => Some("a number"),
            "boolean" | "bool" => Some("true or false"),
            _ => None,
        };
        if let Some(wanted) = wanted {
            return (format!("expected {wanted} here"), None);
        }
    }
    if msg.starts_with("unknown variant") {
        return (msg, None);
    }
    if msg.contains("budget")
        || msg.contains("alias")
        || msg.contains("limit exceeded")
        || msg.contains("too many")
    {
        return (
            format!("refused: {msg}"),
            Some("the document expands far beyond its size (YAML aliases or nesting); write the values out plainly".into()),
        );
    }
    if msg.contains("expected mapping") {
        return (
            format!("{msg}: a document is a mapping with `kind`, `name` and `spec`"),
            None,
        );
    }
    (msg, None)
}
