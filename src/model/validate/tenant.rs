//! A `Tenant` document: its plan and theme, domain, owner, display name, environment,
//! quantities and features.

use super::super::shape::{self, MAX_ENV_ENTRY_BYTES};
use super::super::spec::{Document, TenantSpec};
use super::super::text::unsafe_char_problem;
use super::super::{Origin, Tenant, quantity, slug_problem};
use super::*;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashMap, HashSet};

impl Validator {
    pub(super) fn tenant(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<TenantSpec>) {
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

    pub(super) fn display_name(
        &mut self,
        value: &Spanned<String>,
        path: &str,
        chunk: &Chunk<'_>,
    ) -> String {
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
    pub(super) fn env_value(&mut self, what: &str, name: &str, value: &str, at: &Origin) {
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

    pub(super) fn quantity(
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

    pub(super) fn features(
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
}
