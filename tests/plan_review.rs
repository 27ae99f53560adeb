//! `plan --output markdown` (for a pull request) and `plan --offline --against REF` (two
//! revisions compared from git alone), with the real binary and real git repositories.

use crate::support::{Db, Env, Repo, unique_namespace};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The example repository, then a second commit: plan `professional` gets 1Gi instead of
/// 512Mi, tenant `wayne` is new, tenant `stark` is removed, theme `classic` changes colour.
fn two_commits() -> Repo {
    let repo = Repo::example();
    repo.edit("plans/professional.yaml", "memory: 512Mi", "memory: 1Gi")
        .edit("themes/classic.yaml", "#7a1f1f", "#123456")
        .remove("tenants/eu/stark.yaml")
        .write(
            "tenants/us/wayne.yaml",
            "kind: Tenant\nname: wayne\nspec:\n  displayName: Wayne Corp\n  owner: ops@wayne.example\n  plan: starter\n  theme: modern\n  env: { STRIPE_SECRET_KEY: sk_live_hunter2 }\n",
        )
        .commit("professional 1Gi, wayne in, stark out, classic recoloured");
    repo
}

/// `tenantctl plan --offline …` with no engine and no database to be had: a socket that does
/// not exist, and a database URL nothing listens at.
fn offline(repo: &Repo, ns: &str, extra: &[&str]) -> std::process::Output {
    repo.tenantctl()
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .args([
            "--namespace",
            ns,
            "--database-url",
            "postgres://nobody:hunter2@127.0.0.1:1/nothing",
            "plan",
            "--offline",
        ])
        .args(extra)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

/// `(symbol, address)` of every change in text output, in order.
fn changes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (symbol, address) = l.trim_start().split_once(' ')?;
            (["+", "~", "-/+", "-"].contains(&symbol)
                && !address.contains(' ')
                && address.contains('.')
                && !l.starts_with("      "))
            .then(|| (symbol.to_string(), address.to_string()))
        })
        .collect()
}

fn expected(ns: &str) -> Vec<(String, String)> {
    [
        ("~", "plan-record.professional".to_string()),
        ("~", "theme-record.classic".to_string()),
        // acme and umbrella run plan professional, globex theme classic.
        ("-/+", format!("container.{ns}-acme")),
        ("-/+", format!("container.{ns}-globex")),
        ("-", format!("container.{ns}-stark")),
        ("~", "tenant-record.stark".to_string()),
        ("-/+", format!("container.{ns}-umbrella")),
        ("+", format!("network.{ns}-wayne")),
        ("+", format!("volume.{ns}-wayne-data")),
        ("+", format!("container.{ns}-wayne")),
        ("+", "tenant-record.wayne".to_string()),
    ]
    .into_iter()
    .map(|(s, a)| (s.to_string(), a))
    .collect()
}

#[test]
fn offline_against_the_previous_commit_shows_exactly_its_changes_without_engine_or_database() {
    let repo = two_commits();
    let ns = unique_namespace();
    let before = &repo_rev(&repo, "HEAD~1")[..12];
    let after = &repo.head()[..12];

    let out = offline(&repo, &ns, &["--against", "HEAD~1", "--detailed-exitcode"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}{}", stderr(&out));
    assert_eq!(changes(&text), expected(&ns), "{text}");
    assert!(
        text.starts_with(&format!(
            "tenantctl will perform the following actions (revision {after}, namespace `{ns}`):"
        )),
        "{text}"
    );
    for line in [
        "      -  memory: 512Mi\n",
        "      +  memory: 1Gi\n",
        "      -  primaryColor: #7a1f1f\n",
        "      +  primaryColor: #123456\n",
        "      -state: active\n      +state: cancelled\n",
        "  #   container would be replaced: spec hash ",
        &format!("Note: offline: revision {after} compared with {before} (--against)"),
        "Plan: 4 to create, 3 to update, 3 to replace, 1 to destroy.\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!repo.path().join(".tenantctl").exists(), "no database made");
    assert!(
        !text.contains("sk_live_hunter2")
            && text.contains("STRIPE_SECRET_KEY: (sensitive, sha256:"),
        "{text}"
    );
    assert!(!stderr(&out).contains("hunter2"));

    // Without --detailed-exitcode changes exit 0, as plan does.
    assert_eq!(
        offline(&repo, &ns, &["--against", "HEAD~1"]).status.code(),
        Some(0)
    );

    let out = offline(&repo, &ns, &["--against", "HEAD~1", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["revision"], repo.head());
    assert_eq!(
        doc["summary"],
        serde_json::json!({"create": 4, "update": 3, "replace": 3, "destroy": 1, "start": 0, "stop": 0})
    );
    let json_changes: Vec<(String, String)> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let symbol = match c["action"].as_str().unwrap() {
                "create" => "+",
                "update" => "~",
                "replace" => "-/+",
                "destroy" => "-",
                other => panic!("unexpected action {other}"),
            };
            (
                symbol.to_string(),
                c["address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(json_changes, expected(&ns));
    assert_eq!(doc["changes"][0]["before"]["resources"]["memory"], "512Mi");
    assert_eq!(doc["changes"][0]["after"]["resources"]["memory"], "1Gi");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk_live_hunter2"));

    let out = offline(&repo, &ns, &["--against", "HEAD~1", "--output", "markdown"]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        md.starts_with(&format!(
            "### tenantctl plan\n\nRevision <code>{after}</code>, namespace <code>{ns}</code>: **4** to create, **3** to update, **3** to replace, **1** to destroy.\n"
        )),
        "{md}"
    );
    let summaries: Vec<&str> = md.lines().filter(|l| l.starts_with("<details>")).collect();
    assert_eq!(
        summaries,
        [
            "<details><summary>plans and themes: ~ 2 changes</summary>",
            "<details><summary>acme: -/+ 1 change</summary>",
            "<details><summary>globex: -/+ 1 change</summary>",
            "<details><summary>stark: - ~ 2 changes</summary>",
            "<details><summary>umbrella: -/+ 1 change</summary>",
            "<details><summary>wayne: + 4 changes</summary>",
        ],
        "{md}"
    );
    assert_eq!(md.matches("\n</details>\n").count(), 6);
    assert_eq!(md.matches("\n```diff\n").count(), 6);
    assert!(md.contains("\n-  memory: 512Mi\n+  memory: 1Gi\n"), "{md}");
    assert!(!md.contains('\x1b'));
    assert!(
        !md.contains("sk_live_hunter2") && md.contains("STRIPE_SECRET_KEY: (sensitive, sha256:"),
        "{md}"
    );

    // The same revision against itself: nothing.
    let out = offline(&repo, &ns, &["--against", "HEAD", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("No changes."), "{}", stdout(&out));

    // A ref that does not exist is named.
    let out = offline(&repo, &ns, &["--against", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-branch"), "{}", stderr(&out));

    // --offline needs --against, and --against needs --offline.
    // A usage error (EX_USAGE), never 2, which means "changes pending".
    assert_eq!(offline(&repo, &ns, &[]).status.code(), Some(64));
}

fn repo_rev(repo: &Repo, rev: &str) -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", rev])
        .current_dir(repo.path())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn offline_plans_the_worktree_against_a_commit() {
    let repo = Repo::example();
    let ns = unique_namespace();
    repo.edit("tenants/us/acme.yaml", "Acme", "Acme & <b>Sons</b>");
    let out = offline(&repo, &ns, &["--worktree", "--against", "HEAD"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        changes(&text),
        [
            ("-/+".to_string(), format!("container.{ns}-acme")),
            ("~".to_string(), "tenant-record.acme".to_string()),
        ],
        "{text}"
    );
    let head = &repo.head()[..12];
    assert!(
        text.contains(&format!(
            "Note: offline: revision {head}+worktree compared with {head} (--against)"
        )),
        "{text}"
    );

    // An invalid revision on either side is reported like plan reports it, and nothing planned.
    repo.edit("plans/professional.yaml", "memory: 512Mi", "memory: 512Mb");
    let out = offline(
        &repo,
        &ns,
        &["--worktree", "--against", "HEAD", "-o", "markdown"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("plans/professional.yaml:") && err.contains("`512Mb` is not a valid quantity"),
        "{err}"
    );
    assert!(
        err.contains(&format!("(revision {head}+worktree)")),
        "{err}"
    );
}

/// `plan --output markdown` against the real engine and database: every example tenant is a
/// details block on a fresh host; once applied, a commit shows only its tenant, and the offline
/// plan of that commit against the applied one is the same plan.
fn markdown_against_the_engine(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let out = env.run(&["plan", "--output", "markdown", "--detailed-exitcode"]);
    let md = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{md}{}", stderr(&out));
    let head = env.repo.head();
    assert!(
        md.starts_with(&format!(
            "### tenantctl plan\n\nRevision <code>{}</code>, namespace <code>{}</code>: **30** to create, **0** to update, **0** to replace, **0** to destroy.\n",
            &head[..12],
            env.ns
        )),
        "{md}"
    );
    let summaries: Vec<&str> = md.lines().filter(|l| l.starts_with("<details>")).collect();
    assert_eq!(
        summaries,
        [
            "<details><summary>plans and themes: + 6 changes</summary>",
            "<details><summary>acme: + 4 changes</summary>",
            "<details><summary>globex: + 4 changes</summary>",
            "<details><summary>hooli: + 4 changes</summary>",
            "<details><summary>initech: + 4 changes</summary>",
            "<details><summary>stark: + 4 changes</summary>",
            "<details><summary>umbrella: + 4 changes</summary>",
        ],
        "{md}"
    );
    assert_eq!(md.matches("\n</details>\n").count(), 7);

    env.apply_ok(&[]);
    let out = env.run(&["plan", "--output", "markdown", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("**No changes.**"), "{}", stdout(&out));

    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "LOG_LEVEL: info",
            "LOG_LEVEL: debug",
        )
        .commit("acme logs more");
    let online = env.run(&["plan", "--output", "markdown", "--detailed-exitcode"]);
    let md = stdout(&online);
    assert_eq!(online.status.code(), Some(2), "{md}{}", stderr(&online));
    let summaries: Vec<&str> = md.lines().filter(|l| l.starts_with("<details>")).collect();
    assert_eq!(
        summaries,
        ["<details><summary>acme: -/+ 1 change</summary>"],
        "{md}"
    );
    assert!(
        md.contains("\n-  LOG_LEVEL: info\n+  LOG_LEVEL: debug\n"),
        "{md}"
    );

    let json = |args: &[&str]| -> serde_json::Value {
        let out = env.run(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
    };
    let online = json(&["plan", "--output", "json"]);
    let offline = json(&[
        "plan",
        "--output",
        "json",
        "--offline",
        "--against",
        "HEAD~1",
    ]);
    let shown = |doc: &serde_json::Value| -> Vec<(String, String)> {
        doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["address"].as_str().unwrap().to_string(),
                    c["action"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(shown(&offline), shown(&online));
    assert_eq!(
        offline["changes"][0]["before"],
        online["changes"][0]["before"]
    );
    assert_eq!(
        offline["changes"][0]["after"],
        online["changes"][0]["after"]
    );
}

on_both_databases!(markdown_against_the_engine);
