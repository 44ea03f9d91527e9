//! Classification: each region gets a kind, a detail (`libc.so.6 .text`, `thread 4242 stack`,
//! `[heap]`), a sharing mode and, for stacks, the owning thread. It uses what the target can tell:
//! the threads' stack pointers, the images' ELF program headers (for text/rodata/data/relro/bss),
//! and a glance at memory to recognize glibc's non-main arenas.

use super::elf::{ImagePart, LoadLayout};
use super::kind::{Kind, Sharing};
use super::{Backing, HoldsRegion, Region};
use crate::addr::VirtAddr;
use crate::error::Result;
use crate::target::Target;
use std::collections::HashMap;

/// glibc's HEAP_MAX_SIZE on 64-bit: non-main arena heaps are aligned to it.
const ARENA_HEAP_MAX: u64 = 64 << 20;

/// A region and what it is.
#[derive(Clone, Debug)]
pub struct Explained {
    pub region: Region,
    pub kind: Kind,
    pub detail: String,
    pub sharing: Sharing,
    /// The thread whose stack this is.
    pub tid: Option<i32>,
    pub part: Option<ImagePart>,
}

#[cfg(test)]
impl Explained {
    /// A private anonymous region with no usage, for unit tests of what is computed from maps.
    pub(crate) fn anonymous(start: u64, end: u64) -> Explained {
        Explained {
            region: Region {
                start: VirtAddr(start),
                end: VirtAddr(end),
                perms: super::Perms::default(),
                offset: crate::addr::FileOffset(0),
                dev: (0, 0),
                inode: 0,
                backing: Backing::Anonymous,
                usage: None,
            },
            kind: Kind::Private,
            detail: String::new(),
            sharing: Sharing::Private,
            tid: None,
            part: None,
        }
    }
}

fn basename(path: &std::path::Path) -> String {
    path.file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

/// A region with the kind, detail and sharing mode it has on its own, before its neighbours,
/// images and threads are considered ([`refine`] does that).
impl HoldsRegion for Explained {
    fn wrap(region: Region) -> Explained {
        let (kind, detail) = base(&region);
        Explained {
            sharing: Sharing::of(&region),
            region,
            kind,
            detail,
            tid: None,
            part: None,
        }
    }

    /// The sharing mode depends on the usage (shared pages make a private mapping COW).
    fn set_usage(&mut self, usage: super::Usage) {
        self.region.usage = Some(usage);
        self.sharing = Sharing::of(&self.region);
    }
}

/// The kind and detail a region has on its own, before neighbours and threads are considered.
fn base(region: &Region) -> (Kind, String) {
    let label = region.backing.label();
    match &region.backing {
        Backing::Heap => (Kind::Heap, label),
        Backing::Stack => (Kind::Stack, label),
        Backing::Vdso | Backing::Vvar | Backing::Vsyscall | Backing::Special { .. } => {
            (Kind::System, label)
        }
        Backing::Memfd { .. }
        | Backing::SysV { .. }
        | Backing::SharedAnonymous
        | Backing::ShmemNamed { .. } => (Kind::Shared, label),
        Backing::File { path, .. } if path.starts_with("/dev/shm") => (Kind::Shared, label),
        Backing::File { .. } if region.perms.is_none() => (Kind::Guard, label),
        Backing::File { .. } => (Kind::File, label),
        Backing::Anonymous | Backing::AnonNamed { .. } if region.perms.is_none() => {
            (Kind::Guard, label)
        }
        Backing::Anonymous | Backing::AnonNamed { .. } => (Kind::Private, label),
    }
}

/// Classifies `regions` (sorted by address) of `target`.
/// A target that carries its own classification (a snapshot) gives that instead.
pub fn explain(target: &mut dyn Target, regions: Vec<Region>) -> Result<Vec<Explained>> {
    match target.classified(regions) {
        Ok(saved) => Ok(saved),
        Err(regions) => refine(target, regions.into_iter().map(Explained::wrap).collect()),
    }
}

/// The whole map with usage (where the target reports it), classified: what `regions` and
/// `snapshot` show. A backend that streams its map gives each region its own kind as it arrives
/// ([`Target::explained_with_usage`]); the rest is done here.
pub fn explain_with_usage(target: &mut dyn Target) -> Result<Vec<Explained>> {
    if let Some(based) = target.explained_with_usage() {
        return refine(target, based?);
    }
    let regions = match target.regions_with_usage() {
        Err(crate::error::Error::Unsupported { .. }) => target.regions()?,
        other => other?,
    };
    crate::interrupt::check()?;
    explain(target, regions)
}

/// Completes the classification of regions that have their own kinds ([`Explained::wrap`]):
/// images and their parts, thread stacks, glibc arenas.
fn refine(target: &mut dyn Target, mut out: Vec<Explained>) -> Result<Vec<Explained>> {
    let pid = target.info().pid;
    let page = target.info().page_size;
    let threads = target.threads()?;
    mark_images(target, &mut out, page);
    mark_stacks(&mut out, pid, &threads);
    mark_arenas(target, &mut out);
    Ok(out)
}

/// Images: file mappings of an ELF file with an executable mapping, named by part; the bss
/// that follows their data; the reserved gaps between their segments.
fn mark_images(target: &mut dyn Target, out: &mut [Explained], page: u64) {
    // Group file mappings by the file they map (dev, inode), in address order.
    let mut groups: HashMap<((u32, u32), u64), Vec<usize>> = HashMap::new();
    for (i, e) in out.iter().enumerate() {
        if e.region.backing.path().is_some() && e.region.inode != 0 {
            groups
                .entry((e.region.dev, e.region.inode))
                .or_default()
                .push(i);
        }
    }
    for members in groups.values() {
        if !members.iter().any(|&i| out[i].region.perms.exec) {
            continue;
        }
        let first = members[0];
        let Some(layout) = target
            .mapped_file(&out[first].region)
            .ok()
            .and_then(LoadLayout::read)
        else {
            continue;
        };
        let r0 = &out[first].region;
        let Some(bias) = layout.bias(r0.start.get(), r0.offset.get(), page) else {
            continue;
        };
        let name = out[first]
            .region
            .backing
            .path()
            .map(basename)
            .unwrap_or_default();
        for &i in members {
            let e = &mut out[i];
            if e.region.perms.is_none() {
                e.kind = Kind::Guard;
                e.detail = format!("{name} (reserved)");
                continue;
            }
            let vaddr = e.region.start.get().wrapping_sub(bias);
            let part = layout.part(vaddr, e.region.perms.exec, e.region.perms.write, page);
            e.kind = Kind::Image;
            e.part = Some(part);
            e.detail = format!("{name} {}", part.name());
        }
        if let Some((lo, hi)) = layout.bss(page) {
            let (lo, hi) = (lo.wrapping_add(bias), hi.wrapping_add(bias));
            // The regions are sorted: only those starting in [lo, hi) are looked at.
            let first = out.partition_point(|e| e.region.start.get() < lo);
            for e in out[first..]
                .iter_mut()
                .take_while(|e| e.region.start.get() < hi)
            {
                if matches!(e.region.backing, Backing::Anonymous) && e.region.perms.write {
                    e.kind = Kind::Image;
                    e.part = Some(ImagePart::Bss);
                    e.detail = format!("{name} .bss");
                }
            }
        }
    }
}

/// Stacks: the region holding each thread's stack pointer, and the guard page below it.
fn mark_stacks(out: &mut [Explained], pid: i32, threads: &[crate::target::Thread]) {
    for e in out.iter_mut() {
        if matches!(e.region.backing, Backing::Stack) {
            e.tid = Some(pid);
            e.detail = format!("thread {pid} stack (main)");
        }
    }
    for t in threads {
        let Some(sp) = t.sp else { continue };
        // Sorted, not overlapping: the last region starting at or below sp is the only candidate.
        let i = out.partition_point(|e| e.region.start <= sp);
        let Some(i) = i.checked_sub(1).filter(|&i| out[i].region.contains(sp)) else {
            continue;
        };
        if out[i].region.backing == Backing::Stack {
            continue;
        }
        if !matches!(out[i].kind, Kind::Private | Kind::Stack) {
            continue; // a stack pointer into something else (a signal stack in a file?): leave it
        }
        out[i].kind = Kind::Stack;
        out[i].tid = Some(t.tid);
        out[i].detail = format!("thread {} stack", t.tid);
        if i > 0 && out[i - 1].kind == Kind::Guard && out[i - 1].region.end == out[i].region.start {
            out[i - 1].detail = format!("guard below thread {} stack", t.tid);
        }
    }
}

/// glibc's non-main arenas: anonymous read-write regions aligned to HEAP_MAX_SIZE whose first
/// word (heap_info.ar_ptr) points to the arena, which the first heap of an arena holds itself.
/// The no-access rest of the 64 MiB reservation follows them.
fn mark_arenas(target: &mut dyn Target, out: &mut [Explained]) {
    let mut arenas: Vec<u64> = Vec::new();
    for i in 0..out.len() {
        let r = &out[i].region;
        if out[i].kind != Kind::Private
            || !r.start.get().is_multiple_of(ARENA_HEAP_MAX)
            || r.size() > ARENA_HEAP_MAX
            || !r.perms.write
        {
            continue;
        }
        let mut word = [0u8; 8];
        if !matches!(target.read(r.start, &mut word), Ok(8)) {
            continue;
        }
        let ar_ptr = u64::from_le_bytes(word);
        let inside = r.contains(VirtAddr(ar_ptr));
        if !inside && !arenas.contains(&ar_ptr) {
            continue;
        }
        arenas.push(ar_ptr);
        out[i].kind = Kind::Heap;
        out[i].detail = format!("arena {ar_ptr:#x} heap");
        let (start, end) = (out[i].region.start.get(), out[i].region.end);
        if let Some(next) = out.get_mut(i + 1)
            && next.kind == Kind::Guard
            && next.region.start == end
            && next.region.end.get() - start <= ARENA_HEAP_MAX
        {
            next.detail = format!("arena {ar_ptr:#x} reserve");
        }
    }
}
