//! Guards against destructive surprises and leaks: the built-in site's key checks and headers,
//! the mass-destruction guard, read-only commands that never create a database, and secrets
//! kept out of logs. The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, http};

/// The example repository with only the tenant files named in `keep` (umbrella's holds hooli too).
fn repo_with(keep: &[&str]) -> Repo {
    let repo = Repo::example();
    for file in [
        "us/acme",
        "us/globex",
        "us/initech",
        "eu/stark",
        "eu/umbrella",
    ] {
        let slug = file.rsplit('/').next().unwrap_or(file);
        if !keep.contains(&slug) {
            repo.remove(&format!("tenants/{file}.yaml"));
        }
    }
    repo.commit("fewer tenants");
    repo
}

/// The key apply printed for `slug`.
fn printed_key(output: &str, slug: &str) -> String {
    output
        .lines()
        .find(|l| l.trim_start().starts_with(slug) && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("a key for {slug} in:\n{output}"))
        .to_string()
}

/// The built-in site in a real tenant container, through its loopback port: `/usage` needs the
/// key, every answer forbids framing and sniffing, and a burst of wrong keys is throttled
/// (429 with Retry-After, even for the right key) while the meter still read its counters.
fn the_site_guards_its_key_and_its_frames(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme"]), db) else {
        return;
    };
    let applied = env.apply_ok(&[]);
    let key = printed_key(&applied, "acme");
    let site = env.site("acme");
    let (status, head, body) = http("GET", &format!("{site}/usage"), &[]);
    assert_eq!(status, 401, "{head}\n{body}");
    assert!(!body.contains("api_calls"), "{body}");
    let (status, head, _) = http("GET", &format!("{site}/usage"), &[("X-API-Key", &key)]);
    assert_eq!(status, 200);
    for header in [
        "x-frame-options: deny",
        "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        let (_, page, _) = http("GET", &format!("{site}/"), &[]);
        assert!(
            page.to_ascii_lowercase().contains(header),
            "{header}: {page}"
        );
    }
    assert!(
        head.to_ascii_lowercase().contains("x-frame-options: deny"),
        "{head}"
    );
    // The meter reads the counters with the key's digest, not the key.
    let metered = env.ok(&["meter"]);
    assert!(metered.contains("api 0, ai 0"), "{metered}");

    let started = std::time::Instant::now();
    let statuses: Vec<u16> = (0..40)
        .map(|_| {
            http(
                "GET",
                &format!("{site}/api/ping"),
                &[("X-API-Key", "tk_guess")],
            )
            .0
        })
        .collect();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let (status, head, _) = http("GET", &format!("{site}/api/ping"), &[("X-API-Key", &key)]);
    assert_eq!(status, 429, "the right key waits too: {head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(http("GET", &format!("{site}/health"), &[]).0, 200);
}

/// The namespace's container ids by name.
fn ids(env: &Env) -> Vec<(String, String)> {
    crate::support::names("container", &env.ns)
        .into_iter()
        .map(|n| {
            let id = crate::support::inspect(&n, "{{.Id}}");
            (n, id)
        })
        .collect()
}

fn running(name: &str) -> bool {
    crate::support::inspect(name, "{{.State.Running}}") == "true"
}

/// A revision without `tenants/` plans the removal of every tenant's container: `plan` warns,
/// `apply` refuses it (exit 1, naming them and the override), each `watch` pass skips it and
/// says so once, and everything keeps running until `apply --allow-destroy`.
fn a_revision_removing_every_tenant_is_refused(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme", "globex", "stark"]), db) else {
        return;
    };
    env.apply_ok(&[]);
    let before = ids(&env);
    std::fs::remove_dir_all(env.repo.path().join("tenants")).unwrap();
    env.repo.commit("a bad merge");

    let plan = env.ok(&["plan"]);
    assert!(
        plan.contains("Warning: this plan removes the containers of 3 of the 3 tenants in the namespace (acme, globex, stark): every tenant"),
        "{plan}"
    );
    let out = env.apply(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to apply: this plan removes the containers of 3 of the 3 tenants")
            && err.contains("(acme, globex, stark)")
            && err.contains("--allow-destroy"),
        "{err}"
    );
    assert_eq!(ids(&env), before);

    let mut args = vec!["--interval", "1s", "--meter-interval", "0s"];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let mut watch = crate::watch::Watch::start(&env.repo, &env.ns, &env.pool, &args, &[]);
    crate::watch::eventually(
        &watch,
        std::time::Duration::from_secs(60),
        "the refusal",
        || {
            watch
                .output()
                .contains("skipped: this plan removes the containers of 3 of the 3 tenants")
        },
    );
    // Several passes later: said once, nothing applied.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let output = watch.output();
    assert_eq!(output.matches("skipped:").count(), 1, "{output}");
    assert!(!output.contains("changes applied"), "{output}");
    watch.stop_cleanly();
    assert_eq!(ids(&env), before);
    for slug in ["acme", "globex", "stark"] {
        assert!(running(&env.container(slug)), "{slug} keeps running");
    }

    // Meant: the override applies it.
    env.apply_ok(&["--allow-destroy"]);
    assert!(crate::support::names("container", &env.ns).is_empty());
}

/// More than `--max-destroy` of the tenants (here 2 of 3 with the default 50%) is refused too;
/// a lower share in the environment refuses one of three.
fn more_than_the_limit_is_refused(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme", "globex", "stark"]), db) else {
        return;
    };
    env.apply_ok(&[]);
    env.repo
        .remove("tenants/us/acme.yaml")
        .remove("tenants/us/globex.yaml")
        .commit("two gone");
    let out = env.apply(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "2 of the 3 tenants in the namespace (acme, globex): more than --max-destroy 50% allows"
        ),
        "{err}"
    );
    let out = env
        .cmd(&["apply", "--auto-approve", "--max-destroy", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        crate::support::names("container", &env.ns),
        [env.container("stark")]
    );
}

on_both_databases!(
    the_site_guards_its_key_and_its_frames,
    a_revision_removing_every_tenant_is_refused,
    more_than_the_limit_is_refused,
);

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// New keys go to a private file and never to watch's log (nor apply's output with
/// --keys-file); the state database is private; a key=value DSN's password is never echoed.
fn secrets_stay_out_of_logs(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme"]), db) else {
        return;
    };
    let mut args = vec!["--interval", "1s", "--meter-interval", "0s"];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let mut watch = crate::watch::Watch::start(&env.repo, &env.ns, &env.pool, &args, &[]);
    let keys = env.repo.path().join(".tenantctl/new-keys");
    crate::watch::eventually(
        &watch,
        std::time::Duration::from_secs(120),
        "the first apply",
        || watch.output().contains("changes applied"),
    );
    watch.stop_cleanly();
    let log = watch.output();
    assert!(!log.contains("tk_"), "a key in the log:\n{log}");
    assert!(
        log.contains(&format!(
            "new API key for acme written to {}",
            keys.display()
        )),
        "{log}"
    );
    assert_eq!(mode(&keys), 0o600);
    let text = std::fs::read_to_string(&keys).unwrap();
    let key = text
        .strip_prefix("acme ")
        .map(str::trim)
        .unwrap_or_else(|| panic!("{text}"));
    let (status, _, _) = http(
        "GET",
        &format!("{}/api/ping", env.site("acme")),
        &[("X-API-Key", key)],
    );
    assert_eq!(status, 200, "the written key is the tenant's");
    if let Db::Sqlite = db {
        let state = env.repo.path().join(".tenantctl");
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("state.db")), 0o600);
    }

    // apply with --keys-file: the key is in the file, not in the output.
    env.repo
        .write(
            "tenants/us/globex.yaml",
            &Repo::example().read("tenants/us/globex.yaml"),
        )
        .commit("globex");
    let file = env.repo.path().join("handed-over");
    let out = env.apply_ok(&["--keys-file", file.to_str().unwrap()]);
    assert!(!out.contains("tk_"), "{out}");
    assert!(
        out.contains(&format!(
            "new API key for globex written to {}",
            file.display()
        )),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("globex tk_")
    );
    assert_eq!(mode(&file), 0o600);

    // A key=value connection string is refused without its password.
    let out = env
        .repo
        .tenantctl()
        .args([
            "--database-url",
            "host=127.0.0.1 user=app password=s3cret-pw dbname=app",
            "status",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("password=***") && !err.contains("s3cret-pw"),
        "{err}"
    );
}

on_both_databases!(secrets_stay_out_of_logs);

/// tenantctl against another database than the one that applied the namespace.
fn with_database(env: &Env, url: &str, args: &[&str]) -> std::process::Output {
    env.repo
        .tenantctl()
        .args(["--namespace", &env.ns, "--database-url", url])
        .env("TENANTCTL_SUBNET_POOL", &env.pool)
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

/// A mistyped `--database-url`: read-only commands read an empty state and create nothing;
/// `apply`, `watch` and `keys rotate` refuse a new or empty database while the namespace runs
/// tenants; `apply --adopt` rebuilds the rows from the containers, keeping every key.
fn a_wrong_database_is_refused_and_adopt_rebuilds_it(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme", "globex"]), db) else {
        return;
    };
    let applied = env.apply_ok(&[]);
    let key = printed_key(&applied, "acme");
    let before = ids(&env);
    let digest = crate::support::db(&env.url()).tenants["acme"]
        .api_key_sha256
        .clone();
    let scratch = tempfile::tempdir().unwrap();
    let folder = scratch.path().join("wrong");
    let _other_pg;
    let wrong = match db {
        Db::Sqlite => format!("sqlite://{}/state.db", folder.display()),
        Db::Postgres => {
            _other_pg = crate::support::Postgres::create().expect("a second database");
            _other_pg.url.clone()
        }
    };

    if let Db::Sqlite = db {
        for args in [&["status"][..], &["plan"], &["usage"]] {
            let out = with_database(&env, &wrong, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{args:?}: {err}");
            assert_eq!(
                err.matches("no state database at").count(),
                1,
                "{args:?}: {err}"
            );
            assert!(!folder.exists(), "{args:?} created {}", folder.display());
        }
    }
    let message = format!(
        "namespace {} has 6 managed objects but the database at",
        env.ns
    );
    for (args, hint) in [
        (&["apply", "--auto-approve"][..], "pass --adopt"),
        (&["keys", "rotate", "acme"], "run `tenantctl apply --adopt`"),
        (
            &["watch", "--interval", "1s"],
            "run `tenantctl apply --adopt`",
        ),
    ] {
        let out = with_database(&env, &wrong, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&message)
                && err.contains("is new/empty — a wrong --database-url?")
                && err.contains(hint),
            "{args:?}: {err}"
        );
        assert!(!folder.exists(), "{args:?} created {}", folder.display());
    }
    assert_eq!(ids(&env), before, "nothing changed");

    let out = with_database(&env, &wrong, &["apply", "--auto-approve", "--adopt"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Adopted 2 tenant rows"), "{text}");
    assert!(!text.contains("tk_"), "no new key: {text}");
    assert_eq!(ids(&env), before, "no container recreated");
    let rows = crate::support::db(&wrong).tenants;
    assert_eq!(rows["acme"].api_key_sha256, digest, "the key is kept");
    assert_eq!(
        rows["acme"].owner, "ops@acme.example",
        "git filled in the rest"
    );
    let (status, _, _) = http(
        "GET",
        &format!("{}/api/ping", env.site("acme")),
        &[("X-API-Key", &key)],
    );
    assert_eq!(status, 200);
    let events = crate::support::events(&wrong, "acme");
    assert!(
        events.iter().any(|e| e.kind == "tenant.adopted"),
        "{events:?}"
    );
}

on_both_databases!(a_wrong_database_is_refused_and_adopt_rebuilds_it);
