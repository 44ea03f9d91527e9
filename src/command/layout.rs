//! `layout`: the address space drawn top to bottom like the textbook picture (kernel space, the
//! stack growing down, the mmap area, the heap growing up, the program's bss, data, rodata and
//! text, the unmapped NULL page), with this process's real addresses and sizes. This module
//! builds the bands of that picture; src/render/layout.rs draws them, each band's height on a
//! log scale of its size.

use super::flags::Flags;
use super::{Invocation, Output, Session};
use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::classify::{self, Explained};
use crate::regions::elf::ImagePart;
use crate::regions::kind::Kind;
use crate::regions::{Backing, Perms};
use crate::target::UserSpace;
use serde::Serialize;
use std::borrow::Cow;

pub const SWITCHES: &[&str] = &["--all", "--bytes"];

/// Without `--all`, the mmap area keeps this many of its largest bands; the smaller ones between
/// them are drawn as one "N more mappings" band.
pub const MMAP_BANDS: usize = 20;
/// Free gaps at least this big are never folded into a "more mappings" band.
const KEEP_GAP: u64 = 1 << 30;

/// What part of the textbook picture a band belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// The kernel's half of the address space.
    Kernel,
    /// Non-canonical addresses between the two halves.
    Hole,
    /// The main thread's stack.
    Stack,
    /// Shared libraries, thread stacks, anonymous and file mappings.
    Mmap,
    /// vdso, vvar, vsyscall.
    System,
    /// The brk heap.
    Heap,
    /// The program's own image: text, rodata, relro, data, bss.
    Image,
    /// Unmapped user address space.
    Free,
    /// The lowest pages, never mapped.
    Null,
}

/// Which way a region grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grows {
    Up,
    Down,
}

/// An address the user asked to see in the picture (`layout $heap_int`).
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub expression: String,
    pub address: VirtAddr,
}

/// One box of the picture: a region, a group of neighbouring regions, or a gap.
#[derive(Debug, Clone, Serialize)]
pub struct Band {
    pub start: VirtAddr,
    /// The last address in it (inclusive: the top band ends at 0xffffffffffffffff).
    pub last: VirtAddr,
    pub size: u64,
    pub section: Section,
    /// The kind of its regions, when they share one.
    pub kind: Option<Kind>,
    /// `.text`, `libc.so.6`, `thread 4242 stack`, `free`... (unescaped: it may come from the
    /// target).
    pub label: Cow<'static, str>,
    /// What lives there, for people learning it.
    pub note: Cow<'static, str>,
    /// The permissions of its regions (each distinct value once, in address order).
    pub perms: Vec<Perms>,
    /// How many mappings it holds (0 for gaps).
    pub regions: u64,
    /// Bytes mapped in it (less than `size` when a folded band spans small gaps).
    pub mapped: u64,
    pub rss: u64,
    pub dirty: u64,
    pub swap: u64,
    pub grows: Option<Grows>,
    pub marks: Vec<Mark>,
    /// Its height in the drawing, in lines, from the log scale.
    pub lines: u32,
    /// The program image's name when the band starts a section the drawing titles (`mmap area`,
    /// the executable).
    pub title: Option<String>,
    /// The part of an image it holds.
    #[serde(skip)]
    pub part: Option<ImagePart>,
}

/// How the picture is drawn; not part of the JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    pub bytes: bool,
}

#[derive(Debug, Serialize)]
pub struct LayoutOut {
    pub pid: i32,
    pub exe: Option<String>,
    /// The top of the user half (0x800000000000 with 4-level page tables).
    pub user_top: VirtAddr,
    /// Whether RSS/dirty/swap are known.
    pub usage: bool,
    /// Top to bottom, contiguous, covering every address.
    pub bands: Vec<Band>,
    /// How heights were computed.
    pub scale: &'static str,
    #[serde(skip)]
    pub view: View,
}

pub const SCALE: &str = "log: 1 line below 16M, then one more line for every 256x (16M, 4G, \
                         1T, 256T), at most 6";

/// A band's height: 1 line below 16 MiB, one more for each factor of 256 above, at most 6.
pub fn lines_for(size: u64) -> u32 {
    let log2 = 63 - size.max(1).leading_zeros();
    (1 + log2.saturating_sub(16) / 8).clamp(1, 6)
}

/// What neighbouring regions must share to be drawn as one band.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Group {
    /// Never grouped: the program's own parts, the heap, the main stack.
    Alone,
    Library(String),
    ThreadStack(i32),
    Arena(String),
    System,
    Anonymous,
    File(String),
    Shared(String),
    Guard,
}

/// A band before it is finished: regions and gaps, in address order.
#[derive(Debug, Clone)]
struct Unit {
    band: Band,
    group: Group,
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The image name a classified detail starts with (`libc.so.6 .text` -> `libc.so.6`).
fn image_name(e: &Explained) -> Option<&str> {
    let part = e.part?;
    e.detail.strip_suffix(part.name()).map(str::trim_end)
}

fn part_note(part: ImagePart) -> &'static str {
    match part {
        ImagePart::Text => "machine code: the program's functions",
        ImagePart::Rodata => "read-only data: string literals, constants, ELF headers",
        ImagePart::Relro => "read-only after relocation: GOT, vtables",
        ImagePart::Data => "initialized global and static variables",
        ImagePart::Bss => "zero-initialized globals and statics (bss)",
    }
}

fn band(start: u64, end: u64, section: Section, label: impl Into<Cow<'static, str>>) -> Band {
    Band {
        start: VirtAddr(start),
        last: VirtAddr(end.wrapping_sub(1)),
        size: end.wrapping_sub(start),
        section,
        kind: None,
        label: label.into(),
        note: Cow::Borrowed(""),
        perms: Vec::new(),
        regions: 0,
        mapped: 0,
        rss: 0,
        dirty: 0,
        swap: 0,
        grows: None,
        marks: Vec::new(),
        lines: 1,
        title: None,
        part: None,
    }
}

/// The band of one region, and what it may be grouped with.
/// `pid`: the main thread's id (its stack is the process's own).
fn unit(e: &Explained, exe: Option<&str>, pid: i32) -> Unit {
    let r = &e.region;
    let mut b = band(r.start.get(), r.end.get(), Section::Mmap, "");
    b.kind = Some(e.kind);
    b.perms = vec![r.perms];
    b.regions = 1;
    b.mapped = r.size();
    if let Some(u) = &r.usage {
        b.rss = u.rss;
        b.dirty = u.dirty();
        b.swap = u.swap;
    }
    let label_or = |s: &str, fallback: &str| {
        if s.is_empty() {
            fallback.to_string()
        } else {
            s.to_string()
        }
    };
    let image = image_name(e);
    let group = match e.kind {
        _ if exe.is_some() && image == exe => {
            let part = e.part.expect("image_name needs a part");
            b.section = Section::Image;
            b.part = Some(part);
            b.label = part.name().into();
            b.note = part_note(part).into();
            Group::Alone
        }
        Kind::Image => {
            let name = image.unwrap_or(&e.detail).to_string();
            b.label = name.clone().into();
            b.note = if name.starts_with("ld-linux") || name.starts_with("ld.so") {
                "the dynamic loader, which mapped the libraries".into()
            } else if name.starts_with("libc.so") {
                "the C library: malloc, printf, system call wrappers".into()
            } else {
                "a shared library: its code and data".into()
            };
            Group::Library(name)
        }
        Kind::Heap if r.backing == Backing::Heap => {
            b.section = Section::Heap;
            b.label = "heap".into();
            b.grows = Some(Grows::Up);
            b.note = "malloc's memory (the brk area): grows up".into();
            Group::Alone
        }
        Kind::Heap => {
            b.label = "malloc arena".into();
            b.note = "a glibc malloc heap for other threads, and its reserved room".into();
            let key = e.detail.split_whitespace().nth(1).unwrap_or("").to_string();
            Group::Arena(key)
        }
        Kind::Stack if r.backing == Backing::Stack && e.tid.is_none_or(|t| t == pid) => {
            b.section = Section::Stack;
            b.label = "stack (main thread)".into();
            b.grows = Some(Grows::Down);
            b.note = "local variables and return addresses: grows down".into();
            Group::Alone
        }
        Kind::Stack => {
            let tid = e.tid.unwrap_or(0);
            b.label = format!("thread {tid} stack").into();
            b.grows = Some(Grows::Down);
            b.note = "a thread's stack, with a guard page below it".into();
            Group::ThreadStack(tid)
        }
        Kind::Guard if exe.is_some_and(|x| e.detail == format!("{x} (reserved)")) => {
            b.section = Section::Image;
            b.label = "(reserved)".into();
            b.note = "no access: a gap between the program's segments".into();
            Group::Alone
        }
        Kind::Guard if e.detail.ends_with(" (reserved)") => {
            let name = e.detail.trim_end_matches(" (reserved)").to_string();
            b.label = name.clone().into();
            b.note = "a shared library: its code and data".into();
            Group::Library(name)
        }
        Kind::Guard => {
            if let Some(tid) = e
                .detail
                .strip_prefix("guard below thread ")
                .and_then(|s| s.strip_suffix(" stack"))
                .and_then(|s| s.parse().ok())
            {
                b.label = format!("thread {tid} stack").into();
                b.note = "a thread's stack, with a guard page below it".into();
                Group::ThreadStack(tid)
            } else if e.detail.starts_with("arena ") {
                b.label = "malloc arena".into();
                b.note = "a glibc malloc heap for other threads, and its reserved room".into();
                Group::Arena(e.detail.split_whitespace().nth(1).unwrap_or("").to_string())
            } else {
                b.label = "guard / reserved".into();
                b.note = "no access: reserved address space, or a guard page".into();
                Group::Guard
            }
        }
        Kind::System => {
            b.section = Section::System;
            b.label = r.backing.label().into();
            b.note = "from the kernel: vDSO code for fast clock_gettime, and its data".into();
            Group::System
        }
        Kind::File => {
            let name = basename(&e.detail).to_string();
            b.label = label_or(&name, "file").into();
            b.note = "a file mapped into memory (mmap)".into();
            Group::File(e.detail.clone())
        }
        Kind::Shared => {
            b.label = label_or(basename(&e.detail), "shared memory").into();
            b.note = "shared memory: other processes may map the same pages".into();
            Group::Shared(e.detail.clone())
        }
        Kind::Private | Kind::Free => {
            b.label = "anonymous memory".into();
            b.note = "mmap'd memory: big mallocs, runtime heaps, thread-local storage".into();
            Group::Anonymous
        }
    };
    Unit { band: b, group }
}

/// Adds `b`'s contents to `into` (which lies just below it).
fn absorb(into: &mut Band, b: &Band) {
    into.last = b.last;
    into.size = into
        .last
        .get()
        .wrapping_sub(into.start.get())
        .wrapping_add(1);
    for p in &b.perms {
        if !into.perms.contains(p) {
            into.perms.push(*p);
        }
    }
    into.regions += b.regions;
    into.mapped += b.mapped;
    into.rss += b.rss;
    into.dirty += b.dirty;
    into.swap += b.swap;
    if into.kind != b.kind && b.kind.is_some() {
        // A thread stack and its guard: the stack names the band.
        if b.kind == Some(Kind::Stack) || into.kind == Some(Kind::Guard) {
            into.kind = b.kind;
            into.grows = b.grows;
        } else if b.kind != Some(Kind::Guard) {
            into.kind = None;
        }
    }
}

/// The user half of the picture, bottom to top: the NULL page, the regions (grouped) and the
/// free gaps between them.
fn user_bands(
    regions: &[&Explained],
    exe: Option<&str>,
    pid: i32,
    user_start: u64,
    user_top: u64,
    all: bool,
) -> Vec<Band> {
    let mut units: Vec<Unit> = Vec::with_capacity(regions.len());
    let free = |start: u64, end: u64| Unit {
        band: band(start, end, Section::Free, "free"),
        group: Group::Alone,
    };
    let first = regions.first().map_or(user_top, |e| e.region.start.get());
    let null_end = user_start.min(first);
    if null_end > 0 {
        let mut b = band(0, null_end, Section::Null, "NULL page, never mapped");
        b.note = "unmapped on purpose: dereferencing a null pointer faults here".into();
        units.push(Unit {
            band: b,
            group: Group::Alone,
        });
    }
    let mut cursor = null_end;
    for e in regions {
        let (s, end) = (e.region.start.get(), e.region.end.get());
        if s > cursor {
            units.push(free(cursor, s));
        }
        cursor = cursor.max(end);
        let u = unit(e, exe, pid);
        match units.last_mut() {
            Some(prev)
                if prev.group == u.group
                    && prev.group != Group::Alone
                    && prev.band.last.get().wrapping_add(1) == s =>
            {
                if prev.group == Group::System && !prev.band.label.contains(&*u.band.label) {
                    prev.band.label = format!("{} {}", prev.band.label, u.band.label).into();
                }
                absorb(&mut prev.band, &u.band);
            }
            _ => units.push(u),
        }
    }
    if user_top > cursor {
        units.push(free(cursor, user_top));
    }
    for u in &mut units {
        if u.band.regions > 1 && u.group == Group::Anonymous {
            u.band.label = format!("anonymous memory ({} mappings)", u.band.regions).into();
        }
    }
    let mut bands: Vec<Band> = units.into_iter().map(|u| u.band).collect();
    if !all {
        bands = fold_small_mappings(bands);
    }
    name_free_bands(&mut bands);
    bands
}

/// Folds the smaller bands of the mmap area (and the small gaps between them) into "N more
/// mappings" bands, keeping the [`MMAP_BANDS`] largest.
fn fold_small_mappings(mut bands: Vec<Band>) -> Vec<Band> {
    let mmap: Vec<usize> = (0..bands.len())
        .filter(|&i| bands[i].section == Section::Mmap)
        .collect();
    if mmap.len() <= MMAP_BANDS {
        return bands;
    }
    let mut by_size = mmap.clone();
    by_size.sort_by_key(|&i| std::cmp::Reverse(bands[i].mapped));
    // Keep the largest, but not a few of many equals: bands as big as the first one left out
    // are folded too.
    let cutoff = bands[by_size[MMAP_BANDS - 1]].mapped;
    let mut keep = vec![false; bands.len()];
    for &i in by_size.iter().take(MMAP_BANDS - 1) {
        keep[i] = bands[i].mapped > cutoff;
    }
    let take = |b: &mut Band| std::mem::replace(b, band(0, 0, Section::Free, ""));
    let foldable = |b: &Band, i: usize| {
        !keep[i]
            && (b.section == Section::Mmap || (b.section == Section::Free && b.size < KEEP_GAP))
    };
    let mut out: Vec<Band> = Vec::with_capacity(MMAP_BANDS * 2 + 16);
    let mut i = 0;
    while i < bands.len() {
        if !(bands[i].section == Section::Mmap && foldable(&bands[i], i)) {
            out.push(take(&mut bands[i]));
            i += 1;
            continue;
        }
        // A run of foldable bands; gaps at its ends stay outside it.
        let mut j = i;
        while j + 1 < bands.len() && foldable(&bands[j + 1], j + 1) {
            j += 1;
        }
        while bands[j].section == Section::Free {
            j -= 1;
        }
        if j == i {
            out.push(take(&mut bands[i]));
            i += 1;
            continue;
        }
        let mut merged = band(
            bands[i].start.get(),
            bands[i].start.get(),
            Section::Mmap,
            "",
        );
        merged.perms.clear();
        let mut kinds: Vec<(Kind, u64)> = Vec::new();
        for b in &bands[i..=j] {
            absorb(&mut merged, b);
            if let Some(k) = b.kind
                && b.section == Section::Mmap
            {
                match kinds.iter_mut().find(|(x, _)| *x == k) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((k, 1)),
                }
            }
        }
        merged.kind = (kinds.len() == 1).then(|| kinds[0].0);
        merged.grows = None;
        merged.label = format!("{} more mappings", merged.regions).into();
        let parts: Vec<String> = kinds.iter().map(|&(k, n)| kind_count(k, n)).collect();
        merged.note = format!("{} (`layout --all` draws each)", parts.join(", ")).into();
        out.push(merged);
        i = j + 1;
    }
    out
}

/// `3 libraries`, `1 anonymous mapping`: what a folded band holds.
fn kind_count(kind: Kind, n: u64) -> String {
    let (one, many) = match kind {
        Kind::Image => ("library", "libraries"),
        Kind::Heap => ("malloc arena", "malloc arenas"),
        Kind::Stack => ("thread stack", "thread stacks"),
        Kind::File => ("mapped file", "mapped files"),
        Kind::Shared => ("shared mapping", "shared mappings"),
        Kind::Private => ("anonymous mapping", "anonymous mappings"),
        Kind::Guard => ("guard or reservation", "guards and reservations"),
        Kind::System => ("system mapping", "system mappings"),
        Kind::Free => ("gap", "gaps"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Says what each free gap is for, from its neighbours.
fn name_free_bands(bands: &mut [Band]) {
    let largest = bands
        .iter()
        .filter(|b| b.section == Section::Free)
        .map(|b| b.size)
        .max()
        .unwrap_or(0);
    let sections: Vec<Section> = bands.iter().map(|b| b.section).collect();
    for (i, b) in bands.iter_mut().enumerate() {
        if b.section != Section::Free {
            continue;
        }
        let below = i.checked_sub(1).map(|j| sections[j]);
        let above = sections.get(i + 1).copied();
        b.note = Cow::Borrowed(match (below, above) {
            (Some(Section::Image), Some(Section::Heap)) => {
                "unmapped: the heap starts a random distance above the program (ASLR)"
            }
            (Some(Section::Heap), _) => {
                "unmapped: room for the heap to grow up and new mappings to grow down"
            }
            (_, Some(Section::Stack)) => "unmapped: room for the stack to grow down, and ASLR",
            (Some(Section::Stack), None) => "unmapped: the stack's top is placed randomly (ASLR)",
            _ => "unmapped",
        });
        if b.size == largest {
            b.note.to_mut().push_str(" (the largest free block)");
        }
    }
}

/// The top of the user half of the picture and the start of the kernel's: the OS's user space
/// (its extended top once a mapping lies above the usual one) rounded up to a power of two, the
/// reach of the page tables: 2^47 on x86_64 (Linux, Windows, macOS), 2^48 on Linux aarch64, 2^56
/// with 5-level paging; raised to cover every mapping below the kernel's half (a WOW64 process's
/// 64-bit DLLs lie above its 32-bit space). The kernel's half mirrors it at the top, where the
/// 64-bit sign extension puts it. A 32-bit space (2^32 or less) has no kernel half in reach:
/// `None`.
fn halves(explained: &[Explained], space: UserSpace) -> (u64, Option<u64>) {
    const KERNEL_HALF: u64 = 1 << 63;
    let highest = explained
        .iter()
        .map(|e| e.region.end.get())
        .filter(|&end| end != 0 && end <= KERNEL_HALF)
        .max()
        .unwrap_or(0);
    let end = match space.extended_end {
        Some(ext) if highest > space.end.get() => ext.get(),
        _ => space.end.get(),
    };
    let top = end.max(highest).next_power_of_two();
    (top, (top > 1 << 32).then(|| top.wrapping_neg()))
}

/// Builds the picture, top to bottom.
pub fn build(
    explained: &[Explained],
    space: UserSpace,
    exe: Option<&str>,
    pid: i32,
    all: bool,
) -> (Vec<Band>, u64) {
    let (user_top, kernel_start) = halves(explained, space);
    let in_kernel = |e: &&Explained| kernel_start.is_some_and(|k| e.region.start.get() >= k);
    let (kernel, user): (Vec<&Explained>, Vec<&Explained>) = explained
        .iter()
        .filter(|e| in_kernel(e) || e.region.end.get() <= user_top)
        .partition(in_kernel);
    let mut bands = user_bands(&user, exe, pid, space.start.get(), user_top, all);

    let Some(kernel_start) = kernel_start else {
        let mut beyond = band(user_top, 0, Section::Hole, "beyond 32-bit addresses");
        beyond.note = "out of reach: a 32-bit process addresses 4 GiB at most".into();
        bands.push(beyond);
        return finish(bands, exe, user_top);
    };
    let mut hole = band(user_top, kernel_start, Section::Hole, "non-canonical hole");
    hole.note = format!(
        "not addresses at all: the CPU faults on them (only the lowest and highest 2^{} bytes are)",
        user_top.trailing_zeros()
    )
    .into();
    bands.push(hole);
    let kernel_band = |start: u64, end: u64| {
        let mut b = band(start, end, Section::Kernel, "kernel space");
        b.note = "the kernel's half: in every process, off limits to user code".into();
        b
    };
    let mut cursor = kernel_start;
    for e in &kernel {
        let (s, end) = (e.region.start.get(), e.region.end.get());
        if s > cursor {
            bands.push(kernel_band(cursor, s));
        }
        let mut u = unit(e, exe, pid).band;
        u.section = Section::System;
        if e.region.backing == Backing::Vsyscall {
            u.note = "legacy vsyscall page: a fixed address inside kernel space".into();
        }
        bands.push(u);
        cursor = end;
    }
    if cursor != 0 {
        // The last band ends at the top of the 64-bit space (`end` 0 after wrapping).
        bands.push(kernel_band(cursor, 0));
    }
    finish(bands, exe, user_top)
}

/// Turns the bands, built bottom to top, into the picture: top first, heights set, titles on
/// the first band of the mmap area and of the program.
fn finish(mut bands: Vec<Band>, exe: Option<&str>, user_top: u64) -> (Vec<Band>, u64) {
    bands.reverse();
    let mut last_section = None;
    for b in &mut bands {
        b.lines = lines_for(b.size);
        match b.section {
            Section::Mmap if last_section != Some(Section::Mmap) => {
                b.title = Some("mmap area (grows down)".into());
            }
            Section::Image if last_section != Some(Section::Image) => {
                b.title = Some(format!("program {}", exe.unwrap_or("image")));
            }
            _ => {}
        }
        if !matches!(b.section, Section::Free | Section::System) {
            last_section = Some(b.section);
        }
    }
    (bands, user_top)
}

/// Puts each mark in the band holding its address.
fn place_marks(bands: &mut [Band], marks: Vec<Mark>) {
    for m in marks {
        if let Some(b) = bands
            .iter_mut()
            .find(|b| b.start <= m.address && m.address <= b.last)
        {
            b.marks.push(m);
        }
    }
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, &[])?;
    let mut marks = Vec::new();
    for &(col, word) in &flags.positional {
        let address = VirtAddr(session.eval(inv, word, col)?);
        marks.push(Mark {
            expression: word.to_string(),
            address,
        });
    }
    let target = session.target()?;
    let pid = target.info().pid;
    let exe_path = target
        .info()
        .exe
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let regions = match target.regions_with_usage() {
        Err(Error::Unsupported { .. }) => target.regions()?,
        other => other?,
    };
    crate::interrupt::check()?;
    let usage = regions.iter().any(|r| r.usage.is_some());
    let explained = classify::explain(target, regions)?;
    let exe_name = exe_path
        .as_deref()
        .map(|p| basename(p.strip_suffix(" (deleted)").unwrap_or(p)).to_string());
    let space = target.info().user_space;
    let (mut bands, user_top) = build(
        &explained,
        space,
        exe_name.as_deref(),
        pid,
        flags.has("--all"),
    );
    place_marks(&mut bands, marks);
    Ok(Output::Layout(LayoutOut {
        pid,
        exe: exe_path,
        user_top: VirtAddr(user_top),
        usage,
        bands,
        scale: SCALE,
        view: View {
            bytes: flags.has("--bytes"),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(start: u64, end: u64, extended_end: Option<u64>) -> UserSpace {
        UserSpace {
            start: VirtAddr(start),
            end: VirtAddr(end),
            extended_end: extended_end.map(VirtAddr),
        }
    }

    /// The halves for each OS's user space, with the values their headers and docs give.
    #[test]
    fn halves_follow_the_os_and_the_mappings() {
        let low = [Explained::anonymous(0x40_0000, 0x40_1000)];
        let vsyscall = Explained::anonymous(0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000);
        let linux = space(0x10000, 0x7fff_ffff_f000, Some(0xff_ffff_ffff_f000));
        let with_gate = [low[0].clone(), vsyscall];
        assert_eq!(
            halves(&with_gate, linux),
            (1 << 47, Some(0xffff_8000_0000_0000))
        );
        // Above 47 bits on a 5-level machine: 56-bit halves.
        let high = [Explained::anonymous(0x1_0000_0000_0000, 0x1_0000_0000_1000)];
        assert_eq!(halves(&high, linux), (1 << 56, Some(0xff00_0000_0000_0000)));
        // Linux aarch64 (48-bit TTBR0/TTBR1 halves).
        assert_eq!(
            halves(&low, space(0x10000, 1 << 48, Some(1 << 52))),
            (1 << 48, Some(0xffff_0000_0000_0000))
        );
        // Windows x64: lpMaximumApplicationAddress 0x7ffffffeffff; macOS arm64 and x86_64.
        for end in [0x7fff_ffff_0000, 0x7fff_fe00_0000, 0x7fff_ffe0_0000] {
            assert_eq!(
                halves(&low, space(0x10000, end, None)),
                (1 << 47, Some(0xffff_8000_0000_0000))
            );
        }
        // A 32-bit space with nothing above it; and one with 64-bit DLLs above (WOW64).
        let compat = space(0x10000, 0xffff_f000, None);
        assert_eq!(halves(&low, compat), (1 << 32, None));
        let wow64 = [Explained::anonymous(0x7ffe_0000_0000, 0x7ffe_0001_0000)];
        assert_eq!(
            halves(&wow64, compat),
            (1 << 47, Some(0xffff_8000_0000_0000))
        );
    }

    /// Every band of the picture follows the one above it without a gap, from the top of the
    /// 64-bit space to 0, for a 64-bit and a 32-bit space.
    #[test]
    fn the_picture_covers_every_address_once() {
        let map = [
            Explained::anonymous(0x40_0000, 0x40_1000),
            Explained::anonymous(0x7ffd_0000_0000, 0x7ffd_0002_1000),
        ];
        for (space, regions) in [
            (space(0x10000, 0x7fff_ffff_f000, None), &map[..]),
            (space(0x1000, 0xffff_f000, None), &map[..1]),
        ] {
            let (bands, _) = build(regions, space, None, 1, true);
            assert_eq!(bands[0].last.get(), u64::MAX);
            assert_eq!(bands.last().unwrap().start.get(), 0);
            for pair in bands.windows(2) {
                assert_eq!(pair[1].last.get().wrapping_add(1), pair[0].start.get());
            }
            assert_eq!(bands.last().unwrap().last.get() + 1, space.start.get());
        }
    }

    #[test]
    fn heights_grow_by_one_line_per_factor_of_256() {
        assert_eq!(lines_for(0), 1);
        assert_eq!(lines_for(4096), 1);
        assert_eq!(lines_for((16 << 20) - 1), 1);
        assert_eq!(lines_for(16 << 20), 2);
        assert_eq!(lines_for(4 << 30), 3);
        assert_eq!(lines_for(1 << 40), 4);
        assert_eq!(lines_for(1 << 47), 4);
        assert_eq!(lines_for(1 << 48), 5);
        assert_eq!(lines_for(u64::MAX), 6);
    }
}
