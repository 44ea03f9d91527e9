//! `regions` (alias `vmmap`): every region with its kind, usage and sharing mode, the free gaps,
//! and the summary by kind; filtered by address, kind, permissions or name; sorted; or only the
//! summary.

use super::flags::Flags;
use super::{Invocation, Output, Session};
use crate::addr::{FileOffset, VirtAddr};
use crate::error::{Error, ParseError, Result};
use crate::regions::classify::{self, Explained};
use crate::regions::kind::{Kind, Sharing};
use crate::regions::summary::{self, Gap, KindSummary};
use crate::regions::{Perms, Region, Usage};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub const SWITCHES: &[&str] = &["--wide", "--bytes", "--gaps", "--summary"];
pub const VALUED: &[&str] = &["--kind", "--perm", "--sort", "--top", "-A", "-B"];

/// One row of the table, borrowed from the classified map it shows: a region, or a free gap
/// when gaps are shown. Made on the fly by [`RegionsOut::rows`]: a 60,000-row table keeps one
/// copy of the map (shared with the `diff` baseline), not three.
///
/// Serialized by hand (see the `Serialize` impl) as one flat object: the row's fields, then
/// [`Usage`]'s, in declaration order.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub size: u64,
    pub perms: RowPerms,
    pub offset: FileOffset,
    pub dev: Dev,
    pub inode: u64,
    pub path: Option<&'a Path>,
    pub kind: Kind,
    pub detail: &'a str,
    pub sharing: Option<Sharing>,
    pub tid: Option<i32>,
    /// All zeros when unknown (see `has_usage`).
    pub usage: &'a Usage,
    /// Whether the row's usage is known (false for free gaps and backends without smaps).
    pub has_usage: bool,
    /// The row the selection asked for (`regions ADDR`).
    pub selected: bool,
}

/// A row's permissions: a region's (`r-xp`), or `----` for a free gap. Shown and serialized as
/// those four letters, without an allocation per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowPerms(pub Option<Perms>);

impl RowPerms {
    /// Whether the letter `c` (r w x s p) is among the permissions; never for a gap.
    pub fn has(self, c: char) -> bool {
        self.0.is_some_and(|p| match c {
            'r' => p.read,
            'w' => p.write,
            'x' => p.exec,
            's' => p.shared,
            'p' => !p.shared,
            _ => false,
        })
    }

    /// The four letters (`r-xp`, `----`).
    pub fn letters(self) -> String4 {
        String4(self.text())
    }

    fn text(self) -> [u8; 4] {
        match self.0 {
            None => *b"----",
            Some(p) => {
                let c = |on: bool, ch: u8| if on { ch } else { b'-' };
                [
                    c(p.read, b'r'),
                    c(p.write, b'w'),
                    c(p.exec, b'x'),
                    if p.shared { b's' } else { b'p' },
                ]
            }
        }
    }
}

/// Four ASCII letters on the stack; reads as a `&str`.
#[derive(Debug, Clone, Copy)]
pub struct String4([u8; 4]);

impl std::ops::Deref for String4 {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl fmt::Display for RowPerms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        f.pad(std::str::from_utf8(&text).unwrap_or("????"))
    }
}

impl Serialize for RowPerms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.text();
        s.serialize_str(std::str::from_utf8(&text).unwrap_or("????"))
    }
}

/// A device as `major:minor` in hex, at least two digits each (`fe:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dev(pub u32, pub u32);

impl fmt::Display for Dev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}", self.0, self.1)
    }
}

impl Serialize for Dev {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let u = self.usage;
        let mut m = s.serialize_struct("Row", 27)?;
        m.serialize_field("start", &self.start)?;
        m.serialize_field("end", &self.end)?;
        m.serialize_field("size", &self.size)?;
        m.serialize_field("perms", &self.perms)?;
        m.serialize_field("offset", &self.offset)?;
        m.serialize_field("dev", &self.dev)?;
        m.serialize_field("inode", &self.inode)?;
        m.serialize_field("path", &self.path.map(Path::to_string_lossy))?;
        m.serialize_field("kind", &self.kind)?;
        m.serialize_field("detail", &self.detail)?;
        m.serialize_field("sharing", &self.sharing)?;
        m.serialize_field("tid", &self.tid)?;
        // Usage's fields, flattened, in its declaration order.
        m.serialize_field("rss", &u.rss)?;
        m.serialize_field("pss", &u.pss)?;
        m.serialize_field("pss_dirty", &u.pss_dirty)?;
        m.serialize_field("shared_clean", &u.shared_clean)?;
        m.serialize_field("shared_dirty", &u.shared_dirty)?;
        m.serialize_field("private_clean", &u.private_clean)?;
        m.serialize_field("private_dirty", &u.private_dirty)?;
        m.serialize_field("referenced", &u.referenced)?;
        m.serialize_field("anonymous", &u.anonymous)?;
        m.serialize_field("swap", &u.swap)?;
        m.serialize_field("swap_pss", &u.swap_pss)?;
        m.serialize_field("locked", &u.locked)?;
        m.serialize_field("thp", &u.thp)?;
        m.serialize_field("kernel_page_size", &u.kernel_page_size)?;
        m.serialize_field("vmflags", &u.vmflags)?;
        m.end()
    }
}

/// How the table is drawn; not part of the JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    pub wide: bool,
    pub bytes: bool,
    pub summary_only: bool,
    /// Whether the target reported usage at all (core files and some backends do not).
    pub has_usage: bool,
}

/// A row of the table by where it comes from: the map's region `i`, or free gap `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Region(usize),
    Gap(usize),
}

/// What `regions` found: the classified map and its gaps, the rows picked from them (filtered and
/// sorted), and the summary by kind.
#[derive(Debug)]
pub struct RegionsOut {
    pub pid: i32,
    map: Arc<Vec<Explained>>,
    gaps: Vec<Gap>,
    picks: Vec<Pick>,
    selected: Option<Pick>,
    pub summary: Vec<KindSummary>,
    pub totals: Usage,
    pub largest_free: Option<Gap>,
    pub view: View,
}

impl RegionsOut {
    /// The highest end address among the rows (what the address columns must fit).
    pub fn last_end(&self) -> Option<u64> {
        self.picks
            .iter()
            .map(|&p| match p {
                Pick::Region(i) => self.map[i].region.end.get(),
                Pick::Gap(i) => self.gaps[i].end.get(),
            })
            .max()
    }

    /// The table's rows, in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.picks.iter().map(|&p| {
            let mut row = row_of(&self.map, &self.gaps, p);
            row.selected = self.selected == Some(p);
            row
        })
    }
}

impl Serialize for RegionsOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("RegionsOut", 5)?;
        m.serialize_field("pid", &self.pid)?;
        m.serialize_field("regions", &Rows(self))?;
        m.serialize_field("summary", &self.summary)?;
        m.serialize_field("totals", &self.totals)?;
        m.serialize_field("largest_free", &self.largest_free)?;
        m.end()
    }
}

/// The rows as a JSON array, made one at a time.
struct Rows<'a>(&'a RegionsOut);

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.rows())
    }
}

fn row_of<'a>(map: &'a [Explained], gaps: &'a [Gap], pick: Pick) -> Row<'a> {
    match pick {
        Pick::Region(i) => Row::region(&map[i]),
        Pick::Gap(i) => Row::gap(&gaps[i]),
    }
}

impl<'a> Row<'a> {
    /// The row `regions` shows for a classified region.
    pub fn region(e: &'a Explained) -> Row<'a> {
        let r: &Region = &e.region;
        Row {
            start: r.start,
            end: r.end,
            size: r.size(),
            perms: RowPerms(Some(r.perms)),
            offset: r.offset,
            dev: Dev(r.dev.0, r.dev.1),
            inode: r.inode,
            path: r.backing.path(),
            kind: e.kind,
            detail: &e.detail,
            sharing: Some(e.sharing),
            tid: e.tid,
            has_usage: r.usage.is_some(),
            usage: r.usage.as_ref().unwrap_or(&Usage::ZERO),
            selected: false,
        }
    }

    fn gap(g: &Gap) -> Row<'a> {
        Row {
            start: g.start,
            end: g.end,
            size: g.size,
            perms: RowPerms(None),
            offset: FileOffset(0),
            dev: Dev(0, 0),
            inode: 0,
            path: None,
            kind: Kind::Free,
            detail: "",
            sharing: None,
            tid: None,
            usage: &Usage::ZERO,
            has_usage: false,
            selected: false,
        }
    }
}

/// `--perm w+x`, `rwx`, `x`: the permissions a region must have all of.
fn perm_filter(inv: &Invocation<'_>, col: usize, spec: &str) -> Result<impl Fn(&Row) -> bool> {
    let mut want = Vec::new();
    for (i, c) in spec.char_indices() {
        match c {
            'r' | 'w' | 'x' | 's' | 'p' => want.push(c),
            '+' | ',' => {}
            _ => {
                return Err(inv.parse_error(
                    ParseError::new(
                        inv.args,
                        col + i,
                        format!("`{c}` is not a permission (r w x s p)"),
                    ),
                    0,
                ));
            }
        }
    }
    Ok(move |row: &Row| want.iter().all(|c| row.perms.has(*c)))
}

fn kinds(inv: &Invocation<'_>, col: usize, spec: &str) -> Result<Vec<Kind>> {
    let mut out = Vec::new();
    let mut at = col;
    for name in spec.split(',') {
        let kind = Kind::parse(name).ok_or_else(|| {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            inv.parse_error(
                ParseError::new(
                    inv.args,
                    at,
                    format!("no kind `{name}` (kinds: {})", all.join(" ")),
                ),
                0,
            )
        })?;
        out.push(kind);
        at += name.len() + 1;
    }
    Ok(out)
}

/// Does a positional word look like an address expression rather than a name pattern?
fn is_address(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit() || "$*([-'".contains(c)) || word.contains('!')
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, VALUED)?;
    let mut address = None;
    let mut pattern = None;
    for &(col, word) in &flags.positional {
        if is_address(word) && address.is_none() {
            address = Some(VirtAddr(session.eval(inv, word, col)?));
        } else if pattern.is_none() {
            pattern = Some(word);
        } else {
            return Err(inv.usage_error(format!("unexpected `{word}`")));
        }
    }
    let kind_filter = match flags.value(&["--kind"]) {
        Some((col, spec)) => Some(kinds(inv, col, spec)?),
        None => None,
    };
    let perm = match flags.value(&["--perm"]) {
        Some((col, spec)) => Some(perm_filter(inv, col, spec)?),
        None => None,
    };
    let sort = match flags.value(&["--sort"]) {
        None => "addr",
        Some((_, s @ ("addr" | "size" | "rss" | "dirty" | "swap"))) => s,
        Some((col, s)) => {
            return Err(inv.parse_error(
                ParseError::new(
                    inv.args,
                    col,
                    format!("cannot sort by `{s}`: addr size rss dirty swap"),
                ),
                0,
            ));
        }
    };
    let top = flags.number(inv, &["--top"])?;
    let after = flags.number(inv, &["-A"])?.unwrap_or(0) as usize;
    let before = flags.number(inv, &["-B"])?.unwrap_or(0) as usize;

    let target = session.target()?;
    let pid = target.info().pid;
    let explained = classify::explain_with_usage(target)?;
    let gaps = summary::gaps(&explained, target.info().user_space);
    let sum = summary::summarize(&explained, &gaps);
    let has_usage = explained.iter().any(|e| e.region.usage.is_some());

    let show_free = flags.has("--gaps")
        || address.is_some()
        || kind_filter
            .as_ref()
            .is_some_and(|k| k.contains(&Kind::Free));
    let mut picks: Vec<Pick> = Vec::with_capacity(explained.len());
    let mut gi = gaps.iter().enumerate().peekable();
    for (i, e) in explained.iter().enumerate() {
        while show_free && gi.peek().is_some_and(|(_, g)| g.start < e.region.start) {
            picks.push(Pick::Gap(gi.next().expect("peeked").0));
        }
        picks.push(Pick::Region(i));
    }
    if show_free {
        picks.extend(gi.map(|(i, _)| Pick::Gap(i)));
    }
    // What a later bare `diff` compares with: the same map, shared.
    let map = Arc::new(explained);
    let record = crate::target::snapshot::Snapshot::record(target, Arc::clone(&map));
    session.last_snapshot = Some(record);
    let row = |p: Pick| row_of(&map, &gaps, p);

    let mut selected = None;
    if let Some(addr) = address {
        let i = picks
            .iter()
            .position(|&p| {
                let r = row(p);
                r.start <= addr && addr < r.end
            })
            .ok_or_else(|| Error::usage(format!("{addr} is outside the user address space")))?;
        selected = Some(picks[i]);
        let lo = i.saturating_sub(before);
        let hi = (i + after + 1).min(picks.len());
        picks = picks.drain(lo..hi).collect();
    }
    picks.retain(|&p| {
        let r = row(p);
        kind_filter.as_ref().is_none_or(|k| k.contains(&r.kind))
            && perm.as_ref().is_none_or(|f| r.kind != Kind::Free && f(&r))
            && pattern.is_none_or(|pat| {
                r.detail.contains(pat) || r.path.is_some_and(|x| x.to_string_lossy().contains(pat))
            })
    });
    match sort {
        "size" => picks.sort_by_key(|&p| std::cmp::Reverse(row(p).size)),
        "rss" => picks.sort_by_key(|&p| std::cmp::Reverse(row(p).usage.rss)),
        "dirty" => picks.sort_by_key(|&p| std::cmp::Reverse(row(p).usage.dirty())),
        "swap" => picks.sort_by_key(|&p| std::cmp::Reverse(row(p).usage.swap)),
        _ => {}
    }
    if let Some(n) = top {
        picks.truncate(n as usize);
    }
    let view = View {
        wide: flags.has("--wide"),
        bytes: flags.has("--bytes"),
        summary_only: flags.has("--summary"),
        has_usage,
    };
    if view.summary_only {
        picks.clear();
    }
    Ok(Output::Regions(RegionsOut {
        pid,
        map,
        gaps,
        picks,
        selected,
        summary: sum.rows,
        totals: sum.totals,
        largest_free: sum.largest_free,
        view,
    }))
}
