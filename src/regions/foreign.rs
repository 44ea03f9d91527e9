//! The region vocabulary of the two other systems, as pure tables: macOS `vmmap`'s share modes
//! (SM=COW/PRV/NUL/ALI/SHM/S/A) and region types from a Mach region's `user_tag`, and Sysinternals
//! VMMap's types (Image, Mapped File, Shareable, Private, Heap, Stack, Free) from a Windows
//! region's MEM_* state and type and its PAGE_* protection. The backends in `target::macos` and
//! `target::windows` call these; they are plain numbers in, names and kinds out, so they are
//! unit-tested on every system with values recorded from real `vmmap` and VMMap output. The
//! numbers are the SDK headers' (mach/vm_region.h, mach/vm_statistics.h, winnt.h, psapi.h).

use super::classify::Explained;
use super::kind::{Kind, Sharing};
use super::{Region, Usage};

// -- macOS -----------------------------------------------------------------------------------

/// `share_mode` of `vm_region_submap_info_64` (mach/vm_region.h).
pub mod sm {
    pub const COW: u8 = 1;
    pub const PRIVATE: u8 = 2;
    pub const EMPTY: u8 = 3;
    pub const SHARED: u8 = 4;
    pub const TRUESHARED: u8 = 5;
    pub const PRIVATE_ALIASED: u8 = 6;
    pub const SHARED_ALIASED: u8 = 7;
    pub const LARGE_PAGE: u8 = 8;
}

/// vmmap's `SM=` code for a share mode.
pub fn share_mode_code(share_mode: u8) -> &'static str {
    match share_mode {
        sm::COW => "COW",
        sm::PRIVATE => "PRV",
        sm::EMPTY => "NUL",
        sm::SHARED | sm::TRUESHARED => "SHM",
        sm::PRIVATE_ALIASED => "ALI",
        sm::SHARED_ALIASED => "S/A",
        sm::LARGE_PAGE => "LPG",
        _ => "???",
    }
}

/// The share mode in vmscope's four-way [`Sharing`] (aliased private memory is private; the
/// shared alias is shared).
pub fn share_mode_sharing(share_mode: u8) -> Sharing {
    match share_mode {
        sm::COW => Sharing::CopyOnWrite,
        sm::EMPTY => Sharing::Empty,
        sm::SHARED | sm::TRUESHARED | sm::SHARED_ALIASED => Sharing::Shared,
        _ => Sharing::Private,
    }
}

/// vmmap's region type for a Mach `user_tag` (`VM_MEMORY_*` of mach/vm_statistics.h); tag 0 is
/// plain `VM_ALLOCATE` memory, and tags vmmap has no name for show as `Memory Tag N`.
pub fn user_tag_name(tag: u32) -> String {
    let name = match tag {
        0 => "VM_ALLOCATE",
        1 => "MALLOC",
        2 => "MALLOC_SMALL",
        3 => "MALLOC_LARGE",
        4 => "MALLOC_HUGE",
        5 => "SBRK",
        6 => "MALLOC_REALLOC",
        7 => "MALLOC_TINY",
        8 => "MALLOC_LARGE_REUSABLE",
        9 => "MALLOC_LARGE_REUSED",
        10 => "Performance tool data",
        11 => "MALLOC_NANO",
        12 => "MALLOC_MEDIUM",
        20 => "Mach message",
        21 => "IOKit",
        30 => "Stack",
        31 => "STACK GUARD",
        32 => "shared pmap",
        33 => "dylib",
        34 => "ObjC dispatching code",
        35 => "unshared pmap",
        40 => "AppKit",
        41 => "Foundation",
        42 => "CoreGraphics",
        43 => "CoreServices",
        44 => "Java",
        45 => "CoreData",
        46 => "CoreData Object IDs",
        50 => "ATS (font support)",
        51 => "CoreAnimation",
        52 => "CG image",
        53 => "TCMalloc",
        54 => "CG raster data",
        55 => "CG shared images",
        56 => "CG framebuffers",
        57 => "CG backingstores",
        58 => "CG xalloc",
        60 => "dyld private memory",
        61 => "dyld malloc memory",
        62 => "SQLite page cache",
        63 => "WebKit Malloc",
        64 => "JS JIT generated code",
        73 => "Kernel Alloc Once",
        74 => "Dispatch continuations",
        82 => "Swift runtime",
        83 => "Swift metadata",
        88 => "IOSurface",
        99 => "Sanitizer",
        100 => "IOAccelerator",
        _ => return format!("Memory Tag {tag}"),
    };
    name.to_string()
}

/// The kind of a Mach region that is not part of a loaded image, from its tag, share mode and
/// protection.
pub fn user_tag_kind(tag: u32, share_mode: u8, protection: u32) -> Kind {
    match tag {
        1..=9 | 11 | 12 | 61 => Kind::Heap,
        30 => Kind::Stack,
        31 => Kind::Guard,
        _ if protection == 0 => Kind::Guard,
        _ if matches!(share_mode, sm::SHARED | sm::TRUESHARED | sm::SHARED_ALIASED) => Kind::Shared,
        _ => Kind::Private,
    }
}

/// `VM_PROT_*` as vmmap prints it (`r-x`).
pub fn prot_string(prot: u32) -> String {
    let c = |bit: u32, ch: char| if prot & bit != 0 { ch } else { '-' };
    format!("{}{}{}", c(1, 'r'), c(2, 'w'), c(4, 'x'))
}

/// The counters of `vm_region_submap_info_64` that make a region's usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachPages {
    pub share_mode: u8,
    pub resident: u32,
    pub shared_now_private: u32,
    pub swapped_out: u32,
    pub dirtied: u32,
    pub ref_count: u32,
}

/// A Mach region's usage in vmscope's (smaps-shaped) terms: resident pages are RSS; dirtied pages
/// are dirty; private share modes count as private, shared ones as shared (PSS divides those by
/// the region's reference count). Mach does not report locked or huge pages here.
pub fn mach_usage(p: MachPages, page_size: u64) -> Usage {
    let rss = u64::from(p.resident) * page_size;
    let dirty = u64::from(p.dirtied).min(u64::from(p.resident)) * page_size;
    let clean = rss - dirty;
    let swap = u64::from(p.swapped_out) * page_size;
    let private = matches!(
        p.share_mode,
        sm::PRIVATE | sm::PRIVATE_ALIASED | sm::LARGE_PAGE | sm::EMPTY
    );
    let mut u = Usage {
        rss,
        swap,
        swap_pss: swap,
        kernel_page_size: page_size,
        ..Usage::default()
    };
    if private {
        u.private_clean = clean;
        u.private_dirty = dirty;
        u.pss = rss;
        u.pss_dirty = dirty;
    } else {
        u.shared_clean = clean;
        u.shared_dirty = dirty;
        let refs = u64::from(p.ref_count.max(1));
        u.pss = rss / refs;
        u.pss_dirty = dirty / refs;
    }
    u
}

// -- Windows ---------------------------------------------------------------------------------

/// `MEMORY_BASIC_INFORMATION` values (winnt.h).
pub mod mem {
    pub const COMMIT: u32 = 0x1000;
    pub const RESERVE: u32 = 0x2000;
    pub const FREE: u32 = 0x1_0000;
    pub const PRIVATE: u32 = 0x2_0000;
    pub const MAPPED: u32 = 0x4_0000;
    pub const IMAGE: u32 = 0x100_0000;
}

/// `PAGE_*` protection constants (winnt.h).
pub mod page {
    pub const NOACCESS: u32 = 0x01;
    pub const READONLY: u32 = 0x02;
    pub const READWRITE: u32 = 0x04;
    pub const WRITECOPY: u32 = 0x08;
    pub const EXECUTE: u32 = 0x10;
    pub const EXECUTE_READ: u32 = 0x20;
    pub const EXECUTE_READWRITE: u32 = 0x40;
    pub const EXECUTE_WRITECOPY: u32 = 0x80;
    pub const GUARD: u32 = 0x100;
    pub const NOCACHE: u32 = 0x200;
    pub const WRITECOMBINE: u32 = 0x400;
}

/// Sysinternals VMMap's memory types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmmapType {
    Image,
    MappedFile,
    Shareable,
    Heap,
    Stack,
    Private,
    Free,
}

impl VmmapType {
    pub fn name(self) -> &'static str {
        match self {
            VmmapType::Image => "Image",
            VmmapType::MappedFile => "Mapped File",
            VmmapType::Shareable => "Shareable",
            VmmapType::Heap => "Heap",
            VmmapType::Stack => "Stack",
            VmmapType::Private => "Private Data",
            VmmapType::Free => "Free",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            VmmapType::Image => Kind::Image,
            VmmapType::MappedFile => Kind::File,
            VmmapType::Shareable => Kind::Shared,
            VmmapType::Heap => Kind::Heap,
            VmmapType::Stack => Kind::Stack,
            VmmapType::Private => Kind::Private,
            VmmapType::Free => Kind::Free,
        }
    }
}

/// A region's VMMap type from `MEMORY_BASIC_INFORMATION.State` and `.Type`, whether it maps a
/// named file, and whether it lies in a process heap or a thread's stack (which the backend learns
/// from the heaps and each thread's TEB). Heap and stack refine private memory only.
pub fn vmmap_type(state: u32, ty: u32, has_file: bool, in_heap: bool, in_stack: bool) -> VmmapType {
    if state == mem::FREE {
        return VmmapType::Free;
    }
    match ty {
        mem::IMAGE => VmmapType::Image,
        mem::MAPPED if has_file => VmmapType::MappedFile,
        mem::MAPPED => VmmapType::Shareable,
        _ if in_stack => VmmapType::Stack,
        _ if in_heap => VmmapType::Heap,
        _ => VmmapType::Private,
    }
}

/// VMMap's protection column (`Execute/Read`, `Read/Write`, `Copy on write`, `+Guard`...).
pub fn protection_name(protect: u32) -> String {
    let base = match protect & 0xff {
        0 => "",
        page::NOACCESS => "No access",
        page::READONLY => "Read",
        page::READWRITE => "Read/Write",
        page::WRITECOPY => "Copy on write",
        page::EXECUTE => "Execute",
        page::EXECUTE_READ => "Execute/Read",
        page::EXECUTE_READWRITE => "Execute/Read/Write",
        page::EXECUTE_WRITECOPY => "Execute/Copy on write",
        _ => "Unknown",
    };
    let mut s = base.to_string();
    for (bit, name) in [
        (page::GUARD, "Guard"),
        (page::NOCACHE, "No cache"),
        (page::WRITECOMBINE, "Write combine"),
    ] {
        if protect & bit != 0 {
            s.push('+');
            s.push_str(name);
        }
    }
    s
}

/// `(read, write, exec)` of a PAGE_* protection; copy-on-write counts as writable.
pub fn protection_rwx(protect: u32) -> (bool, bool, bool) {
    match protect & 0xff {
        page::READONLY => (true, false, false),
        page::READWRITE | page::WRITECOPY => (true, true, false),
        page::EXECUTE => (false, false, true),
        page::EXECUTE_READ => (true, false, true),
        page::EXECUTE_READWRITE | page::EXECUTE_WRITECOPY => (true, true, true),
        _ => (false, false, false),
    }
}

/// A native path as `GetMappedFileNameW` gives it (`\Device\HarddiskVolume3\Windows\...`)
/// with its device replaced by the drive letter that names it (`C:\Windows\...`), from
/// `(device, drive)` pairs as `QueryDosDeviceW` reports them; None when no drive maps the device.
pub fn dos_path(nt: &str, devices: &[(String, String)]) -> Option<String> {
    devices.iter().find_map(|(device, drive)| {
        let rest = nt.strip_prefix(device.as_str())?;
        rest.starts_with('\\').then(|| format!("{drive}{rest}"))
    })
}

/// One page's `PSAPI_WORKING_SET_EX_BLOCK` (psapi.h): Valid (bit 0), ShareCount (bits 1-3),
/// Win32Protection (bits 4-14), Shared (15), Node (16-21), Locked (22), LargePage (23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsPage {
    pub valid: bool,
    pub share_count: u8,
    pub protection: u32,
    pub shared: bool,
    pub locked: bool,
    pub large: bool,
}

impl WsPage {
    pub fn decode(flags: u64) -> WsPage {
        WsPage {
            valid: flags & 1 != 0,
            share_count: ((flags >> 1) & 0x7) as u8,
            protection: ((flags >> 4) & 0x7ff) as u32,
            shared: flags & (1 << 15) != 0,
            locked: flags & (1 << 22) != 0,
            large: flags & (1 << 23) != 0,
        }
    }
}

/// A region's usage from its pages' working-set blocks, VMMap's way: resident pages are the
/// working set; shareable pages mapped by more than this process are shared, the rest private
/// (PSS divides shared pages by ShareCount, which Windows caps at 7). Windows does not say which
/// resident pages are dirty: they are all counted clean.
pub fn working_set_usage(pages: impl IntoIterator<Item = u64>, page_size: u64) -> Usage {
    let mut u = Usage {
        kernel_page_size: page_size,
        ..Usage::default()
    };
    for flags in pages {
        let p = WsPage::decode(flags);
        if !p.valid {
            continue;
        }
        u.rss += page_size;
        if p.locked {
            u.locked += page_size;
        }
        if p.large {
            u.thp += page_size;
        }
        if p.shared && p.share_count > 1 {
            u.shared_clean += page_size;
            u.pss += page_size / u64::from(p.share_count);
        } else {
            u.private_clean += page_size;
            u.pss += page_size;
        }
    }
    u
}

/// Classifies `regions` from a backend's record of the walk that produced them (`Target::classified`
/// of the Mach and Windows backends): when the regions are that walk, region by region, each one is
/// explained by `explain` from its record; otherwise they are handed back for the generic
/// classifier.
pub fn replay<T>(
    regions: Vec<Region>,
    last: &[T],
    region_of: impl Fn(&T) -> &Region,
    mut explain: impl FnMut(Region, &T) -> Explained,
) -> Result<Vec<Explained>, Vec<Region>> {
    if regions.len() != last.len()
        || regions
            .iter()
            .zip(last)
            .any(|(a, b)| a.start != region_of(b).start)
    {
        return Err(regions);
    }
    Ok(regions
        .into_iter()
        .zip(last)
        .map(|(region, record)| explain(region, record))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows recorded from macOS vmmap (the seed walkthrough, Apple silicon, 16 KiB pages):
    //   MALLOC_TINY 127600000-127700000 [ 1024K 32K 32K 0K] rw-/rwx SM=PRV MallocHelperZone
    //   Stack       16cdf4000-16d5f0000 [ 8176K 32K 32K 0K] rw-/rwx SM=PRV thread 0
    //   STACK GUARD 1695f0000-16cdf4000 [ 56.0M 0K 0K 0K] ---/rwx SM=NUL
    //   shared memory 102c68000-102c6c000 [ 16K 16K 16K 0K] r--/r-- SM=SHM
    //   Kernel Alloc Once 102c60000-102c68000 [ 32K 16K 16K 0K] rw-/rwx SM=PRV
    //   __TEXT 19b468000-19b4b8000 [ 320K 320K 0K 0K] r-x/r-x SM=COW /usr/lib/libobjc.A.dylib
    #[test]
    fn vmmap_rows() {
        assert_eq!(user_tag_name(7), "MALLOC_TINY");
        assert_eq!(user_tag_kind(7, sm::PRIVATE, 3), Kind::Heap);
        assert_eq!(share_mode_code(sm::PRIVATE), "PRV");
        assert_eq!(prot_string(3), "rw-");
        assert_eq!(prot_string(7), "rwx");
        assert_eq!(user_tag_name(2), "MALLOC_SMALL");
        assert_eq!(user_tag_name(30), "Stack");
        assert_eq!(user_tag_kind(30, sm::PRIVATE, 3), Kind::Stack);
        assert_eq!(user_tag_name(31), "STACK GUARD");
        assert_eq!(user_tag_kind(31, sm::EMPTY, 0), Kind::Guard);
        assert_eq!(share_mode_code(sm::EMPTY), "NUL");
        assert_eq!(share_mode_sharing(sm::EMPTY), Sharing::Empty);
        assert_eq!(user_tag_kind(0, sm::TRUESHARED, 1), Kind::Shared);
        assert_eq!(share_mode_code(sm::TRUESHARED), "SHM");
        assert_eq!(user_tag_name(73), "Kernel Alloc Once");
        assert_eq!(user_tag_kind(73, sm::PRIVATE, 3), Kind::Private);
        assert_eq!(share_mode_code(sm::COW), "COW");
        assert_eq!(share_mode_sharing(sm::COW), Sharing::CopyOnWrite);
        assert_eq!(prot_string(5), "r-x");
        assert_eq!(user_tag_name(60), "dyld private memory");
        assert_eq!(user_tag_name(242), "Memory Tag 242");
    }

    #[test]
    fn aliased_share_modes() {
        assert_eq!(share_mode_code(sm::PRIVATE_ALIASED), "ALI");
        assert_eq!(share_mode_sharing(sm::PRIVATE_ALIASED), Sharing::Private);
        assert_eq!(share_mode_code(sm::SHARED_ALIASED), "S/A");
        assert_eq!(share_mode_sharing(sm::SHARED_ALIASED), Sharing::Shared);
    }

    // The MALLOC_TINY row: 1024K virtual, 32K resident, 32K dirty, 0K swapped, 16K pages.
    #[test]
    fn mach_usage_of_malloc_tiny() {
        let u = mach_usage(
            MachPages {
                share_mode: sm::PRIVATE,
                resident: 2,
                dirtied: 2,
                ref_count: 1,
                ..MachPages::default()
            },
            16384,
        );
        assert_eq!(
            (u.rss, u.private_dirty, u.swap, u.pss),
            (32768, 32768, 0, 32768)
        );
        // The libobjc __TEXT row: 320K resident, 0K dirty, SM=COW, mapped by many processes.
        let u = mach_usage(
            MachPages {
                share_mode: sm::COW,
                resident: 20,
                ref_count: 4,
                ..MachPages::default()
            },
            16384,
        );
        assert_eq!(
            (u.rss, u.shared_clean, u.dirty(), u.pss),
            (327680, 327680, 0, 81920)
        );
    }

    // VMMap: a DLL's code (MEM_IMAGE, MEM_COMMIT, PAGE_EXECUTE_READ) is Image "Execute/Read"; its
    // data is "Copy on write"; a thread stack's guard page is "Read/Write+Guard"; a pagefile
    // section is Shareable; reserved address space between allocations is Free.
    #[test]
    fn vmmap_types() {
        let img = vmmap_type(mem::COMMIT, mem::IMAGE, true, false, false);
        assert_eq!(
            (img, img.name(), img.kind()),
            (VmmapType::Image, "Image", Kind::Image)
        );
        assert_eq!(protection_name(page::EXECUTE_READ), "Execute/Read");
        assert_eq!(protection_rwx(page::EXECUTE_READ), (true, false, true));
        assert_eq!(protection_name(page::WRITECOPY), "Copy on write");
        assert_eq!(
            protection_name(page::READWRITE | page::GUARD),
            "Read/Write+Guard"
        );
        assert_eq!(
            vmmap_type(mem::COMMIT, mem::MAPPED, true, false, false).name(),
            "Mapped File"
        );
        assert_eq!(
            vmmap_type(mem::COMMIT, mem::MAPPED, false, false, false),
            VmmapType::Shareable
        );
        assert_eq!(
            vmmap_type(mem::FREE, 0, false, false, false),
            VmmapType::Free
        );
        assert_eq!(
            vmmap_type(mem::RESERVE, mem::PRIVATE, false, false, true),
            VmmapType::Stack
        );
        assert_eq!(
            vmmap_type(mem::COMMIT, mem::PRIVATE, false, true, false).kind(),
            Kind::Heap
        );
        assert_eq!(
            vmmap_type(mem::COMMIT, mem::PRIVATE, false, false, false).name(),
            "Private Data"
        );
    }

    // QueryDosDeviceW("C:") on Windows 11: \Device\HarddiskVolume3; volume 30 must not match 3.
    #[test]
    fn dos_paths() {
        let devices = vec![
            ("\\Device\\HarddiskVolume30".to_string(), "D:".to_string()),
            ("\\Device\\HarddiskVolume3".to_string(), "C:".to_string()),
        ];
        assert_eq!(
            dos_path(
                "\\Device\\HarddiskVolume3\\Windows\\System32\\ntdll.dll",
                &devices
            )
            .as_deref(),
            Some("C:\\Windows\\System32\\ntdll.dll")
        );
        assert_eq!(
            dos_path("\\Device\\HarddiskVolume30\\x.dat", &devices).as_deref(),
            Some("D:\\x.dat")
        );
        assert_eq!(dos_path("\\Device\\Mup\\server\\share\\x", &devices), None);
    }

    #[test]
    fn working_set_blocks() {
        // Valid, ShareCount 3, PAGE_EXECUTE_READ, Shared: a DLL code page in three processes.
        let code = 1 | (3 << 1) | (0x20 << 4) | (1 << 15);
        let p = WsPage::decode(code);
        assert!(p.valid && p.shared && !p.locked);
        assert_eq!((p.share_count, p.protection), (3, page::EXECUTE_READ));
        // Valid, private, PAGE_READWRITE, locked.
        let data = 1 | (0x04 << 4) | (1 << 22);
        let u = working_set_usage([code, data, 0], 4096);
        assert_eq!(u.rss, 8192);
        assert_eq!(
            (u.shared_clean, u.private_clean, u.locked),
            (4096, 4096, 4096)
        );
        assert_eq!(u.pss, 4096 + 4096 / 3);
    }
}
