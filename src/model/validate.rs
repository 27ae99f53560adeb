//! Parses every file and checks the repository as a whole, collecting every problem at once.

use super::shape::{self, MAX_ENV_BYTES, MAX_ENV_ENTRY_BYTES, MAX_TRIAL_DAYS};
use super::spec::{
    Document, EdgeSpec, KindProbe, NotificationSpec, PlanSpec, TenantSpec, ThemeSpec,
};
use super::text::unsafe_char_problem;
use super::{
    DesiredState, Diagnostic, Notification, NotificationFormat, Origin, Plan, Quotas, Resources,
    SourceContent, SourceFile, Tenant, Theme, quantity, slug_problem,
};
use serde::de::DeserializeOwned;
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, HashMap, HashSet};
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

    /// A `Notification`: where to POST (an `http://` or `https://` URL), which event kinds
    /// (exact or globs, as `events --kind` reads them), the optional environment variable whose
    /// value signs each body, and the payload's format.
    fn notification(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<NotificationSpec>) {
        let name = doc.name.value.clone();
        let origin = self.name(Kind::Notification, path, chunk, &doc.name, |s| {
            s.notifications.get(&name).map(|n| n.origin.clone())
        });
        let s = doc.spec;
        let at = |loc: Location| locate(path, chunk, loc);
        let before = self.diagnostics.len();
        let url = s.url.value.trim().to_string();
        if let Err(problem) = crate::notify::check_url(&url) {
            self.error(
                &at(s.url.referenced),
                format!("url `{}` {problem}", super::printable(&url)),
                Some("write the receiver's address, e.g. http://127.0.0.1:9000/hooks or https://hooks.slack.com/services/…".into()),
            );
        }
        if s.events.is_empty() {
            self.error(
                &origin.clone().unwrap_or_else(|| at(doc.name.referenced)),
                "events is empty: this notification would never be sent",
                Some("list event kinds or globs, e.g. events: [tenant.failed, tenant.degraded, drift]".into()),
            );
        }
        let mut events = Vec::new();
        for e in &s.events {
            match crate::notify::check_pattern(&e.value) {
                Ok(()) => {
                    if !events.contains(&e.value) {
                        events.push(e.value.clone());
                    }
                }
                Err(problem) => self.error(
                    &at(e.referenced),
                    format!("event `{}` {problem}", super::printable(&e.value)),
                    Some(format!(
                        "write an event kind or a glob of one (`*` any run, `?` one character); kinds: {}",
                        crate::notify::KNOWN_KINDS.join(", ")
                    )),
                ),
            }
        }
        let secret_env = match &s.secret_env {
            None => None,
            Some(v) => {
                let ok = v
                    .value
                    .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && v.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    self.error(
                        &at(v.referenced),
                        format!(
                            "secretEnv `{}` is not an environment variable name",
                            super::printable(&v.value)
                        ),
                        Some("name the variable that holds the secret (letters, digits and `_`), e.g. secretEnv: OPS_HOOK_SECRET; never the secret itself".into()),
                    );
                }
                Some(v.value.clone())
            }
        };
        let format = match s.format.as_ref().map(|f| f.value.as_str()) {
            None | Some("json") => NotificationFormat::Json,
            Some("slack") => NotificationFormat::Slack,
            Some(other) => {
                let f = s
                    .format
                    .as_ref()
                    .map_or(Location::UNKNOWN, |f| f.referenced);
                self.error(
                    &at(f),
                    format!("format `{}` is not known", super::printable(other)),
                    Some("write `json` (the default) or `slack`".into()),
                );
                NotificationFormat::Json
            }
        };
        let Some(origin) = origin else { return };
        if self.diagnostics.len() != before {
            return;
        }
        self.state.notifications.insert(
            name.clone(),
            Notification {
                name,
                origin,
                url,
                events,
                secret_env,
                format,
            },
        );
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

    fn plan(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<PlanSpec>) {
        let name = doc.name.value.clone();
        let origin = self.name(Kind::Plan, path, chunk, &doc.name, |s| {
            s.plans.get(&name).map(|p| p.origin.clone())
        });
        let s = doc.spec;
        let at = |loc: Location| locate(path, chunk, loc);
        let before = self.diagnostics.len();

        let display_name = self.display_name(&s.display_name, path, chunk);
        let amount = s.price.amount.value;
        let cents = (amount * 100.0).round();
        if !amount.is_finite()
            || amount < 0.0
            || (cents / 100.0 - amount).abs() > 1e-9
            || cents > 1e13
        {
            self.error(
                &at(s.price.amount.referenced),
                format!(
                    "price amount {amount} is not a non-negative amount with at most two decimals"
                ),
                Some("write it like 79.99".into()),
            );
        }
        let currency = s.price.currency.value.clone();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            self.error(
                &at(s.price.currency.referenced),
                format!("currency `{currency}` is not a three-letter ISO 4217 code"),
                Some("write it in capitals, e.g. USD or EUR".into()),
            );
        }
        let cpus = s.resources.cpus.value;
        if !(cpus.is_finite() && (0.01..=1024.0).contains(&cpus)) {
            self.error(
                &at(s.resources.cpus.referenced),
                format!("cpus {cpus} is out of range"),
                Some("give a number of CPUs from 0.01 to 1024, e.g. 0.5".into()),
            );
        }
        let memory = self.quantity(&s.resources.memory, path, chunk, "memory");
        if let Some(m) = memory
            && m < 6 * 1024 * 1024
        {
            self.error(
                &at(s.resources.memory.referenced),
                format!(
                    "memory {} is below the engine's minimum of 6Mi",
                    quantity::format_bytes(m)
                ),
                Some("give at least 6Mi; sites usually want 128Mi or more".into()),
            );
        }
        let storage = s
            .resources
            .storage
            .as_ref()
            .and_then(|q| self.quantity(q, path, chunk, "storage"));
        let pids = s.resources.pids.as_ref().map(|p| p.value).unwrap_or(512);
        if let Some(p) = &s.resources.pids
            && p.value < 8
        {
            self.error(
                &at(p.referenced),
                format!("pids {} is too low for a process to start", p.value),
                Some("give at least 8; 256 suits most sites".into()),
            );
        }
        if let Some(rl) = &s.rate_limit
            && rl.requests_per_minute.value == 0
        {
            self.error(
                &at(rl.requests_per_minute.referenced),
                "requestsPerMinute is 0, which would refuse every request",
                Some("give a positive number, or leave rateLimit out for no limit".into()),
            );
        }
        let (mut reserved_cpus, mut reserved_memory) = (None, None);
        if let Some(r) = &s.resources.reservations {
            if let Some(c) = &r.cpus {
                if c.value.is_finite() && c.value > 0.0 && c.value <= cpus {
                    reserved_cpus = Some((c.value * 1e9).round() as i64);
                } else {
                    self.error(
                        &at(c.referenced),
                        format!("reserved cpus {} must be above 0 and at most the limit ({cpus})", c.value),
                        Some("a reservation is what the scheduler sets aside; it cannot exceed the cap".into()),
                    );
                }
            }
            if let Some(m) = &r.memory {
                let q = self.quantity(m, path, chunk, "reservations.memory");
                match (q, memory) {
                    (Some(q), Some(limit)) if q > limit => self.error(
                        &at(m.referenced),
                        format!(
                            "reserved memory {} is above the memory limit {}",
                            quantity::format_bytes(q),
                            quantity::format_bytes(limit)
                        ),
                        Some("a reservation is what the scheduler sets aside; it cannot exceed the cap".into()),
                    ),
                    (q, _) => reserved_memory = q,
                }
            }
        }
        let replicas = s.replicas.as_ref().map_or(1, |r| r.value);
        if let Some(r) = &s.replicas
            && !(1..=crate::model::MAX_REPLICAS).contains(&r.value)
        {
            self.error(
                &at(r.referenced),
                format!(
                    "replicas {} is out of range (1 to {})",
                    r.value,
                    crate::model::MAX_REPLICAS
                ),
                Some("each replica is a swarm task in the tenant's /28 network; suspend a tenant with `state: suspended`, not replicas: 0".into()),
            );
        }
        let trial_days = s.trial_days.as_ref().map_or(0, |t| t.value);
        if let Some(t) = &s.trial_days
            && t.value > MAX_TRIAL_DAYS
        {
            self.error(
                &at(t.referenced),
                format!(
                    "trialDays {} is more than {MAX_TRIAL_DAYS} (ten years)",
                    t.value
                ),
                Some(format!("give 0 to {MAX_TRIAL_DAYS} days; 0 means no trial")),
            );
        }
        let quotas = [
            &s.quotas.api_calls_per_month,
            &s.quotas.ai_interactions_per_month,
            &s.quotas.users,
        ];
        for q in quotas.into_iter().flatten() {
            if i64::try_from(q.value).is_err() {
                self.error(
                    &at(q.referenced),
                    format!(
                        "quota {} does not fit the database (at most {})",
                        q.value,
                        i64::MAX
                    ),
                    Some("give a smaller number, or leave the quota out for no limit".into()),
                );
            }
        }
        let features = self.features(&s.features, path, chunk);
        if self.diagnostics.len() != before {
            return;
        }
        let (Some(origin), Some(memory)) = (origin, memory) else {
            return;
        };
        self.state.plans.insert(
            name.clone(),
            Plan {
                name,
                origin,
                display_name,
                price_cents: cents as i64,
                currency,
                cycle: s.price.cycle,
                trial_days,
                resources: Resources {
                    nano_cpus: (cpus * 1e9).round() as i64,
                    memory_bytes: memory,
                    pids,
                    storage_bytes: storage,
                    reserved_nano_cpus: reserved_cpus,
                    reserved_memory_bytes: reserved_memory,
                },
                quotas: Quotas {
                    api_calls_per_month: s.quotas.api_calls_per_month.map(|q| q.value),
                    ai_interactions_per_month: s.quotas.ai_interactions_per_month.map(|q| q.value),
                    users: s.quotas.users.map(|q| q.value),
                },
                rate_limit_rpm: s.rate_limit.map(|r| r.requests_per_minute.value),
                features,
                replicas,
            },
        );
    }

    fn theme(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<ThemeSpec>) {
        let name = doc.name.value.clone();
        let origin = self.name(Kind::Theme, path, chunk, &doc.name, |s| {
            s.themes.get(&name).map(|t| t.origin.clone())
        });
        let s = doc.spec;
        let at = |loc: Location| locate(path, chunk, loc);
        let before = self.diagnostics.len();
        let display_name = self.display_name(&s.display_name, path, chunk);
        if !is_version(&s.version.value) {
            self.error(
                &at(s.version.referenced),
                format!("version `{}` is not a semantic version", s.version.value),
                Some("write MAJOR.MINOR.PATCH, e.g. 1.2.0".into()),
            );
        }
        if let Some(image) = &s.image
            && let Some(problem) = shape::image_reference_problem(&image.value)
        {
            self.error(
                &at(image.referenced),
                format!("image `{}` is not an image reference: {problem}", image.value),
                Some("write [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST] in lowercase, e.g. registry.example/storefront:4.2, or leave image out for the built-in site".into()),
            );
        }
        if s.port.value == 0 {
            self.error(
                &at(s.port.referenced),
                "port 0 is not a port",
                Some("give the container port the site listens on, 1 to 65535".into()),
            );
        }
        let hp = &s.health.path;
        if let Some(problem) = shape::health_path_problem(&hp.value) {
            self.error(
                &at(hp.referenced),
                format!("health path `{}` {problem}", hp.value),
                Some(format!("write an absolute URL path of letters, digits and `/-._~:@!+,=` (or %XX), at most {} bytes, e.g. /health", shape::MAX_HEALTH_PATH_BYTES)),
            );
        }
        let iv = &s.health.interval_seconds;
        if iv.value == 0 || iv.value > 3600 {
            self.error(
                &at(iv.referenced),
                format!("health intervalSeconds {} is out of range", iv.value),
                Some("give 1 to 3600 seconds".into()),
            );
        }
        let mut config = BTreeMap::new();
        for (key, value) in &s.config {
            let key_ok = key.starts_with(|c: char| c.is_ascii_lowercase())
                && key.chars().all(|c| c.is_ascii_alphanumeric());
            if !key_ok {
                self.error(
                    &at(value.referenced),
                    format!("config key `{key}` must be camelCase letters and digits"),
                    Some("it becomes an environment variable THEME_<KEY>, e.g. primaryColor → THEME_PRIMARY_COLOR".into()),
                );
            }
            if let crate::model::ConfigScalar::String(text) = &value.value {
                self.env_value(&format!("config `{key}`"), key, text, &at(value.referenced));
                let colour = key == "color" || key.ends_with("Color") || key.ends_with("Colour");
                if colour && let Some(problem) = shape::color_problem(text) {
                    self.error(
                        &at(value.referenced),
                        format!("config `{key}`: {problem}"),
                        Some("write #rgb, #rrggbb (or with alpha), rgb()/hsl(), or a CSS colour name such as teal".into()),
                    );
                }
            }
            config.insert(key.clone(), value.value.clone());
        }
        let mut capabilities = Vec::new();
        for cap in &s.capabilities {
            let c = cap.value.trim_start_matches("CAP_").to_string();
            if !CAPABILITIES.contains(&c.as_str()) {
                self.error(
                    &at(cap.referenced),
                    format!("`{}` is not a Linux capability", cap.value),
                    Some(format!(
                        "known capabilities include {}",
                        CAPABILITIES[..6].join(", ")
                    )),
                );
            } else if !capabilities.contains(&c) {
                capabilities.push(c);
            }
        }
        capabilities.sort();
        let publish_address = match &s.publish_address {
            None => "127.0.0.1".to_string(),
            Some(a) => match shape::publish_address(&a.value) {
                Ok(canonical) => canonical,
                Err(why) => {
                    self.error(
                        &at(a.referenced),
                        format!("publishAddress {why}"),
                        Some("leave it out to publish on 127.0.0.1, give a unicast address of this host, or 0.0.0.0 for every address (swarm's routing mesh)".into()),
                    );
                    a.value.clone()
                }
            },
        };
        if self.diagnostics.len() != before {
            return;
        }
        let Some(origin) = origin else { return };
        self.state.themes.insert(
            name.clone(),
            Theme {
                name,
                origin,
                display_name,
                version: s.version.value,
                image: s.image.map(|i| i.value),
                port: s.port.value,
                health_path: s.health.path.value,
                health_interval_seconds: s.health.interval_seconds.value,
                config,
                capabilities,
                publish_address,
            },
        );
    }

    fn tenant(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<TenantSpec>) {
        let slug = doc.name.value.clone();
        let origin = self.name(Kind::Tenant, path, chunk, &doc.name, |s| {
            s.tenants.get(&slug).map(|t| t.origin.clone())
        });
        let s = doc.spec;
        let at = |loc: Location| locate(path, chunk, loc);
        let before = self.diagnostics.len();
        let display_name = self.display_name(&s.display_name, path, chunk);

        let owner = s.owner.value.trim().to_string();
        let owner_at = at(s.owner.referenced);
        if let Some(problem) = unsafe_char_problem(&owner, &[]) {
            self.error(
                &owner_at,
                format!("owner {problem}"),
                Some("write a plain email address, e.g. ops@acme.example".into()),
            );
        } else if !is_email(&owner) {
            self.error(
                &owner_at,
                format!("owner `{owner}` is not an email address"),
                Some("e.g. ops@acme.example".into()),
            );
        } else if let Some((other, first)) = self.owners.get(&owner.to_lowercase()) {
            let (other, first) = (other.clone(), first.clone());
            self.error(
                &owner_at,
                format!("owner `{owner}` already owns tenant `{other}` ({first})"),
                Some("an owner email is unique across tenants".into()),
            );
        } else {
            self.owners
                .insert(owner.to_lowercase(), (slug.clone(), owner_at.clone()));
        }

        let domain = match &s.domain {
            None => None,
            Some(d) => {
                let value = d.value.trim().trim_end_matches('.').to_lowercase();
                let d_at = at(d.referenced);
                if !is_hostname(&value) {
                    self.error(
                        &d_at,
                        format!("domain `{}` is not a valid host name", d.value),
                        Some("write a fully qualified name like shop.acme.example, without scheme or path".into()),
                    );
                } else if let Some((other, first)) = self.domains.get(&value) {
                    let (other, first) = (other.clone(), first.clone());
                    self.error(
                        &d_at,
                        format!("domain `{value}` is already used by tenant `{other}` ({first})"),
                        Some("a domain is unique across tenants".into()),
                    );
                } else {
                    self.domains.insert(value.clone(), (slug.clone(), d_at));
                }
                Some(value)
            }
        };

        self.refs.push(Reference {
            kind: Kind::Plan,
            name: s.plan.value.clone(),
            at: at(s.plan.referenced),
        });
        self.refs.push(Reference {
            kind: Kind::Theme,
            name: s.theme.value.clone(),
            at: at(s.theme.referenced),
        });

        let mut env = BTreeMap::new();
        let mut env_at = HashMap::new();
        for (key, value) in &s.env {
            let key_at = Origin {
                column: 1.max(
                    at(value.referenced)
                        .column
                        .saturating_sub(key.len() as u64 + 2),
                ),
                ..at(value.referenced)
            };
            let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    &key_at,
                    format!("env name `{key}` is not a valid variable name"),
                    Some("use letters, digits and `_`, not starting with a digit".into()),
                );
            } else if RESERVED_ENV_PREFIXES.iter().any(|p| key.starts_with(p)) || key == "PORT" {
                self.error(
                    &key_at,
                    format!(
                        "env name `{key}` is reserved: tenantctl sets it from the plan and theme"
                    ),
                    Some(
                        "TENANT_*, PLAN_*, THEME_* and PORT are derived; pick another name".into(),
                    ),
                );
            }
            self.env_value(
                &format!("env `{key}`"),
                key,
                &value.value,
                &at(value.referenced),
            );
            env_at.insert(key.clone(), key_at);
            env.insert(key.clone(), value.value.clone());
        }
        self.env_at.insert(slug.clone(), env_at);
        let mut constraints = Vec::new();
        let mut seen = HashSet::new();
        for c in &s.placement.constraints {
            let checked = match unsafe_char_problem(&c.value, &[]) {
                Some(problem) => Err(format!("constraint {problem}")),
                None => crate::model::placement_constraint(&c.value),
            };
            match checked {
                Ok(c) if seen.insert(c.clone()) => constraints.push(c),
                Ok(_) => {}
                Err(why) => self.error(
                    &at(c.referenced),
                    why,
                    Some(
                        "write e.g. `node.hostname == host-a` or `node.labels.zone != eu-2`".into(),
                    ),
                ),
            }
        }
        let (features, features_removed) = self.tenant_features(&slug, &s.features, path, chunk);
        if self.diagnostics.len() != before {
            return;
        }
        let Some(origin) = origin else { return };
        self.state.tenants.insert(
            slug.clone(),
            Tenant {
                slug,
                origin,
                display_name,
                owner,
                plan: s.plan.value,
                theme: s.theme.value,
                state: s.state,
                domain,
                env,
                features,
                features_removed,
                converted: s.billing.converted,
                constraints,
            },
        );
    }

    fn display_name(&mut self, value: &Spanned<String>, path: &str, chunk: &Chunk<'_>) -> String {
        let v = value.value.trim();
        let at = locate(path, chunk, value.referenced);
        if let Some(problem) = unsafe_char_problem(v, &[]) {
            self.error(
                &at,
                format!("displayName {problem}"),
                Some("remove control and bidirectional-override characters; plain letters of any script are fine".into()),
            );
        } else if v.is_empty() || v.chars().count() > 200 {
            self.error(
                &at,
                "displayName must be 1 to 200 printable characters",
                None,
            );
        }
        v.to_string()
    }

    /// Checks a value that becomes one environment variable `name=value` of a container.
    fn env_value(&mut self, what: &str, name: &str, value: &str, at: &Origin) {
        // Newlines and tabs are fine in a value (certificates, say); the kernel stops at NUL.
        if let Some(problem) = unsafe_char_problem(value, &['\n', '\t', '\r']) {
            self.error(
                at,
                format!("{what} {problem}"),
                Some("an environment value cannot hold NUL, terminal control or bidirectional-override characters".into()),
            );
        }
        let bytes = shape::env_entry_bytes(name, value);
        if bytes > MAX_ENV_ENTRY_BYTES {
            self.error(
                at,
                format!("{what} is {bytes} bytes as an environment variable; at most {MAX_ENV_ENTRY_BYTES} (32 KiB) are allowed"),
                Some("keep large data out of the environment: put it in the image or the data volume".into()),
            );
        }
    }

    fn quantity(
        &mut self,
        value: &Spanned<String>,
        path: &str,
        chunk: &Chunk<'_>,
        field: &str,
    ) -> Option<u64> {
        match quantity::parse_bytes(&value.value) {
            Ok(b) => Some(b),
            Err(e) => {
                self.error(
                    &locate(path, chunk, value.referenced),
                    format!("{field}: {}", e.message),
                    Some(e.hint),
                );
                None
            }
        }
    }

    fn features(
        &mut self,
        features: &[Spanned<String>],
        path: &str,
        chunk: &Chunk<'_>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for f in features {
            if let Some(problem) = slug_problem(&f.value) {
                self.error(
                    &locate(path, chunk, f.referenced),
                    format!("invalid feature name: {problem}"),
                    Some("features are lowercase words joined by `-`, e.g. custom-domain".into()),
                );
            } else if !seen.insert(f.value.as_str()) {
                self.error(
                    &locate(path, chunk, f.referenced),
                    format!("feature `{}` is listed twice", f.value),
                    None,
                );
            } else {
                out.push(f.value.clone());
            }
        }
        out.sort();
        out
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

mod edge;
mod edge_certs;
pub mod features;
mod yaml;

#[cfg(test)]
mod tests;
