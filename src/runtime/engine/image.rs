//! Local images built FROM scratch through the Engine API: this machine has no registry,
//! so tenantctl packs its own binary (and the shared objects it loads) into an image.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;

use super::self_files::self_image_files;
use super::{DATA_MOUNT_PATH, Engine};
use crate::runtime::error::describe;
use crate::runtime::types::{SITE_GID, SITE_UID};
use crate::runtime::{RuntimeError, is_not_found};

/// Image label with the size, mtime and inode of the binary the site image was built from.
pub const LABEL_EXE_FINGERPRINT: &str = "tenantctl.exe-fingerprint";

/// Label holding the hash of the build context, so an unchanged image is not rebuilt.
pub const LABEL_CONTEXT_HASH: &str = "tenantctl.image-context-sha256";

/// Where the current executable is placed in the image built by [`self_image_files`].
pub const SELF_PATH_IN_IMAGE: &str = "/tenantctl";

/// Bumped when the context layout changes, so old images are rebuilt.
const CONTEXT_FORMAT: &str = "tenantctl-scratch-context-v2";

/// Fixed mtime in the tar so the same inputs give the same bytes.
const FIXED_MTIME: u64 = 1;

/// Build a local image `tag` FROM scratch holding `files` (path inside the image, host path),
/// with `entrypoint` and `labels`, through the build endpoint with an in-memory tar context.
/// Idempotent: when `tag` already carries the same context hash nothing is sent. Returns the image id.
pub async fn build_scratch_image(
    docker: &Docker,
    tag: &str,
    files: &[(String, PathBuf)],
    entrypoint: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<String, RuntimeError> {
    build_scratch_image_as(docker, tag, files, entrypoint, labels, None).await
}

/// Who an image runs as, and the empty directories that user owns in it (volume mount points:
/// the engine copies a mount point's ownership into an empty named volume at its first mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub dirs: Vec<String>,
}

/// [`build_scratch_image`], the image running as `run_as` (root when None).
pub async fn build_scratch_image_as(
    docker: &Docker,
    tag: &str,
    files: &[(String, PathBuf)],
    entrypoint: &[String],
    labels: &BTreeMap<String, String>,
    run_as: Option<RunAs>,
) -> Result<String, RuntimeError> {
    let context = {
        let (owned_tag, files, entrypoint, labels) = (
            tag.to_string(),
            files.to_vec(),
            entrypoint.to_vec(),
            labels.clone(),
        );
        // Reading and packing tens of megabytes is blocking work.
        tokio::task::spawn_blocking(move || {
            build_context_as(&owned_tag, &files, &entrypoint, &labels, run_as.as_ref())
        })
        .await
        .map_err(|e| RuntimeError::Build {
            tag: tag.to_string(),
            message: format!("packing the build context failed: {e}"),
        })??
    };

    let previous = inspect_image_labels(docker, tag).await?;
    if let Some((id, image_labels)) = &previous
        && image_labels.get(LABEL_CONTEXT_HASH) == Some(&context.hash)
    {
        return Ok(id.clone());
    }

    let mut all_labels: HashMap<String, String> = labels.clone().into_iter().collect();
    all_labels.insert(LABEL_CONTEXT_HASH.to_string(), context.hash.clone());
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .labels(&all_labels)
        .rm(true)
        .forcerm(true)
        .build();
    // Builds sharing cached layers race with a rebuild removing the image it replaced (and, with
    // it, intermediate layers no other image holds): the engine then answers "unknown parent
    // image ID". Building again finds the layers afresh.
    let tar = context.tar;
    let mut attempt = 1;
    let (built_id, recent) = loop {
        match run_build(docker, tag, options.clone(), tar.clone()).await {
            Err(RuntimeError::Build { message, .. })
                if attempt < 3 && message.contains("unknown parent image") =>
            {
                tracing::debug!(tag, attempt, %message, "building again: a cached layer went away");
                attempt += 1;
            }
            other => break other?,
        }
    };

    // The tag is the source of truth: the aux id is absent on some engine versions.
    let id = match inspect_image_labels(docker, tag).await? {
        Some((id, _)) => id,
        None => built_id.ok_or_else(|| RuntimeError::Build {
            tag: tag.to_string(),
            message: with_output("the engine reported no image", &recent),
        })?,
    };
    if let Some((old_id, old_labels)) = previous
        && old_id != id
        && old_labels.contains_key(LABEL_CONTEXT_HASH)
    {
        remove_replaced_image(docker, &old_id).await;
    }
    Ok(id)
}

/// One build of `tag` from `tar`: the image id the engine announced (if any) and the last lines
/// of its output.
async fn run_build(
    docker: &Docker,
    tag: &str,
    options: bollard::query_parameters::BuildImageOptions,
    tar: Vec<u8>,
) -> Result<(Option<String>, Vec<String>), RuntimeError> {
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut built_id = None;
    // The last lines of output explain a failure better than the error alone.
    let mut recent: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(id) = info.aux.and_then(|aux| aux.id) {
                    built_id = Some(id);
                }
                if let Some(line) = info.stream {
                    let line = line.trim_end();
                    if !line.is_empty() {
                        recent.push(line.to_string());
                        if recent.len() > 5 {
                            recent.remove(0);
                        }
                    }
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(RuntimeError::Build {
                    tag: tag.to_string(),
                    message: with_output(&error, &recent),
                });
            }
            Err(error) => return Err(RuntimeError::api(format!("build image {tag}"), error)),
        }
    }
    Ok((built_id, recent))
}

/// Best effort: drop the image a rebuild untagged, unless containers still use it.
async fn remove_replaced_image(docker: &Docker, id: &str) {
    let options = RemoveImageOptionsBuilder::default().force(false).build();
    match docker.remove_image(id, Some(options), None).await {
        Ok(_) => tracing::debug!(image = id, "removed the image replaced by a rebuild"),
        // 409: a container still uses it; it goes once that container is replaced.
        Err(error) => tracing::debug!(image = id, %error, "kept the image replaced by a rebuild"),
    }
}

/// Build `tag` from the running executable (see [`self_image_files`]) with `/tenantctl` as
/// entrypoint; what the built-in site runs: as [`SITE_UID`]:[`SITE_GID`], owning `/data`.
pub async fn build_self_image(
    docker: &Docker,
    tag: &str,
    labels: &BTreeMap<String, String>,
) -> Result<String, RuntimeError> {
    let files = tokio::task::spawn_blocking(self_image_files)
        .await
        .map_err(|e| RuntimeError::Build {
            tag: tag.to_string(),
            message: format!("finding the files of the executable failed: {e}"),
        })??;
    build_scratch_image_as(
        docker,
        tag,
        &files,
        &[SELF_PATH_IN_IMAGE.to_string()],
        labels,
        Some(RunAs {
            uid: SITE_UID,
            gid: SITE_GID,
            dirs: vec![DATA_MOUNT_PATH.to_string()],
        }),
    )
    .await
}

fn with_output(message: &str, recent: &[String]) -> String {
    if recent.is_empty() {
        message.trim_end().to_string()
    } else {
        format!(
            "{} (last build output: {})",
            message.trim_end(),
            recent.join(" | ")
        )
    }
}

/// True when an image with this tag (or id) exists locally.
pub async fn image_exists(docker: &Docker, tag: &str) -> Result<bool, RuntimeError> {
    Ok(inspect_image_labels(docker, tag).await?.is_some())
}

/// The id and labels of a local image, or None when it does not exist.
async fn inspect_image_labels(
    docker: &Docker,
    tag: &str,
) -> Result<Option<(String, HashMap<String, String>)>, RuntimeError> {
    match docker.inspect_image(tag).await {
        Ok(image) => Ok(Some((
            image.id.unwrap_or_default(),
            image.config.and_then(|c| c.labels).unwrap_or_default(),
        ))),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(RuntimeError::api(format!("inspect image {tag}"), error)),
    }
}

/// A packed build context and the hash of what shapes the image.
pub(crate) struct BuildContext {
    pub(crate) tar: Vec<u8>,
    pub(crate) hash: String,
}

/// Pack Dockerfile + `rootfs/<path>` entries into a tar and hash the inputs.
#[cfg(test)]
pub(crate) fn build_context(
    tag: &str,
    files: &[(String, PathBuf)],
    entrypoint: &[String],
    labels: &BTreeMap<String, String>,
) -> Result<BuildContext, RuntimeError> {
    build_context_as(tag, files, entrypoint, labels, None)
}

/// [`build_context`] for an image that runs as `run_as`: its directories go under `owned/`,
/// copied in with `--chown` (COPY makes everything else root's).
pub(crate) fn build_context_as(
    tag: &str,
    files: &[(String, PathBuf)],
    entrypoint: &[String],
    labels: &BTreeMap<String, String>,
    run_as: Option<&RunAs>,
) -> Result<BuildContext, RuntimeError> {
    let invalid = |message: String| RuntimeError::InvalidBuildInput {
        tag: tag.to_string(),
        message,
    };
    if files.is_empty() {
        return Err(invalid("no files to put in the image".to_string()));
    }
    let mut by_target: BTreeMap<String, &Path> = BTreeMap::new();
    for (target, host) in files {
        let target = normalize_target(target).ok_or_else(|| {
            invalid(format!(
                "{target:?} is not an absolute, plain path inside the image"
            ))
        })?;
        if let Some(previous) = by_target.insert(target.clone(), host)
            && previous != host.as_path()
        {
            return Err(invalid(format!(
                "{target} is given twice ({} and {})",
                previous.display(),
                host.display()
            )));
        }
    }

    let mut owned_dirs = Vec::new();
    if let Some(run_as) = run_as {
        for dir in &run_as.dirs {
            let dir = normalize_target(dir).ok_or_else(|| {
                invalid(format!(
                    "{dir:?} is not an absolute, plain path inside the image"
                ))
            })?;
            if by_target
                .keys()
                .any(|t| t.starts_with(&format!("{dir}/")) || *t == dir)
            {
                return Err(invalid(format!(
                    "{dir} must be empty: it is a volume's mount point"
                )));
            }
            owned_dirs.push(dir);
        }
    }
    let dockerfile = dockerfile_as(
        entrypoint,
        run_as.map(|r| (r.uid, r.gid, owned_dirs.as_slice())),
    );
    let mut hasher = Sha256::new();
    hash_field(&mut hasher, CONTEXT_FORMAT.as_bytes());
    hash_field(&mut hasher, dockerfile.as_bytes());
    for (key, value) in labels {
        hash_field(&mut hasher, key.as_bytes());
        hash_field(&mut hasher, value.as_bytes());
    }

    let mut tar = tar::Builder::new(Vec::new());
    append_bytes(&mut tar, "Dockerfile", 0o644, dockerfile.as_bytes())?;
    // Explicit parent directories, so the image does not depend on the engine inventing them.
    let mut dirs = BTreeSet::new();
    for target in by_target.keys() {
        let mut parent = Path::new(target).parent();
        while let Some(dir) = parent {
            if dir != Path::new("/") {
                dirs.insert(dir.to_path_buf());
            }
            parent = dir.parent();
        }
    }
    append_dir(&mut tar, "rootfs")?;
    for dir in &owned_dirs {
        append_dir(&mut tar, &format!("owned{dir}"))?;
    }
    for dir in &dirs {
        append_dir(&mut tar, &format!("rootfs{}", dir.display()))?;
    }
    for (target, host) in &by_target {
        let io = |source| RuntimeError::Io {
            path: host.to_path_buf(),
            source,
        };
        // Opening follows symlinks: the real content lands at the path the loader asks for.
        let mut file = std::fs::File::open(host).map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        if !metadata.is_file() {
            return Err(invalid(format!("{} is not a regular file", host.display())));
        }
        let mut content = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        file.read_to_end(&mut content).map_err(io)?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777;
        hash_field(&mut hasher, target.as_bytes());
        hash_field(&mut hasher, format!("{mode:o}").as_bytes());
        hash_field(&mut hasher, &content);
        append_bytes(&mut tar, &format!("rootfs{target}"), mode, &content)?;
    }
    let tar = tar.into_inner().map_err(|source| RuntimeError::Io {
        path: PathBuf::from("(in-memory build context)"),
        source,
    })?;
    Ok(BuildContext {
        tar,
        hash: hex::encode(hasher.finalize()),
    })
}

/// The Dockerfile of a scratch image; the JSON form of ENTRYPOINT needs no shell.
#[cfg(test)]
pub(crate) fn dockerfile(entrypoint: &[String]) -> String {
    dockerfile_as(entrypoint, None)
}

/// The Dockerfile of a scratch image running as `uid:gid` (numbers: no user database in
/// scratch) and owning the (empty) directories `dirs`, packed under `owned/`.
pub(crate) fn dockerfile_as(
    entrypoint: &[String],
    run_as: Option<(u32, u32, &[String])>,
) -> String {
    let mut text = String::from("FROM scratch\nCOPY rootfs/ /\n");
    if let Some((uid, gid, dirs)) = run_as {
        for dir in dirs {
            text.push_str(&format!("COPY --chown={uid}:{gid} owned{dir}/ {dir}/\n"));
        }
        text.push_str(&format!("USER {uid}:{gid}\n"));
    }
    if !entrypoint.is_empty() {
        let json = serde_json::Value::from(entrypoint.to_vec()).to_string();
        text.push_str(&format!("ENTRYPOINT {json}\n"));
    }
    text
}

/// `/a/b` stays, `a/b` or anything with `..` is refused; `.` and `//` are cleaned.
fn normalize_target(target: &str) -> Option<String> {
    let path = Path::new(target);
    if !path.is_absolute() {
        return None;
    }
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("/{}", parts.join("/")))
}

/// Length-prefixed, so ("ab","c") and ("a","bc") hash differently.
fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn tar_error(path: &str, source: std::io::Error) -> RuntimeError {
    RuntimeError::Io {
        path: PathBuf::from(format!("(build context) {path}")),
        source,
    }
}

fn append_bytes(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    content: &[u8],
) -> Result<(), RuntimeError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(FIXED_MTIME);
    tar.append_data(&mut header, path, content)
        .map_err(|e| tar_error(path, e))
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str) -> Result<(), RuntimeError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(FIXED_MTIME);
    tar.append_data(&mut header, format!("{path}/"), std::io::empty())
        .map_err(|e| tar_error(path, e))
}

/// `fromImage` and `tag` for a pull: without them the engine would pull every tag.
pub fn pull_reference(reference: &str) -> (String, Option<String>) {
    if reference.contains('@') {
        return (reference.to_string(), None);
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (
                reference[..at].to_string(),
                Some(reference[at + 1..].to_string()),
            )
        }
        None => (reference.to_string(), Some("latest".to_string())),
    }
}

/// One human line of pull progress, e.g. `a1b2c3: Downloading 1048576/5242880`.
pub fn progress_line(info: &CreateImageInfo) -> Option<String> {
    let status = info.status.as_deref()?.trim();
    if status.is_empty() {
        return None;
    }
    let mut line = match info.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    };
    if let Some(detail) = &info.progress_detail
        && let (Some(current), Some(total)) = (detail.current, detail.total)
        && total > 0
    {
        line.push_str(&format!(" {current}/{total}"));
    }
    Some(line)
}

/// `len-mtime.nsec-inode` of the running binary; None when it cannot be read (replaced on disk).
fn exe_fingerprint() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(exe).ok()?;
    Some(format!(
        "{}-{}.{:09}-{}",
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

impl Engine {
    /// Make sure `reference` is on this host: nothing when present, else pull it, telling
    /// `progress` each status line. Without a registry the error says to build or load it.
    pub async fn ensure_image(
        &self,
        reference: &str,
        mut progress: impl FnMut(&str),
    ) -> Result<(), RuntimeError> {
        if image_exists(self.docker(), reference).await? {
            return Ok(());
        }
        let unavailable = |reason: String| RuntimeError::ImageUnavailable {
            reference: reference.to_string(),
            reason,
        };
        let (from_image, tag) = pull_reference(reference);
        let mut options = CreateImageOptionsBuilder::default().from_image(&from_image);
        if let Some(tag) = &tag {
            options = options.tag(tag);
        }
        let mut stream = self
            .docker()
            .create_image(Some(options.build()), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) =
                        info.error_detail.as_ref().and_then(|d| d.message.clone())
                    {
                        return Err(unavailable(message));
                    }
                    if let Some(line) = progress_line(&info) {
                        progress(&line);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(unavailable(error));
                }
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                    return Err(unavailable(message));
                }
                Err(error) => return Err(unavailable(describe(&error))),
            }
        }
        if image_exists(self.docker(), reference).await? {
            Ok(())
        } else {
            Err(unavailable(
                "the pull finished but the image is not there".to_string(),
            ))
        }
    }

    /// Build image `tag` (the built-in site image; the tag comes from the planner) from the
    /// running binary unless it was already built from this very binary. Returns the image id.
    /// Cheap when present: one stat and one inspect, no hashing of the binary.
    pub async fn ensure_site_image(
        &self,
        tag: &str,
        progress: crate::runtime::backend::Say<'_>,
    ) -> Result<String, RuntimeError> {
        let fingerprint = exe_fingerprint();
        if let Some(fingerprint) = &fingerprint {
            match self.docker().inspect_image(tag).await {
                Ok(image) => {
                    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
                    if labels.get(LABEL_EXE_FINGERPRINT) == Some(fingerprint) {
                        return Ok(image.id.unwrap_or_default());
                    }
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(RuntimeError::api(format!("inspect image {tag}"), error)),
            }
        }
        progress("building the built-in site image from this binary");
        // Without a fingerprint the build's own content hash still avoids needless rebuilds.
        let labels: BTreeMap<String, String> = fingerprint
            .map(|f| (LABEL_EXE_FINGERPRINT.to_string(), f))
            .into_iter()
            .collect();
        build_self_image(self.docker(), tag, &labels).await
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use bollard::models::ProgressDetail;

    #[test]
    fn targets_must_be_plain_absolute_paths() {
        assert_eq!(
            normalize_target("/tenantctl").as_deref(),
            Some("/tenantctl")
        );
        assert_eq!(
            normalize_target("//lib/./x.so").as_deref(),
            Some("/lib/x.so")
        );
        assert_eq!(normalize_target("lib/x.so"), None);
        assert_eq!(normalize_target("/lib/../etc/passwd"), None);
        assert_eq!(normalize_target("/"), None);
    }

    #[test]
    fn dockerfile_quotes_the_entrypoint_as_json() {
        let text = dockerfile(&["/tenantctl".to_string(), "say \"hi\"".to_string()]);
        assert_eq!(
            text,
            "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/tenantctl\",\"say \\\"hi\\\"\"]\n"
        );
        assert_eq!(dockerfile(&[]), "FROM scratch\nCOPY rootfs/ /\n");
    }

    #[test]
    fn an_image_that_runs_as_a_user_owns_its_volume_dirs() -> Result<(), RuntimeError> {
        let dirs = vec!["/data".to_string()];
        assert_eq!(
            dockerfile_as(&["/tenantctl".to_string()], Some((10001, 10001, &dirs))),
            "FROM scratch\nCOPY rootfs/ /\nCOPY --chown=10001:10001 owned/data/ /data/\nUSER 10001:10001\nENTRYPOINT [\"/tenantctl\"]\n"
        );
        let dir = tempfile::tempdir().map_err(|source| RuntimeError::Io {
            path: PathBuf::from("tempdir"),
            source,
        })?;
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"#!binary").map_err(|source| RuntimeError::Io {
            path: bin.clone(),
            source,
        })?;
        let files = vec![("/app/bin".to_string(), bin)];
        let labels = BTreeMap::new();
        let run_as = RunAs {
            uid: 10001,
            gid: 10001,
            dirs: dirs.clone(),
        };
        let owned = build_context_as("t", &files, &[], &labels, Some(&run_as))?;
        let plain = build_context("t", &files, &[], &labels)?;
        assert_ne!(owned.hash, plain.hash, "the user shapes the image");
        let mut archive = tar::Archive::new(owned.tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .map_err(|source| RuntimeError::Io {
                path: PathBuf::from("tar"),
                source,
            })?
            .filter_map(|e| Some(e.ok()?.path().ok()?.to_string_lossy().into_owned()))
            .collect();
        assert!(names.contains(&"owned/data/".to_string()), "{names:?}");
        // A mount point with files under it is refused: the volume would hide them.
        let inside = vec![("/data/x".to_string(), files[0].1.clone())];
        assert!(matches!(
            build_context_as("t", &inside, &[], &labels, Some(&run_as)),
            Err(RuntimeError::InvalidBuildInput { .. })
        ));
        Ok(())
    }

    #[test]
    fn context_is_deterministic_and_hashes_what_matters() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"#!binary")?;
        let link = dir.path().join("link.so");
        std::os::unix::fs::symlink(&bin, &link)?;
        let files = vec![
            ("/app/bin".to_string(), bin.clone()),
            ("/lib/x/link.so".to_string(), link.clone()),
        ];
        let entry = vec!["/app/bin".to_string()];
        let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);

        let a = build_context("t", &files, &entry, &labels)?;
        let b = build_context("t", &files, &entry, &labels)?;
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.tar, b.tar);

        let mut archive = tar::Archive::new(a.tar.as_slice());
        let mut entries = BTreeMap::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            let kind = entry.header().entry_type();
            let mut content = Vec::new();
            entry.read_to_end(&mut content)?;
            entries.insert(path, (kind, content));
        }
        let names: Vec<&str> = entries.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            vec![
                "Dockerfile",
                "rootfs/",
                "rootfs/app/",
                "rootfs/app/bin",
                "rootfs/lib/",
                "rootfs/lib/x/",
                "rootfs/lib/x/link.so"
            ]
        );
        // The symlink's target content, as a regular file.
        assert_eq!(entries["rootfs/lib/x/link.so"].0, tar::EntryType::Regular);
        assert_eq!(entries["rootfs/lib/x/link.so"].1, b"#!binary");

        let other_labels = BTreeMap::from([("k".to_string(), "w".to_string())]);
        assert_ne!(
            build_context("t", &files, &entry, &other_labels)?.hash,
            a.hash
        );
        assert_ne!(build_context("t", &files, &[], &labels)?.hash, a.hash);
        std::fs::write(&bin, b"#!binary2")?;
        assert_ne!(build_context("t", &files, &entry, &labels)?.hash, a.hash);
        Ok(())
    }

    #[test]
    fn bad_inputs_are_refused() {
        let labels = BTreeMap::new();
        assert!(matches!(
            build_context("t", &[], &[], &labels),
            Err(RuntimeError::InvalidBuildInput { .. })
        ));
        let relative = vec![("x".to_string(), PathBuf::from("/etc/hostname"))];
        assert!(matches!(
            build_context("t", &relative, &[], &labels),
            Err(RuntimeError::InvalidBuildInput { .. })
        ));
        let twice = vec![
            ("/x".to_string(), PathBuf::from("/etc/hostname")),
            ("/x".to_string(), PathBuf::from("/etc/hosts")),
        ];
        assert!(matches!(
            build_context("t", &twice, &[], &labels),
            Err(RuntimeError::InvalidBuildInput { .. })
        ));
        let missing = vec![("/x".to_string(), PathBuf::from("/nonexistent/file"))];
        assert!(matches!(
            build_context("t", &missing, &[], &labels),
            Err(RuntimeError::Io { .. })
        ));
    }

    #[test]
    fn pull_reference_never_pulls_all_tags() {
        let split = |r: &str| pull_reference(r);
        assert_eq!(split("alpine"), ("alpine".into(), Some("latest".into())));
        assert_eq!(split("alpine:3.20"), ("alpine".into(), Some("3.20".into())));
        assert_eq!(
            split("localhost:5000/shop"),
            ("localhost:5000/shop".into(), Some("latest".into()))
        );
        assert_eq!(
            split("localhost:5000/team/shop:4.2"),
            ("localhost:5000/team/shop".into(), Some("4.2".into()))
        );
        let digest = "shop@sha256:0123456789abcdef";
        assert_eq!(split(digest), (digest.into(), None));
    }

    #[test]
    fn progress_lines_are_readable() {
        let info = CreateImageInfo {
            id: Some("a1b2c3".into()),
            status: Some("Downloading".into()),
            progress_detail: Some(ProgressDetail {
                current: Some(1024),
                total: Some(4096),
            }),
            ..Default::default()
        };
        assert_eq!(
            progress_line(&info).as_deref(),
            Some("a1b2c3: Downloading 1024/4096")
        );
        let plain = CreateImageInfo {
            status: Some("Pulling from library/alpine".into()),
            ..Default::default()
        };
        assert_eq!(
            progress_line(&plain).as_deref(),
            Some("Pulling from library/alpine")
        );
        assert_eq!(progress_line(&CreateImageInfo::default()), None);
    }

    #[test]
    fn the_exe_fingerprint_is_stable() {
        let a = exe_fingerprint();
        assert!(a.is_some());
        assert_eq!(a, exe_fingerprint());
    }
}
