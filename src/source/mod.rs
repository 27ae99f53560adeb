//! The desired state's files: at a commit (from git's object database) or in the worktree.

use crate::model::{MAX_FILE_BYTES, SourceContent, SourceFile};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub mod remote;

/// The directories that hold desired state; everything else in the repository is ignored.
pub const STATE_DIRS: [&str; 5] = ["plans", "themes", "tenants", "notifications", "edge"];

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "{path} is not inside a git repository; run tenantctl in your state repository or pass --repo DIR"
    )]
    NotARepository { path: PathBuf },
    #[error("cannot open the git repository at {path}: {source}")]
    Open { path: PathBuf, source: git2::Error },
    #[error(
        "{path} is a bare repository; tenantctl needs a working tree (clone it without --bare)"
    )]
    Bare { path: PathBuf },
    #[error("`{reference}` does not name a commit in {repo}: {message}")]
    BadRef {
        reference: String,
        repo: PathBuf,
        message: String,
    },
    #[error(
        "the repository at {repo} has no commits yet; commit plans/, themes/ and tenants/ first, or preview with --worktree"
    )]
    NoCommits { repo: PathBuf },
    #[error("reading {what} failed: {source}")]
    Git { what: String, source: git2::Error },
    #[error(
        "fetching branch `{branch}` of {url} failed: {message}; check the URL, the branch, and credentials (ssh agent, or a git credential helper for https)"
    )]
    Fetch {
        url: String,
        branch: String,
        message: String,
    },
    #[error("reading {path} failed: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The desired-state files at one revision.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The full commit id, or `worktree` for uncommitted files.
    pub revision: String,
    /// The commit the worktree sits on, when this is a worktree snapshot.
    pub base_revision: Option<String>,
    pub files: Vec<SourceFile>,
}

impl Snapshot {
    pub fn short_revision(&self) -> String {
        match &self.base_revision {
            Some(base) => format!("{}+worktree", &base[..base.len().min(12)]),
            None => self.revision[..self.revision.len().min(12)].to_string(),
        }
    }
}

pub struct Repo {
    repo: git2::Repository,
    root: PathBuf,
}

impl Repo {
    /// Opens a bare repository (the cache of a remote); it has no worktree, so only commits are read.
    pub fn open_bare(path: &Path) -> Result<Repo, SourceError> {
        let repo = git2::Repository::open_bare(path).map_err(|source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Repo {
            repo,
            root: path.to_path_buf(),
        })
    }

    /// Opens the repository that contains `start` (a directory), like git does.
    pub fn discover(start: &Path) -> Result<Repo, SourceError> {
        let repo = git2::Repository::discover(start).map_err(|e| {
            if e.code() == git2::ErrorCode::NotFound {
                SourceError::NotARepository {
                    path: start.to_path_buf(),
                }
            } else {
                SourceError::Open {
                    path: start.to_path_buf(),
                    source: e,
                }
            }
        })?;
        let root = repo
            .workdir()
            .ok_or_else(|| SourceError::Bare {
                path: start.to_path_buf(),
            })?
            .to_path_buf();
        Ok(Repo { repo, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The git directory (`.git`, or the worktree's own under `.git/worktrees/`), whose refs
    /// move when someone commits.
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }

    /// The directory shared by all worktrees, where `refs/` and `packed-refs` live.
    pub fn common_dir(&self) -> &Path {
        self.repo.commondir()
    }

    /// Resolves a ref, branch, tag or commit id to a full commit id.
    pub fn resolve(&self, reference: &str) -> Result<git2::Oid, SourceError> {
        if reference == "HEAD"
            && self
                .repo
                .head()
                .is_err_and(|e| e.code() == git2::ErrorCode::UnbornBranch)
        {
            return Err(SourceError::NoCommits {
                repo: self.root.clone(),
            });
        }
        let object = self
            .repo
            .revparse_single(reference)
            .map_err(|e| SourceError::BadRef {
                reference: reference.to_string(),
                repo: self.root.clone(),
                message: e.message().to_string(),
            })?;
        let commit = object.peel_to_commit().map_err(|e| SourceError::BadRef {
            reference: reference.to_string(),
            repo: self.root.clone(),
            message: e.message().to_string(),
        })?;
        Ok(commit.id())
    }

    /// The desired-state files of a commit, read from the object database (never the worktree).
    pub fn snapshot_at(&self, reference: &str) -> Result<Snapshot, SourceError> {
        let oid = self.resolve(reference)?;
        let git = |what: &str| {
            let what = what.to_string();
            move |source| SourceError::Git { what, source }
        };
        let commit = self.repo.find_commit(oid).map_err(git("the commit"))?;
        let tree = commit.tree().map_err(git("the commit's tree"))?;
        let odb = self.repo.odb().map_err(git("the object database"))?;
        let mut files = Vec::new();
        for dir in STATE_DIRS {
            let Some(entry) = tree.get_name(dir) else {
                continue;
            };
            if entry.kind() == Some(git2::ObjectType::Commit) {
                files.push(SourceFile {
                    path: dir.to_string(),
                    content: SourceContent::Submodule,
                });
                continue;
            }
            if entry.kind() != Some(git2::ObjectType::Tree) {
                continue;
            }
            let subtree = self.repo.find_tree(entry.id()).map_err(git(dir))?;
            self.walk_tree(&odb, &subtree, dir, false, &mut files)?;
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Snapshot {
            revision: oid.to_string(),
            base_revision: None,
            files,
        })
    }

    /// `bad_name`: some directory on the way has a name that is not UTF-8.
    fn walk_tree(
        &self,
        odb: &git2::Odb<'_>,
        tree: &git2::Tree<'_>,
        prefix: &str,
        bad_name: bool,
        out: &mut Vec<SourceFile>,
    ) -> Result<(), SourceError> {
        for entry in tree.iter() {
            let (name, utf8) = name_text(entry.name_bytes());
            let bad_name = bad_name || !utf8;
            let path = format!("{prefix}/{name}");
            match entry.kind() {
                // A gitlink: the submodule's files are in another repository, never read.
                Some(git2::ObjectType::Commit) => out.push(SourceFile {
                    path,
                    content: SourceContent::Submodule,
                }),
                Some(git2::ObjectType::Tree) => {
                    let sub =
                        self.repo
                            .find_tree(entry.id())
                            .map_err(|source| SourceError::Git {
                                what: path.clone(),
                                source,
                            })?;
                    self.walk_tree(odb, &sub, &path, bad_name, out)?;
                }
                Some(git2::ObjectType::Blob) if entry.filemode() == 0o120000 => {
                    out.push(SourceFile {
                        path,
                        content: SourceContent::Symlink,
                    });
                }
                Some(git2::ObjectType::Blob) if is_state_file(&path) && bad_name => {
                    out.push(SourceFile {
                        path,
                        content: SourceContent::NonUtf8Name,
                    });
                }
                Some(git2::ObjectType::Blob) if is_state_file(&path) => {
                    let content = {
                        // The header gives the size without inflating a possibly huge blob.
                        let (size, _) =
                            odb.read_header(entry.id())
                                .map_err(|source| SourceError::Git {
                                    what: path.clone(),
                                    source,
                                })?;
                        if size as u64 > MAX_FILE_BYTES {
                            SourceContent::TooLarge(size as u64)
                        } else {
                            let blob = self.repo.find_blob(entry.id()).map_err(|source| {
                                SourceError::Git {
                                    what: path.clone(),
                                    source,
                                }
                            })?;
                            SourceContent::Bytes(blob.content().to_vec())
                        }
                    };
                    out.push(SourceFile { path, content });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The desired-state files as they are on disk now, committed or not (ignored files excluded).
    pub fn snapshot_worktree(&self) -> Result<Snapshot, SourceError> {
        let base = self.resolve("HEAD").ok().map(|o| o.to_string());
        let repo = &self.repo;
        let mut files = read_dirs(&self.root, |rel| repo.is_path_ignored(rel).unwrap_or(false))?;
        // A submodule that is not checked out is an empty directory on disk; the index knows it.
        let index = repo.index().map_err(|source| SourceError::Git {
            what: "the index".into(),
            source,
        })?;
        for entry in index.iter() {
            let (path, _) = name_text(&entry.path);
            let in_state_dirs = STATE_DIRS.iter().any(|d| {
                path.strip_prefix(d)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            });
            if entry.mode == 0o160000 && in_state_dirs && !files.iter().any(|f| f.path == path) {
                files.push(SourceFile {
                    path,
                    content: SourceContent::Submodule,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Snapshot {
            revision: "worktree".into(),
            base_revision: base,
            files,
        })
    }

    /// Desired-state paths whose worktree content differs from HEAD (modified, added, deleted, untracked).
    pub fn uncommitted_changes(&self) -> Result<Vec<String>, SourceError> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        for dir in STATE_DIRS {
            opts.pathspec(dir);
        }
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|source| SourceError::Git {
                what: "the worktree status".into(),
                source,
            })?;
        let mut paths: Vec<String> = statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT && !s.status().is_ignored())
            .filter_map(|s| s.path().ok().map(str::to_string))
            .filter(|p| is_state_file(p))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

/// Reads the state directories of a plain directory (a worktree, or a folder that is not a git repository).
pub fn read_dirs(
    root: &Path,
    ignored: impl Fn(&Path) -> bool,
) -> Result<Vec<SourceFile>, SourceError> {
    let mut files = Vec::new();
    for dir in STATE_DIRS {
        walk_dir(root, Path::new(dir), &ignored, &mut files)?;
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn walk_dir(
    root: &Path,
    rel: &Path,
    ignored: &impl Fn(&Path) -> bool,
    out: &mut Vec<SourceFile>,
) -> Result<(), SourceError> {
    let full = root.join(rel);
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(SourceError::Io { path: full, source }),
    };
    let (path, utf8) = name_text(rel.as_os_str().as_bytes());
    if meta.file_type().is_symlink() {
        // Links are reported, never followed: they could lead out of the repository.
        out.push(SourceFile {
            path,
            content: SourceContent::Symlink,
        });
        return Ok(());
    }
    if meta.is_dir() && std::fs::symlink_metadata(full.join(".git")).is_ok() {
        // Another repository inside this one (a submodule): its files are not this revision's.
        out.push(SourceFile {
            path,
            content: SourceContent::Submodule,
        });
        return Ok(());
    }
    if meta.is_dir() {
        let entries = std::fs::read_dir(&full).map_err(|source| SourceError::Io {
            path: full.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| SourceError::Io {
                path: full.clone(),
                source,
            })?;
            let child = rel.join(entry.file_name());
            if ignored(&child) {
                continue;
            }
            walk_dir(root, &child, ignored, out)?;
        }
        return Ok(());
    }
    if meta.is_file() && is_state_file(&path) {
        let content = if !utf8 {
            SourceContent::NonUtf8Name
        } else if meta.len() > MAX_FILE_BYTES {
            SourceContent::TooLarge(meta.len())
        } else {
            SourceContent::Bytes(
                std::fs::read(&full).map_err(|source| SourceError::Io { path: full, source })?,
            )
        };
        out.push(SourceFile { path, content });
    }
    Ok(())
}

/// A name (or path) from git or the file system as text: bytes that are not UTF-8 are written
/// `\\xNN`, the same way from both, so every command names and refuses the same file. The flag
/// says whether it was UTF-8.
fn name_text(bytes: &[u8]) -> (String, bool) {
    let mut text = String::with_capacity(bytes.len());
    let mut utf8 = true;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for b in chunk.invalid() {
            utf8 = false;
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    (text, utf8)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The files a revision's desired state is read from: YAML in the state directories, and the
/// PEM files under `edge/` that `tls: files` names (certificates and keys, read like the YAML
/// from the commit, so a changed certificate is a change of the revision).
fn is_state_file(path: &str) -> bool {
    is_yaml(path) || crate::model::is_edge_pem(path)
}

#[cfg(test)]
mod tests;
