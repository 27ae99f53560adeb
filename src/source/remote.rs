//! Following a remote repository: a bare local cache, fetched on every pass, so the reconciler
//! can run on a host where nobody commits.

use super::{Repo, SourceError};
use std::path::{Path, PathBuf};

/// A remote branch mirrored into a bare cache.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    pub url: String,
    pub branch: String,
    pub cache: PathBuf,
}

impl RemoteSource {
    /// The cache directory for `url` under `base` (one per URL, so switching URLs never mixes histories).
    pub fn default_cache(base: &Path, url: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(url.as_bytes()));
        base.join(format!("{}.git", &digest[..16]))
    }

    /// The ref the fetched branch lands on in the cache.
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Fetches the branch into the cache (creating it on first use) and opens it.
    /// Credentials: the ssh agent for ssh URLs, git's credential helpers for https.
    pub fn fetch(&self) -> Result<Repo, SourceError> {
        let git = |what: &str| {
            let what = what.to_string();
            move |source| SourceError::Git { what, source }
        };
        let repo = match git2::Repository::open_bare(&self.cache) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&self.cache).map_err(|source| SourceError::Io {
                    path: self.cache.clone(),
                    source,
                })?;
                git2::Repository::init_bare(&self.cache)
                    .map_err(git("creating the remote cache"))?
            }
        };
        match repo.find_remote("origin") {
            Ok(r) if r.url().ok() == Some(self.url.as_str()) => {}
            Ok(_) => repo
                .remote_set_url("origin", &self.url)
                .map_err(git("the cache's remote"))?,
            Err(_) => {
                repo.remote("origin", &self.url)
                    .map_err(git("the cache's remote"))?;
            }
        }
        let mut remote = repo
            .find_remote("origin")
            .map_err(git("the cache's remote"))?;
        let config = repo.config().map_err(git("git configuration"))?;
        let mut callbacks = git2::RemoteCallbacks::new();
        let mut tried_agent = false;
        callbacks.credentials(move |url, username, allowed| {
            if allowed.contains(git2::CredentialType::SSH_KEY) && !tried_agent {
                tried_agent = true;
                return git2::Cred::ssh_key_from_agent(username.unwrap_or("git"));
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
                return git2::Cred::credential_helper(&config, url, username);
            }
            git2::Cred::default()
        });
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(callbacks);
        let refspec = format!("+refs/heads/{}:{}", self.branch, self.tracking_ref());
        remote
            .fetch(&[&refspec], Some(&mut options), None)
            .map_err(|source| SourceError::Fetch {
                url: self.url.clone(),
                branch: self.branch.clone(),
                message: source.message().to_string(),
            })?;
        Repo::open_bare(&self.cache)
    }
}
