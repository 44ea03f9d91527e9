//! Free gaps in the user address space and the summary by kind (VMMap's upper pane): size, RSS,
//! private, shared, dirty, swap, blocks and the largest block of each kind, plus the free space
//! and its largest block, which measures fragmentation.

use super::Usage;
use super::classify::Explained;
use super::kind::Kind;
use crate::addr::VirtAddr;
use crate::target::UserSpace;
use serde::Serialize;

/// An unmapped range of the user address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub size: u64,
}

/// The free gaps between regions (sorted) in the user address space `space` (regions outside it,
/// such as x86_64's vsyscall page, are not part of it).
pub fn gaps(regions: &[Explained], space: UserSpace) -> Vec<Gap> {
    let (start, end) = (space.start.get(), space.end.get());
    let top = match space.extended_end.map(VirtAddr::get) {
        Some(ext)
            if regions
                .iter()
                .any(|e| (end + 1..=ext).contains(&e.region.end.get())) =>
        {
            ext
        }
        _ => end,
    };
    let mut out = Vec::new();
    let mut cursor = start;
    for e in regions.iter().filter(|e| e.region.end.get() <= top) {
        if e.region.start.get() > cursor {
            out.push(gap(cursor, e.region.start.get()));
        }
        cursor = cursor.max(e.region.end.get());
    }
    if top > cursor {
        out.push(gap(cursor, top));
    }
    out
}

fn gap(start: u64, end: u64) -> Gap {
    Gap {
        start: VirtAddr(start),
        end: VirtAddr(end),
        size: end - start,
    }
}

/// One row of the summary by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindSummary {
    pub kind: Kind,
    pub size: u64,
    pub rss: u64,
    pub private: u64,
    pub shared: u64,
    pub dirty: u64,
    pub swap: u64,
    pub blocks: u64,
    pub largest: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub rows: Vec<KindSummary>,
    /// Usage summed over every region (the figures of /proc/PID/smaps_rollup).
    pub totals: Usage,
    pub largest_free: Option<Gap>,
}

/// Sums usage by kind over `regions`, with a Free row from `gaps`.
pub fn summarize(regions: &[Explained], gaps: &[Gap]) -> Summary {
    let mut totals = Usage::default();
    let mut rows: Vec<KindSummary> = Vec::new();
    for e in regions {
        let row = match rows.iter_mut().position(|r| r.kind == e.kind) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(empty(e.kind));
                rows.last_mut().expect("just pushed")
            }
        };
        let size = e.region.size();
        row.size += size;
        row.blocks += 1;
        row.largest = row.largest.max(size);
        if let Some(u) = &e.region.usage {
            row.rss += u.rss;
            row.private += u.private();
            row.shared += u.shared();
            row.dirty += u.dirty();
            row.swap += u.swap;
            totals += u;
        }
    }
    rows.sort_by_key(|r| r.kind);
    let largest_free = gaps.iter().max_by_key(|g| g.size).copied();
    if !gaps.is_empty() {
        let mut free = empty(Kind::Free);
        free.size = gaps.iter().map(|g| g.size).sum();
        free.blocks = gaps.len() as u64;
        free.largest = largest_free.map_or(0, |g| g.size);
        rows.push(free);
    }
    Summary {
        rows,
        totals,
        largest_free,
    }
}

fn empty(kind: Kind) -> KindSummary {
    KindSummary {
        kind,
        size: 0,
        rss: 0,
        private: 0,
        shared: 0,
        dirty: 0,
        swap: 0,
        blocks: 0,
        largest: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: u64, end: u64) -> Explained {
        Explained::anonymous(start, end)
    }

    fn spans(gaps: &[Gap]) -> Vec<(u64, u64)> {
        gaps.iter().map(|g| (g.start.get(), g.end.get())).collect()
    }

    const LINUX: UserSpace = UserSpace {
        start: VirtAddr(0x10000),
        end: VirtAddr(0x7fff_ffff_f000),
        extended_end: Some(VirtAddr(0xff_ffff_ffff_f000)),
    };

    #[test]
    fn linux_x86_64_ignores_vsyscall_and_widens_for_56_bit_mappings() {
        let map = [
            at(0x40_0000, 0x40_1000),
            at(0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000),
        ];
        assert_eq!(
            spans(&gaps(&map, LINUX)),
            [(0x10000, 0x40_0000), (0x40_1000, 0x7fff_ffff_f000)]
        );
        let high = [
            at(0x40_0000, 0x40_1000),
            at(0x1_0000_0000_0000, 0x1_0000_0000_1000),
        ];
        assert_eq!(
            spans(&gaps(&high, LINUX)),
            [
                (0x10000, 0x40_0000),
                (0x40_1000, 0x1_0000_0000_0000),
                (0x1_0000_0000_1000, 0xff_ffff_ffff_f000)
            ]
        );
    }

    #[test]
    fn windows_space_ends_below_the_last_64k() {
        let windows = UserSpace {
            start: VirtAddr(0x10000),
            end: VirtAddr(0x7fff_ffff_0000),
            extended_end: None,
        };
        let map = [at(0x7ff6_0000_0000, 0x7ff6_0001_0000)];
        assert_eq!(
            spans(&gaps(&map, windows)),
            [
                (0x10000, 0x7ff6_0000_0000),
                (0x7ff6_0001_0000, 0x7fff_ffff_0000)
            ]
        );
        assert_eq!(spans(&gaps(&[], windows)), [(0x10000, 0x7fff_ffff_0000)]);
    }
}
