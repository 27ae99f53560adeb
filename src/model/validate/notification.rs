//! A `Notification` document: where to POST, which event kinds, the signing secret's variable
//! and the payload format.

use super::super::spec::{Document, NotificationSpec};
use super::super::{Notification, NotificationFormat};
use super::*;

impl Validator {
    /// A `Notification`: where to POST (an `http://` or `https://` URL), which event kinds
    /// (exact or globs, as `events --kind` reads them), the optional environment variable whose
    /// value signs each body, and the payload's format.
    pub(super) fn notification(
        &mut self,
        path: &str,
        chunk: &Chunk<'_>,
        doc: Document<NotificationSpec>,
    ) {
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
                format!("url `{}` {problem}", super::super::printable(&url)),
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
                    format!("event `{}` {problem}", super::super::printable(&e.value)),
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
                            super::super::printable(&v.value)
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
                    format!("format `{}` is not known", super::super::printable(other)),
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
}
