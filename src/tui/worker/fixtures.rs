//! Test fixtures shared by the worker's jobs: a small valid repository and containers.

use crate::model::{DesiredState, SourceContent, SourceFile};
use crate::runtime::{ContainerState, ObservedContainer};

const PLAN: &str = "kind: Plan
name: starter
spec:
  displayName: Starter
  price: { amount: 9, currency: USD, cycle: monthly }
  resources: { cpus: 0.5, memory: 256Mi, pids: 128, storage: 5Gi }
  quotas: { apiCallsPerMonth: 10000 }
";

const THEME: &str = "kind: Theme
name: plain
spec:
  displayName: Plain
  version: 1.0.0
  port: 8080
  health: { path: /health, intervalSeconds: 10 }
";

const TENANTS: &str = "# first
kind: Tenant
name: acme
spec:
  displayName: Acme
  owner: ops@acme.example
  plan: starter
  theme: plain
---
# second
kind: Tenant
name: hooli
spec:
  displayName: Hooli
  owner: ops@hooli.example
  plan: starter
  theme: plain
";

pub(super) fn files() -> Vec<SourceFile> {
    vec![
        SourceFile {
            path: "plans/starter.yaml".into(),
            content: SourceContent::Bytes(PLAN.as_bytes().to_vec()),
        },
        SourceFile {
            path: "themes/plain.yaml".into(),
            content: SourceContent::Bytes(THEME.as_bytes().to_vec()),
        },
        SourceFile {
            path: "tenants/two.yaml".into(),
            content: SourceContent::Bytes(TENANTS.as_bytes().to_vec()),
        },
    ]
}

pub(super) fn desired() -> DesiredState {
    match crate::model::load(&files()) {
        Ok(d) => d,
        Err(e) => panic!("fixture is valid: {e:?}"),
    }
}

pub(super) fn container(
    id: &str,
    slug: &str,
    name: &str,
    state: ContainerState,
) -> ObservedContainer {
    ObservedContainer {
        started_at: Some(1_000),
        ..ObservedContainer::bare(id, name, slug, state)
    }
}
