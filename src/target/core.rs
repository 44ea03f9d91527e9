//! ELF core files: [`CoreFile`], a read-only [`Target`] for a process that is no more
//! (`vmscope --core FILE [--exe PATH]`). The memory map comes from the PT_LOAD segments (with
//! their permissions) joined with the NT_FILE note (which file each mapping maps, at which
//! offset); threads and their registers from the NT_PRSTATUS notes; the command line from
//! NT_PRPSINFO; the stack, vDSO and executable from NT_AUXV. Memory is read from the core's
//! segments and, for the parts a core omits (unmodified file-backed pages), from the mapped files,
//! after checking that a file still holds what the process mapped. Everything that needs a live
//! process (usage figures, page tables, stopping, watchpoints, page faults) answers
//! [`Error::Unsupported`].
//!
//! Cores come from two writers, and both are handled: the kernel writes a PT_LOAD for every
//! mapping (with `p_filesz` 0 or short for what `coredump_filter` left out) and exact
//! permissions; gdb's `generate-core-file` writes only the mappings it dumps, always readable (a
//! no-access page comes out as `r--`), and names files in NT_FILE as /proc/PID/maps spells them
//! (a newline as `\012`). A core records neither MAP_SHARED nor device and inode numbers: sharing
//! is inferred from what backs a mapping (System V, memfd and shared anonymous memory are
//! shared), and device and inode are those of the file on disk now.
//!
//! Only 64-bit little-endian cores are read (x86_64 registers by name, aarch64 too); anything
//! else, and any truncated or corrupt core, is an error naming the file, never a panic.

use super::{ProcessFacts, Registers, Syscall, Target, TargetInfo, TargetKind, Thread};
use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, Result};
use crate::regions::{Backing, Perms, Region};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Note segments larger than this are refused as corrupt (60,000 mappings and 10,000 threads
/// need a few tens of MiB).
const MAX_NOTES: u64 = 256 << 20;
/// Program headers beyond this many are refused as corrupt.
const MAX_SEGMENTS: u32 = 4 << 20;

const AT_PHDR: u64 = 3;
const AT_PAGESZ: u64 = 6;
const AT_ENTRY: u64 = 9;
const AT_RANDOM: u64 = 25;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;

/// The x86_64 vsyscall page, always at this address.
const VSYSCALL: u64 = 0xffff_ffff_ff60_0000;

/// Who wrote the core: they differ in what they dump and how they spell names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Writer {
    Kernel,
    /// gdb's `gcore` / `generate-core-file` (through BFD: it writes section headers).
    Gdb,
}

/// One mapping of the dead process: where its bytes are.
#[derive(Clone, Debug)]
struct Area {
    start: u64,
    end: u64,
    /// The first `len` bytes of the mapping are in the core at `offset`.
    in_core: Option<(u64, u64)>,
    /// The file it maps and the offset of `start` in it (from NT_FILE).
    file: Option<Mapped>,
}

#[derive(Clone, Debug)]
struct Mapped {
    /// The path as the kernel named it, decoded (without ` (deleted)`).
    path: PathBuf,
    offset: u64,
    deleted: bool,
}

/// One NT_FILE entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileEntry {
    start: u64,
    end: u64,
    offset: u64,
    name: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct PsInfo {
    pid: i32,
    state: char,
    fname: String,
    psargs: String,
}

#[derive(Clone, Debug)]
struct CoreThread {
    tid: i32,
    /// The signal that stopped it (`pr_cursig`), 0 for none.
    cursig: i16,
    regs: Vec<(&'static str, u64)>,
}

/// Why the process died, from NT_SIGINFO.
#[derive(Clone, Copy, Debug)]
struct SigInfo {
    signo: i32,
    code: i32,
    /// The faulting address for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP.
    addr: Option<u64>,
}

/// A core file opened for reading.
pub struct CoreFile {
    info: TargetInfo,
    /// The core's path, for messages.
    path: PathBuf,
    core: File,
    core_len: u64,
    writer: Writer,
    /// Parallel to `regions`, sorted by address.
    areas: Vec<Area>,
    regions: Vec<Region>,
    threads: Vec<CoreThread>,
    psinfo: Option<PsInfo>,
    siginfo: Option<SigInfo>,
    /// The path the core names for the executable, and the file `--exe` put in its place.
    exe_override: Option<(PathBuf, PathBuf)>,
    /// Mapped files opened so far (or why they cannot be used), by the path the core names.
    files: HashMap<PathBuf, std::result::Result<File, String>>,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A NUL-terminated string in a fixed-size field.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses the NT_FILE note: a count, the page size, `count` (start, end, page offset) triples,
/// then `count` NUL-terminated names. Returns the entries (offsets in bytes) and the page size.
fn parse_nt_file(desc: &[u8]) -> Option<(Vec<FileEntry>, u64)> {
    let count = u64_at(desc, 0)?;
    let page = u64_at(desc, 8)?;
    let table = count.checked_mul(24)?.checked_add(16)?;
    if table > desc.len() as u64 {
        return None;
    }
    let mut names = desc[table as usize..].split(|&b| b == 0);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = 16 + i * 24;
        let (start, end, pgoff) = (
            u64_at(desc, at)?,
            u64_at(desc, at + 8)?,
            u64_at(desc, at + 16)?,
        );
        let name = names.next()?.to_vec();
        if end < start {
            return None;
        }
        out.push(FileEntry {
            start,
            end,
            offset: pgoff.checked_mul(page.max(1))?,
            name,
        });
    }
    Some((out, page))
}

/// Parses NT_PRPSINFO (the same layout on x86_64 and aarch64).
fn parse_psinfo(desc: &[u8]) -> Option<PsInfo> {
    if desc.len() < 136 {
        return None;
    }
    let sname = desc[1];
    Some(PsInfo {
        state: if sname.is_ascii_graphic() {
            sname as char
        } else {
            '?'
        },
        pid: u32_at(desc, 24)? as i32,
        fname: c_string(&desc[40..56]),
        psargs: c_string(&desc[56..136]),
    })
}

/// x86_64 `user_regs_struct` order, as NT_PRSTATUS stores it.
const X86_64_REGS: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];
/// The order the live backend lists them in (gdb's), so `registers` reads the same either way.
const X86_64_SHOWN: [&str; 27] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base",
    "orig_rax",
];
const AARCH64_REGS: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "x29", "x30", "sp", "pc", "pstate",
];

/// Where `pr_reg` starts in `struct elf_prstatus` on 64-bit Linux.
const PR_REG: usize = 112;

/// Parses NT_PRSTATUS: the thread id, its current signal and its general registers.
fn parse_prstatus(desc: &[u8], machine: u16) -> Option<CoreThread> {
    let cursig = u16_at(desc, 12)? as i16;
    let tid = u32_at(desc, 32)? as i32;
    let names: &[&'static str] = match machine {
        62 => &X86_64_REGS,
        183 => &AARCH64_REGS,
        _ => &[],
    };
    let mut regs: Vec<(&'static str, u64)> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        regs.push((name, u64_at(desc, PR_REG + i * 8)?));
    }
    if machine == 62 {
        regs.sort_by_key(|(n, _)| X86_64_SHOWN.iter().position(|s| s == n));
    }
    Some(CoreThread { tid, cursig, regs })
}

/// Parses NT_SIGINFO (`siginfo_t`): the signal, its code and, for faults, the address.
fn parse_siginfo(desc: &[u8]) -> Option<SigInfo> {
    let signo = u32_at(desc, 0)? as i32;
    let code = u32_at(desc, 8)? as i32;
    // SIGILL 4, SIGTRAP 5, SIGBUS 7, SIGFPE 8, SIGSEGV 11 carry si_addr at offset 16.
    let addr = matches!(signo, 4 | 5 | 7 | 8 | 11)
        .then(|| u64_at(desc, 16))
        .flatten();
    Some(SigInfo { signo, code, addr })
}

fn parse_auxv(desc: &[u8]) -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    for pair in desc.chunks_exact(16) {
        let key = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
        if key == 0 {
            break;
        }
        out.entry(key)
            .or_insert(u64::from_le_bytes(pair[8..].try_into().expect("8 bytes")));
    }
    out
}

/// Undoes /proc/PID/maps' only escape, `\012` for a newline (gdb copies names from there).
fn unescape_newlines(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&b, tail)) = rest.split_first() {
        if let Some(after) = rest.strip_prefix(b"\\012".as_slice()) {
            out.push(b'\n');
            rest = after;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    out
}

fn bytes_to_path(b: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(b))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(b).into_owned())
    }
}

/// What backs a mapping, from its NT_FILE name (as `d_path` wrote it, ` (deleted)` included).
fn backing_of(name: &[u8], writer: Writer) -> (Backing, Option<Mapped>) {
    let name = if writer == Writer::Gdb {
        unescape_newlines(name)
    } else {
        name.to_vec()
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if !name.starts_with(b"/") {
        // anon_inode:[perf_event] and the like: a pseudo-file, not a path.
        return (Backing::Special { name: lossy(&name) }, None);
    }
    let (path, deleted) = match name.strip_suffix(b" (deleted)".as_slice()) {
        Some(p) => (p, true),
        None => (name.as_slice(), false),
    };
    if deleted {
        if let Some(n) = path.strip_prefix(b"/memfd:".as_slice()) {
            return (Backing::Memfd { name: lossy(n) }, None);
        }
        if let Some(key) = path
            .strip_prefix(b"/SYSV".as_slice())
            .filter(|d| d.len() == 8)
            .and_then(|d| u32::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok())
        {
            return (Backing::SysV { key }, None);
        }
        if path == b"/dev/zero" {
            return (Backing::SharedAnonymous, None);
        }
    }
    let path = bytes_to_path(path);
    (
        Backing::File {
            path: path.clone(),
            deleted,
        },
        Some(Mapped {
            path,
            offset: 0,
            deleted,
        }),
    )
}

/// Device (major, minor) and inode of a file on disk now, Linux's encoding of `st_dev`.
fn dev_inode(path: &Path) -> ((u32, u32), u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(path) {
            let dev = m.dev();
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
            let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
            return ((major as u32, minor as u32), m.ino());
        }
    }
    let _ = path;
    ((0, 0), 0)
}

/// Permissions of the part of an ELF file mapped at file offset `offset` with load bias
/// unknown: the PT_LOAD segment whose file range holds it (gdb leaves such mappings out of its
/// cores, so the core itself cannot say).
fn elf_perms(file: &File, offset: u64) -> Option<Perms> {
    let cache = ReadCache::new(file);
    let header = elf::FileHeader64::<Endianness>::parse(&cache).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, &cache).ok()?;
    let down = |v: u64| v & !0xfff;
    phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .find(|ph| {
            let o = ph.p_offset(endian);
            down(o) <= offset && offset < o + ph.p_filesz(endian).max(1)
        })
        .map(|ph| {
            let f = ph.p_flags(endian);
            Perms {
                read: f.contains(elf::PF_R),
                write: f.contains(elf::PF_W),
                exec: f.contains(elf::PF_X),
                shared: false,
            }
        })
}

impl CoreFile {
    /// Opens the core at `path`. `exe` replaces the executable the core names (moved, or
    /// rebuilt since: pass the original build).
    pub fn open(path: &Path, exe: Option<&Path>) -> Result<CoreFile> {
        let core = File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let core_len = core
            .metadata()
            .map_err(|e| Error::io(path.display().to_string(), e))?
            .len();
        if let Some(exe) = exe {
            File::open(exe).map_err(|e| Error::io(exe.display().to_string(), e))?;
        }
        let parsed = Parsed::read(&core, path, core_len)?;
        let mut c = CoreFile::assemble(path, core, core_len, parsed)?;
        if let Some(exe) = exe {
            let named = c.info.exe.clone().ok_or_else(|| {
                bad(
                    path,
                    "--exe: the core names no executable mapping to replace",
                )
            })?;
            c.exe_override = Some((named, exe.to_path_buf()));
            c.info.exe = Some(exe.to_path_buf());
            let (dev, inode) = dev_inode(exe);
            let exe_path = c.exe_override.as_ref().map(|(n, _)| n.clone());
            for (a, r) in c.areas.iter().zip(c.regions.iter_mut()) {
                if a.file.as_ref().map(|m| &m.path) == exe_path.as_ref() {
                    r.dev = dev;
                    r.inode = inode;
                }
            }
        }
        Ok(c)
    }

    /// Builds the regions from the parsed headers and notes.
    fn assemble(path: &Path, core: File, core_len: u64, p: Parsed) -> Result<CoreFile> {
        let page = p.page_size;
        // Every PT_LOAD is a mapping; NT_FILE names the file-backed ones.
        let mut areas: Vec<(Area, Perms, Backing)> = Vec::with_capacity(p.loads.len());
        for l in &p.loads {
            areas.push((
                Area {
                    start: l.vaddr,
                    end: l.vaddr.saturating_add(l.memsz),
                    in_core: (l.filesz > 0).then_some((l.offset, l.filesz)),
                    file: None,
                },
                l.perms,
                Backing::Anonymous,
            ));
        }
        areas.sort_by_key(|(a, _, _)| a.start);
        let mut extra = Vec::new();
        for f in &p.files {
            let (backing, mapped) = backing_of(&f.name, p.writer);
            let i = areas.partition_point(|(a, _, _)| a.end <= f.start);
            let covering = areas
                .get(i)
                .is_some_and(|(a, _, _)| a.start < f.end && f.start < a.end);
            if covering {
                // Segments that lie inside this file mapping get its name (gdb and the kernel
                // both write one segment per mapping; a split one gets the offset moved along).
                for (a, perms, b) in areas[i..].iter_mut() {
                    if a.start >= f.end {
                        break;
                    }
                    let delta = a.start.saturating_sub(f.start);
                    *b = backing.clone();
                    a.file = mapped.clone().map(|m| Mapped {
                        offset: f.offset + delta,
                        ..m
                    });
                    if matches!(b, Backing::SysV { .. } | Backing::Memfd { .. }) {
                        perms.shared = true;
                    }
                }
            } else {
                // A mapping the writer left out entirely (gdb skips unmodified file pages).
                let mut perms = Perms {
                    read: true,
                    ..Perms::default()
                };
                if let Some(m) = &mapped
                    && !m.deleted
                    && let Ok(file) = File::open(&m.path)
                    && let Some(elf) = elf_perms(&file, f.offset)
                {
                    perms = elf;
                }
                perms.shared = matches!(
                    backing,
                    Backing::SysV { .. } | Backing::Memfd { .. } | Backing::SharedAnonymous
                );
                extra.push((
                    Area {
                        start: f.start,
                        end: f.end,
                        in_core: None,
                        file: mapped.map(|m| Mapped {
                            offset: f.offset,
                            ..m
                        }),
                    },
                    perms,
                    backing,
                ));
            }
        }
        areas.extend(extra);
        areas.sort_by_key(|(a, _, _)| a.start);
        for (_, perms, b) in areas.iter_mut() {
            if *b == Backing::SharedAnonymous {
                perms.shared = true;
            }
        }

        let machine = p.machine;
        let main_pid = p
            .psinfo
            .as_ref()
            .map(|s| s.pid)
            .or_else(|| p.threads.first().map(|t| t.tid))
            .unwrap_or(0);
        name_pseudo_regions(&mut areas, &p, machine, page);

        let exe = p
            .auxv
            .get(&AT_ENTRY)
            .or_else(|| p.auxv.get(&AT_PHDR))
            .and_then(|&at| areas.iter().find(|(a, _, _)| a.start <= at && at < a.end))
            .or_else(|| {
                areas
                    .iter()
                    .find(|(a, _, _)| a.file.as_ref().is_some_and(|m| m.offset == 0))
            })
            .and_then(|(a, _, _)| a.file.as_ref().map(|m| m.path.clone()));
        if let Some(exe) = &exe {
            name_heap(&mut areas, exe);
        }

        let mut stat_cache: HashMap<PathBuf, ((u32, u32), u64)> = HashMap::new();
        let regions = areas
            .iter()
            .map(|(a, perms, backing)| {
                let (dev, inode) = match &a.file {
                    Some(m) if !m.deleted => *stat_cache
                        .entry(m.path.clone())
                        .or_insert_with(|| dev_inode(&m.path)),
                    _ => ((0, 0), 0),
                };
                Region {
                    start: VirtAddr(a.start),
                    end: VirtAddr(a.end),
                    perms: *perms,
                    offset: FileOffset(a.file.as_ref().map_or(0, |m| m.offset)),
                    dev,
                    inode,
                    backing: backing.clone(),
                    usage: None,
                }
            })
            .collect();
        Ok(CoreFile {
            info: TargetInfo {
                pid: main_pid,
                exe,
                arch: match machine {
                    62 => "x86_64",
                    183 => "aarch64",
                    _ => "unknown",
                },
                kind: TargetKind::Core,
                page_size: page,
                user_space: crate::target::UserSpace::linux(match machine {
                    183 => "aarch64",
                    _ => "x86_64",
                }),
            },
            path: path.to_path_buf(),
            core,
            core_len,
            writer: p.writer,
            areas: areas.into_iter().map(|(a, _, _)| a).collect(),
            regions,
            threads: p.threads,
            psinfo: p.psinfo,
            siginfo: p.siginfo,
            exe_override: None,
            files: HashMap::new(),
        })
    }

    /// The core file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn area_index(&self, addr: u64) -> Option<usize> {
        let i = self.areas.partition_point(|a| a.end <= addr);
        self.areas
            .get(i)
            .filter(|a| a.start <= addr && addr < a.end)
            .map(|_| i)
    }

    /// Opens (once) the file a mapping maps, checked against the core's copy of its first page
    /// when the core has one: a file rebuilt since the crash must not be read as if it were the
    /// one the process mapped.
    fn backing_file(&mut self, named: &Path) -> std::result::Result<&File, String> {
        if !self.files.contains_key(named) {
            let opened = self.open_checked(named);
            self.files.insert(named.to_path_buf(), opened);
        }
        match self.files.get(named).expect("inserted above") {
            Ok(f) => Ok(f),
            Err(e) => Err(e.clone()),
        }
    }

    fn open_checked(&mut self, named: &Path) -> std::result::Result<File, String> {
        let (real, replaced) = match &self.exe_override {
            Some((orig, with)) if orig == named => (with.clone(), true),
            _ => (named.to_path_buf(), false),
        };
        let shown = crate::render::escape::escape_str(&real.to_string_lossy()).into_owned();
        let file = File::open(&real).map_err(|e| {
            let hint = if Some(named) == self.info.exe.as_deref() || replaced {
                " (pass the executable with --exe)"
            } else {
                ""
            };
            format!("{shown} cannot be opened: {e}{hint}")
        })?;
        // The first page of the file, if the core holds an unmodified copy of it.
        let copy = self.areas.iter().find_map(|a| {
            let m = a.file.as_ref()?;
            let (off, len) = a.in_core?;
            (m.path == named && m.offset == 0).then_some((off, len.min(4096), a.start))
        });
        if let Some((off, len, start)) = copy {
            let writable =
                crate::regions::find(&self.regions, VirtAddr(start)).is_some_and(|r| r.perms.write);
            let mut ours = vec![0u8; len as usize];
            let mut theirs = vec![0u8; len as usize];
            if !writable
                && read_full_at(&self.core, &mut ours, off) == ours.len()
                && (read_full_at(&file, &mut theirs, 0) < theirs.len() || ours != theirs)
            {
                return Err(format!(
                    "{shown} is not the file the process mapped: its first page differs from \
                     the copy in the core (rebuilt since?{})",
                    if replaced || Some(named) == self.info.exe.as_deref() {
                        " pass the original with --exe"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(file)
    }

    /// Reads what one mapping holds at `addr`, up to the end of the mapping.
    fn read_in_area(&mut self, i: usize, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let area = self.areas[i].clone();
        let want = (buf.len() as u64).min(area.end - addr) as usize;
        let rel = addr - area.start;
        if let Some((off, len)) = area.in_core
            && rel < len
        {
            let n = (want as u64).min(len - rel) as usize;
            let at = off.saturating_add(rel);
            let got = read_full_at(&self.core, &mut buf[..n], at);
            if got == 0 {
                return Err(Error::Unreadable {
                    addr: VirtAddr(addr),
                    len: buf.len(),
                    reason: format!(
                        "the core file is truncated: {} holds {} bytes, this part of the mapping \
                         at {:#x} was to be at byte {at}",
                        self.shown_path(),
                        self.core_len,
                        area.start
                    ),
                });
            }
            return Ok(got);
        }
        if let Some(m) = &area.file {
            let region = self.regions[i].clone();
            if m.deleted {
                return Err(Error::Unreadable {
                    addr: VirtAddr(addr),
                    len: buf.len(),
                    reason: format!(
                        "not in the core, and {} was deleted before the core was written",
                        region.backing.label()
                    ),
                });
            }
            let at = m.offset.saturating_add(rel);
            let path = m.path.clone();
            let file = self
                .backing_file(&path)
                .map_err(|reason| Error::Unreadable {
                    addr: VirtAddr(addr),
                    len: buf.len(),
                    reason: format!("not in the core, and {reason}"),
                })?;
            let got = read_full_at(file, &mut buf[..want], at);
            if got == 0 {
                return Err(Error::Unreadable {
                    addr: VirtAddr(addr),
                    len: buf.len(),
                    reason: format!(
                        "past the end of {} (offset {at:#x}): the process could not read it \
                         either (SIGBUS)",
                        crate::render::escape::escape_str(&path.to_string_lossy())
                    ),
                });
            }
            return Ok(got);
        }
        let region = &self.regions[i];
        let reason = if region.perms.is_none() {
            "a no-access mapping: not in the core, and the process could not read it either".into()
        } else {
            format!(
                "not in the core: {} left this mapping out and no file backs it",
                match self.writer {
                    Writer::Kernel => "the kernel (coredump_filter)",
                    Writer::Gdb => "gdb",
                }
            )
        };
        Err(Error::Unreadable {
            addr: VirtAddr(addr),
            len: buf.len(),
            reason,
        })
    }

    fn shown_path(&self) -> String {
        crate::render::escape::escape_str(&self.path.to_string_lossy()).into_owned()
    }

    fn thread(&self, tid: Option<i32>) -> Result<&CoreThread> {
        let found = match tid {
            None => self
                .threads
                .iter()
                .find(|t| t.tid == self.info.pid)
                .or(self.threads.first()),
            Some(tid) => self.threads.iter().find(|t| t.tid == tid),
        };
        found.ok_or_else(|| {
            let tids: Vec<String> = self.threads.iter().map(|t| t.tid.to_string()).collect();
            Error::usage(match tid {
                Some(tid) => format!(
                    "no thread {tid} in the core (its threads: {})",
                    tids.join(" ")
                ),
                None => "the core holds no thread (no NT_PRSTATUS note)".into(),
            })
        })
    }

    /// "killed by SIGSEGV at 0x0", from NT_SIGINFO or the first thread's signal.
    fn death(&self) -> Option<String> {
        let (signo, addr) = match self.siginfo {
            Some(s) if s.signo > 0 => (s.signo, s.addr.filter(|_| s.code > 0)),
            _ => {
                let sig = self.threads.iter().map(|t| t.cursig).find(|&s| s > 0)?;
                (i32::from(sig), None)
            }
        };
        // Core files are Linux's: only Linux's own table names their signal numbers.
        #[cfg(target_os = "linux")]
        let name = nix::sys::signal::Signal::try_from(signo)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {signo}"));
        #[cfg(not(target_os = "linux"))]
        let name = format!("signal {signo}");
        Some(match addr {
            Some(a) => format!("{name} at {a:#x}"),
            None => name,
        })
    }
}

/// Reads as much of `buf` as the file holds at `offset`.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    done
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Names the mappings the kernel would name in /proc/PID/maps where the core tells: the main
/// stack (holding AT_RANDOM), the vDSO (AT_SYSINFO_EHDR) and the vvar pages just below it, and
/// x86_64's vsyscall page.
fn name_pseudo_regions(areas: &mut [(Area, Perms, Backing)], p: &Parsed, machine: u16, page: u64) {
    let find = |areas: &[(Area, Perms, Backing)], at: u64| {
        areas
            .iter()
            .position(|(a, _, _)| a.start <= at && at < a.end)
    };
    let stack_hint = p
        .auxv
        .get(&AT_RANDOM)
        .or_else(|| p.auxv.get(&AT_EXECFN))
        .copied()
        .or_else(|| {
            let main = p.threads.first()?;
            main.regs
                .iter()
                .find(|(n, _)| *n == "rsp" || *n == "sp")
                .map(|&(_, v)| v)
        });
    if let Some(i) = stack_hint.and_then(|at| find(areas, at))
        && areas[i].2 == Backing::Anonymous
    {
        areas[i].2 = Backing::Stack;
    }
    if let Some(i) = p.auxv.get(&AT_SYSINFO_EHDR).and_then(|&at| find(areas, at))
        && areas[i].2 == Backing::Anonymous
    {
        areas[i].2 = Backing::Vdso;
        // vvar (and vvar_vclock) sit right below the vDSO: read-only, no file.
        let mut j = i;
        while j > 0 && i - j < 4 {
            let (below, above) = (&areas[j - 1], &areas[j]);
            let p = below.1;
            if below.0.end != above.0.start
                || below.2 != Backing::Anonymous
                || p.write
                || p.exec
                || below.0.end - below.0.start > 16 * page
            {
                break;
            }
            areas[j - 1].2 = Backing::Vvar;
            j -= 1;
        }
    }
    if machine == 62
        && let Some(i) = find(areas, VSYSCALL)
        && areas[i].0.start == VSYSCALL
    {
        areas[i].2 = Backing::Vsyscall;
    }
}

/// Names the brk heap, which a core does not mark: the first private writable anonymous mapping
/// past the executable's image and its bss, within the range the kernel randomizes the brk start
/// over (1 GiB for 64-bit processes on x86_64 and aarch64).
fn name_heap(areas: &mut [(Area, Perms, Backing)], exe: &Path) {
    if areas.iter().any(|(_, _, b)| *b == Backing::Heap) {
        return;
    }
    let Some(last) = areas
        .iter()
        .rposition(|(a, _, _)| a.file.as_ref().is_some_and(|m| m.path == exe))
    else {
        return;
    };
    // Step over the bss, which follows the image without a gap.
    let mut i = last + 1;
    let mut image_end = areas[last].0.end;
    while let Some((a, p, b)) = areas.get(i)
        && a.start == image_end
        && *b == Backing::Anonymous
        && p.write
    {
        image_end = a.end;
        i += 1;
    }
    let window = 1 << 30;
    if let Some((a, p, b)) = areas.get_mut(i)
        && *b == Backing::Anonymous
        && p.read
        && p.write
        && !p.exec
        && a.start > image_end
        && a.start - image_end <= window + 4096
    {
        *b = Backing::Heap;
    }
}

/// One PT_LOAD segment.
struct Load {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    perms: Perms,
}

/// What the headers and notes of a core say.
struct Parsed {
    writer: Writer,
    machine: u16,
    page_size: u64,
    loads: Vec<Load>,
    files: Vec<FileEntry>,
    threads: Vec<CoreThread>,
    psinfo: Option<PsInfo>,
    siginfo: Option<SigInfo>,
    auxv: HashMap<u64, u64>,
}

impl Parsed {
    fn read(core: &File, path: &Path, core_len: u64) -> Result<Parsed> {
        let cache = ReadCache::new(core);
        let data = &cache;
        let mut ident = [0u8; 6];
        if read_full_at(core, &mut ident, 0) < ident.len() || &ident[..4] != b"\x7fELF" {
            return Err(bad(path, "not an ELF file, so not a core file"));
        }
        if ident[4] != elf::ELFCLASS64.0 {
            return Err(bad(path, "a 32-bit core file: only 64-bit cores are read"));
        }
        if ident[5] != elf::ELFDATA2LSB.0 {
            return Err(bad(
                path,
                "a big-endian core file: only little-endian cores are read",
            ));
        }
        let corrupt =
            |what: &str, e: object::Error| bad(path, format!("corrupt core file: {what}: {e}"));
        let header =
            elf::FileHeader64::<Endianness>::parse(data).map_err(|e| corrupt("ELF header", e))?;
        let endian = header.endian().map_err(|e| corrupt("ELF header", e))?;
        let e_type = header.e_type(endian);
        if e_type != elf::ET_CORE {
            let what = match e_type {
                elf::ET_EXEC | elf::ET_DYN => "an executable or shared library",
                elf::ET_REL => "an object file",
                _ => "an ELF file of another type",
            };
            return Err(bad(
                path,
                format!("{what}, not a core file (pass the executable with --exe)"),
            ));
        }
        let machine = header.e_machine(endian).0;
        let phnum = header
            .phnum(endian, data)
            .map_err(|e| corrupt("program header count", e))?;
        if phnum > MAX_SEGMENTS || u64::from(phnum) * 56 > core_len {
            return Err(bad(
                path,
                format!("corrupt core file: {phnum} program headers in a file of {core_len} bytes"),
            ));
        }
        let phdrs = header
            .program_headers(endian, data)
            .map_err(|e| corrupt("program headers", e))?;
        let shnum = header.e_shnum.get(endian);
        let mut p = Parsed {
            writer: if shnum > 1 {
                Writer::Gdb
            } else {
                Writer::Kernel
            },
            machine,
            page_size: 4096,
            loads: Vec::new(),
            files: Vec::new(),
            threads: Vec::new(),
            psinfo: None,
            siginfo: None,
            auxv: HashMap::new(),
        };
        let mut nt_page = None;
        for ph in phdrs {
            match ph.p_type(endian) {
                elf::PT_LOAD => {
                    let f = ph.p_flags(endian);
                    p.loads.push(Load {
                        vaddr: ph.p_vaddr(endian),
                        memsz: ph.p_memsz(endian),
                        offset: ph.p_offset(endian),
                        filesz: ph.p_filesz(endian).min(ph.p_memsz(endian)),
                        perms: Perms {
                            read: f.contains(elf::PF_R),
                            write: f.contains(elf::PF_W),
                            exec: f.contains(elf::PF_X),
                            shared: false,
                        },
                    });
                }
                elf::PT_NOTE => {
                    let (off, size) = (ph.p_offset(endian), ph.p_filesz(endian));
                    if size > MAX_NOTES || off.saturating_add(size) > core_len {
                        return Err(bad(
                            path,
                            format!(
                                "the core file is truncated or corrupt: its notes ({size} bytes \
                                 at {off}) lie past its end ({core_len} bytes)"
                            ),
                        ));
                    }
                    let mut notes = ph
                        .notes(endian, data)
                        .map_err(|e| corrupt("notes", e))?
                        .expect("a PT_NOTE segment");
                    while let Some(note) = notes.next().map_err(|e| corrupt("notes", e))? {
                        let desc = note.desc();
                        let name = note.name();
                        if name != elf::ELF_NOTE_CORE && name != elf::ELF_NOTE_LINUX {
                            continue;
                        }
                        match note.n_type(endian) {
                            elf::NT_PRSTATUS => {
                                let t = parse_prstatus(desc, machine).ok_or_else(|| {
                                    bad(path, "corrupt core file: a short NT_PRSTATUS note")
                                })?;
                                p.threads.push(t);
                            }
                            elf::NT_PRPSINFO => p.psinfo = parse_psinfo(desc),
                            elf::NT_SIGINFO if p.siginfo.is_none() => {
                                p.siginfo = parse_siginfo(desc)
                            }
                            elf::NT_AUXV => p.auxv = parse_auxv(desc),
                            elf::NT_FILE => {
                                let (files, page) = parse_nt_file(desc).ok_or_else(|| {
                                    bad(path, "corrupt core file: a malformed NT_FILE note")
                                })?;
                                p.files = files;
                                nt_page = Some(page);
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if p.loads.is_empty() {
            return Err(bad(path, "a core file with no memory (no PT_LOAD segment)"));
        }
        p.page_size = p
            .auxv
            .get(&AT_PAGESZ)
            .copied()
            .or(nt_page)
            .filter(|s| s.is_power_of_two() && *s >= 1024)
            .unwrap_or(4096);
        Ok(p)
    }
}

impl Target for CoreFile {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn regions(&mut self) -> Result<Vec<Region>> {
        Ok(self.regions.clone())
    }

    fn mapped_file(&mut self, region: &Region) -> Result<File> {
        let i = self.area_index(region.start.get());
        let mapped = i
            .and_then(|i| self.areas[i].file.clone())
            .ok_or_else(|| Error::usage(format!("the region at {} maps no file", region.start)))?;
        if mapped.deleted {
            return Err(bad(
                &mapped.path,
                "deleted before the core was written, so its contents are gone",
            ));
        }
        let file = self
            .backing_file(&mapped.path)
            .map_err(|m| bad(&mapped.path, m))?;
        file.try_clone()
            .map_err(|e| Error::io(mapped.path.display().to_string(), e))
    }

    fn read(&mut self, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let Some(at) = addr.get().checked_add(done as u64) else {
                break;
            };
            let step = match self.area_index(at) {
                Some(i) => self.read_in_area(i, at, &mut buf[done..]),
                None => Err(Error::Unreadable {
                    addr: VirtAddr(at),
                    len: buf.len() - done,
                    reason: "not mapped".into(),
                }),
            };
            match step {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if done == 0 => {
                    return Err(match e {
                        Error::Unreadable { reason, .. } => Error::Unreadable {
                            addr,
                            len: buf.len(),
                            reason,
                        },
                        other => other,
                    });
                }
                Err(_) => break,
            }
        }
        Ok(done)
    }

    fn threads(&mut self) -> Result<Vec<Thread>> {
        let name = self
            .psinfo
            .as_ref()
            .map(|p| p.fname.clone())
            .unwrap_or_default();
        let state = self.psinfo.as_ref().map_or('?', |p| p.state);
        let x86 = self.info.arch == "x86_64";
        Ok(self
            .threads
            .iter()
            .map(|t| {
                let regs = Registers {
                    tid: t.tid,
                    values: t.regs.clone(),
                };
                let syscall = regs
                    .get("orig_rax")
                    .filter(|_| x86)
                    .map(|v| v as i64)
                    .filter(|&n| n >= 0)
                    .map(|number| Syscall {
                        number,
                        name: syscall_name(number),
                    });
                Thread {
                    tid: t.tid,
                    name: name.clone(),
                    state,
                    syscall,
                    sp: regs.get("sp").map(VirtAddr),
                    pc: regs.get("pc").map(VirtAddr),
                }
            })
            .collect())
    }

    fn facts(&mut self) -> Result<ProcessFacts> {
        let ps = self.psinfo.clone().unwrap_or_default();
        let by = match self.writer {
            Writer::Kernel => "the kernel",
            Writer::Gdb => "gdb",
        };
        let state = match self.death() {
            Some(d) if self.writer == Writer::Kernel => {
                format!("core dumped by {by}: killed by {d}")
            }
            Some(d) => format!("core written by {by} (signal {d})"),
            None => format!("core written by {by}"),
        };
        Ok(ProcessFacts {
            name: ps.fname,
            cmdline: ps.psargs.split_whitespace().map(str::to_string).collect(),
            state,
            threads: self.threads.len() as u64,
            vm_size: Some(self.regions.iter().map(|r| r.size()).sum()),
            ..ProcessFacts::default()
        })
    }

    fn registers(&mut self, tid: Option<i32>) -> Result<Registers> {
        let t = self.thread(tid)?;
        if t.regs.is_empty() {
            return Err(self.unsupported(&format!(
                "registers of this architecture ({})",
                self.info.arch
            )));
        }
        Ok(Registers {
            tid: t.tid,
            values: t.regs.clone(),
        })
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported {
            what: what.to_string(),
            target: format!(
                "core file {} (a core file has no live process or page tables)",
                self.shown_path()
            ),
        }
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn syscall_name(number: i64) -> Option<&'static str> {
    super::linux::procfs::syscall_name(number)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn syscall_name(_number: i64) -> Option<&'static str> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal core file: an ELF header, program headers, one note segment and the segments'
    /// bytes, as the kernel lays them out.
    struct Builder {
        loads: Vec<(u64, u64, u32, Vec<u8>)>, // vaddr, memsz, flags, bytes in the core
        notes: Vec<(u32, Vec<u8>)>,
        shnum: u16,
    }

    fn note_bytes(kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(5u32.to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(b"CORE\0\0\0\0");
        out.extend(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    impl Builder {
        fn build(&self) -> Vec<u8> {
            let phnum = self.loads.len() + 1;
            let notes: Vec<u8> = self
                .notes
                .iter()
                .flat_map(|(k, d)| note_bytes(*k, d))
                .collect();
            let mut out = vec![0u8; 64];
            out[..4].copy_from_slice(b"\x7fELF");
            out[4] = 2;
            out[5] = 1;
            out[6] = 1;
            out[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
            out[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86_64
            out[20..24].copy_from_slice(&1u32.to_le_bytes());
            out[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
            out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
            out[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
            out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
            out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
            out[60..62].copy_from_slice(&self.shnum.to_le_bytes());
            let mut data_at = 64 + 56 * phnum as u64;
            let mut phdrs = Vec::new();
            let mut push_ph =
                |t: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
                    for v in [t, flags] {
                        phdrs.extend(v.to_le_bytes());
                    }
                    let align = if t == 4 { 4 } else { 4096 };
                    for v in [off, vaddr, 0, filesz, memsz, align] {
                        phdrs.extend(v.to_le_bytes());
                    }
                };
            push_ph(4, 4, data_at, 0, notes.len() as u64, 0);
            data_at += notes.len() as u64;
            let mut blobs = notes.clone();
            for (vaddr, memsz, flags, bytes) in &self.loads {
                push_ph(1, *flags, data_at, *vaddr, bytes.len() as u64, *memsz);
                data_at += bytes.len() as u64;
                blobs.extend(bytes);
            }
            out.extend(phdrs);
            out.extend(blobs);
            out
        }
    }

    fn nt_file(entries: &[(u64, u64, u64, &[u8])]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend((entries.len() as u64).to_le_bytes());
        d.extend(4096u64.to_le_bytes());
        for (s, e, pg, _) in entries {
            for v in [s, e, pg] {
                d.extend(v.to_le_bytes());
            }
        }
        for (_, _, _, n) in entries {
            d.extend(*n);
            d.push(0);
        }
        d
    }

    fn prstatus(tid: i32, rsp: u64, rip: u64) -> Vec<u8> {
        let mut d = vec![0u8; 336];
        d[32..36].copy_from_slice(&tid.to_le_bytes());
        let reg = |name: &str| PR_REG + 8 * X86_64_REGS.iter().position(|n| *n == name).unwrap();
        d[reg("rsp")..reg("rsp") + 8].copy_from_slice(&rsp.to_le_bytes());
        d[reg("rip")..reg("rip") + 8].copy_from_slice(&rip.to_le_bytes());
        d[reg("orig_rax")..reg("orig_rax") + 8].copy_from_slice(&34u64.to_le_bytes());
        d
    }

    fn psinfo(pid: i32, fname: &str, args: &str) -> Vec<u8> {
        let mut d = vec![0u8; 136];
        d[1] = b'R';
        d[24..28].copy_from_slice(&pid.to_le_bytes());
        d[40..40 + fname.len()].copy_from_slice(fname.as_bytes());
        d[56..56 + args.len()].copy_from_slice(args.as_bytes());
        d
    }

    fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vmscope-core-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    }

    /// A data file mapped at 0x10000 (not in the core), an anonymous page at 0x20000 holding
    /// known bytes, a no-access page, and a stack.
    fn sample(data_file: &Path) -> Builder {
        let mut anon = vec![0u8; 4096];
        anon[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let file_name = data_file.as_os_str().as_encoded_bytes().to_vec();
        let mut deleted = b"/tmp/gone (deleted)".to_vec();
        deleted.push(0);
        deleted.pop();
        Builder {
            loads: vec![
                (0x10000, 0x2000, 4, vec![]),
                (0x20000, 0x1000, 6, anon),
                (0x30000, 0x1000, 0, vec![]),
                (0x40000, 0x1000, 4, vec![]),
                (0x7ffe_0000, 0x1000, 6, vec![7u8; 4096]),
            ],
            notes: vec![
                (3, psinfo(4242, "sample", "./sample a b")),
                (1, prstatus(4242, 0x7ffe_0800, 0x10010)),
                (1, prstatus(4243, 0x7ffe_0400, 0x10020)),
                (
                    0x4649_4c45,
                    nt_file(&[
                        (0x10000, 0x12000, 1, &file_name),
                        (0x40000, 0x41000, 0, &deleted),
                    ]),
                ),
                (6, {
                    let mut a = Vec::new();
                    for v in [AT_RANDOM, 0x7ffe_0900, AT_ENTRY, 0x10010, 0, 0] {
                        a.extend(v.to_le_bytes());
                    }
                    a
                }),
            ],
            shnum: 0,
        }
    }

    #[test]
    fn regions_threads_and_reads() {
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i / 4096 + 1) as u8).collect();
        let data_file = write_temp("data.bin", &data);
        let core = write_temp("sample.core", &sample(&data_file).build());
        let mut c = CoreFile::open(&core, None).unwrap();
        assert_eq!(c.info().pid, 4242);
        assert_eq!(c.info().kind, TargetKind::Core);
        assert_eq!(c.info().exe.as_deref(), Some(data_file.as_path()));
        let regions = c.regions().unwrap();
        assert_eq!(regions.len(), 5);
        assert_eq!(regions[0].backing.path(), Some(data_file.as_path()));
        assert_eq!(regions[0].offset, FileOffset(4096));
        assert_eq!(regions[0].perms.to_string(), "r--p");
        // The first private writable mapping within 1 GiB past the executable: the brk heap.
        assert_eq!(regions[1].backing, Backing::Heap);
        assert_eq!(regions[1].perms.to_string(), "rw-p");
        assert_eq!(regions[2].perms.to_string(), "---p");
        assert!(matches!(
            regions[3].backing,
            Backing::File { deleted: true, .. }
        ));
        assert_eq!(regions[4].backing, Backing::Stack);

        // From the core.
        let mut word = [0u8; 8];
        assert_eq!(c.read(VirtAddr(0x20000), &mut word).unwrap(), 8);
        assert_eq!(u64::from_le_bytes(word), 0x1122_3344_5566_7788);
        // From the mapped file at page offset 1: the second page of data.bin holds 2s.
        let mut b = [0u8; 4];
        assert_eq!(c.read(VirtAddr(0x10000), &mut b).unwrap(), 4);
        assert_eq!(b, [2; 4]);
        assert_eq!(
            c.read(VirtAddr(0x11ffe), &mut b).unwrap(),
            2,
            "stops at the end of the mapping"
        );
        // Nothing there.
        let e = c.read(VirtAddr(0x30000), &mut b).unwrap_err().to_string();
        assert!(e.contains("no-access"), "{e}");
        let e = c.read(VirtAddr(0x50000), &mut b).unwrap_err().to_string();
        assert!(e.contains("not mapped"), "{e}");
        let e = c.read(VirtAddr(0x40000), &mut b).unwrap_err().to_string();
        assert!(e.contains("deleted"), "{e}");

        let threads = c.threads().unwrap();
        assert_eq!(threads.len(), 2);
        assert_eq!(threads[1].tid, 4243);
        assert_eq!(threads[0].sp, Some(VirtAddr(0x7ffe_0800)));
        assert_eq!(threads[0].pc, Some(VirtAddr(0x10010)));
        assert_eq!(threads[0].syscall.as_ref().unwrap().number, 34);
        let regs = c.registers(Some(4243)).unwrap();
        assert_eq!(regs.get("rip"), Some(0x10020));
        assert!(
            c.registers(Some(1))
                .unwrap_err()
                .to_string()
                .contains("4242 4243")
        );

        let facts = c.facts().unwrap();
        assert_eq!(facts.name, "sample");
        assert_eq!(facts.cmdline, ["./sample", "a", "b"]);
        assert_eq!(facts.threads, 2);

        let e = c.stop().unwrap_err().to_string();
        assert!(e.contains("no live process"), "{e}");
        assert!(c.regions_with_usage().is_err());
        assert!(c.pages(VirtAddr(0)..VirtAddr(4096)).is_err());
    }

    #[test]
    fn a_changed_file_is_not_read() {
        let data = vec![9u8; 8192];
        let data_file = write_temp("changed.bin", &data);
        let mut b = sample(&data_file);
        // The core holds the file's first page (as the kernel dumps ELF headers), but different.
        b.loads[0] = (0x10000, 0x2000, 4, vec![1u8; 4096]);
        if let Some((_, d)) = b.notes.iter_mut().find(|(k, _)| *k == 0x4649_4c45) {
            *d = nt_file(&[(
                0x10000,
                0x12000,
                0,
                data_file.as_os_str().as_encoded_bytes(),
            )]);
        }
        let core = write_temp("changed.core", &b.build());
        let mut c = CoreFile::open(&core, None).unwrap();
        let mut buf = [0u8; 4];
        // The copied page reads from the core; the next page would need the file, which differs.
        assert_eq!(c.read(VirtAddr(0x10000), &mut buf).unwrap(), 4);
        assert_eq!(buf, [1; 4]);
        let e = c.read(VirtAddr(0x11000), &mut buf).unwrap_err().to_string();
        assert!(e.contains("not the file the process mapped"), "{e}");
    }

    #[test]
    fn gdb_names_are_unescaped() {
        let (b, _) = backing_of(b"/tmp/a\\012b (deleted)", Writer::Gdb);
        assert_eq!(
            b,
            Backing::File {
                path: PathBuf::from("/tmp/a\nb"),
                deleted: true
            }
        );
        let (b, _) = backing_of(b"/tmp/a\\012b", Writer::Kernel);
        assert_eq!(b.path(), Some(Path::new("/tmp/a\\012b")));
        assert_eq!(
            backing_of(b"/memfd:buf (deleted)", Writer::Kernel).0,
            Backing::Memfd { name: "buf".into() }
        );
        assert_eq!(
            backing_of(b"/SYSV0000002a (deleted)", Writer::Kernel).0,
            Backing::SysV { key: 42 }
        );
        assert_eq!(
            backing_of(b"/dev/zero (deleted)", Writer::Kernel).0,
            Backing::SharedAnonymous
        );
        assert_eq!(
            backing_of(b"anon_inode:[perf_event]", Writer::Kernel).0,
            Backing::Special {
                name: "anon_inode:[perf_event]".into()
            }
        );
    }

    #[test]
    fn corrupt_and_truncated_cores_are_errors() {
        let data_file = write_temp("t.bin", &[0u8; 8192]);
        let good = sample(&data_file).build();
        // Every truncation: an error or a core that reads what it still has, never a panic.
        for cut in (0..good.len()).step_by(7) {
            let p = write_temp("cut.core", &good[..cut]);
            if let Ok(mut c) = CoreFile::open(&p, None) {
                let mut b = [0u8; 16];
                let _ = c.read(VirtAddr(0x7ffe_0000), &mut b);
                let _ = c.regions();
                let _ = c.threads();
                let _ = c.facts();
            }
        }
        // Flipped bytes in the headers and notes.
        for at in (0..good.len().min(1200)).step_by(3) {
            for x in [0xffu8, 0x80] {
                let mut bad = good.clone();
                bad[at] ^= x;
                let p = write_temp("flip.core", &bad);
                if let Ok(mut c) = CoreFile::open(&p, None) {
                    let mut b = [0u8; 16];
                    let _ = c.read(VirtAddr(0x20000), &mut b);
                    let _ = c.threads();
                }
            }
        }
        let p = write_temp("not.core", b"hello");
        let e = CoreFile::open(&p, None).err().unwrap().to_string();
        assert!(e.contains("not an ELF file"), "{e}");
        let exe = std::env::current_exe().unwrap();
        let e = CoreFile::open(&exe, None).err().unwrap().to_string();
        assert!(e.contains("not a core file"), "{e}");
        // Segment bytes cut off: reads say the core is truncated.
        let short = &good[..good.len() - 4096];
        let p = write_temp("short.core", short);
        let mut c = CoreFile::open(&p, None).unwrap();
        let mut b = [0u8; 8];
        let e = c
            .read(VirtAddr(0x7ffe_0000), &mut b)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn nt_file_parser_rejects_lies() {
        let good = nt_file(&[(0x1000, 0x2000, 0, b"/a"), (0x3000, 0x4000, 2, b"/b")]);
        let (entries, page) = parse_nt_file(&good).unwrap();
        assert_eq!(page, 4096);
        assert_eq!(entries[1].offset, 0x2000);
        assert_eq!(entries[1].name, b"/b");
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_nt_file(&huge).is_none());
        assert!(parse_nt_file(&good[..20]).is_none());
        let mut backwards = good.clone();
        backwards[24..32].copy_from_slice(&0u64.to_le_bytes()); // end < start
        assert!(parse_nt_file(&backwards).is_none());
    }
}
