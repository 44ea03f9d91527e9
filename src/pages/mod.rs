//! The page model: what a page table says of one virtual page (a decoded pagemap entry), what the
//! kernel says of the physical frame behind it (page flags by name, map count), and the state of a
//! whole range folded into runs and counted. OS-neutral: a backend fills these in (Linux from
//! /proc/PID/pagemap, PAGEMAP_SCAN, /proc/kpageflags and /proc/kpagecount); commands and rendering
//! only read them.

use crate::addr::{PhysAddr, VirtAddr};
use serde::Serialize;
use std::ops::Range;

/// Bits of a pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
pub mod bits {
    /// Bits 0-54: the page frame number when present; swap type (0-4) and offset (5-54) when
    /// swapped.
    pub const PFN_MASK: u64 = (1 << 55) - 1;
    pub const SWAP_TYPE_BITS: u32 = 5;
    pub const SOFT_DIRTY: u64 = 1 << 55;
    pub const EXCLUSIVE: u64 = 1 << 56;
    pub const UFFD_WP: u64 = 1 << 57;
    /// Since Linux 6.15: a guard region installed with MADV_GUARD_INSTALL.
    pub const GUARD: u64 = 1 << 58;
    pub const FILE_SHARED: u64 = 1 << 61;
    pub const SWAPPED: u64 = 1 << 62;
    pub const PRESENT: u64 = 1 << 63;
}

/// One page-table entry, decoded. `pfn`, `swap_type` and `swap_offset` are `None` when the entry
/// has none, and also when the OS hides them (without CAP_SYS_ADMIN Linux reports them as zero:
/// they are never shown as if zero were real).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PageEntry {
    pub present: bool,
    pub swapped: bool,
    pub pfn: Option<u64>,
    pub swap_type: Option<u64>,
    pub swap_offset: Option<u64>,
    /// Mapped by this page table only (not shared with another process).
    pub exclusive: bool,
    /// A file page, or shared anonymous memory.
    pub file_shared: bool,
    pub soft_dirty: bool,
    pub uffd_wp: bool,
    /// A guard region: any access faults (MADV_GUARD_INSTALL).
    pub guard: bool,
}

impl PageEntry {
    /// Decodes a raw pagemap entry. `pfn_visible` says whether the reader was allowed to see
    /// frame numbers and swap locations; a present page with frame number 0 is treated as hidden.
    pub fn decode(raw: u64, pfn_visible: bool) -> PageEntry {
        let present = raw & bits::PRESENT != 0;
        let guard = raw & bits::GUARD != 0;
        // A guard region is encoded as a swap-entry marker: it is not swapped memory.
        let swapped = raw & bits::SWAPPED != 0 && !guard && !present;
        let frame = raw & bits::PFN_MASK;
        let (pfn, swap_type, swap_offset) = if present && pfn_visible && frame != 0 {
            (Some(frame), None, None)
        } else if swapped && pfn_visible && frame != 0 {
            (
                None,
                Some(frame & ((1 << bits::SWAP_TYPE_BITS) - 1)),
                Some(frame >> bits::SWAP_TYPE_BITS),
            )
        } else {
            (None, None, None)
        };
        PageEntry {
            present,
            swapped,
            pfn,
            swap_type,
            swap_offset,
            exclusive: raw & bits::EXCLUSIVE != 0,
            file_shared: raw & bits::FILE_SHARED != 0,
            soft_dirty: raw & bits::SOFT_DIRTY != 0,
            uffd_wp: raw & bits::UFFD_WP != 0,
            guard,
        }
    }

    /// The state range counting sees for this entry (zero and huge are unknown from the entry
    /// alone: pass them in).
    pub fn state(&self, zero: bool, huge: bool) -> PageState {
        let mut s = PageState::default();
        s.set(PageState::PRESENT, self.present);
        s.set(PageState::SWAPPED, self.swapped);
        s.set(PageState::FILE, self.file_shared && self.present);
        s.set(PageState::ZERO, zero && self.present);
        s.set(PageState::HUGE, huge && self.present);
        s.set(PageState::GUARD, self.guard);
        s
    }
}

/// What /proc/kpageflags says of a physical frame: the bits, named as the kernel names them
/// (include/uapi/linux/kernel-page-flags.h; bits 32 and up are the kernel-internal ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KPageFlags(pub u64);

impl KPageFlags {
    pub const LOCKED: u32 = 0;
    pub const REFERENCED: u32 = 2;
    pub const DIRTY: u32 = 4;
    pub const MMAP: u32 = 11;
    pub const ANON: u32 = 12;
    pub const SWAPCACHE: u32 = 13;
    pub const COMPOUND_HEAD: u32 = 15;
    pub const COMPOUND_TAIL: u32 = 16;
    pub const HUGE: u32 = 17;
    pub const NOPAGE: u32 = 20;
    pub const KSM: u32 = 21;
    pub const THP: u32 = 22;
    pub const ZERO_PAGE: u32 = 24;

    const NAMES: [&'static str; 42] = [
        "LOCKED",
        "ERROR",
        "REFERENCED",
        "UPTODATE",
        "DIRTY",
        "LRU",
        "ACTIVE",
        "SLAB",
        "WRITEBACK",
        "RECLAIM",
        "BUDDY",
        "MMAP",
        "ANON",
        "SWAPCACHE",
        "SWAPBACKED",
        "COMPOUND_HEAD",
        "COMPOUND_TAIL",
        "HUGE",
        "UNEVICTABLE",
        "HWPOISON",
        "NOPAGE",
        "KSM",
        "THP",
        "OFFLINE",
        "ZERO_PAGE",
        "IDLE",
        "PGTABLE",
        "",
        "",
        "",
        "",
        "",
        "RESERVED",
        "MLOCKED",
        "MAPPEDTODISK",
        "PRIVATE",
        "PRIVATE_2",
        "OWNER_PRIVATE",
        "ARCH",
        "UNCACHED",
        "SOFTDIRTY",
        "ARCH_2",
    ];

    pub fn has(self, bit: u32) -> bool {
        self.0 & (1 << bit) != 0
    }

    /// Every set bit by name, in bit order; unnamed bits as `BIT_N`.
    pub fn names(self) -> Vec<String> {
        (0..64)
            .filter(|&b| self.has(b))
            .map(|b| match Self::NAMES.get(b as usize) {
                Some(name) if !name.is_empty() => (*name).to_string(),
                _ => format!("BIT_{b}"),
            })
            .collect()
    }
}

/// What the OS knows of one physical frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    pub pfn: u64,
    pub flags: Option<KPageFlags>,
    /// How many page tables map it (/proc/kpagecount).
    pub mapcount: Option<u64>,
}

/// The decoded entries of consecutive base pages, from `start`.
#[derive(Clone, Debug, Default)]
pub struct PageEntries {
    pub start: VirtAddr,
    pub page_size: u64,
    pub entries: Vec<PageEntry>,
    /// Whether frame numbers (and swap locations) were visible to the reader.
    pub pfn_visible: bool,
}

impl PageEntries {
    pub fn vaddr(&self, i: usize) -> VirtAddr {
        VirtAddr(self.start.get() + i as u64 * self.page_size)
    }
}

/// The state of a page as range counting sees it: PAGEMAP_SCAN's categories that matter here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageState(pub u8);

impl PageState {
    pub const PRESENT: u8 = 1;
    pub const SWAPPED: u8 = 2;
    /// A file page or shared anonymous memory.
    pub const FILE: u8 = 4;
    /// The shared zero page (read but never written private memory).
    pub const ZERO: u8 = 8;
    /// Part of a transparent huge page or a hugetlb page.
    pub const HUGE: u8 = 16;
    pub const GUARD: u8 = 32;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A short description: `present`, `present file`, `zero page`, `swapped`, `not present`.
    pub fn describe(self) -> String {
        let mut words: Vec<&str> = Vec::new();
        if self.has(Self::GUARD) {
            words.push("guard");
        } else if self.has(Self::SWAPPED) {
            words.push("swapped");
        } else if self.has(Self::ZERO) {
            words.push("zero page");
        } else if self.has(Self::PRESENT) {
            words.push("present");
        } else {
            words.push("not present");
        }
        if self.has(Self::FILE) {
            words.push("file");
        }
        if self.has(Self::HUGE) {
            words.push("huge");
        }
        words.join(" ")
    }
}

/// Consecutive pages in one state, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRun {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub state: PageState,
}

/// How a backend counted a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMethod {
    /// The PAGEMAP_SCAN ioctl (Linux 6.7 and later).
    PagemapScan,
    /// Plain reads of /proc/PID/pagemap in chunks (older kernels): huge pages are not told apart,
    /// and the zero page only when frame numbers are visible.
    PagemapRead,
}

/// The populated pages of a range: runs of pages that are present, swapped or guard, in address
/// order, merged when adjacent and alike. Pages of mapped regions that no run covers are not
/// present.
#[derive(Clone, Debug)]
pub struct PageScan {
    pub range: Range<VirtAddr>,
    pub runs: Vec<StateRun>,
    pub method: ScanMethod,
    pub pfn_visible: bool,
}

/// Appends a run, merging it into the last one when adjacent and in the same state.
pub fn push_run(runs: &mut Vec<StateRun>, run: StateRun) {
    if run.start >= run.end {
        return;
    }
    if let Some(last) = runs.last_mut()
        && last.end == run.start
        && last.state == run.state
    {
        last.end = run.end;
        return;
    }
    runs.push(run);
}

/// The counts of a range: `pages` mapped base pages, of which `present` have a frame (the
/// `zero` ones map the shared zero page, `file` ones a file or shared memory, `huge` ones are part
/// of a huge page), `swapped` are in swap, `guard` are guard regions and `not_present` have
/// nothing. `unmapped` pages of the range lie outside every region. `resident_bytes` counts
/// present pages other than the zero page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pages: u64,
    pub present: u64,
    pub swapped: u64,
    pub file: u64,
    pub zero: u64,
    pub huge: u64,
    pub guard: u64,
    pub not_present: u64,
    pub unmapped: u64,
    pub resident_bytes: u64,
}

impl Summary {
    /// Counts `runs` within `mapped` (the mapped parts of the range, sorted and disjoint), with
    /// `range_pages` the size of the whole range in pages of `page_size`.
    pub fn count(
        runs: &[StateRun],
        mapped: &[Range<VirtAddr>],
        range_pages: u64,
        page_size: u64,
    ) -> Summary {
        let mut s = Summary::default();
        let pages = |a: VirtAddr, b: VirtAddr| b.offset_from(a) / page_size;
        s.pages = mapped.iter().map(|m| pages(m.start, m.end)).sum();
        s.unmapped = range_pages.saturating_sub(s.pages);
        for r in runs {
            let n = pages(r.start, r.end);
            let st = r.state;
            if st.has(PageState::GUARD) {
                s.guard += n;
            } else if st.has(PageState::SWAPPED) {
                s.swapped += n;
            } else if st.has(PageState::PRESENT) {
                s.present += n;
                if st.has(PageState::ZERO) {
                    s.zero += n;
                }
                if st.has(PageState::FILE) {
                    s.file += n;
                }
                if st.has(PageState::HUGE) {
                    s.huge += n;
                }
            }
        }
        s.not_present = s.pages.saturating_sub(s.present + s.swapped + s.guard);
        s.resident_bytes = (s.present - s.zero) * page_size;
        s
    }
}

/// The physical address of `vaddr` in frame `pfn` (frame numbers count base pages).
pub fn phys_addr(pfn: u64, vaddr: VirtAddr, base_page: u64) -> PhysAddr {
    PhysAddr(pfn * base_page + vaddr.get() % base_page)
}

/// A one-line explanation of a page's state for people learning virtual memory.
pub fn meaning(
    e: &PageEntry,
    zero: bool,
    huge: bool,
    file_backed: bool,
    shared_map: bool,
) -> String {
    if e.guard {
        return "guard region: the page table marks it so that any access faults (SIGSEGV); \
                no memory backs it"
            .into();
    }
    if e.swapped {
        return "swapped out: the contents were written to swap and the frame reused; the next \
                access is a major fault that reads it back"
            .into();
    }
    if !e.present {
        return if file_backed {
            "not present: never touched, or dropped from the page cache mapping; the next access \
             faults and maps the file's page (reading it from disk if it is not cached)"
                .into()
        } else {
            "not present: never touched, or reclaimed; the next access faults and the kernel \
             allocates a zeroed frame (or maps the zero page for a read)"
                .into()
        };
    }
    if zero {
        return "the zero page: this private page was read but never written, so it maps the one \
                shared frame of zeros; the first write faults and gets a private copy"
            .into();
    }
    let huge = if huge {
        " It is part of a huge page: one page-table entry maps 2 MiB or more."
    } else {
        ""
    };
    let what = if e.file_shared && shared_map {
        "present, shared: writes go to the shared frame and every process mapping it sees them"
    } else if e.file_shared {
        "present, a file page from the page cache, shared copy-on-write: a write gives this \
         process a private copy"
    } else if e.exclusive {
        "present and exclusively mapped: only this process's page table points at this frame"
    } else {
        "present and shared: other page tables map this frame too (copy-on-write after fork); \
         the first write gives this process a private copy"
    };
    format!("{what}.{huge}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_present_swapped_guard() {
        let e = PageEntry::decode(0x8100_0000_001b_74e1, true);
        assert!(e.present && e.exclusive && !e.swapped && !e.file_shared);
        assert_eq!(e.pfn, Some(0x1b74e1));
        // The same entry read without privilege: the frame number is hidden, not zero.
        let e = PageEntry::decode(0x8100_0000_0000_0000, false);
        assert!(e.present);
        assert_eq!(e.pfn, None);
        // Swap type 0, offset 1 (as MADV_PAGEOUT leaves it).
        let e = PageEntry::decode(0x4000_0000_0000_0020, true);
        assert!(e.swapped && !e.present);
        assert_eq!((e.swap_type, e.swap_offset), (Some(0), Some(1)));
        let e = PageEntry::decode(0x4000_0000_0000_0063, true);
        assert_eq!((e.swap_type, e.swap_offset), (Some(3), Some(3)));
        // A guard region is a swap-entry marker: guard, not swapped.
        let e = PageEntry::decode(0x4400_0000_0000_009f, true);
        assert!(e.guard && !e.swapped && !e.present);
        assert_eq!(e.swap_offset, None);
        let e = PageEntry::decode(bits::PRESENT | bits::FILE_SHARED | bits::SOFT_DIRTY, true);
        assert!(e.file_shared && e.soft_dirty && !e.uffd_wp);
        assert_eq!(e.pfn, None, "PFN 0 is never shown as real");
        assert_eq!(PageEntry::decode(0, true), PageEntry::default());
    }

    #[test]
    fn kpageflags_by_name() {
        let f = KPageFlags(0x4_0040_d828);
        assert_eq!(
            f.names(),
            [
                "UPTODATE",
                "LRU",
                "MMAP",
                "ANON",
                "SWAPBACKED",
                "COMPOUND_HEAD",
                "THP",
                "MAPPEDTODISK"
            ]
        );
        assert!(f.has(KPageFlags::THP));
        assert_eq!(KPageFlags(1 << 50).names(), ["BIT_50"]);
    }

    #[test]
    fn runs_merge_and_count() {
        let v = |p: u64| VirtAddr(p * 4096);
        let st = |b: u8| PageState(b);
        let mut runs = Vec::new();
        push_run(
            &mut runs,
            StateRun {
                start: v(0),
                end: v(4),
                state: st(PageState::PRESENT),
            },
        );
        push_run(
            &mut runs,
            StateRun {
                start: v(4),
                end: v(6),
                state: st(PageState::PRESENT),
            },
        );
        push_run(
            &mut runs,
            StateRun {
                start: v(6),
                end: v(7),
                state: st(PageState::PRESENT | PageState::ZERO),
            },
        );
        push_run(
            &mut runs,
            StateRun {
                start: v(8),
                end: v(10),
                state: st(PageState::SWAPPED),
            },
        );
        push_run(
            &mut runs,
            StateRun {
                start: v(10),
                end: v(11),
                state: st(PageState::GUARD),
            },
        );
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0].end, v(6));
        let s = Summary::count(&runs, &[v(0)..v(16)], 20, 4096);
        assert_eq!(
            s,
            Summary {
                pages: 16,
                present: 7,
                swapped: 2,
                file: 0,
                zero: 1,
                huge: 0,
                guard: 1,
                not_present: 6,
                unmapped: 4,
                resident_bytes: 6 * 4096,
            }
        );
        assert_eq!(
            st(PageState::PRESENT | PageState::FILE).describe(),
            "present file"
        );
        assert_eq!(st(0).describe(), "not present");
    }

    #[test]
    fn physical_address_keeps_the_offset() {
        assert_eq!(
            phys_addr(0x1b74e1, VirtAddr(0x7f00_0000_1234), 4096),
            PhysAddr(0x1_b74e_1234)
        );
    }
}
