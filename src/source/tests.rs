use super::*;
use crate::testing::git;

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

/// Path and kind of marker of every file that is not plain bytes, so two snapshots compare.
fn markers(snap: &Snapshot) -> Vec<(String, &'static str)> {
    snap.files
        .iter()
        .filter_map(|f| {
            let kind = match f.content {
                SourceContent::Submodule => "submodule",
                SourceContent::NonUtf8Name => "non-utf8 name",
                SourceContent::Symlink => "symlink",
                _ => return None,
            };
            Some((f.path.clone(), kind))
        })
        .collect()
}

#[test]
fn non_utf8_names_are_marked_the_same_way_in_commits_and_on_disk() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write(d, "tenants/ok.yaml", "ok");
    let bad_file = d
        .join("tenants")
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.yaml"));
    std::fs::write(&bad_file, "kind: Tenant").unwrap();
    let bad_dir = d
        .join("plans")
        .join(std::ffi::OsStr::from_bytes(b"\xff\xfe"));
    std::fs::create_dir_all(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("p.yaml"), "kind: Plan").unwrap();
    std::fs::write(bad_dir.join("notes.txt"), "not state").unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "one"]);
    let repo = Repo::discover(d).unwrap();
    let expected = vec![
        ("plans/\\xff\\xfe/p.yaml".to_string(), "non-utf8 name"),
        ("tenants/caf\\xe9.yaml".to_string(), "non-utf8 name"),
    ];
    assert_eq!(markers(&repo.snapshot_at("HEAD").unwrap()), expected);
    assert_eq!(markers(&repo.snapshot_worktree().unwrap()), expected);
    let plain = read_dirs(d, |_| false).unwrap();
    let plain = Snapshot {
        revision: "worktree".into(),
        base_revision: None,
        files: plain,
    };
    assert_eq!(markers(&plain), expected);
}

#[test]
fn submodules_are_marked_in_commits_checked_out_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write(d, "tenants/ok.yaml", "ok");
    // A gitlink that is not checked out (an empty directory at most on disk)...
    git(
        d,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,1111111111111111111111111111111111111111,tenants/vendor",
        ],
    );
    // ...and one whose repository sits in the worktree.
    let inner = d.join("themes/shared");
    std::fs::create_dir_all(&inner).unwrap();
    git(&inner, &["init", "-q"]);
    write(d, "themes/shared/t.yaml", "kind: Theme");
    git(&inner, &["add", "-A"]);
    git(&inner, &["commit", "-qm", "inner"]);
    git(d, &["add", "tenants/ok.yaml", "themes/shared"]);
    git(d, &["commit", "-qm", "one"]);
    let repo = Repo::discover(d).unwrap();
    let expected = vec![
        ("tenants/vendor".to_string(), "submodule"),
        ("themes/shared".to_string(), "submodule"),
    ];
    let mut committed = markers(&repo.snapshot_at("HEAD").unwrap());
    committed.sort();
    assert_eq!(committed, expected);
    let mut on_disk = markers(&repo.snapshot_worktree().unwrap());
    on_disk.sort();
    assert_eq!(on_disk, expected);
}
