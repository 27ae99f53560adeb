//! `tenantctl validate`: every problem at once, as path:line:column, never touching anything.

use crate::support::Repo;
use predicates::prelude::*;

/// What `validate` prints on stderr for a repository it refuses (exit 1).
fn refused(repo: &Repo) -> String {
    let out = repo
        .tenantctl()
        .arg("validate")
        .assert()
        .code(1)
        .get_output()
        .clone();
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn the_projects_own_example_is_valid() {
    let repo = Repo::example();
    repo.tenantctl()
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Valid: 3 plans, 3 themes, 6 tenants",
        ));
}

#[test]
fn a_broken_repository_gets_every_error_at_once_and_exit_1() {
    let repo = Repo::example();
    repo.edit("plans/professional.yaml", "memory: 512Mi", "memory: 512Mb")
        .edit(
            "tenants/us/acme.yaml",
            "plan: professional",
            "plan: profesional",
        )
        .edit("tenants/us/globex.yaml", "name: globex", "name: Globex")
        .edit(
            "tenants/eu/stark.yaml",
            "owner: tony@stark.example",
            "owner: ops@acme.example",
        )
        .edit(
            "themes/classic.yaml",
            "  port: 8080\n",
            "  port: 8080\n  colour: red\n",
        )
        .write(
            "tenants/broken.yaml",
            "kind: Tenant\nname: broken\nspec: [unclosed\n",
        );
    let stderr = refused(&repo);
    for expected in [
        "plans/professional.yaml:7:35: memory: `512Mb` is not a valid quantity: unknown unit `Mb`\n  hint: did you mean 512Mi?",
        "tenants/us/acme.yaml:6:9: plan `profesional` does not exist\n  hint: did you mean `professional`?",
        "tenants/us/globex.yaml:2:7: invalid tenant name: `Globex` contains `G`",
        "tenants/us/acme.yaml:5:10: owner `ops@acme.example` already owns tenant `stark` (tenants/eu/stark.yaml:5:10)",
        "themes/classic.yaml:7:3: unknown field `colour`",
        "tenants/broken.yaml:3:7: unclosed bracket",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("6 problems in 5 files"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(
        !repo.path().join(".tenantctl").exists(),
        "validate must not create a database"
    );
}

#[test]
fn validate_a_commit_instead_of_the_worktree() {
    let repo = Repo::example();
    repo.edit("tenants/us/acme.yaml", "state: active", "state: paused");
    repo.tenantctl()
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "tenants/us/acme.yaml:8:10: unknown variant `paused`",
        ));
    repo.tenantctl()
        .args(["validate", "--ref", "HEAD"])
        .assert()
        .success();
    repo.commit("break it");
    repo.tenantctl()
        .args(["validate", "--ref", "HEAD"])
        .assert()
        .code(1);
    repo.tenantctl()
        .args(["validate", "--ref", "HEAD~1"])
        .assert()
        .success();
}

#[test]
fn oversized_files_and_symlinks_are_refused_with_a_message() {
    let repo = Repo::example();
    repo.write(
        "tenants/huge.yaml",
        &format!("# {}\n", "x".repeat(2 * 1024 * 1024)),
    );
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join("tenants/link.yaml")).unwrap();
    repo.commit("bad files");
    for args in [vec!["validate"], vec!["validate", "--ref", "HEAD"]] {
        let out = repo
            .tenantctl()
            .args(&args)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("tenants/huge.yaml:1:1: is 2097155 bytes; files over 1048576 bytes (1 MiB) are refused unread"), "{stderr}");
        assert!(
            stderr.contains("tenants/link.yaml:1:1: is a symbolic link"),
            "{stderr}"
        );
    }
}

#[test]
fn an_alias_bomb_is_refused_quickly() {
    let repo = Repo::example();
    let mut bomb =
        String::from("kind: Tenant\nname: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..20 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    bomb.push_str("spec: *a19\n");
    repo.write("tenants/bomb.yaml", &bomb);
    let started = std::time::Instant::now();
    repo.tenantctl()
        .arg("validate")
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("tenants/bomb.yaml:").and(predicate::str::contains("refused")),
        );
    assert!(
        started.elapsed().as_secs() < 10,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn validate_works_on_a_folder_that_is_not_a_git_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plans")).unwrap();
    std::fs::write(
        dir.path().join("plans/p.yaml"),
        "kind: Plan\nname: p\nspec: {}\n",
    )
    .unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("tenantctl").unwrap();
    cmd.current_dir(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "plans/p.yaml:3:7: missing field `displayName`",
        ));
}

#[test]
fn hostile_values_are_reported_where_they_stand_and_printed_escaped() {
    let repo = Repo::example();
    repo.edit(
        "themes/modern.yaml",
        "path: /health",
        "path: \"/health;touch${IFS}/x;#\"",
    )
    .edit(
        "tenants/us/acme.yaml",
        "displayName: Acme Corp",
        "displayName: \"Acme\\e[2J\\u202Egnp.exe\"",
    )
    .edit(
        "plans/starter.yaml",
        "users: 5",
        "users: 18446744073709551615",
    )
    .write("tenants/\u{1b}]0;title\u{7}.yaml", "kind: Tenant\n");
    let stderr = refused(&repo);
    for expected in [
        "themes/modern.yaml:8:19: health path `/health;touch${IFS}/x;#` contains `;`",
        "tenants/us/acme.yaml:4:16: displayName contains U+001B (a control character)",
        "plans/starter.yaml:9:74: quota 18446744073709551615 does not fit the database",
        "tenants/\\u{1b}]0;title\\u{7}.yaml:1:1: file name contains U+001B",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}', '\u{202E}']),
        "printed raw: {stderr:?}"
    );
}
