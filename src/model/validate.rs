//! Parses every file and checks the repository as a whole, collecting every problem at once.

use super::shape::{self, MAX_ENV_BYTES, MAX_ENV_ENTRY_BYTES};
use super::spec::{
    Document, EdgeSpec, KindProbe, NotificationSpec, PlanSpec, TenantSpec, ThemeSpec,
};
use super::text::unsafe_char_problem;
use super::{DesiredState, Diagnostic, Origin, SourceContent, SourceFile, slug_problem};
use serde::de::DeserializeOwned;
use serde_saphyr::{Location, Spanned};
use std::collections::{HashMap, HashSet};
use yaml::{directive_problems, explain, locate, parse, parse_as, split_documents};

/// Files larger than this are refused unread: a repository is input from people.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Parse and check every file. One invalid file blocks the whole revision.
pub fn load(files: &[SourceFile]) -> Result<DesiredState, Vec<Diagnostic>> {
    let mut v = Validator::default();
    for file in files {
        v.file(file);
    }
    v.cross_check();
    if v.diagnostics.is_empty() {
        Ok(v.state)
    } else {
        v.diagnostics.sort();
        v.diagnostics.dedup();
        Err(v.diagnostics)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plan,
    Theme,
    Tenant,
    Notification,
    Edge,
}

impl Kind {
    fn of_dir(path: &str) -> Option<Kind> {
        match path.split('/').next()? {
            "plans" => Some(Kind::Plan),
            "themes" => Some(Kind::Theme),
            "tenants" => Some(Kind::Tenant),
            "notifications" => Some(Kind::Notification),
            "edge" => Some(Kind::Edge),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Plan => "Plan",
            Kind::Theme => "Theme",
            Kind::Tenant => "Tenant",
            Kind::Notification => "Notification",
            Kind::Edge => "Edge",
        }
    }
    fn dir(self) -> &'static str {
        match self {
            Kind::Plan => "plans/",
            Kind::Theme => "themes/",
            Kind::Tenant => "tenants/",
            Kind::Notification => "notifications/",
            Kind::Edge => "edge/",
        }
    }
}

/// A document cut out of a file, with the file line it starts on.
struct Chunk<'a> {
    text: &'a str,
    first_line: u64,
}

#[derive(Default)]
struct Validator {
    state: DesiredState,
    diagnostics: Vec<Diagnostic>,
    /// Tenants and the place of their owner/domain, for uniqueness checks.
    owners: HashMap<String, (String, Origin)>,
    domains: HashMap<String, (String, Origin)>,
    /// References to check once every plan and theme is known.
    refs: Vec<Reference>,
    /// Every plan and theme name written down, valid or not, so a broken plan does not also
    /// make each of its tenants report a missing reference.
    named: HashSet<(&'static str, String)>,
    /// Where each tenant's env entries stand, to point at the one that overfills the environment.
    env_at: HashMap<String, HashMap<String, Origin>>,
    /// Each tenant's removed flags and where, checked against its plan at the end.
    removals: features::Removals,
    /// The PEM files under `edge/` (path → bytes) and where `tls: files` names them.
    edge_pems: HashMap<String, Vec<u8>>,
    edge_cert_at: Vec<edge_certs::CertAt>,
}

struct Reference {
    kind: Kind,
    name: String,
    at: Origin,
}

impl Validator {
    fn error(&mut self, at: &Origin, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            path: at.path.clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
            hint,
        });
    }

    fn file(&mut self, file: &SourceFile) {
        let top = Origin {
            path: file.path.clone(),
            line: 1,
            column: 1,
        };
        let Some(kind) = Kind::of_dir(&file.path) else {
            return;
        };
        if let Some(problem) = unsafe_char_problem(&file.path, &[]) {
            self.error(
                &top,
                format!("file name {problem}"),
                Some("rename the file to plain printable characters".into()),
            );
            return;
        }
        // Certificates and keys for `tls: files`, checked once the edge file is read.
        if let (true, SourceContent::Bytes(bytes)) = (super::is_edge_pem(&file.path), &file.content)
        {
            self.edge_pems.insert(file.path.clone(), bytes.clone());
            return;
        }
        let (message, hint) = match &file.content {
            SourceContent::Bytes(bytes) => return self.file_text(&file.path, kind, bytes, top),
            SourceContent::NonUtf8Name => (
                "file name is not valid UTF-8 (bad bytes shown as \\xNN); it is not read".into(),
                "rename it to a UTF-8 name, e.g. with `git mv`",
            ),
            SourceContent::Submodule => (
                "is a git submodule; tenantctl reads only this repository's own files".into(),
                "copy the files into this repository instead (`git rm` the submodule, then add them)",
            ),
            SourceContent::Symlink => (
                "is a symbolic link; tenantctl does not follow links in the repository".into(),
                "replace the link with the file it points to",
            ),
            SourceContent::TooLarge(size) => (
                format!(
                    "is {size} bytes; files over {MAX_FILE_BYTES} bytes (1 MiB) are refused unread"
                ),
                "split it into smaller files",
            ),
        };
        self.error(&top, message, Some(hint.into()));
    }

    fn file_text(&mut self, path: &str, kind: Kind, bytes: &[u8], top: Origin) {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let before = &bytes[..e.valid_up_to()];
                let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
                let column = before.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
                let at = Origin {
                    line,
                    column,
                    ..top
                };
                self.error(
                    &at,
                    "is not valid UTF-8",
                    Some("save the file as UTF-8".into()),
                );
                return;
            }
        };
        let directive_problems = directive_problems(text);
        if !directive_problems.is_empty() {
            for (line, column, message, hint) in directive_problems {
                let at = Origin {
                    line,
                    column,
                    ..top.clone()
                };
                self.error(&at, message, Some(hint.into()));
            }
            return;
        }
        for chunk in split_documents(text) {
            self.document(path, kind, &chunk);
        }
    }

    fn document(&mut self, path: &str, dir_kind: Kind, chunk: &Chunk<'_>) {
        let at = |loc: Location| locate(path, chunk, loc);
        let start = Origin {
            path: path.to_string(),
            line: chunk.first_line,
            column: 1,
        };
        // Fast path: most documents are valid and of their directory's kind, so parse once with
        // that type; only a failure pays for the probe that explains what is wrong.
        match dir_kind {
            Kind::Plan => {
                if let Some(doc) = parse_as::<PlanSpec>(chunk.text, "Plan") {
                    return self.plan(path, chunk, doc);
                }
            }
            Kind::Theme => {
                if let Some(doc) = parse_as::<ThemeSpec>(chunk.text, "Theme") {
                    return self.theme(path, chunk, doc);
                }
            }
            Kind::Tenant => {
                if let Some(doc) = parse_as::<TenantSpec>(chunk.text, "Tenant") {
                    return self.tenant(path, chunk, doc);
                }
            }
            Kind::Notification => {
                if let Some(doc) = parse_as::<NotificationSpec>(chunk.text, "Notification") {
                    return self.notification(path, chunk, doc);
                }
            }
            Kind::Edge => {
                if let Some(doc) = parse_as::<EdgeSpec>(chunk.text, "Edge") {
                    return self.edge(path, chunk, doc);
                }
            }
        }
        let probe: KindProbe = match parse(chunk.text) {
            Ok(p) => p,
            Err(e) => {
                self.parse_error(path, chunk, &e, &start);
                return;
            }
        };
        let Some(kind) = probe.kind else {
            self.error(
                &start,
                "document has no `kind`",
                Some(format!(
                    "add `kind: {}` as the first line of the document",
                    dir_kind.name()
                )),
            );
            return;
        };
        let kind_at = at(kind.referenced);
        let parsed = match kind.value.as_str() {
            "Plan" => Kind::Plan,
            "Theme" => Kind::Theme,
            "Tenant" => Kind::Tenant,
            "Notification" => Kind::Notification,
            "Edge" => Kind::Edge,
            other => {
                self.error(
                    &kind_at,
                    format!("unknown kind `{other}`"),
                    Some(format!(
                        "files under {} hold `kind: {}`",
                        dir_kind.dir(),
                        dir_kind.name()
                    )),
                );
                return;
            }
        };
        if parsed != dir_kind {
            self.error(
                &kind_at,
                format!(
                    "a {} does not belong under {}",
                    parsed.name(),
                    dir_kind.dir()
                ),
                Some(format!("move this document to {}", parsed.dir())),
            );
            return;
        }
        if let Some(serde_json::Value::String(name)) = &probe.name {
            self.named.insert((parsed.name(), name.clone()));
        }
        match parsed {
            Kind::Plan => {
                if let Some(doc) = self.typed::<PlanSpec>(path, chunk, &start) {
                    self.plan(path, chunk, doc);
                }
            }
            Kind::Theme => {
                if let Some(doc) = self.typed::<ThemeSpec>(path, chunk, &start) {
                    self.theme(path, chunk, doc);
                }
            }
            Kind::Tenant => {
                if let Some(doc) = self.typed::<TenantSpec>(path, chunk, &start) {
                    self.tenant(path, chunk, doc);
                }
            }
            Kind::Notification => {
                if let Some(doc) = self.typed::<NotificationSpec>(path, chunk, &start) {
                    self.notification(path, chunk, doc);
                }
            }
            Kind::Edge => {
                if let Some(doc) = self.typed::<EdgeSpec>(path, chunk, &start) {
                    self.edge(path, chunk, doc);
                }
            }
        }
    }

    fn typed<S: DeserializeOwned>(
        &mut self,
        path: &str,
        chunk: &Chunk<'_>,
        start: &Origin,
    ) -> Option<Document<S>> {
        match parse::<Document<S>>(chunk.text) {
            Ok(doc) => Some(doc),
            Err(e) => {
                self.parse_error(path, chunk, &e, start);
                None
            }
        }
    }

    fn parse_error(
        &mut self,
        path: &str,
        chunk: &Chunk<'_>,
        e: &serde_saphyr::Error,
        start: &Origin,
    ) {
        let at = match e.location() {
            Some(loc) if loc.line() > 0 => locate(path, chunk, loc),
            _ => start.clone(),
        };
        let (message, hint) = explain(&e.to_string());
        self.error(&at, message, hint);
    }

    /// Checks a document's name and that no other document of the kind has it.
    fn name(
        &mut self,
        kind: Kind,
        path: &str,
        chunk: &Chunk<'_>,
        name: &Spanned<String>,
        existing: impl Fn(&DesiredState) -> Option<Origin>,
    ) -> Option<Origin> {
        let origin = locate(path, chunk, name.referenced);
        self.named.insert((kind.name(), name.value.clone()));
        if let Some(problem) = slug_problem(&name.value) {
            self.error(
                &origin,
                format!("invalid {} name: {problem}", kind.name().to_lowercase()),
                Some("names are DNS labels: lowercase letters, digits and `-`, 1 to 63 characters, e.g. `acme-corp`".into()),
            );
            return None;
        }
        if let Some(first) = existing(&self.state) {
            self.error(
                &origin,
                format!(
                    "{} `{}` is defined twice; first at {first}",
                    kind.name(),
                    name.value
                ),
                Some("each name may be defined once: remove or rename one of the two".into()),
            );
            return None;
        }
        Some(origin)
    }

    /// Checks that hold across files: references between documents, each tenant's environment.
    fn cross_check(&mut self) {
        let refs = std::mem::take(&mut self.refs);
        // Suggest from every name written down, valid or not: a typo is a typo either way.
        let known_of = |kind: Kind| -> Vec<String> {
            let mut names: Vec<String> = self
                .named
                .iter()
                .filter(|(k, _)| *k == kind.name())
                .map(|(_, n)| n.clone())
                .collect();
            names.sort();
            names
        };
        let (plans, themes) = (known_of(Kind::Plan), known_of(Kind::Theme));
        let (plans_listed, themes_listed) = (listing(&plans), listing(&themes));
        let mut suggestions = Suggestions::default();
        for r in refs {
            if self.named.contains(&(r.kind.name(), r.name.clone())) {
                continue;
            }
            let (known, listed) = match r.kind {
                Kind::Plan => (&plans, &plans_listed),
                _ => (&themes, &themes_listed),
            };
            let kind = r.kind.name().to_lowercase();
            let hint = match suggestions.closest(&r.name, known) {
                Some(best) => format!("did you mean `{best}`? known {kind}s: {listed}"),
                None if known.is_empty() => {
                    format!("no {kind} is defined; add one under {}", r.kind.dir())
                }
                None => format!("known {kind}s: {listed}"),
            };
            self.error(
                &r.at,
                format!("{kind} `{}` does not exist", r.name),
                Some(hint),
            );
        }
        self.check_environments();
        self.check_feature_removals();
        self.check_edge_hosts();
        self.check_edge_certificates();
    }

    /// Every tenant's whole environment (derived variables included) must fit what the kernel
    /// hands a new process; reported at the tenant's largest own variable, or else its name.
    fn check_environments(&mut self) {
        let mut problems = Vec::new();
        for tenant in self.state.tenants.values() {
            let (Some(plan), Some(theme)) = (
                self.state.plans.get(&tenant.plan),
                self.state.themes.get(&tenant.theme),
            ) else {
                continue;
            };
            let env = crate::plan::container::desired_env(tenant, plan, theme);
            // The container also gets the API key's digest: a name and 64 hex digits.
            let key_digest =
                shape::env_entry_bytes(crate::plan::container::API_KEY_ENV, &"0".repeat(64));
            let total: usize = key_digest
                + env
                    .iter()
                    .map(|(k, v)| shape::env_entry_bytes(k, v))
                    .sum::<usize>();
            let largest = env
                .iter()
                .map(|(k, v)| (shape::env_entry_bytes(k, v), k))
                .max();
            let Some((largest_bytes, largest_key)) = largest else {
                continue;
            };
            if total <= MAX_ENV_BYTES && largest_bytes <= MAX_ENV_ENTRY_BYTES {
                continue;
            }
            let at = self
                .env_at
                .get(&tenant.slug)
                .and_then(|own| own.get(largest_key))
                .unwrap_or(&tenant.origin)
                .clone();
            problems.push((
                at,
                format!(
                    "the environment of tenant `{}` would be {total} bytes (largest: {largest_key}, {largest_bytes} bytes); at most {MAX_ENV_BYTES} bytes (64 KiB) in all and {MAX_ENV_ENTRY_BYTES} (32 KiB) per variable",
                    tenant.slug
                ),
            ));
        }
        for (at, message) in problems {
            self.error(
                &at,
                message,
                Some("the environment holds the tenant's env, its plan's features and limits and its theme's config: shorten them, or keep large data in the image or the data volume".into()),
            );
        }
    }
}

/// Names as a hint lists them: the first few, then how many more, so a hint stays one line.
fn listing(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// Did-you-mean for unknown references, with a bounded amount of work: answers are remembered
/// per name and, once the budget is spent, further references get the plain list.
#[derive(Default)]
struct Suggestions {
    memo: HashMap<String, Option<String>>,
    cells: usize,
}

impl Suggestions {
    /// Edit-distance cells (one comparison of two characters) spent on suggestions at most.
    const BUDGET: usize = 20_000_000;

    fn closest(&mut self, word: &str, known: &[String]) -> Option<String> {
        if let Some(answer) = self.memo.get(word) {
            return answer.clone();
        }
        // A name is a slug of at most 63 characters; anything longer is no typo of one.
        if word.len() > 64 || self.cells > Self::BUDGET {
            return None;
        }
        let answer = closest(word, known.iter().map(String::as_str)).map(str::to_string);
        self.cells += known.len() * word.len().max(1) * 64;
        self.memo.insert(word.to_string(), answer.clone());
        answer
    }
}

const RESERVED_ENV_PREFIXES: [&str; 4] = ["TENANT_", "PLAN_", "THEME_", "SITE_"];

const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The candidate nearest to `word` by edit distance, if near enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        // The distance is at least the difference in length: skip the ones too far apart.
        .filter(|c| word.len().abs_diff(c.len()) <= 2.max(c.len() / 3) && c.len() <= 64)
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn is_version(v: &str) -> bool {
    // Pre-release and build parts are SemVer identifiers: ASCII letters, digits, `-` and `.`.
    let identifiers = v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    identifiers
        && parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c.is_control())
        && domain.contains('.')
        && is_hostname(&domain.to_lowercase())
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253 && s.contains('.') && s.split('.').all(|label| slug_problem(label).is_none())
}

mod catalog;
mod edge;
mod edge_certs;
pub mod features;
mod notification;
mod tenant;
mod yaml;

#[cfg(test)]
mod tests;
