//! The region model: one mapping of the target's address space as the OS reports it (range,
//! permissions, file offset, device/inode, what backs it). Every backend produces these; the
//! commands that explain memory (`regions`, `whatis`, `translate`...) consume them.

pub mod classify;
pub mod elf;
pub mod foreign;
pub mod kind;
pub mod summary;
pub mod usage;

use crate::addr::{FileOffset, VirtAddr};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
pub use usage::Usage;

/// Access permissions and whether the mapping is shared (`s`) or private (`p`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub shared: bool,
}

impl Perms {
    /// Parses the 4-character form of /proc/PID/maps (`r-xp`).
    pub fn parse(s: &[u8]) -> Option<Perms> {
        let [r, w, x, s] = *s else { return None };
        let flag = |c: u8, yes: u8| match c {
            b'-' => Some(false),
            c if c == yes => Some(true),
            _ => None,
        };
        Some(Perms {
            read: flag(r, b'r')?,
            write: flag(w, b'w')?,
            exec: flag(x, b'x')?,
            shared: match s {
                b's' => true,
                b'p' => false,
                _ => return None,
            },
        })
    }

    /// No access at all: a guard page or a reservation.
    pub fn is_none(self) -> bool {
        !(self.read || self.write || self.exec)
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Perms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What backs a mapping, decoded from the name column of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Backing {
    /// No name: private anonymous memory.
    Anonymous,
    /// Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS; the kernel shows `/dev/zero (deleted)`).
    SharedAnonymous,
    /// A regular file (`deleted` when the kernel appended ` (deleted)`).
    File {
        #[serde(serialize_with = "lossy_path")]
        path: PathBuf,
        deleted: bool,
    },
    /// `[heap]`: the brk area.
    Heap,
    /// `[stack]`: the main thread's stack.
    Stack,
    /// `[vdso]`.
    Vdso,
    /// `[vvar]` (and its newer siblings such as `[vvar_vclock]`).
    Vvar,
    /// `[vsyscall]`.
    Vsyscall,
    /// `[anon:NAME]` set with prctl(PR_SET_VMA_ANON_NAME).
    AnonNamed { name: String },
    /// `[anon_shmem:NAME]`: a named shared anonymous mapping.
    ShmemNamed { name: String },
    /// `/memfd:NAME (deleted)`: a memfd_create mapping.
    Memfd { name: String },
    /// `/SYSV<key> (deleted)`: a System V shared memory segment.
    SysV { key: u32 },
    /// Any other bracketed pseudo-name (`[uprobes]`, `[stack:1234]` on old kernels...).
    Special { name: String },
}

fn lossy_path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&p.display())
}

impl Backing {
    /// A short human label: the path, `[heap]`, `memfd:NAME`... Unescaped: render it through
    /// `render::escape` because it comes from the target.
    pub fn label(&self) -> String {
        match self {
            Backing::Anonymous => String::new(),
            Backing::SharedAnonymous => "[shared anon]".into(),
            Backing::File { path, deleted } => {
                let mut s = path.to_string_lossy().into_owned();
                if *deleted {
                    s.push_str(" (deleted)");
                }
                s
            }
            Backing::Heap => "[heap]".into(),
            Backing::Stack => "[stack]".into(),
            Backing::Vdso => "[vdso]".into(),
            Backing::Vvar => "[vvar]".into(),
            Backing::Vsyscall => "[vsyscall]".into(),
            Backing::AnonNamed { name } => format!("[anon:{name}]"),
            Backing::ShmemNamed { name } => format!("[anon_shmem:{name}]"),
            Backing::Memfd { name } => format!("memfd:{name}"),
            Backing::SysV { key } => format!("SYSV{key:08x}"),
            Backing::Special { name } => format!("[{name}]"),
        }
    }

    /// The file path for mappings of a real file.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Backing::File { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// A region, or something built around one: what a map parser can produce directly, as each
/// region is complete (the Linux smaps parser gives the classifier's [`classify::Explained`] on
/// its own thread that way, while the kernel is still writing the rest of the map).
pub trait HoldsRegion: Send + Sized {
    fn wrap(region: Region) -> Self;
    /// Gives the region its usage, which comes after its header (and may change what the
    /// wrapper derived from it).
    fn set_usage(&mut self, usage: Usage);
}

impl HoldsRegion for Region {
    fn wrap(region: Region) -> Region {
        region
    }

    fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }
}

/// One mapping of the target's address space.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub perms: Perms,
    pub offset: FileOffset,
    /// Device as `major:minor` of the backing file (0:0 for anonymous memory).
    pub dev: (u32, u32),
    pub inode: u64,
    pub backing: Backing,
    /// What /proc/PID/smaps says of it, when usage was asked for.
    pub usage: Option<Usage>,
}

impl Region {
    pub fn size(&self) -> u64 {
        self.end.offset_from(self.start)
    }

    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// The region containing `addr` in a list sorted by start address.
pub fn find(regions: &[Region], addr: VirtAddr) -> Option<&Region> {
    let i = regions.partition_point(|r| r.end <= addr);
    regions.get(i).filter(|r| r.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_round_trip() {
        for s in ["r-xp", "rw-s", "---p", "rwxp"] {
            assert_eq!(Perms::parse(s.as_bytes()).unwrap().to_string(), s);
        }
        assert!(Perms::parse(b"rw").is_none());
        assert!(Perms::parse(b"rwxq").is_none());
        assert!(Perms::parse(b"---p").unwrap().is_none());
    }

    #[test]
    fn find_uses_half_open_ranges() {
        let r = |s, e| Region {
            start: VirtAddr(s),
            end: VirtAddr(e),
            perms: Perms::default(),
            offset: FileOffset(0),
            dev: (0, 0),
            inode: 0,
            backing: Backing::Anonymous,
            usage: None,
        };
        let list = [r(0x1000, 0x2000), r(0x3000, 0x5000)];
        assert_eq!(
            find(&list, VirtAddr(0x1fff)).unwrap().start,
            VirtAddr(0x1000)
        );
        assert!(find(&list, VirtAddr(0x2000)).is_none());
        assert_eq!(
            find(&list, VirtAddr(0x4000)).unwrap().start,
            VirtAddr(0x3000)
        );
        assert!(find(&list, VirtAddr(0x5000)).is_none());
    }
}
