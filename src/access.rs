//! The access file: what a tenant's built-in site must know that changes while it runs — the
//! digests of its live API keys (with name, expiry and scheduled revocation) and its effective
//! feature flags. tenantctl writes it into the tenant's data volume (`/data/access.json`)
//! through the engine's archive API ([`tar`]); the site polls it and swaps it in
//! (`site::access`). Only digests travel: the file holds no key.
//!
//! The file lives on the volume, not in the image or the environment, so a change needs no new
//! container and a replaced container finds the newest one at once.

use crate::store::ApiKeyRow;
use serde::{Deserialize, Serialize};

/// The file's name inside the data directory.
pub const ACCESS_FILE: &str = "access.json";

/// Format of the file; a newer one is refused by the site rather than misread.
pub const FORMAT: u32 = 1;

/// How long a revoked or expired key stays in the file (as refused), in seconds: 30 days.
pub const RECENTLY_DEAD: i64 = 30 * 86_400;

/// Bigger files are refused by the site (a tenant has a handful of keys and flags).
pub const MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessFile {
    pub format: u32,
    pub tenant: String,
    pub keys: Vec<AccessKey>,
    pub features: Vec<AccessFeature>,
}

/// One key the site may accept: live until `revoked_at` or `expires_at` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub name: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl AccessKey {
    pub fn live_at(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessFeature {
    pub flag: String,
    /// `plan` or `tenant`.
    pub source: String,
}

impl AccessFile {
    /// The file for `tenant`: its keys that are live at `now` or later, and those revoked or
    /// expired in the last [`RECENTLY_DEAD`] (so the site can say why it refuses them), and its
    /// effective flags.
    pub fn new(
        tenant: &str,
        keys: &[ApiKeyRow],
        features: &[(String, &str)],
        now: i64,
    ) -> AccessFile {
        AccessFile {
            format: FORMAT,
            tenant: tenant.to_string(),
            keys: keys
                .iter()
                .filter(|k| k.tenant == tenant && k.live_at(now - RECENTLY_DEAD))
                .map(|k| AccessKey {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    sha256: k.key_sha256.clone(),
                    expires_at: k.expires_at,
                    revoked_at: k.revoked_at,
                })
                .collect(),
            features: features
                .iter()
                .map(|(flag, source)| AccessFeature {
                    flag: flag.clone(),
                    source: source.to_string(),
                })
                .collect(),
        }
    }

    /// A tar archive holding the file alone, owned by the site's user, for the engine's
    /// archive API (extracted into the data directory).
    pub fn tar(&self) -> std::io::Result<Vec<u8>> {
        use crate::runtime::types::{SITE_GID, SITE_UID};
        let mut body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        body.push(b'\n');
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o640);
        header.set_uid(u64::from(SITE_UID));
        header.set_gid(u64::from(SITE_GID));
        header.set_mtime(crate::store::now_unix().max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_data(&mut header, ACCESS_FILE, body.as_slice())?;
        builder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_live_now_or_later_travel_and_the_archive_holds_one_file() {
        let mut live = ApiKeyRow::new("acme", "ci", &"a".repeat(64), 100, None);
        let mut grace = ApiKeyRow::new("acme", "old", &"b".repeat(64), 100, None);
        grace.revoked_at = Some(500);
        let mut revoked = ApiKeyRow::new("acme", "gone", &"c".repeat(64), 100, None);
        revoked.revoked_at = Some(200 - RECENTLY_DEAD);
        let expired = ApiKeyRow::new("acme", "exp", &"d".repeat(64), 100, Some(199));
        let other = ApiKeyRow::new("globex", "ci", &"e".repeat(64), 100, None);
        live.last_used_at = Some(150);
        let file = AccessFile::new(
            "acme",
            &[live, grace, revoked, expired, other],
            &[("beta".into(), "tenant")],
            200,
        );
        let names: Vec<&str> = file.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["ci", "old", "exp"], "long dead keys are left out");
        assert_eq!(file.keys[0].id, "a".repeat(16));
        let tar = file.tar().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<_> = archive.entries().unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(entries.len(), 1);
        let h = entries[0].header();
        assert_eq!(h.path().unwrap().to_str(), Some(ACCESS_FILE));
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (10001, 10001));
    }
}
