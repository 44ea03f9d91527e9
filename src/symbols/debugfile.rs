//! Separate debug files: where distributions put the symbols and DWARF they strip from binaries.
//! Found as gdb finds them: by build-id under `/usr/lib/debug/.build-id/xx/rest.debug`, then by
//! the `.gnu_debuglink` name next to the file, in its `.debug/` directory and under
//! `/usr/lib/debug/DIR/`; a debuglink candidate must carry the same build-id, or (when there are
//! none) the CRC the link records. The DWARF supplementary file of `.gnu_debugaltlink` (dwz) is
//! found by its path or build-id. `VMSCOPE_DEBUG_FILE_DIRECTORY` (colon-separated) replaces
//! `/usr/lib/debug`, as gdb's `set debug-file-directory` does. A Mach-O image's DWARF is in its
//! dSYM bundle (`FILE.dSYM/Contents/Resources/DWARF/NAME`, made by dsymutil), as lldb finds it.

use super::image::Data;
use object::Object;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable naming the debug-file directories.
pub const DIRECTORY_VAR: &str = "VMSCOPE_DEBUG_FILE_DIRECTORY";

/// Where separate debug files are looked for.
pub fn directories() -> Vec<PathBuf> {
    match std::env::var_os(DIRECTORY_VAR) {
        Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
        _ => vec![PathBuf::from("/usr/lib/debug")],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `DIR/.build-id/xx/rest.debug` for every debug directory.
fn by_build_id(build_id: &[u8]) -> Vec<PathBuf> {
    if build_id.len() < 2 {
        return Vec::new();
    }
    let (head, rest) = (hex(&build_id[..1]), hex(&build_id[1..]));
    directories()
        .into_iter()
        .map(|d| {
            d.join(".build-id")
                .join(&head)
                .join(format!("{rest}.debug"))
        })
        .collect()
}

/// A debug file found for an image: where, and its bytes.
pub struct Found {
    pub path: PathBuf,
    pub data: Arc<Data>,
}

/// Finds the separate debug file of the image at `path` (as the target names it) with this
/// build-id and debuglink.
pub fn find(
    path: &Path,
    build_id: Option<&[u8]>,
    debuglink: Option<(&[u8], u32)>,
) -> Option<Found> {
    if let Some(id) = build_id {
        for candidate in by_build_id(id) {
            if let Some(found) = open_checked(&candidate, Some(id), None) {
                return Some(found);
            }
        }
    }
    let (name, crc) = debuglink?;
    let name = std::str::from_utf8(name).ok()?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let dir = path.parent()?;
    let mut candidates = vec![dir.join(name), dir.join(".debug").join(name)];
    for d in directories() {
        candidates.push(d.join(dir.strip_prefix("/").unwrap_or(dir)).join(name));
    }
    candidates
        .into_iter()
        .filter(|c| c != path)
        .find_map(|c| open_checked(&c, build_id, Some(crc)))
}

/// The file inside the dSYM bundle next to the Mach-O image at `path`, unchecked: the caller
/// compares its LC_UUID with the image's (after picking the slice of a universal file).
pub fn find_dsym(path: &Path) -> Option<Found> {
    let name = path.file_name()?;
    let mut bundle = path.as_os_str().to_owned();
    bundle.push(".dSYM");
    let candidate = Path::new(&bundle)
        .join("Contents/Resources/DWARF")
        .join(name);
    let file = std::fs::File::open(&candidate).ok()?;
    let data = Data::map(&file).ok()?;
    Some(Found {
        path: candidate,
        data: Arc::new(data),
    })
}

/// The supplementary DWARF file named by `.gnu_debugaltlink` in the debug file at `from`.
pub fn find_sup(from: &Path, altlink: (&[u8], &[u8])) -> Option<Found> {
    let (name, id) = altlink;
    let name = Path::new(std::str::from_utf8(name).ok()?);
    let mut candidates = Vec::new();
    if name.is_absolute() {
        candidates.push(name.to_path_buf());
    } else if let Some(dir) = from.parent() {
        candidates.push(dir.join(name));
    }
    candidates.extend(by_build_id(id));
    candidates
        .into_iter()
        .find_map(|c| open_checked(&c, Some(id), None))
}

/// Opens and maps `path` if it is an ELF file with the wanted build-id (when both have one),
/// or else with the wanted CRC.
fn open_checked(path: &Path, build_id: Option<&[u8]>, crc: Option<u32>) -> Option<Found> {
    let file = std::fs::File::open(path).ok()?;
    let data = Data::map(&file).ok()?;
    let parsed = object::File::parse(&*data).ok()?;
    let theirs = parsed.build_id().ok().flatten();
    let ok = match (build_id, theirs) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => crc.is_none_or(|want| crc32(&data) == want),
    };
    drop(parsed);
    ok.then(|| Found {
        path: path.to_path_buf(),
        data: Arc::new(data),
    })
}

/// The CRC-32 (IEEE, as zlib computes it) that `.gnu_debuglink` records.
pub fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in bytes {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn build_id_paths() {
        // Only the default directory when the variable is unset; the test must not depend on
        // the environment, so look at the shape of the path alone.
        let paths = by_build_id(&[0xab, 0xcd, 0xef]);
        assert!(
            paths.iter().all(|p| p.ends_with(".build-id/ab/cdef.debug")),
            "{paths:?}"
        );
        assert!(by_build_id(&[0xab]).is_empty());
    }
}
