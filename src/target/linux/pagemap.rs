//! Page tables of a live Linux process: /proc/PID/pagemap (one 64-bit entry per virtual page),
//! the PAGEMAP_SCAN ioctl on it (Linux 6.7 and later: the kernel folds a range into runs of pages
//! in the same state, so counting a sparse 64 GiB mapping costs what its populated pages cost),
//! with a fallback to chunked plain reads chosen at run time on older kernels, and
//! /proc/kpageflags and /proc/kpagecount for the physical frames. Without CAP_SYS_ADMIN the kernel
//! zeroes frame numbers and swap locations in pagemap: [`pfn_visible`] says so, and frames are then
//! never looked up.

use crate::addr::VirtAddr;
use crate::pages::{self, Frame, KPageFlags, PageEntry, PageState, ScanMethod, StateRun};
use linux_raw_sys::general::{
    PAGE_IS_FILE, PAGE_IS_GUARD, PAGE_IS_HUGE, PAGE_IS_PFNZERO, PAGE_IS_PRESENT, PAGE_IS_SWAPPED,
    page_region, pm_scan_arg,
};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// `_IOWR('f', 16, struct pm_scan_arg)`. linux-raw-sys has the structs and category bits but not
/// the request number, so it is built here the way <asm-generic/ioctl.h> builds it:
/// dir (read|write = 3) << 30 | size << 16 | type << 8 | nr.
pub const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<pm_scan_arg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

/// How many runs one PAGEMAP_SCAN call may return before we call again.
const SCAN_VEC: usize = 1024;
/// Entries per plain read in the fallback: 64 Ki entries, 512 KiB.
const READ_CHUNK: usize = 64 * 1024;

/// The capability number of CAP_SYS_ADMIN (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;

/// Bytes per pagemap entry.
const ENTRY: u64 = 8;

/// Which way ranges are counted, learned on first use: 0 unknown, 1 PAGEMAP_SCAN with guard
/// regions (6.15+), 2 PAGEMAP_SCAN without them (6.7-6.14), 3 plain reads.
static MODE: AtomicU8 = AtomicU8::new(0);
const MODE_SCAN_GUARD: u8 = 1;
const MODE_SCAN: u8 = 2;
const MODE_READ: u8 = 3;

/// Set `VMSCOPE_PAGEMAP_SCAN=off` to force the plain-read fallback (tests and benchmarks use it).
pub const FORCE_READ_ENV: &str = "VMSCOPE_PAGEMAP_SCAN";

/// The system's base page size.
pub fn base_page() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |v| v as u64)
    })
}

/// Whether this process may see frame numbers: the kernel shows them to openers with
/// CAP_SYS_ADMIN (bit 21 of the effective set).
pub fn pfn_visible() -> bool {
    static VISIBLE: OnceLock<bool> = OnceLock::new();
    *VISIBLE.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
    })
}

/// Opens /proc/PID/pagemap.
pub fn open(pid: i32) -> io::Result<File> {
    File::open(format!("/proc/{pid}/pagemap"))
}

fn gone() -> io::Error {
    io::Error::from_raw_os_error(libc::ESRCH)
}

/// Reads the raw entries of `count` pages from `start` (page aligned). pagemap ends at the top of
/// the user address space (`[vsyscall]` lies above it): entries past its end read as zero, unless
/// the process is gone.
pub fn read_raw(file: &File, pid: i32, start: VirtAddr, count: usize) -> io::Result<Vec<u64>> {
    let page = base_page();
    let mut bytes = vec![0u8; count * ENTRY as usize];
    let mut done = 0;
    let offset = start.get() / page * ENTRY;
    while done < bytes.len() {
        match file.read_at(&mut bytes[done..], offset + done as u64) {
            Ok(0) if super::process_alive(pid) => break,
            Ok(0) => return Err(gone()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(bytes
        .chunks_exact(ENTRY as usize)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")))
        .collect())
}

/// The decoded entries of `count` pages from `start`.
pub fn entries(pid: i32, start: VirtAddr, count: usize) -> io::Result<pages::PageEntries> {
    let raw = read_raw(&open(pid)?, pid, start, count)?;
    let mut visible = pfn_visible();
    let mut entries: Vec<PageEntry> = raw.iter().map(|&r| PageEntry::decode(r, visible)).collect();
    // Privileged by our capabilities but not by the kernel's check (a user namespace): a present
    // page reads as frame 0. Say hidden rather than show zeros.
    if visible
        && raw
            .iter()
            .any(|&r| r & pages::bits::PRESENT != 0 && r & pages::bits::PFN_MASK == 0)
    {
        visible = false;
        entries = raw.iter().map(|&r| PageEntry::decode(r, false)).collect();
    }
    Ok(pages::PageEntries {
        start,
        page_size: base_page(),
        entries,
        pfn_visible: visible,
    })
}

fn categories_to_state(c: u64) -> PageState {
    let mut s = PageState::default();
    let guard = c & PAGE_IS_GUARD as u64 != 0;
    let present = c & PAGE_IS_PRESENT as u64 != 0;
    s.set(PageState::GUARD, guard);
    // A guard region also reads as "swapped" (it is a swap-entry marker).
    s.set(
        PageState::SWAPPED,
        c & PAGE_IS_SWAPPED as u64 != 0 && !guard && !present,
    );
    s.set(PageState::PRESENT, present);
    s.set(PageState::FILE, present && c & PAGE_IS_FILE as u64 != 0);
    s.set(PageState::ZERO, present && c & PAGE_IS_PFNZERO as u64 != 0);
    s.set(PageState::HUGE, present && c & PAGE_IS_HUGE as u64 != 0);
    s
}

/// Runs of present, swapped and guard pages in `range` with PAGEMAP_SCAN. Fails with ENOTTY on
/// kernels without the ioctl, and EINVAL on kernels that do not know guard regions when
/// `with_guard` is set. `with_file` asks which pages are file pages: the kernel then looks up
/// every present page's struct page, which costs ten times the walk itself, so it is asked
/// only for mappings that can hold file pages.
pub fn scan_ioctl(
    file: &File,
    range: Range<VirtAddr>,
    with_guard: bool,
    with_file: bool,
) -> io::Result<Vec<StateRun>> {
    let guard = if with_guard { PAGE_IS_GUARD as u64 } else { 0 };
    let file_bit = if with_file { PAGE_IS_FILE as u64 } else { 0 };
    let wanted = (PAGE_IS_PRESENT | PAGE_IS_SWAPPED) as u64 | guard;
    let returned = (PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | PAGE_IS_HUGE) as u64
        | guard
        | file_bit;
    let mut vec = vec![
        page_region {
            start: 0,
            end: 0,
            categories: 0,
        };
        SCAN_VEC
    ];
    let mut runs = Vec::new();
    let mut start = range.start.get();
    let end = range.end.get();
    while start < end {
        let mut arg = pm_scan_arg {
            size: std::mem::size_of::<pm_scan_arg>() as u64,
            flags: 0,
            start,
            end,
            walk_end: 0,
            vec: vec.as_mut_ptr() as u64,
            vec_len: SCAN_VEC as u64,
            max_pages: 0,
            category_inverted: 0,
            category_mask: 0,
            category_anyof_mask: wanted,
            return_mask: returned,
        };
        // SAFETY: PAGEMAP_SCAN reads `arg` (whose `size` is its true size) and writes at most
        // `vec_len` page_region structs to `vec`, which holds that many and outlives the call.
        let n = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let got = &vec[..(n as usize).min(SCAN_VEC)];
        for r in got {
            pages::push_run(
                &mut runs,
                StateRun {
                    start: VirtAddr(r.start),
                    end: VirtAddr(r.end),
                    state: categories_to_state(r.categories),
                },
            );
        }
        // Resume where the walk ended, but never before the end of the last run returned:
        // walk_end can come back short when the output vector fills.
        let next = arg.walk_end.max(got.last().map_or(0, |r| r.end));
        if next <= start {
            break; // no progress: nothing more the kernel will tell us
        }
        start = next;
    }
    Ok(runs)
}

/// The frame number of the shared zero page, learned by reading a fresh private page of our own
/// (needs frame numbers visible).
pub fn zero_pfn() -> Option<u64> {
    static ZERO: OnceLock<Option<u64>> = OnceLock::new();
    *ZERO.get_or_init(|| {
        if !pfn_visible() {
            return None;
        }
        let page = base_page() as usize;
        // SAFETY: a fresh private anonymous mapping of one page, read once and unmapped; no Rust
        // reference to it escapes.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return None;
            }
            std::ptr::read_volatile(p as *const u8);
            let raw = File::open("/proc/self/pagemap")
                .and_then(|f| read_raw(&f, std::process::id() as i32, VirtAddr(p as u64), 1))
                .ok();
            libc::munmap(p, page);
            let raw = raw?[0];
            let pfn = raw & pages::bits::PFN_MASK;
            (raw & pages::bits::PRESENT != 0 && pfn != 0).then_some(pfn)
        }
    })
}

/// Runs of present, swapped and guard pages in `range` from plain reads of pagemap in 512 KiB
/// chunks, over the `mapped` parts only (sorted). Huge pages are not told apart; the zero page is
/// recognised when `zero_pfn` is known.
pub fn scan_read(
    file: &File,
    pid: i32,
    range: Range<VirtAddr>,
    mapped: &[Range<VirtAddr>],
    zero_pfn: Option<u64>,
) -> io::Result<Vec<StateRun>> {
    let page = base_page();
    let mut runs = Vec::new();
    for m in mapped {
        let lo = m.start.max(range.start).get();
        let hi = m.end.min(range.end).get();
        let mut at = lo;
        while at < hi {
            let count = (((hi - at) / page) as usize).min(READ_CHUNK);
            let raw = read_raw(file, pid, VirtAddr(at), count)?;
            for (i, &r) in raw.iter().enumerate() {
                if r & (pages::bits::PRESENT | pages::bits::SWAPPED | pages::bits::GUARD) == 0 {
                    continue;
                }
                let e = PageEntry::decode(r, zero_pfn.is_some());
                let zero = zero_pfn.is_some() && e.pfn == zero_pfn;
                let start = at + i as u64 * page;
                pages::push_run(
                    &mut runs,
                    StateRun {
                        start: VirtAddr(start),
                        end: VirtAddr(start + page),
                        state: e.state(zero, false),
                    },
                );
            }
            at += count as u64 * page;
        }
    }
    Ok(runs)
}

/// A mapped part of the address space, and whether it can hold file pages (a file mapping or
/// shared memory; private anonymous memory never does).
#[derive(Clone, Debug)]
pub struct Part {
    pub range: Range<VirtAddr>,
    pub may_hold_files: bool,
}

/// [`scan_ioctl`] over each mapped part of `range` (adjacent parts alike merged), asking for file
/// pages only where there can be some; parts the kernel refuses (EFAULT: above the user address
/// space, as `[vsyscall]` is) hold nothing it can tell.
fn scan_parts(
    file: &File,
    range: &Range<VirtAddr>,
    parts: &[Part],
    with_guard: bool,
) -> io::Result<Vec<StateRun>> {
    let mut merged: Vec<Part> = Vec::new();
    for p in parts {
        let r = p.range.start.max(range.start)..p.range.end.min(range.end);
        if r.start >= r.end {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.range.end == r.start && last.may_hold_files == p.may_hold_files => {
                last.range.end = r.end
            }
            _ => merged.push(Part {
                range: r,
                may_hold_files: p.may_hold_files,
            }),
        }
    }
    let mut runs = Vec::new();
    for p in merged {
        match scan_ioctl(file, p.range, with_guard, p.may_hold_files) {
            Ok(more) => more.into_iter().for_each(|r| pages::push_run(&mut runs, r)),
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(runs)
}

fn forced_read() -> bool {
    std::env::var(FORCE_READ_ENV).is_ok_and(|v| v == "off" || v == "0")
}

/// Runs of populated pages in `range`, by the best method this kernel has (learned on the first
/// call). `parts` lists the mapped parts of the address space, sorted.
pub fn scan(
    file: &File,
    pid: i32,
    range: Range<VirtAddr>,
    parts: &[Part],
) -> io::Result<(Vec<StateRun>, ScanMethod)> {
    let mut mode = MODE.load(Ordering::Relaxed);
    if forced_read() {
        mode = MODE_READ;
    }
    loop {
        match mode {
            MODE_SCAN_GUARD | 0 => match scan_parts(file, &range, parts, true) {
                Ok(runs) => {
                    MODE.store(MODE_SCAN_GUARD, Ordering::Relaxed);
                    return Ok((runs, ScanMethod::PagemapScan));
                }
                // Before 6.15 the guard category is unknown: EINVAL.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => mode = MODE_SCAN,
                Err(e) if no_ioctl(&e) => mode = MODE_READ,
                Err(e) => return Err(e),
            },
            MODE_SCAN => match scan_parts(file, &range, parts, false) {
                Ok(runs) => {
                    MODE.store(MODE_SCAN, Ordering::Relaxed);
                    return Ok((runs, ScanMethod::PagemapScan));
                }
                Err(e) if no_ioctl(&e) || e.raw_os_error() == Some(libc::EINVAL) => {
                    mode = MODE_READ
                }
                Err(e) => return Err(e),
            },
            _ => {
                if !forced_read() {
                    MODE.store(MODE_READ, Ordering::Relaxed);
                }
                let mapped: Vec<Range<VirtAddr>> = parts.iter().map(|p| p.range.clone()).collect();
                let runs = scan_read(file, pid, range, &mapped, zero_pfn())?;
                return Ok((runs, ScanMethod::PagemapRead));
            }
        }
    }
}

/// The error of a kernel without PAGEMAP_SCAN (before 6.7 pagemap has no ioctls).
fn no_ioctl(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTTY)
}

/// What /proc/kpageflags and /proc/kpagecount say of each frame in `pfns`. Either file may be
/// unreadable (no privilege, or a kernel without it): its field is then `None`.
pub fn frames(pfns: &[u64]) -> Vec<Frame> {
    let flags = File::open("/proc/kpageflags").ok();
    let counts = File::open("/proc/kpagecount").ok();
    let read = |f: &Option<File>, pfn: u64| -> Option<u64> {
        let mut b = [0u8; 8];
        let f = f.as_ref()?;
        match f.read_at(&mut b, pfn * ENTRY) {
            Ok(8) => Some(u64::from_le_bytes(b)),
            _ => None,
        }
    };
    pfns.iter()
        .map(|&pfn| Frame {
            pfn,
            flags: read(&flags, pfn).map(KPageFlags),
            mapcount: read(&counts, pfn),
        })
        .collect()
}

/// The populated pages of `range` in process `pid`: [`scan`] over the mapped parts read from
/// /proc/PID/maps.
pub fn pages(pid: i32, range: Range<VirtAddr>) -> io::Result<pages::PageScan> {
    let file = open(pid)?;
    let text = std::fs::read(format!("/proc/{pid}/maps"))?;
    if text.is_empty() && !super::process_alive(pid) {
        return Err(gone());
    }
    let parts: Vec<Part> = super::maps::parse_maps(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
        .into_iter()
        .filter(|r| r.start < range.end && range.start < r.end)
        .map(|r| Part {
            may_hold_files: r.perms.shared || r.inode != 0 || r.backing.path().is_some(),
            range: r.start..r.end,
        })
        .collect();
    let (runs, method) = scan(&file, pid, range.clone(), &parts)?;
    Ok(pages::PageScan {
        range,
        runs,
        method,
        pfn_visible: pfn_visible(),
    })
}
