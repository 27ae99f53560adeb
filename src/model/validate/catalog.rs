//! The catalog a tenant picks from: `Plan` documents (resources, quotas, features, trials)
//! and `Theme` documents (image, health check, settings).

use super::super::shape::{self, MAX_TRIAL_DAYS};
use super::super::spec::{Document, PlanSpec, ThemeSpec};
use super::super::{Plan, Quotas, Resources, Theme, quantity};
use super::*;
use std::collections::BTreeMap;

impl Validator {
    pub(super) fn plan(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<PlanSpec>) {
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

    pub(super) fn theme(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<ThemeSpec>) {
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
}
