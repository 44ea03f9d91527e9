//! `diff`: what changed in the memory map between two moments (Sysinternals VMMap's "Show
//! Changes"). `diff` compares the last `regions`/`snapshot` of this session with now, `diff FILE`
//! a saved snapshot with now, `diff A B` two saved snapshots. Regions are matched across the two
//! (same start, else same end, else overlapping with the same backing), then reported as added,
//! removed, grown, shrunk, moved, with changed permissions or kind, or with changed usage; the
//! usage deltas are summed by kind.

use super::flags::Flags;
use super::{Invocation, Output, Session};
use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::regions::classify::Explained;
use crate::regions::kind::Kind;
use crate::regions::summary::{self, Gap, KindSummary};
use crate::regions::{Backing, Region};
use crate::target::ProcessFacts;
use crate::target::snapshot::Snapshot;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

pub const SWITCHES: &[&str] = &["--bytes", "--summary"];

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// `the map `regions` showed` or `the snapshot taken` (earlier in this session), `now`, or
    /// `snapshot FILE`.
    pub origin: String,
    pub pid: i32,
    pub exe: Option<String>,
    pub taken_at: String,
    pub regions: usize,
}

/// What happened to a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Mapped since (no region before matches it).
    Added,
    /// Unmapped since.
    Removed,
    /// Bigger than before (`mremap`, `brk`, a stack growing, a neighbour merged in).
    Grown,
    /// Smaller than before (part unmapped, or split off by `mprotect`).
    Shrunk,
    /// Same backing, but no longer overlapping where it was (`mremap` with MREMAP_MAYMOVE).
    Moved,
    /// Different permissions (`mprotect`).
    Perms,
    /// Classified differently (a private mapping that became a thread stack...).
    Kind,
    /// Resident, dirty or swapped bytes changed.
    Usage,
    /// Only the split between private and shared bytes changed: another process mapped or let go
    /// of the same pages (fork, copy-on-write, a library user that exited).
    Sharing,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Grown => "grown",
            Change::Shrunk => "shrunk",
            Change::Moved => "moved",
            Change::Perms => "perms",
            Change::Kind => "kind",
            Change::Usage => "usage",
            Change::Sharing => "sharing",
        }
    }
}

/// A region as it was, or as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub size: u64,
    pub perms: String,
    pub kind: Kind,
    pub detail: String,
    pub path: Option<String>,
    pub rss: u64,
    pub pss: u64,
    pub private: u64,
    pub shared: u64,
    pub dirty: u64,
    pub swap: u64,
}

/// New minus old, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deltas {
    pub size: i64,
    pub rss: i64,
    pub pss: i64,
    pub private: i64,
    pub shared: i64,
    pub dirty: i64,
    pub swap: i64,
}

impl Deltas {
    fn between(old: &Side, new: &Side) -> Deltas {
        Deltas {
            size: d(old.size, new.size),
            rss: d(old.rss, new.rss),
            pss: d(old.pss, new.pss),
            private: d(old.private, new.private),
            shared: d(old.shared, new.shared),
            dirty: d(old.dirty, new.dirty),
            swap: d(old.swap, new.swap),
        }
    }

    fn negated(self) -> Deltas {
        Deltas {
            size: -self.size,
            rss: -self.rss,
            pss: -self.pss,
            private: -self.private,
            shared: -self.shared,
            dirty: -self.dirty,
            swap: -self.swap,
        }
    }
}

fn d(old: u64, new: u64) -> i64 {
    (new as i128 - old as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// One region that changed.
#[derive(Debug, Clone, Serialize)]
pub struct RegionChange {
    /// What happened, in a fixed order (`added`, `removed`, `grown`... `sharing`).
    pub changes: Vec<Change>,
    /// The region before (null when added).
    pub old: Option<Side>,
    /// The region now (null when removed).
    pub new: Option<Side>,
    pub delta: Deltas,
    /// For an added region: the start of the region before that it was carved out of (an
    /// `mprotect` or `munmap` in the middle splits one mapping into several).
    pub split_from: Option<VirtAddr>,
    /// For a removed region: the start of the region now that took it in (neighbours merged).
    pub merged_into: Option<VirtAddr>,
}

impl RegionChange {
    /// The side to show: now, or before for a removed region.
    pub fn shown(&self) -> &Side {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .expect("a change has a side")
    }
}

/// How many regions changed, and how.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub added: u64,
    pub removed: u64,
    pub grown: u64,
    pub shrunk: u64,
    pub moved: u64,
    pub perms: u64,
    pub kind: u64,
    pub usage: u64,
    pub sharing: u64,
    pub unchanged: u64,
}

/// Sizes and usage of one kind (or of everything).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Amounts {
    pub size: u64,
    pub rss: u64,
    pub private: u64,
    pub shared: u64,
    pub dirty: u64,
    pub swap: u64,
    pub blocks: u64,
    pub largest: u64,
}

impl From<&KindSummary> for Amounts {
    fn from(s: &KindSummary) -> Amounts {
        Amounts {
            size: s.size,
            rss: s.rss,
            private: s.private,
            shared: s.shared,
            dirty: s.dirty,
            swap: s.swap,
            blocks: s.blocks,
            largest: s.largest,
        }
    }
}

/// New minus old for [`Amounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AmountDeltas {
    pub size: i64,
    pub rss: i64,
    pub private: i64,
    pub shared: i64,
    pub dirty: i64,
    pub swap: i64,
    pub blocks: i64,
    pub largest: i64,
}

impl AmountDeltas {
    fn between(o: &Amounts, n: &Amounts) -> AmountDeltas {
        AmountDeltas {
            size: d(o.size, n.size),
            rss: d(o.rss, n.rss),
            private: d(o.private, n.private),
            shared: d(o.shared, n.shared),
            dirty: d(o.dirty, n.dirty),
            swap: d(o.swap, n.swap),
            blocks: d(o.blocks, n.blocks),
            largest: d(o.largest, n.largest),
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == AmountDeltas::default()
    }
}

/// One kind's figures before and now (VMMap's upper pane, compared).
#[derive(Debug, Clone, Serialize)]
pub struct KindChange {
    pub kind: Kind,
    pub old: Amounts,
    pub new: Amounts,
    pub delta: AmountDeltas,
}

/// Every kind but free, summed.
#[derive(Debug, Clone, Serialize)]
pub struct TotalsChange {
    pub old: Amounts,
    pub new: Amounts,
    pub delta: AmountDeltas,
}

/// Two readings of a number (`[old, new]` in JSON), null where a side does not know it.
pub type Pair = [Option<u64>; 2];

/// Process-wide figures before and now, when both sides have them.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessChange {
    pub threads: Pair,
    pub vm_size: Pair,
    pub vm_rss: Pair,
    pub vm_swap: Pair,
    pub minflt: Pair,
    pub majflt: Pair,
}

impl ProcessChange {
    fn between(o: &ProcessFacts, n: &ProcessFacts) -> ProcessChange {
        ProcessChange {
            threads: [Some(o.threads), Some(n.threads)],
            vm_size: [o.vm_size, n.vm_size],
            vm_rss: [o.vm_rss, n.vm_rss],
            vm_swap: [o.vm_swap, n.vm_swap],
            minflt: [o.minflt, n.minflt],
            majflt: [o.majflt, n.majflt],
        }
    }
}

/// How the text is drawn; not part of the JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    pub bytes: bool,
    pub summary_only: bool,
}

#[derive(Debug, Serialize)]
pub struct DiffOut {
    pub from: Source,
    pub to: Source,
    /// Milliseconds from `from` to `to` (negative when `to` was taken first).
    pub elapsed_ms: i64,
    /// Both sides are the same process (pid and executable).
    pub same_process: bool,
    /// Both sides carry usage figures (else usage deltas are zero and not compared).
    pub usage: bool,
    pub counts: Counts,
    /// Every region that changed, by address.
    pub changes: Vec<RegionChange>,
    pub by_kind: Vec<KindChange>,
    pub totals: TotalsChange,
    pub largest_free: [Option<Gap>; 2],
    pub process: Option<ProcessChange>,
    #[serde(skip)]
    pub view: View,
}

/// What a region is the same mapping of, across two moments: the file (device and inode), or
/// the pseudo-name, or plain anonymous memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Ident {
    File { dev: (u32, u32), inode: u64 },
    Named(String),
    Anonymous,
}

fn ident(r: &Region) -> Ident {
    match &r.backing {
        Backing::File { .. } if r.inode != 0 => Ident::File {
            dev: r.dev,
            inode: r.inode,
        },
        Backing::Anonymous => Ident::Anonymous,
        // Memfd, SysV and shared anonymous memory have shmem inodes: keep them apart.
        other => Ident::Named(format!("{} {:?} {}", other.label(), r.dev, r.inode)),
    }
}

/// Where a file mapping's offset 0 would be: unchanged when it grows or shrinks at either end.
fn origin(r: &Region) -> u64 {
    r.start.get().wrapping_sub(r.offset.get())
}

fn side(e: &Explained) -> Side {
    let r = &e.region;
    let u = r.usage.clone().unwrap_or_default();
    Side {
        start: r.start,
        end: r.end,
        size: r.size(),
        perms: r.perms.to_string(),
        kind: e.kind,
        detail: e.detail.clone(),
        path: r.backing.path().map(|p| p.to_string_lossy().into_owned()),
        rss: u.rss,
        pss: u.pss,
        private: u.private(),
        shared: u.shared(),
        dirty: u.dirty(),
        swap: u.swap,
    }
}

/// Pairs the regions of `old` with those of `new`: `(old index, new index)`, each at most once.
fn match_regions(old: &[Explained], new: &[Explained]) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut of_old: Vec<Option<usize>> = vec![None; old.len()];
    let mut of_new: Vec<Option<usize>> = vec![None; new.len()];
    let ids_old: Vec<Ident> = old.iter().map(|e| ident(&e.region)).collect();
    let ids_new: Vec<Ident> = new.iter().map(|e| ident(&e.region)).collect();
    // 1. Same start and backing: the common case, and a region that grew or shrank at its end.
    // 2. Same end and backing: a region that grew or shrank at its start (stacks, merges below).
    for by_end in [false, true] {
        let key = |r: &Region| if by_end { r.end } else { r.start };
        let index: HashMap<VirtAddr, usize> = new
            .iter()
            .enumerate()
            .filter(|&(j, _)| of_new[j].is_none())
            .map(|(j, e)| (key(&e.region), j))
            .collect();
        for (i, o) in old.iter().enumerate() {
            if of_old[i].is_some() {
                continue;
            }
            if let Some(&j) = index.get(&key(&o.region))
                && of_new[j].is_none()
                && ids_old[i] == ids_new[j]
            {
                of_old[i] = Some(j);
                of_new[j] = Some(i);
            }
        }
    }
    // 3. Overlapping with the same backing (and for files, the same file origin): the largest
    // overlap wins.
    for (i, o) in old.iter().enumerate() {
        if of_old[i].is_some() {
            continue;
        }
        let r = &o.region;
        let mut best: Option<(u64, usize)> = None;
        for j in overlapping(new, r) {
            let n = &new[j].region;
            if of_new[j].is_some()
                || ids_old[i] != ids_new[j]
                || (matches!(ids_old[i], Ident::File { .. }) && origin(r) != origin(n))
            {
                continue;
            }
            let overlap = r.end.min(n.end).offset_from(r.start.max(n.start));
            if best.is_none_or(|(b, _)| overlap > b) {
                best = Some((overlap, j));
            }
        }
        if let Some((_, j)) = best {
            of_old[i] = Some(j);
            of_new[j] = Some(i);
        }
    }
    // 4. The same named region, wherever it went (a moved `[heap]` or memfd).
    let mut named_new: HashMap<&Ident, Vec<usize>> = HashMap::new();
    for (j, id) in ids_new.iter().enumerate() {
        if of_new[j].is_none() && matches!(id, Ident::Named(_)) {
            named_new.entry(id).or_default().push(j);
        }
    }
    for (i, id) in ids_old.iter().enumerate() {
        if of_old[i].is_none()
            && let Some(js) = named_new.get(id)
            && let [j] = js.as_slice()
            && of_new[*j].is_none()
            && ids_old.iter().filter(|x| *x == id).count() == 1
        {
            of_old[i] = Some(*j);
            of_new[*j] = Some(i);
        }
    }
    (of_old, of_new)
}

/// Indices of the regions in `list` (sorted, disjoint) that overlap `r`.
fn overlapping(list: &[Explained], r: &Region) -> impl Iterator<Item = usize> {
    let first = list.partition_point(|e| e.region.end <= r.start);
    (first..list.len()).take_while(move |&j| list[j].region.start < r.end)
}

/// The first region of `list` overlapping `r` with the same backing.
fn overlapping_same(list: &[Explained], r: &Region) -> Option<VirtAddr> {
    let id = ident(r);
    overlapping(list, r)
        .map(|j| &list[j].region)
        .find(|n| ident(n) == id)
        .map(|n| n.start)
}

/// Every region that changed between `old` and `new`, by address, and the counts.
pub fn compare(old: &[Explained], new: &[Explained], usage: bool) -> (Vec<RegionChange>, Counts) {
    let (of_old, of_new) = match_regions(old, new);
    let mut counts = Counts::default();
    let mut out = Vec::new();
    for (j, n) in new.iter().enumerate() {
        let now = side(n);
        let Some(i) = of_new[j] else {
            counts.added += 1;
            let mut delta = Deltas::between(&zero_like(&now), &now);
            if !usage {
                delta = Deltas {
                    size: delta.size,
                    ..Deltas::default()
                };
            }
            out.push(RegionChange {
                changes: vec![Change::Added],
                old: None,
                split_from: overlapping_same(old, &n.region),
                new: Some(now),
                delta,
                merged_into: None,
            });
            continue;
        };
        let before = side(&old[i]);
        let mut delta = Deltas::between(&before, &now);
        let mut changes = Vec::new();
        if now.end <= before.start || before.end <= now.start {
            changes.push(Change::Moved);
        }
        match now.size.cmp(&before.size) {
            std::cmp::Ordering::Greater => changes.push(Change::Grown),
            std::cmp::Ordering::Less => changes.push(Change::Shrunk),
            std::cmp::Ordering::Equal => {}
        }
        if now.perms != before.perms {
            changes.push(Change::Perms);
        }
        if now.kind != before.kind {
            changes.push(Change::Kind);
        }
        if usage {
            if delta.rss != 0 || delta.dirty != 0 || delta.swap != 0 {
                changes.push(Change::Usage);
            } else if delta.private != 0 || delta.shared != 0 {
                changes.push(Change::Sharing);
            }
        } else {
            delta = Deltas {
                size: delta.size,
                ..Deltas::default()
            };
        }
        changes.sort();
        for c in &changes {
            match c {
                Change::Grown => counts.grown += 1,
                Change::Shrunk => counts.shrunk += 1,
                Change::Moved => counts.moved += 1,
                Change::Perms => counts.perms += 1,
                Change::Kind => counts.kind += 1,
                Change::Usage => counts.usage += 1,
                Change::Sharing => counts.sharing += 1,
                Change::Added | Change::Removed => {}
            }
        }
        if changes.is_empty() {
            counts.unchanged += 1;
            continue;
        }
        out.push(RegionChange {
            changes,
            old: Some(before),
            new: Some(now),
            delta,
            split_from: None,
            merged_into: None,
        });
    }
    for (i, o) in old.iter().enumerate() {
        if of_old[i].is_some() {
            continue;
        }
        counts.removed += 1;
        let before = side(o);
        let mut delta = Deltas::between(&zero_like(&before), &before).negated();
        if !usage {
            delta = Deltas {
                size: delta.size,
                ..Deltas::default()
            };
        }
        out.push(RegionChange {
            changes: vec![Change::Removed],
            merged_into: overlapping_same(new, &o.region),
            old: Some(before),
            new: None,
            delta,
            split_from: None,
        });
    }
    out.sort_by_key(|c| (c.shown().start, c.new.is_some()));
    (out, counts)
}

/// The same region with nothing in it: what an added region is compared against.
fn zero_like(s: &Side) -> Side {
    Side {
        size: 0,
        rss: 0,
        pss: 0,
        private: 0,
        shared: 0,
        dirty: 0,
        swap: 0,
        ..s.clone()
    }
}

fn source(s: &Snapshot) -> Source {
    Source {
        origin: s.origin.clone(),
        pid: s.pid,
        exe: s.exe.as_ref().map(|p| p.to_string_lossy().into_owned()),
        taken_at: s.taken_at(),
        regions: s.regions.len(),
    }
}

/// Compares two snapshots.
pub fn diff(old: &Snapshot, new: &Snapshot, view: View) -> DiffOut {
    let usage = old.usage && new.usage;
    let (changes, counts) = compare(&old.regions, &new.regions, usage);
    let sum_old = summary::summarize(&old.regions, &summary::gaps(&old.regions, old.user_space));
    let sum_new = summary::summarize(&new.regions, &summary::gaps(&new.regions, new.user_space));
    let mut by_kind = Vec::new();
    let mut totals_old = Amounts::default();
    let mut totals_new = Amounts::default();
    for kind in Kind::ALL {
        let o = sum_old
            .rows
            .iter()
            .find(|r| r.kind == kind)
            .map(Amounts::from);
        let n = sum_new
            .rows
            .iter()
            .find(|r| r.kind == kind)
            .map(Amounts::from);
        if o.is_none() && n.is_none() {
            continue;
        }
        let (o, n) = (o.unwrap_or_default(), n.unwrap_or_default());
        if kind != Kind::Free {
            for (t, a) in [(&mut totals_old, &o), (&mut totals_new, &n)] {
                t.size += a.size;
                t.rss += a.rss;
                t.private += a.private;
                t.shared += a.shared;
                t.dirty += a.dirty;
                t.swap += a.swap;
                t.blocks += a.blocks;
                t.largest = t.largest.max(a.largest);
            }
        }
        by_kind.push(KindChange {
            kind,
            delta: AmountDeltas::between(&o, &n),
            old: o,
            new: n,
        });
    }
    let process = match (&old.facts, &new.facts) {
        (Some(o), Some(n)) => Some(ProcessChange::between(o, n)),
        _ => None,
    };
    DiffOut {
        from: source(old),
        to: source(new),
        elapsed_ms: d(old.taken_at_ms, new.taken_at_ms),
        same_process: old.pid == new.pid && old.exe == new.exe,
        usage,
        counts,
        changes,
        by_kind,
        totals: TotalsChange {
            delta: AmountDeltas::between(&totals_old, &totals_new),
            old: totals_old,
            new: totals_new,
        },
        largest_free: [sum_old.largest_free, sum_new.largest_free],
        process,
        view,
    }
}

/// A file name argument, without the quotes that kept its spaces together.
pub fn unquote(word: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = word.strip_prefix(q).and_then(|w| w.strip_suffix(q)) {
            return inner;
        }
    }
    word
}

/// The map of the current target now.
fn now(session: &mut Session) -> Result<Snapshot> {
    let mut snap = Snapshot::take(session.target()?)?;
    snap.origin = "now".into();
    Ok(snap)
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, &[])?;
    let view = View {
        bytes: flags.has("--bytes"),
        summary_only: flags.has("--summary"),
    };
    let files: Vec<&str> = flags.positional.iter().map(|&(_, w)| unquote(w)).collect();
    let out = match files.as_slice() {
        [] => {
            let Some(before) = session.last_snapshot.take() else {
                return Err(Error::usage(
                    "nothing to compare with yet: run `regions` or `snapshot` first (then `diff` \
                     shows what changed since), or give a snapshot file: diff FILE [FILE2]",
                ));
            };
            let result = now(session);
            let after = match result {
                Ok(after) => after,
                Err(e) => {
                    session.last_snapshot = Some(before);
                    return Err(e);
                }
            };
            let out = diff(&before, &after, view);
            session.last_snapshot = Some(before);
            out
        }
        [file] => {
            let before = Snapshot::load(Path::new(file))?;
            let after = now(session)?;
            diff(&before, &after, view)
        }
        [a, b] => {
            let before = Snapshot::load(Path::new(a))?;
            let after = Snapshot::load(Path::new(b))?;
            diff(&before, &after, view)
        }
        _ => return Err(inv.usage_error("diff takes at most two snapshot files")),
    };
    Ok(Output::Diff(Box::new(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::FileOffset;
    use crate::regions::kind::Sharing;
    use crate::regions::{Perms, Usage};
    use std::path::PathBuf;

    fn region(start: u64, end: u64, perms: &str, backing: Backing, rss: u64) -> Explained {
        let (dev, inode, offset) = match &backing {
            Backing::File { .. } => ((8, 1), 77, 0),
            _ => ((0, 0), 0, 0),
        };
        let region = Region {
            start: VirtAddr(start),
            end: VirtAddr(end),
            perms: Perms::parse(perms.as_bytes()).unwrap(),
            offset: FileOffset(offset),
            dev,
            inode,
            backing,
            usage: Some(Usage {
                rss,
                private_dirty: rss,
                ..Usage::default()
            }),
        };
        Explained {
            sharing: Sharing::of(&region),
            kind: Kind::Private,
            detail: String::new(),
            tid: None,
            part: None,
            region,
        }
    }

    fn anon(start: u64, end: u64, perms: &str, rss: u64) -> Explained {
        region(start, end, perms, Backing::Anonymous, rss)
    }

    fn changes(old: &[Explained], new: &[Explained]) -> Vec<(u64, Vec<Change>)> {
        compare(old, new, true)
            .0
            .into_iter()
            .map(|c| (c.shown().start.get(), c.changes))
            .collect()
    }

    #[test]
    fn added_removed_grown_shrunk_perms_usage() {
        let old = [
            anon(0x1000, 0x3000, "rw-p", 0),
            anon(0x10000, 0x11000, "rw-p", 0x1000),
            anon(0x20000, 0x22000, "rw-p", 0),
            anon(0x30000, 0x32000, "rw-p", 0),
            anon(0x40000, 0x44000, "rw-p", 0),
        ];
        let new = [
            anon(0x1000, 0x3000, "rw-p", 0x2000),
            anon(0x20000, 0x24000, "rw-p", 0),
            anon(0x30000, 0x32000, "r--p", 0),
            anon(0x42000, 0x44000, "rw-p", 0),
            anon(0x50000, 0x51000, "rw-p", 0),
        ];
        assert_eq!(
            changes(&old, &new),
            vec![
                (0x1000, vec![Change::Usage]),
                (0x10000, vec![Change::Removed]),
                (0x20000, vec![Change::Grown]),
                (0x30000, vec![Change::Perms]),
                (0x42000, vec![Change::Shrunk]),
                (0x50000, vec![Change::Added]),
            ]
        );
        let (all, counts) = compare(&old, &new, true);
        assert_eq!(counts.unchanged, 0);
        let removed = all.iter().find(|c| c.changes == [Change::Removed]).unwrap();
        assert_eq!(removed.delta.rss, -0x1000);
        assert_eq!(removed.delta.size, -0x1000);
    }

    #[test]
    fn a_stack_growing_down_keeps_its_end_and_a_split_names_its_origin() {
        let old = [
            region(0x7000, 0x9000, "rw-p", Backing::Stack, 0),
            anon(0x1000, 0x5000, "rw-p", 0),
        ];
        let mut old = old.to_vec();
        old.sort_by_key(|e| e.region.start);
        let mut new = vec![
            region(0x6000, 0x9000, "rw-p", Backing::Stack, 0),
            anon(0x1000, 0x2000, "rw-p", 0),
            anon(0x2000, 0x3000, "r--p", 0),
            anon(0x3000, 0x5000, "rw-p", 0),
        ];
        new.sort_by_key(|e| e.region.start);
        let (all, _) = compare(&old, &new, true);
        let got: Vec<(u64, Vec<Change>, Option<VirtAddr>)> = all
            .iter()
            .map(|c| (c.shown().start.get(), c.changes.clone(), c.split_from))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x1000, vec![Change::Shrunk], None),
                (0x2000, vec![Change::Added], Some(VirtAddr(0x1000))),
                (0x3000, vec![Change::Added], Some(VirtAddr(0x1000))),
                (0x6000, vec![Change::Grown], None),
            ]
        );
    }

    #[test]
    fn files_match_by_inode_and_origin_and_replacements_are_not_matched() {
        let file = |deleted| Backing::File {
            path: PathBuf::from("/lib/x.so"),
            deleted,
        };
        let old = [
            region(0x1000, 0x2000, "r--p", file(false), 0),
            anon(0x5000, 0x6000, "rw-p", 0),
        ];
        // The file was deleted (its label changes, its inode does not); the anonymous region was
        // replaced by a file mapping at the same address.
        let new = [
            region(0x1000, 0x2000, "r--p", file(true), 0),
            region(0x5000, 0x6000, "rw-p", file(false), 0),
        ];
        assert_eq!(
            changes(&old, &new),
            vec![
                (0x5000, vec![Change::Removed]),
                (0x5000, vec![Change::Added]),
            ]
        );
    }

    #[test]
    fn unquote_strips_one_pair() {
        assert_eq!(unquote("\"a b.json\""), "a b.json");
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\"half"), "\"half");
    }
}
