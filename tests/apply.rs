//! `tenantctl apply` and `keys rotate` against the real engine and both databases.

use crate::support::{Db, Env, Repo, db, docker, events, http, inspect, names};

use std::time::{Duration, Instant};

fn apply_brings_up_every_example_tenant_then_changes_nothing(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    // One container, network and volume per tenant, all labelled.
    let slugs = ["acme", "globex", "hooli", "initech", "stark", "umbrella"];
    assert_eq!(names("container", &env.ns), slugs.map(|s| env.container(s)));
    assert_eq!(names("network", &env.ns), slugs.map(|s| env.container(s)));
    assert_eq!(
        names("volume", &env.ns),
        slugs.map(|s| format!("{}-data", env.container(s)))
    );
    // Suspended tenants are created stopped; the others answer on loopback with their theme.
    assert!(!env.running("initech"));
    for slug in ["acme", "globex", "hooli", "stark", "umbrella"] {
        assert!(env.running(slug), "{slug} runs");
    }
    let (status, _, page) = http("GET", &format!("{}/", env.site("acme")), &[]);
    assert_eq!(status, 200);
    assert!(
        page.contains("Acme Corp") && page.contains("#0f62fe"),
        "{page}"
    );
    let (status, _, page) = http("GET", &format!("{}/", env.site("globex")), &[]);
    assert!(
        status == 200 && page.contains("Globex Corporation") && page.contains("#7a1f1f"),
        "{page}"
    );
    assert_eq!(
        http("GET", &format!("{}/health", env.site("stark")), &[]).0,
        200
    );
    assert!(env.site("acme").starts_with("http://127.0.0.1:"));
    assert!(
        inspect(&env.container("acme"), "{{json .HostConfig.PortBindings}}")
            .contains("\"HostIp\":\"127.0.0.1\"")
    );

    // Limits and security defaults from the plan and DESIGN.md.
    let c = env.container("acme");
    assert_eq!(
        inspect(&c, "{{.HostConfig.Memory}}"),
        (512u64 << 20).to_string()
    );
    assert_eq!(inspect(&c, "{{.HostConfig.NanoCpus}}"), "1000000000");
    assert_eq!(inspect(&c, "{{.HostConfig.PidsLimit}}"), "256");
    assert!(inspect(&c, "{{json .HostConfig.SecurityOpt}}").contains("no-new-privileges"));
    assert!(inspect(&c, "{{json .HostConfig.CapDrop}}").contains("ALL"));
    assert_eq!(
        inspect(&c, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert!(inspect(&c, "{{json .Config.Healthcheck}}").contains("site-health"));

    // The database holds what the SaaS reads; keys only as digests, shown once in the output.
    let state = db(&env.url());
    assert_eq!(state.plans.len(), 3);
    assert_eq!(state.themes.len(), 3);
    assert_eq!(state.tenants.len(), 6);
    let head = env.repo.head();
    for (slug, row) in &state.tenants {
        assert_eq!(
            row.applied_revision.as_deref(),
            Some(head.as_str()),
            "{slug}"
        );
        let digest = row.api_key_sha256.as_deref().expect("a key digest");
        let key = out
            .lines()
            .find(|l| l.trim_start().starts_with(slug.as_str()) && l.contains("tk_"))
            .and_then(|l| l.split_whitespace().last())
            .expect("key printed");
        assert_eq!(tenantctl::apply::keys::digest(key), digest);
        assert!(row.last_error.is_none());
    }
    let now = tenantctl::store::now_unix();
    let trial = state.tenants["hooli"]
        .trial_ends_at
        .expect("starter has a 30-day trial");
    assert!((trial - now - 30 * 86_400).abs() < 600, "{trial} vs {now}");
    assert_eq!(
        state.tenants["globex"].trial_ends_at, None,
        "enterprise has no trial"
    );

    // Converged: a second apply and the plan change nothing, fast.
    let ids = env.ids();
    let started = Instant::now();
    let again = env.apply_ok(&[]);
    assert!(again.contains("No changes."), "{again}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no-op apply took {:?}",
        started.elapsed()
    );
    assert_eq!(env.ids(), ids);
    assert_eq!(env.plan_exit(), 0);
    assert!(!again.contains("tk_"), "keys are shown only once");
}

fn changes_touch_only_what_they_must(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    env.apply_ok(&[]);
    let before = env.ids();

    // One tenant's env: only its container is replaced.
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "LOG_LEVEL: info",
            "LOG_LEVEL: debug",
        )
        .commit("acme debug");
    let text = env.apply_ok(&[]);
    // The site image this binary built for the first apply is there: nothing is built or said.
    assert!(!text.contains("building the built-in site image"), "{text}");
    let after = env.ids();
    assert_ne!(after["acme"], before["acme"]);
    for slug in ["globex", "initech", "umbrella", "hooli", "stark"] {
        assert_eq!(after[slug], before[slug], "{slug} must keep its container");
    }
    assert!(inspect(&env.container("acme"), "{{json .Config.Env}}").contains("LOG_LEVEL=debug"));
    assert!(env.running("acme"));
    assert_eq!(
        names("container", &env.ns).len(),
        6,
        "no leftover container"
    );

    // A plan's memory: every tenant on it gets the new limit.
    env.repo
        .edit("plans/professional.yaml", "memory: 512Mi", "memory: 768Mi")
        .commit("more memory");
    env.apply_ok(&[]);
    for slug in ["acme", "umbrella"] {
        assert_eq!(
            inspect(&env.container(slug), "{{.HostConfig.Memory}}"),
            (768u64 << 20).to_string(),
            "{slug}"
        );
    }
    assert_eq!(env.id("globex"), before["globex"]);
    assert_eq!(db(&env.url()).plans["professional"].memory_bytes, 768 << 20);

    // Suspend: stopped, nothing deleted. Resume: started.
    env.repo
        .edit(
            "tenants/eu/stark.yaml",
            "theme: modern",
            "theme: modern\n  state: suspended",
        )
        .commit("suspend stark");
    env.apply_ok(&[]);
    assert!(!env.running("stark"));
    assert_eq!(names("volume", &env.ns).len(), 6);
    assert_eq!(db(&env.url()).tenants["stark"].state, "suspended");
    env.repo
        .edit("tenants/eu/stark.yaml", "  state: suspended\n", "")
        .commit("resume stark");
    env.apply_ok(&[]);
    assert!(env.running("stark"));

    // Remove a tenant's file and cancel another: containers go; volumes and rows stay.
    env.repo
        .remove("tenants/us/globex.yaml")
        .edit(
            "tenants/eu/umbrella.yaml",
            "theme: minimal",
            "theme: minimal\n  state: cancelled",
        )
        .commit("globex leaves");
    env.apply_ok(&[]);
    let containers = names("container", &env.ns);
    assert!(
        !containers.contains(&env.container("globex"))
            && !containers.contains(&env.container("umbrella")),
        "{containers:?}"
    );
    assert_eq!(names("volume", &env.ns).len(), 6, "data volumes are kept");
    let rows = db(&env.url()).tenants;
    assert_eq!(rows["globex"].state, "cancelled");
    assert_eq!(rows["umbrella"].state, "cancelled");
    assert!(
        names("network", &env.ns).contains(&env.container("globex")),
        "networks stay without --prune"
    );
    env.apply_ok(&["--prune"]);
    assert!(!names("network", &env.ns).contains(&env.container("globex")));
    assert_eq!(names("volume", &env.ns).len(), 6, "even --prune keeps data");
    assert_eq!(env.plan_exit(), 0);
}

fn a_failing_tenant_is_retried_rolled_back_and_does_not_stop_the_others(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    env.apply_ok(&[]);
    let before = env.ids();
    // A theme whose health path the site does not serve: the new containers never become ready.
    env.repo
        .edit("themes/classic.yaml", "path: /health", "path: /not-there")
        .commit("break classic");
    env.repo
        .edit("tenants/us/acme.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")
        .commit("and change acme");
    let out = env.apply(&["--health-timeout", "3s", "--attempts", "2"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("attempt 1 failed") && text.contains("attempt 2 failed"),
        "{text}"
    );
    assert!(text.contains("globex") && text.contains("FAILED"), "{text}");
    // Rolled back: globex keeps its previous container, running; nothing left behind.
    assert_eq!(env.id("globex"), before["globex"]);
    assert!(env.running("globex"));
    assert_eq!(
        names("container", &env.ns).len(),
        6,
        "{:?}",
        names("container", &env.ns)
    );
    // The others went on: acme got its change.
    assert_ne!(env.id("acme"), before["acme"]);
    let row = &db(&env.url()).tenants["globex"];
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("/not-there"),
        "{row:?}"
    );
    assert!(db(&env.url()).tenants["acme"].last_error.is_none());
}

fn an_image_that_cannot_be_had_is_a_clear_per_tenant_error(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    env.repo
        .edit(
            "themes/minimal.yaml",
            "  port: 8080\n",
            "  image: registry.invalid/storefront:9.9\n  port: 8080\n",
        )
        .commit("custom image");
    let out = env.apply(&["--attempts", "1"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("registry.invalid/storefront:9.9"), "{text}");
    // Tenants on the other themes are up.
    assert!(env.running("acme") && env.running("globex"));
    assert!(db(&env.url()).tenants["umbrella"].last_error.is_some());
}

fn the_site_checks_keys_and_rate_limits_and_keys_rotate(backend: Db) {
    let repo = Repo::example();
    repo.edit(
        "plans/starter.yaml",
        "requestsPerMinute: 60",
        "requestsPerMinute: 3",
    )
    .commit("tight limit");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    let key = out
        .lines()
        .find(|l| l.trim_start().starts_with("hooli") && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let api = format!("{}/api/ping", env.site("hooli"));
    assert_eq!(http("GET", &api, &[]).0, 401);
    assert_eq!(
        http("GET", &api, &[("Authorization", "Bearer tk_wrong")]).0,
        401
    );
    for _ in 0..3 {
        assert_eq!(
            http("GET", &api, &[("Authorization", &format!("Bearer {key}"))]).0,
            200
        );
    }
    let (status, head, _) = http("GET", &api, &[("X-API-Key", &key)]);
    assert_eq!(status, 429);
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");

    let old_id = env.id("hooli");
    let rotated = env.cmd(&["keys", "rotate", "hooli"]).output().unwrap();
    let text = String::from_utf8_lossy(&rotated.stdout).to_string();
    assert!(
        rotated.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new_key = text
        .lines()
        .rfind(|l| l.trim_start().starts_with("tk_"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_key, key);
    assert_eq!(
        env.id("hooli"),
        old_id,
        "the site learns the new key without a restart"
    );
    let api = format!("{}/api/ping", env.site("hooli"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while http("GET", &api, &[("X-API-Key", &key)]).0 != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old key still works"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The limit of 3 a minute was used up above: the new key is accepted, and limited.
    let status = http("GET", &api, &[("X-API-Key", &new_key)]).0;
    assert!(status == 200 || status == 429, "{status}");
    let digest = tenantctl::apply::keys::digest(&new_key);
    let listed = env.ok(&["keys", "list", "hooli", "-o", "json"]);
    assert!(
        listed.contains(&digest[..16]),
        "the new key's id is listed: {listed}"
    );
    assert!(!listed.contains(&digest), "never the whole digest");
    assert_eq!(env.plan_exit(), 0);
}

fn kill_9_at_any_point_then_apply_converges(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    // Kill points spread over a cold apply, then over a replace of every tenant.
    let points = [50u64, 300, 700, 1200, 2000, 3500];
    for (round, ms) in points.iter().enumerate() {
        if round == 3 {
            env.repo
                .edit("themes/modern.yaml", "font: Inter", "font: Roboto")
                .edit("plans/starter.yaml", "memory: 128Mi", "memory: 192Mi")
                .commit("replace many");
        }
        let mut child = env.spawn_apply(&[]);
        std::thread::sleep(Duration::from_millis(*ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    // The engine still completes requests the killed process had already sent (a network create
    // landing after the next apply looked): give them a moment, as an operator's rerun would.
    std::thread::sleep(Duration::from_secs(1));
    env.apply_ok(&[]);
    let slugs = ["acme", "globex", "hooli", "initech", "stark", "umbrella"];
    assert_eq!(
        names("container", &env.ns),
        slugs.map(|s| env.container(s)),
        "exactly one container per tenant"
    );
    assert_eq!(
        names("network", &env.ns),
        slugs.map(|s| env.container(s)),
        "no leaked networks: {}",
        docker(&[
            "network",
            "ls",
            "--filter",
            &format!("label=tenantctl.namespace={}", env.ns),
            "--format",
            "{{.ID}} {{.Name}} {{.CreatedAt}}",
        ])
    );
    assert_eq!(names("volume", &env.ns).len(), 6);
    let state = db(&env.url());
    assert_eq!(state.tenants.len(), 6);
    assert!(
        state
            .tenants
            .values()
            .all(|r| r.api_key_sha256.is_some() && r.last_error.is_none())
    );
    assert_eq!(env.plan_exit(), 0);
    assert!(inspect(&env.container("acme"), "{{json .Config.Env}}").contains("THEME_FONT=Roboto"));
    let subnets: std::collections::BTreeSet<String> = slugs
        .iter()
        .map(|s| {
            docker(&[
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                &env.container(s),
            ])
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(
        subnets.len(),
        6,
        "each network has its own subnet: {subnets:?}"
    );
}

fn a_second_apply_waits_or_fails_with_who_holds_the_lock(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    // Another apply holds the lock: a live process on this host (this test's), as `host:pid:start`.
    let url = env.url();
    let holder = format!(
        "{}:{}:{}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        std::process::id(),
        tenantctl::store::now_unix()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(tenantctl::store::Store::open(&url)).unwrap();
    assert!(
        rt.block_on(store.try_lock("apply", &holder, Duration::from_secs(120)))
            .unwrap()
    );
    let out = env.apply(&[]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("locked by {holder}")), "{text}");
    assert!(text.contains("--lock-timeout"), "{text}");
    assert!(
        names("container", &env.ns).is_empty(),
        "nothing is created while the lock is held"
    );
    // With a lock timeout it waits for the holder to let go, then applies.
    let release = {
        let (store, holder) = (store.clone(), holder.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            let rt = tokio::runtime::Runtime::new().unwrap();
            assert!(rt.block_on(store.unlock("apply", &holder)).unwrap());
        })
    };
    let started = Instant::now();
    env.apply_ok(&["--lock-timeout", "60s"]);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    release.join().unwrap();
    // Two real applies at once, both willing to wait: one applies; the other waits its turn, then
    // applies what is left or, when the first changed what it had planned against, says so and
    // applies nothing. Either way one run converges the state.
    env.repo
        .edit("themes/modern.yaml", "font: Inter", "font: Roboto")
        .commit("replace the modern tenants");
    let mut first = env.spawn_apply(&["--lock-timeout", "60s"]);
    let second = env.apply(&["--lock-timeout", "60s"]);
    let first_ok = first.wait().unwrap().success();
    let text = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(
        first_ok || second.status.success(),
        "neither apply succeeded: {text}"
    );
    assert!(
        second.status.success()
            || text.contains("the actual state changed while the plan was shown"),
        "{text}"
    );
    assert_eq!(env.plan_exit(), 0, "the state converged");
    rt.block_on(store.close());
}

#[test]
fn postgres_holds_what_the_saas_reads() {
    let Some(env) = Env::new(Repo::example(), Db::Postgres) else {
        return;
    };
    let pg = env.pg.as_ref().unwrap();
    env.apply_ok(&[]);
    assert_eq!(
        pg.query("SELECT count(*) FROM tenants WHERE api_key_sha256 IS NOT NULL")
            .trim(),
        "6"
    );
    assert_eq!(
        pg.query("SELECT state FROM tenants WHERE slug = 'initech'")
            .trim(),
        "suspended"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM reconcile_runs WHERE status = 'succeeded'")
            .trim(),
        "1"
    );
    assert!(
        pg.query("SELECT count(*) FROM events")
            .trim()
            .parse::<i64>()
            .unwrap()
            >= 24
    );
    assert!(env.apply_ok(&[]).contains("No changes."));
    assert!(!std::path::Path::new(&env.repo.path().join(".tenantctl/state.db")).exists());
}

on_both_databases!(
    apply_brings_up_every_example_tenant_then_changes_nothing,
    changes_touch_only_what_they_must,
    a_failing_tenant_is_retried_rolled_back_and_does_not_stop_the_others,
    an_image_that_cannot_be_had_is_a_clear_per_tenant_error,
    kill_9_at_any_point_then_apply_converges,
    a_second_apply_waits_or_fails_with_who_holds_the_lock,
    the_site_checks_keys_and_rate_limits_and_keys_rotate,
);

/// One class of hostile input, made in a fresh copy of the example and committed.
struct Hostile {
    what: &'static str,
    make: fn(&Repo),
    expected: &'static str,
}

fn hostile_cases() -> Vec<Hostile> {
    vec![
        Hostile {
            what: "shell in a health path",
            make: |r| {
                r.edit(
                    "themes/modern.yaml",
                    "path: /health",
                    "path: \"/health;touch${IFS}/tmp/pwned;#\"",
                );
            },
            expected: "themes/modern.yaml:8:19: health path `/health;touch${IFS}/tmp/pwned;#` contains `;`",
        },
        Hostile {
            what: "an image the engine cannot name",
            make: |r| {
                r.edit(
                    "themes/modern.yaml",
                    "  port: 8080\n",
                    "  port: 8080\n  image: \"Nginx:latest;id\"\n",
                );
            },
            expected: "themes/modern.yaml:8:10: image `Nginx:latest;id` is not an image reference",
        },
        Hostile {
            what: "a multicast publish address",
            make: |r| {
                r.edit(
                    "themes/modern.yaml",
                    "  port: 8080\n",
                    "  port: 8080\n  publishAddress: 224.0.0.1\n",
                );
            },
            expected: "themes/modern.yaml:8:19: publishAddress `224.0.0.1` is a multicast address",
        },
        Hostile {
            what: "a colour that is not one",
            make: |r| {
                r.edit("themes/modern.yaml", "\"#0f62fe\"", "blurple");
            },
            expected: "themes/modern.yaml:9:27: config `primaryColor`: `blurple` is not a colour",
        },
        Hostile {
            what: "a trial of 4294967295 days",
            make: |r| {
                r.edit(
                    "plans/starter.yaml",
                    "trialDays: 30",
                    "trialDays: 4294967295",
                );
            },
            expected: "plans/starter.yaml:7:14: trialDays 4294967295 is more than 3650",
        },
        Hostile {
            what: "a quota that wraps in the database",
            make: |r| {
                r.edit(
                    "plans/starter.yaml",
                    "apiCallsPerMonth: 10000",
                    "apiCallsPerMonth: 9223372036854775808",
                );
            },
            expected: "plans/starter.yaml:9:31: quota 9223372036854775808 does not fit the database",
        },
        Hostile {
            what: "NUL in an env value",
            make: |r| {
                r.edit(
                    "tenants/us/acme.yaml",
                    "LOG_LEVEL: info",
                    "LOG_LEVEL: \"in\\0fo\"",
                );
            },
            expected: "tenants/us/acme.yaml:10:21: env `LOG_LEVEL` contains U+0000 (a NUL byte)",
        },
        Hostile {
            what: "an environment beyond the kernel's limit",
            make: |r| {
                let big = format!("LOG_LEVEL: info, BLOB: {}", "x".repeat(200 * 1024));
                r.edit("tenants/us/acme.yaml", "LOG_LEVEL: info", &big);
            },
            expected: "tenants/us/acme.yaml:10:33: env `BLOB` is 204806 bytes as an environment variable",
        },
        Hostile {
            what: "terminal escapes in a display name",
            make: |r| {
                r.edit(
                    "tenants/us/acme.yaml",
                    "displayName: Acme Corp",
                    "displayName: \"Acme\\e]0;owned\\a\\e[2J\\u202E\"",
                );
            },
            expected: "tenants/us/acme.yaml:4:16: displayName contains U+001B (a control character)",
        },
        Hostile {
            what: "an unsupported YAML directive",
            make: |r| {
                let text = format!("%YAML 2.0\n---\n{}", r.read("tenants/us/acme.yaml"));
                r.write("tenants/us/acme.yaml", &text);
            },
            expected: "tenants/us/acme.yaml:1:7: YAML version `2.0` is not supported",
        },
        Hostile {
            what: "a git submodule under tenants/",
            make: |r| {
                // Another repository inside: `git add` records it as a gitlink.
                std::fs::create_dir_all(r.path().join("tenants/vendor")).unwrap();
                r.git(&["-C", "tenants/vendor", "init", "-q"]);
                r.write("tenants/vendor/evil.yaml", "kind: Tenant\n");
                r.git(&["-C", "tenants/vendor", "add", "-A"]);
                r.git(&["-C", "tenants/vendor", "commit", "-qm", "inner"]);
            },
            expected: "tenants/vendor:1:1: is a git submodule",
        },
        Hostile {
            what: "a file name that is not UTF-8",
            make: |r| {
                use std::os::unix::ffi::OsStrExt;
                let name = std::ffi::OsStr::from_bytes(b"caf\xe9.yaml");
                std::fs::write(r.path().join("tenants").join(name), "kind: Tenant\n").unwrap();
            },
            expected: "tenants/caf\\xe9.yaml:1:1: file name is not valid UTF-8",
        },
        Hostile {
            what: "a terminal escape in a file name",
            make: |r| {
                r.write("tenants/\u{1b}[2Jevil.yaml", "kind: Tenant\n");
            },
            expected: "tenants/\\u{1b}[2Jevil.yaml:1:1: file name contains U+001B",
        },
    ]
}

/// Every class of hostile input is refused by validate (worktree and commit), plan and apply
/// alike: exit 1, the place to fix, quickly, nothing printed raw, and nothing created.
#[test]
fn every_command_refuses_hostile_input_alike_and_creates_nothing() {
    let ns = crate::support::unique_namespace();
    let _cleanup = crate::support::Cleanup::new(&ns);
    for case in hostile_cases() {
        let repo = Repo::example();
        (case.make)(&repo);
        repo.commit(case.what);
        for args in [
            vec!["validate"],
            vec!["validate", "--ref", "HEAD"],
            vec!["--namespace", &ns, "plan"],
            vec!["--namespace", &ns, "apply", "--auto-approve"],
        ] {
            let started = Instant::now();
            let out = repo
                .tenantctl()
                .args(&args)
                .timeout(Duration::from_secs(30))
                .output()
                .unwrap();
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let what = case.what;
            assert_eq!(out.status.code(), Some(1), "{what}: {args:?}\n{stderr}");
            assert!(
                stderr.contains(case.expected),
                "{what}: {args:?} lacks {:?} in:\n{stderr}",
                case.expected
            );
            assert!(stderr.contains("\n  hint: "), "{what}: {args:?}\n{stderr}");
            assert!(
                took < Duration::from_secs(5),
                "{what}: {args:?} took {took:?}"
            );
            assert!(
                !format!("{stdout}{stderr}").contains(['\u{1b}', '\u{202E}', '\u{7}']),
                "{what}: {args:?} printed a raw escape: {stderr:?}"
            );
        }
        assert!(
            !repo.path().join(".tenantctl").exists(),
            "{}: a database was created",
            case.what
        );
    }
    for kind in ["container", "network", "volume"] {
        assert_eq!(
            names(kind, &ns),
            Vec::<String>::new(),
            "{kind}s were created"
        );
    }
}

/// Replacing `shop` never touches tenant `shop-next`, whose container has the name older
/// versions gave `shop`'s blue/green temporary.
#[test]
fn replacing_a_tenant_leaves_the_tenant_named_like_its_temporary() {
    let repo = Repo::example_with_tenants(&[
        ("shop", "starter", "minimal"),
        ("shop-next", "starter", "minimal"),
    ]);
    let Some(env) = Env::new(repo, Db::Sqlite) else {
        return;
    };
    env.apply_ok(&[]);
    let (shop, neighbour) = (env.id("shop"), env.id("shop-next"));
    env.repo
        .edit("tenants/shop.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
        .commit("shop debug");
    let text = env.apply_ok(&[]);
    assert_ne!(env.id("shop"), shop, "shop was replaced:\n{text}");
    assert_eq!(env.id("shop-next"), neighbour, "{text}");
    assert!(env.running("shop") && env.running("shop-next"), "{text}");
    assert_eq!(
        names("container", &env.ns),
        [env.container("shop"), env.container("shop-next")],
        "no temporary left behind"
    );
    assert_eq!(env.plan_exit(), 0);
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A new tenant whose site never answers its health path fails on every attempt, even when a
/// retry finds its container already running at its spec; status does not call it healthy.
fn a_retry_never_reports_a_site_that_does_not_answer_as_converged(backend: Db) {
    let repo = Repo::example_with_tenants(&[("shop", "starter", "minimal")]);
    repo.edit("themes/minimal.yaml", "path: /health", "path: /not-there")
        .commit("a health path the site does not serve");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let out = env.apply(&["--health-timeout", "3s", "--attempts", "2"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("attempt 1 failed") && text.contains("attempt 2 failed"),
        "{text}"
    );
    assert!(!text.contains("Apply complete!"), "{text}");
    let row = &db(&env.url()).tenants["shop"];
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("/not-there")),
        "{row:?}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "--output", "json"])).unwrap();
    let shop = status["tenants"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == "shop"))
        .cloned()
        .unwrap_or_default();
    assert_ne!(shop["health"], "Healthy", "{shop}");
    assert!(
        shop["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("/not-there")),
        "{shop}"
    );
}

/// Moving between trial plans keeps the trial's end; moving to a plan without a trial ends it,
/// so once the old end passes nothing is suspended and no invoice says "no charge".
fn a_move_to_a_plan_without_a_trial_ends_the_trial(backend: Db) {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        backend,
    ) else {
        return;
    };
    env.apply_ok(&[]);
    let ends = db(&env.url()).tenants["shop"].trial_ends_at;
    assert!(ends.is_some(), "starter has a 30-day trial");

    env.repo
        .edit("tenants/shop.yaml", "plan: starter", "plan: professional")
        .commit("to professional (14 trial days)");
    env.apply_ok(&[]);
    assert_eq!(db(&env.url()).tenants["shop"].trial_ends_at, ends);

    env.repo
        .edit(
            "tenants/shop.yaml",
            "plan: professional",
            "plan: enterprise",
        )
        .commit("to enterprise (no trial)");
    let text = env.apply_ok(&[]);
    assert!(text.contains("has no trial"), "{text}");
    assert_eq!(db(&env.url()).tenants["shop"].trial_ends_at, None);
    let cleared: Vec<_> = events(&env.url(), "shop")
        .into_iter()
        .filter(|e| e.kind == "tenant.trial-cleared")
        .collect();
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].message.contains("enterprise"), "{cleared:?}");

    // After the old trial's end: nothing to suspend, and the invoice charges.
    let later = (tenantctl::store::now_unix() + 31 * 86_400).to_string();
    let plan = env
        .cmd(&["plan", "--detailed-exitcode"])
        .env("TENANTCTL_NOW", &later)
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", output_text(&plan));
    let usage = env.ok(&["usage", "shop"]);
    assert!(!usage.contains("Trial until"), "{usage}");
}

/// One tenant, `shop` (starter, minimal), on SQLite, applied; `None` without an engine.
fn one_tenant_applied() -> Option<Env> {
    let env = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        Db::Sqlite,
    )?;
    env.apply_ok(&[]);
    Some(env)
}

/// A network removed by hand is created again and the container replaced onto it; a container
/// disconnected from its network by hand is reconnected. Both then answer on loopback.
#[test]
fn a_missing_or_disconnected_network_is_repaired() {
    let Some(env) = one_tenant_applied() else {
        return;
    };
    let container = env.container("shop");
    let network = container.clone();

    // Disconnected while running: planned as an in-place repair, carried out by apply.
    docker(&["network", "disconnect", &network, &container]);
    let plan = env.ok(&["plan", "--no-color"]);
    assert!(plan.contains("not attached to its network"), "{plan}");
    let id = env.id("shop");
    let text = env.apply_ok(&["--health-timeout", "20s"]);
    assert!(
        inspect(&container, "{{json .NetworkSettings.Networks}}").contains(&network),
        "{text}"
    );
    assert_eq!(env.id("shop"), id, "reconnected in place:\n{text}");
    assert_eq!(
        http("GET", &format!("{}/health", env.site("shop")), &[]).0,
        200
    );
    assert_eq!(env.plan_exit(), 0);

    // Removed (possible once disconnected): the network is made again, the container replaced.
    docker(&["network", "disconnect", &network, &container]);
    docker(&["network", "rm", &network]);
    let plan = env.ok(&["plan", "--no-color"]);
    assert!(
        plan.contains(&format!("network {network} is missing")),
        "{plan}"
    );
    let text = env.apply_ok(&["--health-timeout", "20s"]);
    assert!(names("network", &env.ns).contains(&network), "{text}");
    assert_ne!(env.id("shop"), id, "{text}");
    assert!(env.running("shop"), "{text}");
    assert_eq!(
        http("GET", &format!("{}/health", env.site("shop")), &[]).0,
        200
    );
    assert_eq!(env.plan_exit(), 0);
}

/// A second network of a tenant's name (this engine, API 1.41, accepts one) with the tenant's
/// container on it, the first left unused: apply keeps the copy in use, removes the other and
/// changes nothing else. (The state an interrupted apply's late network create leaves.)
#[test]
fn a_duplicate_network_is_settled_on_the_copy_the_tenant_runs_on() {
    let Some(env) = one_tenant_applied() else {
        return;
    };
    let container = env.container("shop");
    let name = container.clone();
    let first = docker(&["network", "inspect", "--format", "{{.Id}}", &name])
        .trim()
        .to_string();
    let labels = docker(&["network", "inspect", "--format", "{{json .Labels}}", &name]);
    let subnet = docker(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &name,
    ]);
    // The next /28 of this test's own pool: free, since the tenant took the lowest.
    let taken: ipnet::Ipv4Net = subnet.trim().parse().unwrap();
    let other = ipnet::Ipv4Net::new((u32::from(taken.network()) + 16).into(), 28).unwrap();
    // The docker CLI refuses a duplicate name; the API (without CheckDuplicate) makes one.
    let body = format!(
        r#"{{"Name":"{name}","Labels":{},"IPAM":{{"Config":[{{"Subnet":"{other}"}}]}}}}"#,
        labels.trim()
    );
    let socket = crate::support::proxy::engine_socket();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            &socket.display().to_string(),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            "http://localhost/v1.41/networks/create",
        ])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).to_string();
    if answer.contains("already exists") && !answer.contains("\"Id\"") {
        eprintln!("skipped: this engine refuses a second network of a name itself: {answer}");
        return;
    }
    let second: serde_json::Value = serde_json::from_str(&answer).expect(&answer);
    let second = second["Id"].as_str().expect(&answer).to_string();
    // The container moves to the younger copy (by id: the name is ambiguous now).
    docker(&["network", "disconnect", &first, &container]);
    docker(&["network", "connect", &second, &container]);
    let id = env.id("shop");

    let plan = env.ok(&["plan", "--no-color"]);
    assert!(plan.contains("2 networks share this name"), "{plan}");
    let text = env.apply_ok(&["--health-timeout", "20s"]);
    let ids = docker(&[
        "network",
        "ls",
        "--no-trunc",
        "--filter",
        &format!("label=tenantctl.namespace={}", env.ns),
        "--format",
        "{{.ID}}",
    ]);
    assert_eq!(
        ids.split_whitespace().collect::<Vec<_>>(),
        vec![second.as_str()],
        "the copy in use is kept, the unused one removed:\n{text}"
    );
    assert_eq!(
        env.id("shop"),
        id,
        "the tenant's container is left alone:\n{text}"
    );
    assert_eq!(
        http("GET", &format!("{}/health", env.site("shop")), &[]).0,
        200
    );
    assert_eq!(env.plan_exit(), 0);
}

on_both_databases!(
    a_retry_never_reports_a_site_that_does_not_answer_as_converged,
    a_move_to_a_plan_without_a_trial_ends_the_trial,
);
