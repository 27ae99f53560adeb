//! What the site accepts and offers beyond its environment: the access file
//! (`$SITE_DATA_DIR/access.json`, see `crate::access`) with the digests of the tenant's live
//! keys and its effective flags. Polled about every second; a changed file (size or mtime) is
//! read and swapped in whole. A file that cannot be used (half written by the engine's archive
//! extraction, another tenant's, a newer format) leaves the last good one in force and is read
//! again at the next change. Without a file, the environment's `TENANT_API_KEY_SHA256` and
//! `TENANT_FEATURES` are what counts (a container made before keys were a table).

use super::config::{KeyHash, SiteConfig};
use crate::access::{ACCESS_FILE, AccessFile, FORMAT, MAX_BYTES};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// How often the file is looked at.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// One key the site may accept.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// What last-use is recorded under (the digest's first 16 hex digits).
    pub id: String,
    pub hash: KeyHash,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Key {
    pub(crate) fn live_at(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

/// The keys and flags in force.
#[derive(Clone, Default)]
pub(crate) struct Grants {
    pub keys: Vec<Key>,
    /// `(flag, source)`; source is `None` when read from the environment.
    pub features: Vec<(String, Option<String>)>,
    /// Read from the access file (else from the environment).
    pub from_file: bool,
}

impl Grants {
    /// What the environment grants: its one key, its flags.
    pub(crate) fn from_env(config: &SiteConfig) -> Grants {
        Grants {
            keys: config
                .api_key_sha256
                .map(|hash| Key {
                    id: hex::encode(&hash.0[..8]),
                    hash,
                    expires_at: None,
                    revoked_at: None,
                })
                .into_iter()
                .collect(),
            features: config.features.iter().map(|f| (f.clone(), None)).collect(),
            from_file: false,
        }
    }

    /// What the file grants, checked to be `tenant`'s and of a format this site reads.
    pub(crate) fn from_file(bytes: &[u8], tenant: &str) -> Result<Grants, String> {
        let file: AccessFile =
            serde_json::from_slice(bytes).map_err(|e| format!("not an access file: {e}"))?;
        if file.format != FORMAT {
            return Err(format!("format {} (this site reads {FORMAT})", file.format));
        }
        if file.tenant != tenant {
            return Err(format!(
                "it is tenant `{}`'s, not `{tenant}`'s",
                file.tenant
            ));
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&k.sha256, &mut hash)
                .map_err(|_| format!("key `{}` has no SHA-256 in hex", k.name))?;
            keys.push(Key {
                id: k.id,
                hash: KeyHash(hash),
                expires_at: k.expires_at,
                revoked_at: k.revoked_at,
            });
        }
        Ok(Grants {
            keys,
            features: file
                .features
                .into_iter()
                .map(|f| (f.flag, Some(f.source)))
                .collect(),
            from_file: true,
        })
    }
}

/// The grants in force, shared by the requests and the poller.
pub(crate) struct Access {
    current: RwLock<Arc<Grants>>,
}

impl Access {
    pub(crate) fn new(grants: Grants) -> Access {
        Access {
            current: RwLock::new(Arc::new(grants)),
        }
    }

    pub(crate) fn get(&self) -> Arc<Grants> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, grants: Grants) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(grants);
    }
}

/// The access file's path for a data directory.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(ACCESS_FILE)
}

/// What identifies a version of the file without reading it.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Reads the file if it changed since `seen`; swaps in what it grants. Returns the new stamp.
/// A file that disappears leaves the last grants in force (the engine's extraction removes
/// the old file before it writes the new one).
pub(crate) fn refresh(access: &Access, file: &Path, tenant: &str, seen: Stamp) -> Stamp {
    let now = stamp(file);
    if now == seen || now.is_none() {
        return if now.is_none() { seen } else { now };
    }
    let read = std::fs::File::open(file).and_then(|f| {
        use std::io::Read;
        let mut bytes = Vec::new();
        f.take(MAX_BYTES + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    let grants = match read {
        Ok(bytes) if bytes.len() as u64 > MAX_BYTES => {
            Err(format!("larger than {MAX_BYTES} bytes"))
        }
        Ok(bytes) => Grants::from_file(&bytes, tenant),
        Err(e) => Err(e.to_string()),
    };
    match grants {
        Ok(g) => {
            info!(
                path = %file.display(),
                keys = g.keys.len(),
                features = g.features.len(),
                "access file loaded"
            );
            access.set(g);
            now
        }
        Err(why) => {
            // Seen again only when it changes once more (a half-written file changes soon).
            warn!(path = %file.display(), "access file not used, the last one stays in force: {why}");
            now
        }
    }
}

/// Polls the file until `stop` says so.
pub(crate) async fn poll_loop(
    access: Arc<Access>,
    file: PathBuf,
    tenant: String,
    mut seen: Stamp,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let (a, f, t) = (access.clone(), file.clone(), tenant.clone());
        match tokio::task::spawn_blocking(move || refresh(&a, &f, &t, seen)).await {
            Ok(s) => seen = s,
            Err(e) => warn!(error = %e, "reading the access file panicked"),
        }
    }
}

/// The grants at start: the file when there is a usable one, else the environment's. Returns
/// the stamp of the file read.
pub(crate) fn initial(config: &SiteConfig) -> (Access, Option<PathBuf>, Stamp) {
    let access = Access::new(Grants::from_env(config));
    let Some(dir) = &config.data_dir else {
        return (access, None, None);
    };
    let file = path(dir);
    let seen = refresh(&access, &file, &config.tenant_slug, None);
    (access, Some(file), seen)
}
