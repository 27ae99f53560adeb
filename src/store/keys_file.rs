//! New API keys for a person to hand over, appended to a file only its owner can read
//! (`--keys-file`, and `watch`'s default `<state dir>/.tenantctl/new-keys`), so they never
//! reach a log.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file `watch` writes new keys to when no `--keys-file` is given.
pub fn default_path(state_dir: &Path) -> PathBuf {
    state_dir.join(".tenantctl").join("new-keys")
}

/// Appends one `slug key` line per key to `path`, creating it (and a missing parent directory,
/// 0700) with mode 0600. An existing file that others may read is made private first.
pub fn append<'a>(
    path: &Path,
    keys: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} was readable by others (mode {:o}); made it 0600 before writing keys to it",
            path.display(),
            mode & 0o777
        );
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let mut text = String::new();
    for (slug, key) in keys {
        text.push_str(&format!("{slug} {key}\n"));
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Appends `keys` (slug → key) to `path`; the lines to print instead of the keys: where each
/// went, or why it could not be written (the key is never shown then, so it must be rotated).
pub fn hand_over(path: &Path, keys: &BTreeMap<String, String>) -> Vec<String> {
    let written = append(path, keys);
    keys.keys()
        .map(|slug| {
            let slug = crate::model::printable(slug);
            match &written {
                Ok(()) => format!("new API key for {slug} written to {}", path.display()),
                Err(e) => format!(
                    "the new API key for {slug} could not be written to {} ({e}); only its SHA-256 is stored: run `tenantctl keys rotate {slug}`",
                    path.display()
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_appended_to_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_path(dir.path());
        let first = BTreeMap::from([("acme".to_string(), "tk_1".to_string())]);
        append(&path, &first).unwrap();
        let second = BTreeMap::from([("globex".to_string(), "tk_2".to_string())]);
        append(&path, &second).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "acme tk_1\nglobex tk_2\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        let open = dir.path().join("open");
        std::fs::write(&open, "").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        append(&open, &first).unwrap();
        assert_eq!(mode(&open), 0o600, "made private before the key is written");

        let said = hand_over(&path, &second);
        assert_eq!(
            said,
            [format!(
                "new API key for globex written to {}",
                path.display()
            )]
        );
        let nowhere = dir.path().join("open").join("not-a-dir");
        let said = hand_over(&nowhere, &second);
        assert!(
            said[0].contains("could not be written") && !said[0].contains("tk_2"),
            "{said:?}"
        );
    }
}
