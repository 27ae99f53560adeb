use super::*;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn text(f: &SourceFile) -> &str {
    match &f.content {
        SourceContent::Bytes(b) => std::str::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_commits_from_the_object_database_not_the_worktree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "tenants/eu/acme.yaml", "v1");
    write(d, "plans/p.yml", "plan");
    write(d, "README.md", "not state");
    write(d, "tenants/notes.txt", "not yaml");
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "one"]);
    write(d, "tenants/eu/acme.yaml", "v2");
    write(d, "tenants/new.yaml", "new");

    let repo = Repo::discover(&d.join("tenants")).unwrap();
    let head = repo.snapshot_at("HEAD").unwrap();
    assert_eq!(head.revision.len(), 40);
    let paths: Vec<&str> = head.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["plans/p.yml", "tenants/eu/acme.yaml"]);
    assert_eq!(text(&head.files[1]), "v1");

    let wt = repo.snapshot_worktree().unwrap();
    let paths: Vec<&str> = wt.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["plans/p.yml", "tenants/eu/acme.yaml", "tenants/new.yaml"]
    );
    assert_eq!(text(&wt.files[1]), "v2");
    assert_eq!(wt.base_revision.as_deref(), Some(head.revision.as_str()));

    assert_eq!(
        repo.uncommitted_changes().unwrap(),
        ["tenants/eu/acme.yaml", "tenants/new.yaml"]
    );

    git(d, &["commit", "-qam", "two"]);
    let prev = repo.snapshot_at("HEAD~1").unwrap();
    assert_eq!(text(&prev.files[1]), "v1");
    assert_eq!(text(&repo.snapshot_at("main").unwrap().files[1]), "v2");
}

#[test]
fn links_and_large_files_are_marked_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write(d, "tenants/big.yaml", &"# pad\n".repeat(200_000));
    std::os::unix::fs::symlink("/etc/passwd", d.join("tenants/link.yaml")).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "one"]);
    let repo = Repo::discover(d).unwrap();
    for snap in [
        repo.snapshot_at("HEAD").unwrap(),
        repo.snapshot_worktree().unwrap(),
    ] {
        assert!(
            matches!(snap.files[0].content, SourceContent::TooLarge(1_200_000)),
            "{:?}",
            snap.files[0].path
        );
        assert!(matches!(snap.files[1].content, SourceContent::Symlink));
    }
}

#[test]
fn clear_errors_for_bad_refs_and_empty_repositories() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    let repo = Repo::discover(dir.path()).unwrap();
    let e = repo.snapshot_at("HEAD").unwrap_err().to_string();
    assert!(e.contains("has no commits yet"), "{e}");
    write(dir.path(), "plans/a.yaml", "a");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "one"]);
    let e = repo.snapshot_at("no-such-branch").unwrap_err().to_string();
    assert!(e.contains("`no-such-branch` does not name a commit"), "{e}");

    let plain = tempfile::tempdir().unwrap();
    let e = Repo::discover(plain.path()).err().unwrap().to_string();
    assert!(e.contains("is not inside a git repository"), "{e}");
}
