//! `tenantctl site-data-owner DIR UID:GID`: hands a data volume written by an older tenantctl
//! (whose site ran as root) to the unprivileged user the site runs as now. Run once, as root
//! with only CAP_CHOWN, CAP_FOWNER and CAP_DAC_READ_SEARCH, in a short-lived container of the
//! built-in site image that mounts the tenant's volume (see `runtime::docker::owner`).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

/// How many entries were looked at and how many changed owner.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handed {
    pub entries: u64,
    pub changed: u64,
}

/// Parses `UID:GID` (numbers only: a scratch image has no user database).
pub fn parse_owner(text: &str) -> Option<(u32, u32)> {
    let (uid, gid) = text.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(uid) || !digits(gid) {
        return None;
    }
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// Gives `dir` and everything under it to `uid:gid`. Symbolic links are changed themselves and
/// never followed, so a link planted in the volume cannot hand over anything outside it; other
/// filesystems mounted below are not entered. Entries already owned right are left untouched.
pub fn hand_over(dir: &Path, uid: u32, gid: u32) -> io::Result<Handed> {
    let top = fs::symlink_metadata(dir)?;
    if !top.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mut handed = Handed::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path)?;
        handed.entries += 1;
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            handed.changed += 1;
        }
        if meta.is_dir() && meta.dev() == top.dev() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(handed)
}

/// The command: prints one line, exits 0 when everything was handed over, 1 otherwise.
pub fn run(dir: &Path, owner: &str) -> ExitCode {
    let Some((uid, gid)) = parse_owner(owner) else {
        println!("site-data-owner: `{owner}` is not UID:GID (two numbers)");
        return ExitCode::from(2);
    };
    match hand_over(dir, uid, gid) {
        Ok(h) => {
            println!(
                "{}: {} of {} entries handed to {uid}:{gid}",
                dir.display(),
                h.changed,
                h.entries
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "site-data-owner: cannot hand {} to {uid}:{gid}: {e}",
                dir.display()
            );
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_two_numbers() {
        assert_eq!(parse_owner("10001:10001"), Some((10001, 10001)));
        assert_eq!(parse_owner("0:0"), Some((0, 0)));
        for bad in [
            "10001",
            "a:b",
            ":1",
            "1:",
            "1:2:3",
            "-1:2",
            "99999999999:1",
            " 1:1",
        ] {
            assert_eq!(parse_owner(bad), None, "{bad}");
        }
    }

    #[test]
    fn hand_over_walks_the_tree_without_following_links() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let outside = tempfile::tempdir()?;
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("sub"))?;
        fs::write(data.join("usage.json"), b"{}")?;
        fs::write(data.join("sub/x"), b"x")?;
        fs::write(outside.path().join("secret"), b"s")?;
        std::os::unix::fs::symlink(outside.path(), data.join("link"))?;
        // To our own ids: allowed without privileges, so the walk itself is what is tested.
        let me = fs::metadata(&data)?;
        let h = hand_over(&data, me.uid(), me.gid())?;
        // data, sub, sub/x, usage.json, link; never the link's target.
        assert_eq!(h.entries, 5);
        assert_eq!(h.changed, 0);
        assert!(hand_over(&data.join("usage.json"), me.uid(), me.gid()).is_err());
        assert!(hand_over(&data.join("missing"), me.uid(), me.gid()).is_err());
        Ok(())
    }
}
