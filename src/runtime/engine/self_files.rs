//! What the running executable needs in a FROM scratch image: itself, every shared object it
//! loads and the dynamic loader, found with `ldd` or, failing that, from `/proc/self/maps` and
//! the ELF interpreter. `image.rs` packs them into the build context.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::image::SELF_PATH_IN_IMAGE;
use crate::runtime::RuntimeError;

/// The files needed to run the current executable in a FROM scratch image: the executable at
/// [`SELF_PATH_IN_IMAGE`] plus every shared object it loads and the dynamic loader, each at
/// the path the loader asks for (host path = where to read the content from).
pub fn self_image_files() -> Result<Vec<(String, PathBuf)>, RuntimeError> {
    let exe = std::env::current_exe().map_err(|source| RuntimeError::Io {
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    // A replaced binary shows as "path (deleted)"; /proc/self/exe still reads the running one.
    let (content_path, libs) = if exe.is_file() {
        (exe.clone(), shared_objects(&exe)?)
    } else {
        (
            PathBuf::from("/proc/self/exe"),
            shared_objects_from_maps(&exe)?,
        )
    };
    let mut files = vec![(SELF_PATH_IN_IMAGE.to_string(), content_path)];
    let mut seen = BTreeSet::from([SELF_PATH_IN_IMAGE.to_string()]);
    for lib in libs {
        if seen.insert(lib.clone()) {
            files.push((lib.clone(), PathBuf::from(lib)));
        }
    }
    Ok(files)
}

/// Shared objects of `exe` as the loader resolves them, via `ldd`; falls back to our own maps.
fn shared_objects(exe: &Path) -> Result<Vec<String>, RuntimeError> {
    let output = match std::process::Command::new("ldd").arg(exe).output() {
        Ok(output) => output,
        // No ldd (minimal system): what this very process has loaded is just as good.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return shared_objects_from_maps(exe);
        }
        Err(error) => {
            return Err(RuntimeError::SharedLibraries {
                exe: exe.to_path_buf(),
                message: format!("running ldd: {error}"),
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let static_binary = |text: &str| {
        text.contains("not a dynamic executable") || text.contains("statically linked")
    };
    if static_binary(&stdout) || static_binary(&stderr) {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(RuntimeError::SharedLibraries {
            exe: exe.to_path_buf(),
            message: format!("ldd failed: {}", stderr.trim()),
        });
    }
    parse_ldd(&stdout).map_err(|message| RuntimeError::SharedLibraries {
        exe: exe.to_path_buf(),
        message,
    })
}

/// Paths from `ldd` output; an error names the libraries the loader cannot find.
pub(crate) fn parse_ldd(output: &str) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    let mut missing = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let (name, resolved) = match line.split_once("=>") {
            Some((name, rest)) => (name.trim(), rest.trim()),
            None => (line, line),
        };
        if resolved.starts_with("not found") {
            missing.push(name.to_string());
            continue;
        }
        let path = resolved.split(" (0x").next().unwrap_or("").trim();
        // linux-vdso.so.1 and friends live in the kernel, not in a file.
        if path.starts_with('/') {
            paths.push(path.to_string());
        }
    }
    if missing.is_empty() {
        Ok(paths)
    } else {
        Err(format!("not found by the loader: {}", missing.join(", ")))
    }
}

/// Shared objects mapped into this process, plus the loader at its PT_INTERP path.
fn shared_objects_from_maps(exe: &Path) -> Result<Vec<String>, RuntimeError> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|source| RuntimeError::Io {
        path: PathBuf::from("/proc/self/maps"),
        source,
    })?;
    let mut libs = parse_maps(&maps);
    let interp = std::fs::read("/proc/self/exe")
        .ok()
        .and_then(|elf| elf_interpreter(&elf));
    if let Some(interp) = interp {
        // The loader is mapped under its canonical name; the kernel asks for PT_INTERP.
        let canonical = std::fs::canonicalize(&interp).ok();
        libs.retain(|lib| Some(PathBuf::from(lib)) != canonical || *lib == interp);
        if !libs.contains(&interp) {
            libs.push(interp);
        }
    } else if !libs.is_empty() {
        return Err(RuntimeError::SharedLibraries {
            exe: exe.to_path_buf(),
            message: "shared objects are loaded but the ELF interpreter could not be read"
                .to_string(),
        });
    }
    Ok(libs)
}

/// File-backed `.so` mappings from `/proc/<pid>/maps`, deduplicated, in order of appearance.
pub(crate) fn parse_maps(maps: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path: the path is what follows the fifth field.
        let mut rest = line;
        for _ in 0..5 {
            rest = rest.trim_start();
            rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
        }
        let path = rest.trim();
        if !path.starts_with('/') || path.ends_with("(deleted)") {
            continue;
        }
        let file_name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if (file_name.ends_with(".so") || file_name.contains(".so."))
            && seen.insert(path.to_string())
        {
            out.push(path.to_string());
        }
    }
    out
}

/// The PT_INTERP path of a little-endian ELF64 image, if it has one.
pub(crate) fn elf_interpreter(elf: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(0..4)? != b"\x7fELF" || *elf.get(4)? != 2 || *elf.get(5)? != 1 {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for index in 0..phnum {
        let header = phoff.checked_add(index.checked_mul(phentsize)?)?;
        if u32_at(header)? == PT_INTERP {
            let offset = usize::try_from(u64_at(header + 8)?).ok()?;
            let size = usize::try_from(u64_at(header + 32)?).ok()?;
            let bytes = elf.get(offset..offset.checked_add(size)?)?;
            let path = bytes.split(|b| *b == 0).next()?;
            return String::from_utf8(path.to_vec()).ok();
        }
    }
    None
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let out = "\tlinux-vdso.so.1 (0x00007ffa386b2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007ffa3862a000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007ffa38448000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007ffa386b4000)\n";
        assert_eq!(
            parse_ldd(out),
            Ok(vec![
                "/lib/x86_64-linux-gnu/libgcc_s.so.1".to_string(),
                "/lib/x86_64-linux-gnu/libc.so.6".to_string(),
                "/lib64/ld-linux-x86-64.so.2".to_string(),
            ])
        );
        let missing = "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        assert_eq!(
            parse_ldd(missing),
            Err("not found by the loader: libfoo.so.1".to_string())
        );
    }

    #[test]
    fn maps_yield_shared_objects_once() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/tenantctl
7f0000000000-7f0000001000 r--p 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000001000-7f0000002000 r-xp 00001000 08:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000003000-7f0000004000 rw-p 00000000 00:00 0 
7f0000005000-7f0000006000 r--p 00000000 08:01 789 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
7f0000007000-7f0000008000 r--p 00000000 08:01 790 /opt/with space/libx.so
7ffd00000000-7ffd00001000 r--p 00000000 00:00 0 [vvar]
7ffd00002000-7ffd00003000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            parse_maps(maps),
            vec![
                "/usr/lib/x86_64-linux-gnu/libc.so.6".to_string(),
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".to_string(),
                "/opt/with space/libx.so".to_string(),
            ]
        );
    }

    #[test]
    fn interpreter_of_this_test_binary_is_read() -> Result<(), Box<dyn std::error::Error>> {
        let elf = std::fs::read("/proc/self/exe")?;
        let interp = elf_interpreter(&elf);
        // Rust test binaries on glibc are dynamically linked.
        assert!(
            interp.as_deref().is_some_and(|p| p.starts_with('/')),
            "{interp:?}"
        );
        assert_eq!(elf_interpreter(b"not an elf"), None);
        assert_eq!(elf_interpreter(b""), None);
        Ok(())
    }

    #[test]
    fn self_image_files_start_with_the_executable() -> Result<(), RuntimeError> {
        let files = self_image_files()?;
        assert_eq!(files[0].0, SELF_PATH_IN_IMAGE);
        assert!(files.iter().all(|(target, _)| target.starts_with('/')));
        // A glibc binary needs its loader.
        assert!(
            files.iter().any(|(target, _)| target.contains("ld-linux")),
            "{files:?}"
        );
        Ok(())
    }
}
