//! A tenant's container made, and replaced blue/green, written once over the few container steps
//! they need, so their order is tested without an engine (a fake [`ReplaceSteps`] records the
//! calls, and `runtime::fake` runs them under the applier).

use async_trait::async_trait;

use crate::runtime::RuntimeError;
use crate::runtime::types::{Applied, Phase, Workload, phase};

/// The container steps a replacement is made of.
#[async_trait]
pub trait ReplaceSteps: Send + Sync {
    /// Remove a container by id or name, killing it if it runs; false when it was not there.
    async fn remove(&self, id_or_name: &str) -> Result<bool, RuntimeError>;
    /// Remove the container named `name` only if its `tenantctl.tenant` label is `tenant`; false
    /// when there is none. Another tenant's container of that name is an error, never removed.
    async fn remove_leftover(&self, name: &str, tenant: &str) -> Result<bool, RuntimeError>;
    /// Create (not start) container `name` of `workload`; returns its id.
    async fn create(&self, workload: &Workload, name: &str) -> Result<String, RuntimeError>;
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Wait until the started container answers its health path; returns the site's URL.
    async fn wait_ready(&self, workload: &Workload, id: &str) -> Result<String, RuntimeError>;
    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError>;
    /// Stop a running container with its grace period (in-flight requests finish).
    async fn drain(&self, id: &str) -> Result<(), RuntimeError>;
}

/// Creates container `name` of `workload`; an active tenant's is started and must answer.
pub async fn create(
    steps: &impl ReplaceSteps,
    workload: &Workload,
    name: &str,
) -> Result<Applied, RuntimeError> {
    phase(Phase::Container);
    let id = steps.create(workload, name).await?;
    if !workload.running {
        return Ok(Applied::new(
            "+ created (stopped: tenant is suspended)",
            None,
        ));
    }
    phase(Phase::Start);
    steps.start(&id).await?;
    phase(Phase::Health);
    let url = steps.wait_ready(workload, &id).await?;
    Ok(Applied::new(
        format!("+ created, healthy at {url}"),
        Some(url),
    ))
}

/// The temporary name of a replacement: `<name>_next`. Slugs are `[a-z0-9-]`, so no tenant's
/// container (`<namespace>-<slug>`, in any namespace) can ever have it.
pub fn temporary_name(name: &str) -> String {
    format!("{name}_next")
}

/// Replaces container `old` by one of `workload`'s spec: [`temporary_name`] is created, started
/// and must answer before `old` is removed and the new one renamed to `<name>`. If it does not
/// answer, it is removed and `old` was never touched ([`RuntimeError::ReplacementFailed`]).
///
/// Behind an edge (`workload.switch`), the edge is switched to the new container's port once
/// it answers and before the old one goes; the old one then drains (stopped with its grace
/// period) before it is removed. A switch the edge does not acknowledge fails the replacement
/// like a new container that does not answer: the old one keeps serving.
pub async fn replace(
    steps: &impl ReplaceSteps,
    workload: &Workload,
    old: Option<&str>,
    why: &str,
) -> Result<Applied, RuntimeError> {
    let name = workload.spec.name.as_str();
    let next = temporary_name(name);
    // A temporary left by an interrupted replace of this tenant is stale; nobody else's is touched.
    steps.remove_leftover(&next, &workload.tenant).await?;
    phase(Phase::Container);
    let new_id = steps.create(workload, &next).await?;
    let url = if workload.running {
        let ready = async {
            phase(Phase::Start);
            steps.start(&new_id).await?;
            phase(Phase::Health);
            steps.wait_ready(workload, &new_id).await
        }
        .await;
        let ready = match (ready, &workload.switch) {
            (Ok(url), Some(switch)) => {
                let upstream = crate::runtime::types::upstream_of_url(&url).unwrap_or_default();
                match switch.to(upstream).await {
                    Ok(()) => Ok(url),
                    Err(why) => Err(RuntimeError::NotAnswering {
                        reason: format!("the edge was not switched to the new container: {why}"),
                    }),
                }
            }
            (ready, _) => ready,
        };
        match ready {
            Ok(url) => Some(url),
            Err(error) => {
                let _ = steps.remove(&new_id).await;
                return Err(RuntimeError::ReplacementFailed {
                    error: Box::new(error),
                });
            }
        }
    } else {
        None
    };
    if let Some(old) = old {
        if workload.switch.is_some() && url.is_some() {
            // No request reaches it any more; those in flight finish.
            steps.drain(old).await?;
        }
        steps.remove(old).await?;
    }
    steps.rename(&new_id, name).await?;
    let healthy = url
        .as_deref()
        .map(|u| format!(", healthy at {u}"))
        .unwrap_or_default();
    Ok(Applied::new(format!("-/+ replaced ({why}){healthy}"), url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::{ContainerSpec, ServiceShape};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records every step; the new container answers only when `answers` is set.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        answers: bool,
    }

    impl Recorder {
        fn note(&self, call: String) {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(call);
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl ReplaceSteps for Recorder {
        async fn remove(&self, id_or_name: &str) -> Result<bool, RuntimeError> {
            self.note(format!("remove {id_or_name}"));
            Ok(true)
        }
        async fn remove_leftover(&self, name: &str, tenant: &str) -> Result<bool, RuntimeError> {
            self.note(format!("remove {name} if {tenant}'s"));
            Ok(false)
        }
        async fn create(&self, _: &Workload, name: &str) -> Result<String, RuntimeError> {
            self.note(format!("create {name}"));
            Ok("new".into())
        }
        async fn start(&self, id: &str) -> Result<(), RuntimeError> {
            self.note(format!("start {id}"));
            Ok(())
        }
        async fn wait_ready(&self, _: &Workload, id: &str) -> Result<String, RuntimeError> {
            self.note(format!("wait {id}"));
            match self.answers {
                true => Ok("http://127.0.0.1:1234/".into()),
                false => Err(RuntimeError::NotAnswering {
                    reason: "no answer".into(),
                }),
            }
        }
        async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
            self.note(format!("rename {id} {name}"));
            Ok(())
        }
        async fn drain(&self, id: &str) -> Result<(), RuntimeError> {
            self.note(format!("drain {id}"));
            Ok(())
        }
    }

    fn workload(running: bool) -> Workload {
        Workload {
            tenant: "acme".into(),
            spec: ContainerSpec {
                name: "ns-acme".into(),
                image: "x:1".into(),
                env: Default::default(),
                nano_cpus: 1,
                memory_bytes: 1,
                pids: 1,
                port: 8080,
                publish_address: "127.0.0.1".into(),
                health_cmd: vec![],
                health_interval_seconds: 1,
                cap_add: vec![],
                network: "ns-acme".into(),
                volume: "ns-acme-data".into(),
                user: None,
                read_only_rootfs: false,
            },
            labels: Default::default(),
            extra_env: Default::default(),
            shape: ServiceShape::default(),
            running,
            health_path: "/health".into(),
            health_timeout: Duration::from_secs(1),
            switch: None,
        }
    }

    /// A switch that records the upstream it was asked for, in the recorder's calls.
    fn switching(
        steps: &std::sync::Arc<Recorder>,
        acknowledged: bool,
    ) -> crate::runtime::types::EdgeSwitch {
        let steps = steps.clone();
        crate::runtime::types::EdgeSwitch(std::sync::Arc::new(move |upstream: String| {
            steps.note(format!("switch {upstream}"));
            Box::pin(async move {
                match acknowledged {
                    true => Ok(()),
                    false => Err("401 Unauthorized".to_string()),
                }
            })
        }))
    }

    #[tokio::test]
    async fn behind_an_edge_the_switch_comes_before_the_old_container_drains_and_goes() {
        let steps = std::sync::Arc::new(Recorder {
            answers: true,
            ..Default::default()
        });
        let mut w = workload(true);
        w.switch = Some(switching(&steps, true));
        let done = replace(&*steps, &w, Some("old"), "env changed").await;
        assert!(done.is_ok(), "{done:?}");
        assert_eq!(
            steps.calls(),
            [
                "remove ns-acme_next if acme's",
                "create ns-acme_next",
                "start new",
                "wait new",
                "switch 127.0.0.1:1234",
                "drain old",
                "remove old",
                "rename new ns-acme"
            ]
        );
    }

    #[tokio::test]
    async fn a_switch_the_edge_refuses_keeps_the_old_container() {
        let steps = std::sync::Arc::new(Recorder {
            answers: true,
            ..Default::default()
        });
        let mut w = workload(true);
        w.switch = Some(switching(&steps, false));
        let done = replace(&*steps, &w, Some("old"), "env changed").await;
        assert_eq!(
            steps.calls(),
            [
                "remove ns-acme_next if acme's",
                "create ns-acme_next",
                "start new",
                "wait new",
                "switch 127.0.0.1:1234",
                "remove new"
            ]
        );
        let Err(error) = done else {
            panic!("the switch was refused");
        };
        assert!(error.to_string().contains("401 Unauthorized"), "{error}");
    }

    #[tokio::test]
    async fn the_old_container_goes_only_after_the_new_one_answers() {
        let steps = Recorder {
            answers: true,
            ..Default::default()
        };
        let done = replace(&steps, &workload(true), Some("old"), "image changed").await;
        assert_eq!(
            steps.calls(),
            [
                "remove ns-acme_next if acme's",
                "create ns-acme_next",
                "start new",
                "wait new",
                "remove old",
                "rename new ns-acme"
            ]
        );
        let done = done.ok();
        assert_eq!(
            done.as_ref().map(|d| d.line.as_str()),
            Some("-/+ replaced (image changed), healthy at http://127.0.0.1:1234/")
        );
    }

    #[test]
    fn no_tenant_can_own_a_temporary_name() {
        // Tenant `shop-next` once owned the temporary of tenant `shop`.
        let temporary = temporary_name(&crate::runtime::types::container_name("ns", "shop"));
        assert_eq!(temporary, "ns-shop_next");
        let slug = temporary.rsplit('-').next().unwrap_or_default();
        assert!(crate::model::slug_problem(slug).is_some(), "{slug}");
        assert!(crate::model::slug_problem("shop-next").is_none());
        assert_ne!(
            temporary,
            crate::runtime::types::container_name("ns", "shop-next")
        );
    }

    #[tokio::test]
    async fn a_replacement_that_does_not_answer_is_removed_and_the_old_one_kept() {
        let steps = Recorder::default();
        let done = replace(&steps, &workload(true), Some("old"), "image changed").await;
        assert_eq!(
            steps.calls(),
            [
                "remove ns-acme_next if acme's",
                "create ns-acme_next",
                "start new",
                "wait new",
                "remove new"
            ]
        );
        let Err(error) = done else {
            panic!("the replacement did not answer");
        };
        assert_eq!(error.to_string(), "no answer");
        assert!(error.rollback_note().is_some());
    }

    #[tokio::test]
    async fn a_new_container_is_started_and_checked_only_for_an_active_tenant() {
        let steps = Recorder {
            answers: true,
            ..Default::default()
        };
        let done = create(&steps, &workload(true), "ns-acme").await;
        assert_eq!(steps.calls(), ["create ns-acme", "start new", "wait new"]);
        assert_eq!(
            done.ok().map(|d| (d.line, d.url)),
            Some((
                "+ created, healthy at http://127.0.0.1:1234/".to_string(),
                Some("http://127.0.0.1:1234/".to_string())
            ))
        );

        let steps = Recorder::default();
        let done = create(&steps, &workload(false), "ns-acme").await;
        assert_eq!(steps.calls(), ["create ns-acme"]);
        assert_eq!(
            done.ok().map(|d| (d.line, d.url)),
            Some(("+ created (stopped: tenant is suspended)".to_string(), None))
        );
    }

    #[tokio::test]
    async fn a_suspended_tenant_gets_a_stopped_replacement() {
        let steps = Recorder::default();
        let done = replace(&steps, &workload(false), Some("old"), "env changed").await;
        assert_eq!(
            steps.calls(),
            [
                "remove ns-acme_next if acme's",
                "create ns-acme_next",
                "remove old",
                "rename new ns-acme"
            ]
        );
        assert_eq!(
            done.ok().map(|d| d.line),
            Some("-/+ replaced (env changed)".to_string())
        );
    }
}
