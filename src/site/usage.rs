//! Usage counters and their file, `$SITE_DATA_DIR/usage.json`, on the tenant's data volume.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The name of the counters file inside the data directory.
pub const USAGE_FILE: &str = "usage.json";

/// Format of the counters file; a newer one is refused rather than misread.
const FORMAT: u32 = 1;

/// What the site has counted. Month counters belong to `month` (`YYYY-MM`, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub month: String,
    /// Admitted API calls since counting began (survives restarts through the file).
    pub api_calls_total: u64,
    pub api_calls_month: u64,
    pub ai_interactions_month: u64,
    /// API requests refused by the per-minute rate limit.
    pub rate_limited_total: u64,
    /// API requests without a valid key.
    pub unauthorized_total: u64,
    /// API requests refused because a monthly quota was used up.
    pub quota_rejections_total: u64,
}

/// The file's shape: the counters plus whose they are, so a volume reused by another tenant
/// does not hand its usage over.
#[derive(Debug, Serialize, Deserialize)]
struct UsageFile {
    format: u32,
    tenant: String,
    saved_at: String,
    counters: Counters,
}

/// The counters file of one tenant.
#[derive(Debug, Clone)]
pub(crate) struct UsageStore {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    tenant: String,
}

impl UsageStore {
    /// A store in `dir`, which must be an existing directory.
    pub(crate) fn open(dir: &Path, tenant: &str) -> Result<Self, String> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => Ok(UsageStore {
                path: dir.join(USAGE_FILE),
                tmp: dir.join(format!(".{USAGE_FILE}.tmp")),
                dir: dir.to_path_buf(),
                tenant: tenant.to_string(),
            }),
            Ok(_) => Err(format!("{} is not a directory", dir.display())),
            Err(e) => Err(format!("{}: {e}", dir.display())),
        }
    }

    /// Whether this process can write the counters here; the error says who owns the directory
    /// and what to do (a volume written by an older tenantctl whose site ran as root).
    pub(crate) fn check_writable(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let probe = self.dir.join(".write-check");
        match fs::File::create(&probe) {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
                Ok(())
            }
            Err(e) => {
                // /proc/self belongs to the process's effective user.
                let me = fs::metadata("/proc/self").map(|m| format!("{}:{}", m.uid(), m.gid()));
                let owner = fs::metadata(&self.dir).map(|m| format!("{}:{}", m.uid(), m.gid()));
                Err(format!(
                    "the data directory {} is not writable by this process (uid:gid {}; the directory belongs to {}): {e}. A volume written by an older tenantctl, whose site ran as root, is handed to the site user when `tenantctl apply` replaces the container; or run `docker run --rm --user 0:0 --cap-drop ALL --cap-add CHOWN --cap-add FOWNER --cap-add DAC_READ_SEARCH -v VOLUME:/data IMAGE site-data-owner /data {}`",
                    self.dir.display(),
                    me.as_deref().unwrap_or("?"),
                    owner.as_deref().unwrap_or("?"),
                    crate::runtime::types::site_user(),
                ))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The saved counters: `Ok(None)` when there is no file yet; `Err` says why the file was not
    /// used (the caller starts from zero; an unreadable file is moved aside, never lost).
    pub(crate) fn load(&self) -> Result<Option<Counters>, String> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let file: UsageFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                let aside = self.path.with_extension("json.corrupt");
                let moved = fs::rename(&self.path, &aside)
                    .map(|()| format!("moved to {}", aside.display()))
                    .unwrap_or_else(|e| format!("could not move it aside: {e}"));
                return Err(format!(
                    "{} is not a usage file ({e}); {moved}; counting from zero",
                    self.path.display()
                ));
            }
        };
        if file.format != FORMAT {
            return Err(format!(
                "{} has format {} (this tenantctl reads {FORMAT}); counting from zero",
                self.path.display(),
                file.format
            ));
        }
        if file.tenant != self.tenant {
            return Err(format!(
                "{} holds the counters of tenant `{}`, not `{}`; counting from zero",
                self.path.display(),
                file.tenant,
                self.tenant
            ));
        }
        Ok(Some(file.counters))
    }

    /// Writes the counters atomically: a temporary file, flushed to disk, renamed over the old
    /// one, so a crash leaves either the old or the new counters, never half a file.
    pub(crate) fn save(&self, counters: &Counters, saved_at: &str) -> io::Result<()> {
        let file = UsageFile {
            format: FORMAT,
            tenant: self.tenant.clone(),
            saved_at: saved_at.to_string(),
            counters: counters.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        let mut f = fs::File::create(&self.tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.path)?;
        // Makes the rename itself durable; some filesystems refuse to sync a directory, harmlessly.
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod writable_tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_leaves_nothing() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = UsageStore::open(dir.path(), "acme")?;
        store.check_writable()?;
        let left: Vec<_> = fs::read_dir(dir.path())
            .map_err(|e| e.to_string())?
            .collect();
        assert!(left.is_empty(), "{left:?}");
        Ok(())
    }

    #[test]
    fn a_directory_nobody_can_write_is_named_with_its_owner_and_the_fix() -> Result<(), String> {
        // /proc takes no new files, not even from root: what a root-owned volume is to uid 10001.
        let store = UsageStore::open(Path::new("/proc"), "acme")?;
        let why = store.check_writable().err().ok_or("/proc was writable")?;
        assert!(
            why.contains("/proc is not writable by this process (uid:gid "),
            "{why}"
        );
        assert!(why.contains("the directory belongs to 0:0"), "{why}");
        assert!(why.contains("site-data-owner /data 10001:10001"), "{why}");
        Ok(())
    }
}
