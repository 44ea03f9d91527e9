//! `whatis EXPR...` (alias `xinfo`): everything vmscope knows about an address, in one answer.
//! The region holding it and its kind (from `regions::classify`, so `regions` and `whatis`
//! agree), the offset into it and into its file; for images the section, the symbol with offset
//! and size, the source line and inlined frames (from [`crate::symbols`]); for stacks the owning
//! thread and the distance from its stack pointer; for free space the gap and its neighbours.
//! Then the value stored there, followed pointer by pointer in the style of pwndbg's telescope.
//! Several addresses, or `-f FILE` with one per line, give one answer each.
//!
//! This module also connects [`crate::symbols::Symbols`] to the session as its
//! [`SymbolResolver`] (names in expressions) and annotates `x` with symbol names.

use super::examine::{Item, describe_pointer};
use super::flags::Flags;
use super::{EvalCtx, Invocation, Output, Session, SymbolResolver, expr};
use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, ParseError, Result};
use crate::regions::classify::{self, Explained};
use crate::regions::kind::Kind;
use crate::regions::summary;
use crate::regions::{Backing, Region};
use crate::symbols::{
    AddrInfo, Detail, InlinedFrame, ModuleInfo, SourceLocation, SymbolInfo, Symbols,
};
use crate::target::{Target, Thread};
use serde::{Serialize, Serializer};

pub const VALUED: &[&str] = &["--depth", "-f"];
/// How many pointers `whatis` follows by default, and at most.
pub const DEFAULT_DEPTH: u64 = 3;
const MAX_DEPTH: u64 = 16;
/// Longest string shown for memory that holds text.
const MAX_STRING: usize = 64;
/// Shortest: four letters are as likely an integer (0x5741434b reads "KCAW").
const MIN_STRING: usize = 5;

/// The region holding an address.
#[derive(Debug, Clone, Serialize)]
pub struct RegionRef {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub perms: String,
    pub kind: Kind,
    pub path: Option<String>,
    /// What `regions` says of it (`libc.so.6 .text`, `thread 4242 stack`, `[heap]`).
    pub detail: String,
}

impl RegionRef {
    fn of(e: &Explained) -> RegionRef {
        RegionRef {
            start: e.region.start,
            end: e.region.end,
            perms: e.region.perms.to_string(),
            kind: e.kind,
            path: e
                .region
                .backing
                .path()
                .map(|p| p.to_string_lossy().into_owned()),
            detail: e.detail.clone(),
        }
    }
}

/// The thread whose stack holds the address.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadRef {
    pub tid: i32,
    /// Its stack pointer, when known (blocked in a system call, or stopped).
    pub sp: Option<VirtAddr>,
    /// The address minus the stack pointer: positive is in use (the stack grows down),
    /// negative is below the stack pointer.
    pub sp_distance: Option<i64>,
}

/// A free gap holding the address, and the regions on either side.
#[derive(Debug, Clone, Serialize)]
pub struct GapRef {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub size: u64,
    pub below: Option<RegionRef>,
    pub above: Option<RegionRef>,
}

/// What is at one address.
#[derive(Debug, Clone, Serialize)]
pub struct Whatis {
    pub address: VirtAddr,
    pub region: Option<RegionRef>,
    pub offset_in_region: Option<u64>,
    pub file_offset: Option<FileOffset>,
    pub section: Option<String>,
    pub symbol: Option<SymbolInfo>,
    pub location: Option<SourceLocation>,
    pub inlined: Option<Vec<InlinedFrame>>,
    pub thread: Option<ThreadRef>,
    /// The 8-byte value stored at the address (null when it cannot be read).
    pub value: Option<String>,
    /// The value, then what it points to, and so on (as long as each points into the process).
    pub chain: Vec<String>,
    /// For each element of `chain`, the short whatis of where it points (null: nowhere).
    pub chain_what: Vec<Option<String>>,
    /// The text stored at the address, when it holds a printable C string (5 characters or
    /// more, cut at 64).
    pub string: Option<String>,
    pub module: Option<ModuleInfo>,
    pub gap: Option<GapRef>,
    pub notes: Vec<String>,
}

/// The answers of one `whatis`: one object for one address, `{"results": [...]}` for several.
#[derive(Debug)]
pub struct WhatisOut {
    pub results: Vec<Whatis>,
    /// Whether one address was asked for (JSON is then the object itself).
    pub single: bool,
}

impl Serialize for WhatisOut {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Many<'a> {
            results: &'a [Whatis],
        }
        match (self.single, self.results.as_slice()) {
            (true, [one]) => one.serialize(s),
            (_, results) => Many { results }.serialize(s),
        }
    }
}

impl SymbolResolver for Symbols {
    fn resolve(&mut self, target: &mut dyn Target, name: &str) -> Result<u64> {
        Symbols::resolve(self, target, name)
    }

    fn lookup(
        &mut self,
        target: &mut dyn Target,
        regions: &[Region],
        addr: VirtAddr,
        detail: Detail,
    ) -> Option<AddrInfo> {
        self.refresh(target, regions);
        Symbols::lookup(self, target, addr, detail)
    }

    fn complete(&mut self, target: &mut dyn Target, prefix: &str) -> Vec<String> {
        Symbols::complete(self, target, prefix, 500)
    }
}

/// Puts symbol names (`main+17`) on the `x` units that point at a symbol.
pub fn annotate(session: &mut Session, regions: &[Region], items: &mut [Item]) {
    let (Some(target), Some(symbols)) = (
        session.target.as_deref_mut(),
        session.symbols.as_deref_mut(),
    ) else {
        return;
    };
    for item in items.iter_mut().filter(|i| i.points_to.is_some()) {
        let Some(value) = item.value else { continue };
        if let Some(short) = symbols
            .lookup(target, regions, VirtAddr(value), Detail::Symbol)
            .and_then(|i| i.short())
        {
            item.points_to = Some(short);
        }
    }
}

/// The addresses in a `-f` file: one expression per line (blank lines and `#` comments
/// skipped); a bad line is an error at FILE:LINE.
fn parse_address_file(session: &mut Session, path: &str) -> Result<Vec<VirtAddr>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.to_string(), e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fast = line
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        let value = match fast {
            Some(v) => Ok(v),
            None => expr::parse_expr(line)
                .map_err(Error::Parse)
                .and_then(|e| expr::eval(&e, &mut EvalCtx { session })),
        };
        match value {
            Ok(v) => out.push(VirtAddr(v)),
            Err(e) => {
                return Err(Error::Script {
                    file: path.to_string(),
                    line: n + 1,
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(out)
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, &[], VALUED)?;
    let depth = flags.number(inv, &["--depth"])?.unwrap_or(DEFAULT_DEPTH);
    if depth > MAX_DEPTH {
        let (col, _) = flags.value(&["--depth"]).expect("given");
        return Err(inv.parse_error(
            ParseError::new(inv.args, col, format!("--depth goes up to {MAX_DEPTH}")),
            0,
        ));
    }
    let mut addresses = Vec::new();
    for &(col, word) in &flags.positional {
        addresses.push(VirtAddr(session.eval(inv, word, col)?));
    }
    let from_file = flags.value(&["-f"]);
    if let Some((_, path)) = from_file {
        addresses.extend(parse_address_file(session, path)?);
    }
    if addresses.is_empty() {
        return Err(match from_file {
            Some((_, path)) => Error::usage(format!("{path} holds no addresses")),
            None => inv.usage_error("whatis needs an address"),
        });
    }
    let single = addresses.len() == 1 && from_file.is_none();

    let Session {
        target, symbols, ..
    } = session;
    let target = target.as_deref_mut().ok_or(Error::NoTarget)?;
    // Shorten the trait object's lifetime to this call's (a `Box<dyn ..>` is `+ 'static`).
    let symbols = symbols.as_deref_mut().map(|s| s as &mut dyn SymbolResolver);
    let regions = target.regions()?;
    let explained = classify::explain(target, regions.clone())?;
    let threads = target.threads()?;
    let gaps = summary::gaps(&explained, target.info().user_space);
    let mut ctx = Context {
        target,
        symbols,
        regions: &regions,
        explained: &explained,
        threads: &threads,
        gaps: &gaps,
    };
    let mut results = Vec::with_capacity(addresses.len());
    for addr in addresses {
        crate::interrupt::check()?;
        results.push(ctx.whatis(addr, depth)?);
    }
    Ok(Output::Whatis(WhatisOut { results, single }))
}

/// What one `whatis` works from: read once, used for every address.
struct Context<'a> {
    target: &'a mut dyn Target,
    symbols: Option<&'a mut dyn SymbolResolver>,
    regions: &'a [Region],
    explained: &'a [Explained],
    threads: &'a [Thread],
    gaps: &'a [summary::Gap],
}

impl<'a> Context<'a> {
    /// The classified region holding `addr` (borrowed from the list, not from `self`).
    fn explained_at(&self, addr: VirtAddr) -> Option<&'a Explained> {
        let all: &'a [Explained] = self.explained;
        let i = all.partition_point(|e| e.region.end <= addr);
        all.get(i).filter(|e| e.region.contains(addr))
    }

    fn symbols(&mut self, addr: VirtAddr, detail: Detail) -> Option<AddrInfo> {
        let symbols = self.symbols.as_deref_mut()?;
        symbols.lookup(self.target, self.regions, addr, detail)
    }

    fn whatis(&mut self, addr: VirtAddr, depth: u64) -> Result<Whatis> {
        let mut w = Whatis {
            address: addr,
            region: None,
            offset_in_region: None,
            file_offset: None,
            section: None,
            symbol: None,
            location: None,
            inlined: None,
            thread: None,
            value: None,
            chain: Vec::new(),
            chain_what: Vec::new(),
            string: None,
            module: None,
            gap: None,
            notes: Vec::new(),
        };
        match self.explained_at(addr) {
            Some(e) => {
                let into = addr.offset_from(e.region.start);
                w.region = Some(RegionRef::of(e));
                w.offset_in_region = Some(into);
                if matches!(
                    e.region.backing,
                    Backing::File { .. } | Backing::Memfd { .. }
                ) {
                    w.file_offset = Some(FileOffset(e.region.offset.get() + into));
                }
                if let Some(tid) = e.tid {
                    let sp = self
                        .threads
                        .iter()
                        .find(|t| t.tid == tid)
                        .and_then(|t| t.sp);
                    w.thread = Some(ThreadRef {
                        tid,
                        sp,
                        sp_distance: sp.map(|sp| addr.get().wrapping_sub(sp.get()) as i64),
                    });
                }
                if matches!(
                    e.kind,
                    Kind::Image | Kind::File | Kind::Guard | Kind::System
                ) && let Some(info) = self.symbols(addr, Detail::Source)
                {
                    w.section = info.section;
                    w.symbol = info.symbol;
                    w.location = info.location;
                    w.inlined = info.inlined;
                    w.module = Some(info.module);
                    w.notes = info.notes;
                    // Bss bytes come from no file, even on the page the file's data shares.
                    if w.section.as_deref().is_some_and(is_nobits) {
                        w.file_offset = None;
                    }
                }
            }
            None => w.gap = self.gap(addr),
        }
        self.telescope(&mut w, depth);
        Ok(w)
    }

    /// The free gap holding `addr` and its neighbours; None above the user address space.
    fn gap(&self, addr: VirtAddr) -> Option<GapRef> {
        let g = self
            .gaps
            .iter()
            .find(|g| g.start <= addr && addr < g.end)
            .copied()
            .or_else(|| {
                // Below the lowest mappable address, or a gap `gaps` does not list.
                let below = self.explained.iter().rev().find(|e| e.region.end <= addr);
                let above = self.explained.iter().find(|e| e.region.start > addr);
                let start = below.map_or(VirtAddr(0), |e| e.region.end);
                let end = above.map(|e| e.region.start)?;
                Some(summary::Gap {
                    start,
                    end,
                    size: end.offset_from(start),
                })
            })?;
        let below = self
            .explained
            .iter()
            .rev()
            .find(|e| e.region.end <= g.start)
            .map(RegionRef::of);
        let above = self
            .explained
            .iter()
            .find(|e| e.region.start >= g.end)
            .map(RegionRef::of);
        Some(GapRef {
            start: g.start,
            end: g.end,
            size: g.size,
            below,
            above,
        })
    }

    fn read_word(&mut self, addr: VirtAddr) -> Option<u64> {
        let mut buf = [0u8; 8];
        match self.target.read(addr, &mut buf) {
            Ok(8) => Some(u64::from_le_bytes(buf)),
            _ => None,
        }
    }

    /// The printable C string at `addr`, if there is one.
    fn string_at(&mut self, addr: VirtAddr) -> Option<String> {
        let mut buf = [0u8; MAX_STRING + 1];
        let n = self.target.read(addr, &mut buf).ok()?;
        c_string(&buf[..n])
    }

    /// The short whatis of an address a value points to: the symbol (`main+17`), the stack of
    /// a thread, or the region and offset (`[heap]+0x10`). None when it points nowhere.
    fn short(&mut self, addr: VirtAddr) -> Option<String> {
        let e = self.explained_at(addr)?;
        if matches!(e.kind, Kind::Image | Kind::File)
            && let Some(short) = self.symbols(addr, Detail::Symbol).and_then(|i| i.short())
        {
            return Some(short);
        }
        match (e.kind, e.tid) {
            (Kind::Stack, Some(tid)) => Some(format!("[stack of {tid}]")),
            (Kind::Image, _) if e.region.backing.path().is_none() => Some(format!(
                "{}+{:#x}",
                e.detail,
                addr.offset_from(e.region.start)
            )),
            _ => describe_pointer(self.regions, addr),
        }
    }

    /// Fills `value`, `chain`, `chain_what` and `string`: the value at the address, followed
    /// while it points into the process, up to `depth` values; stops at code, at a string, and
    /// at a loop.
    fn telescope(&mut self, w: &mut Whatis, depth: u64) {
        // One read for the value and the string.
        let mut buf = [0u8; MAX_STRING + 1];
        let n = self.target.read(w.address, &mut buf).unwrap_or(0);
        w.string = c_string(&buf[..n]);
        if n < 8 {
            return;
        }
        let mut value = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        w.value = Some(format!("{value:#x}"));
        let mut visited = vec![w.address.get()];
        for _ in 0..depth {
            let at = VirtAddr(value);
            w.chain.push(format!("{value:#x}"));
            let what = self.short(at);
            let stop = what.is_none()
                || visited.contains(&value)
                || self.explained_at(at).is_none_or(|e| e.region.perms.exec);
            if stop {
                w.chain_what.push(what);
                break;
            }
            if let Some(s) = self.string_at(at) {
                w.chain_what
                    .push(Some(format!("{} \"{s}\"", what.unwrap_or_default())));
                break;
            }
            w.chain_what.push(what);
            visited.push(value);
            match self.read_word(at) {
                Some(next) => value = next,
                None => break,
            }
        }
    }
}

/// Sections that take no room in the file.
fn is_nobits(section: &str) -> bool {
    section == ".bss" || section.starts_with(".bss.") || section.starts_with(".tbss")
}

/// The printable C string `bytes` start with (at least [`MIN_STRING`] characters; cut at
/// [`MAX_STRING`]).
fn c_string(bytes: &[u8]) -> Option<String> {
    let n = bytes.len();
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(n.min(MAX_STRING));
    let text = &bytes[..end];
    let printable = |b: &u8| b.is_ascii_graphic() || matches!(*b, b' ' | b'\n' | b'\t');
    if text.len() < MIN_STRING || !text.iter().all(printable) {
        return None;
    }
    let mut s = String::from_utf8_lossy(text).into_owned();
    if end == MAX_STRING {
        s.push_str("...");
    }
    Some(s)
}
