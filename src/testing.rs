//! What the unit tests of apply, watch and source share: a repository of desired state as files,
//! git run in a scratch repository, a scratch SQLite store, and a progress sink that keeps every
//! line. The engine side is
//! [`crate::runtime::fake`].

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::apply::Progress;
use crate::model::{DesiredState, SourceContent, SourceFile};
use crate::store::Store;

/// One plan `p` and one theme `t` (the built-in site), and a tenant per `(slug, display name)`.
pub fn state_files(tenants: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "plans/p.yaml".to_string(),
            "kind: Plan\nname: p\nspec:\n  displayName: P\n  price: { amount: 1, currency: USD, cycle: monthly }\n  resources: { cpus: 1, memory: 64Mi }\n".to_string(),
        ),
        (
            "themes/t.yaml".to_string(),
            "kind: Theme\nname: t\nspec: { displayName: T, version: 1.0.0 }\n".to_string(),
        ),
    ];
    for (slug, display) in tenants {
        files.push((
            format!("tenants/{slug}.yaml"),
            format!(
                "kind: Tenant\nname: {slug}\nspec:\n  displayName: {display}\n  owner: {slug}@a.example\n  plan: p\n  theme: t\n"
            ),
        ));
    }
    files
}

/// The desired state of [`state_files`].
pub fn desired(tenants: &[(&str, &str)]) -> DesiredState {
    let files: Vec<SourceFile> = state_files(tenants)
        .into_iter()
        .map(|(path, text)| SourceFile {
            path,
            content: SourceContent::Bytes(text.into_bytes()),
        })
        .collect();
    match crate::model::load(&files) {
        Ok(desired) => desired,
        Err(diagnostics) => panic!("the fixture is invalid: {diagnostics:?}"),
    }
}

/// Runs `git args` in `dir` as a test author with no signing; fails the test if git does.
pub fn git(dir: &Path, args: &[&str]) {
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
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A migrated SQLite database in `dir`.
pub async fn scratch_store(dir: &Path) -> Store {
    match Store::open(&Store::default_url(dir)).await {
        Ok(store) => store,
        Err(e) => panic!("opening a scratch store: {e}"),
    }
}

/// Keeps every progress line, `tenant: message` for a tenant's.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl Lines {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines containing `text`.
    pub fn with(&self, text: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|l| l.contains(text))
            .collect()
    }
}

impl Progress for Lines {
    fn line(&self, tenant: Option<&str>, message: &str) {
        let line = match tenant {
            Some(t) => format!("{t}: {message}"),
            None => message.to_string(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}
