//! `shared PID2 [RANGE]`: the physical frames this process and another one both map, per pair of
//! regions, found by comparing frame numbers from both page tables. After fork the two share every
//! page neither has written, copy-on-write; a page one of them wrote shows at the same virtual
//! address with a different frame in each ("diverged"). Needs frame numbers (CAP_SYS_ADMIN).

use super::flags::Flags;
use super::translate::{self, Request, hex_opt};
use super::{Invocation, Output, Session};
use crate::addr::VirtAddr;
use crate::error::{Error, Result};
use crate::pages::PageState;
use crate::regions::classify::{self, Explained};
use crate::regions::kind::Kind;
use crate::target::Target;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

pub const SWITCHES: &[&str] = &["--pages"];
pub const VALUED: &[&str] = &["--region", "--limit"];

/// Entries read per batch.
const BATCH: u64 = 4096;

/// A pair of regions, one in each process, and the frames they share.
#[derive(Debug, Clone, Serialize)]
pub struct SharedRegion {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub kind: Kind,
    pub detail: String,
    pub pid2_start: VirtAddr,
    pub pid2_end: VirtAddr,
    pub pid2_detail: String,
    pub shared_pages: u64,
    pub shared_bytes: u64,
    /// Pages present at the same virtual address in both processes, on different frames.
    pub diverged_pages: u64,
}

/// One page of `--pages`: shared (one frame, maybe at two addresses) or diverged (one address,
/// two frames).
#[derive(Debug, Clone, Serialize)]
pub struct SharedPage {
    pub vaddr: VirtAddr,
    pub pid2_vaddr: VirtAddr,
    #[serde(serialize_with = "hex_opt")]
    pub pfn: Option<u64>,
    #[serde(serialize_with = "hex_opt")]
    pub pid2_pfn: Option<u64>,
    pub same_frame: bool,
}

#[derive(Debug, Serialize)]
pub struct SharedOut {
    pub pid: i32,
    pub pid2: i32,
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub regions: Vec<SharedRegion>,
    pub total_shared_pages: u64,
    pub total_shared_bytes: u64,
    pub total_diverged_pages: u64,
    /// With `--pages`: shared and diverged pages, at most `--limit`.
    pub pages: Vec<SharedPage>,
    pub pages_truncated: bool,
    pub base_page: u64,
    #[serde(skip)]
    pub show_pages: bool,
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, VALUED)?;
    let limit = flags
        .number(inv, &["--limit"])?
        .unwrap_or(translate::DEFAULT_LIMIT);
    let Some(&(col, word)) = flags.positional.first() else {
        return Err(inv.usage_error("shared needs the other process's pid"));
    };
    let v = session.eval(inv, word, col)?;
    let pid2 = i32::try_from(v)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| inv.usage_error(format!("{v} is not a pid")))?;
    let req = translate::parse_request(session, inv, &flags, &flags.positional[1..], true)?;
    let mut other = crate::target::attach(pid2)?;
    let target = session.target()?;
    let out = shared(
        target,
        other.as_mut(),
        req.as_ref(),
        flags.has("--pages"),
        limit,
    )?;
    Ok(Output::Shared(out))
}

/// Present pages (not the zero page) of `range` with their frames, in address order.
fn frames_of(target: &mut dyn Target, range: Range<VirtAddr>) -> Result<Vec<(VirtAddr, u64)>> {
    let base = target.info().page_size;
    let scan = target.pages(range)?;
    if !scan.pfn_visible {
        return Err(hidden());
    }
    let mut out = Vec::new();
    for run in &scan.runs {
        let st = run.state;
        if !st.has(PageState::PRESENT) || st.has(PageState::ZERO) {
            continue;
        }
        let mut p = run.start;
        while p < run.end {
            crate::interrupt::check()?;
            let n = (run.end.offset_from(p) / base).min(BATCH);
            let entries = target.page_entries(p, n as usize)?;
            if !entries.pfn_visible {
                return Err(hidden());
            }
            for (k, e) in entries.entries.iter().enumerate() {
                if let (true, Some(pfn)) = (e.present, e.pfn) {
                    out.push((entries.vaddr(k), pfn));
                }
            }
            p = VirtAddr(p.get() + n * base);
        }
    }
    Ok(out)
}

fn hidden() -> Error {
    Error::Permission {
        what: "comparing the physical frames of two processes".into(),
        fix: "run vmscope as root or with CAP_SYS_ADMIN: without it the kernel hides frame \
              numbers"
            .into(),
    }
}

fn whole(regions: &[crate::regions::Region]) -> Option<Range<VirtAddr>> {
    Some(regions.first()?.start..regions.last()?.end)
}

fn index_of(explained: &[Explained], a: VirtAddr) -> Option<usize> {
    let i = explained.partition_point(|e| e.region.end <= a);
    explained.get(i).filter(|e| e.region.contains(a)).map(|_| i)
}

/// Compares the frames of `target` (within the request, or everywhere) with those of `other`.
pub fn shared(
    target: &mut dyn Target,
    other: &mut dyn Target,
    req: Option<&Request>,
    show_pages: bool,
    limit: u64,
) -> Result<SharedOut> {
    let base = target.info().page_size;
    let regions = target.regions()?;
    let range = match req {
        Some(r) => translate::request_range(r, &regions, base)?,
        None => whole(&regions).ok_or_else(|| Error::usage("the process maps nothing"))?,
    };
    let mine = frames_of(target, range.clone())?;
    let theirs_regions = other.regions()?;
    let theirs = match whole(&theirs_regions) {
        Some(r) => frames_of(other, r)?,
        None => Vec::new(),
    };
    let a = classify::explain(target, regions)?;
    let b = classify::explain(other, theirs_regions)?;

    let mut by_pfn: HashMap<u64, VirtAddr> = HashMap::with_capacity(theirs.len());
    for &(v, pfn) in &theirs {
        by_pfn.entry(pfn).or_insert(v);
    }
    let at = |v: VirtAddr| -> Option<u64> {
        theirs
            .binary_search_by_key(&v, |&(va, _)| va)
            .ok()
            .map(|i| theirs[i].1)
    };
    #[derive(Default)]
    struct Counts {
        shared: u64,
        diverged: u64,
    }
    let mut pairs: BTreeMap<(usize, usize), Counts> = BTreeMap::new();
    let mut pages = Vec::new();
    let mut pages_truncated = false;
    for &(v, pfn) in &mine {
        let (v2, pfn2, same) = match by_pfn.get(&pfn) {
            Some(&v2) => (v2, pfn, true),
            None => match at(v) {
                Some(pfn2) => (v, pfn2, false),
                None => continue,
            },
        };
        let (Some(ia), Some(ib)) = (index_of(&a, v), index_of(&b, v2)) else {
            continue;
        };
        let c = pairs.entry((ia, ib)).or_default();
        if same {
            c.shared += 1;
        } else {
            c.diverged += 1;
        }
        if show_pages {
            if (pages.len() as u64) < limit {
                pages.push(SharedPage {
                    vaddr: v,
                    pid2_vaddr: v2,
                    pfn: Some(pfn),
                    pid2_pfn: Some(pfn2),
                    same_frame: same,
                });
            } else {
                pages_truncated = true;
            }
        }
    }
    let rows: Vec<SharedRegion> = pairs
        .into_iter()
        .map(|((ia, ib), c)| SharedRegion {
            start: a[ia].region.start,
            end: a[ia].region.end,
            kind: a[ia].kind,
            detail: a[ia].detail.clone(),
            pid2_start: b[ib].region.start,
            pid2_end: b[ib].region.end,
            pid2_detail: b[ib].detail.clone(),
            shared_pages: c.shared,
            shared_bytes: c.shared * base,
            diverged_pages: c.diverged,
        })
        .collect();
    let total_shared_pages = rows.iter().map(|r| r.shared_pages).sum();
    Ok(SharedOut {
        pid: target.info().pid,
        pid2: other.info().pid,
        start: range.start,
        end: range.end,
        total_shared_bytes: total_shared_pages * base,
        total_shared_pages,
        total_diverged_pages: rows.iter().map(|r| r.diverged_pages).sum(),
        regions: rows,
        pages,
        pages_truncated,
        base_page: base,
        show_pages,
    })
}
