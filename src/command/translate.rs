//! `translate`: virtual to physical. One address gets its page explained: page base and offset,
//! page size, frame number and physical address, every page-table bit, the frame's kernel flags by
//! name and map count, the region and kind it lies in, and what its state means. A range
//! (`translate EXPR LEN`, `translate [heap]`, `translate --region EXPR`) gets a table of its pages
//! with runs of identical state folded, and counts: present, swapped, file, zero page, huge, not
//! present, resident bytes.

use super::flags::Flags;
use super::{Invocation, Output, Session};
use crate::addr::{PhysAddr, VirtAddr};
use crate::error::{Error, Result};
use crate::pages::{self, PageEntry, PageScan, PageState, ScanMethod, StateRun, Summary};
use crate::regions::Region;
use crate::regions::classify::{self, Explained};
use crate::regions::kind::Kind;
use crate::target::Target;
use serde::{Serialize, Serializer};
use std::ops::Range;

pub const SWITCHES: &[&str] = &[];
pub const VALUED: &[&str] = &["--region", "--limit", "--pid"];

/// Rows (and per-page entries) shown by default.
pub const DEFAULT_LIMIT: u64 = 64;
/// Page entries read per step while the table is built.
const ENTRY_BATCH: u64 = 4096;

/// Frame numbers as `"0x..."` strings, `null` when hidden or absent.
pub fn hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:#x}")),
        None => s.serialize_none(),
    }
}

/// The region a page or row lies in.
#[derive(Debug, Clone, Serialize)]
pub struct RegionRef {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub perms: String,
    pub kind: Kind,
    pub detail: String,
    /// The region's page size (KernelPageSize: larger for hugetlb).
    pub page_size: u64,
}

impl RegionRef {
    pub fn of(e: &Explained, base_page: u64) -> RegionRef {
        RegionRef {
            start: e.region.start,
            end: e.region.end,
            perms: e.region.perms.to_string(),
            kind: e.kind,
            detail: e.detail.clone(),
            page_size: region_page_size(&e.region, base_page),
        }
    }
}

/// KernelPageSize when known, else the base page.
pub fn region_page_size(r: &Region, base_page: u64) -> u64 {
    r.usage
        .as_ref()
        .map(|u| u.kernel_page_size)
        .filter(|&s| s >= base_page)
        .unwrap_or(base_page)
}

/// One page, as the table and JSON show it.
#[derive(Debug, Clone, Serialize)]
pub struct PageOut {
    pub vaddr: VirtAddr,
    pub page_base: VirtAddr,
    pub offset: u64,
    #[serde(serialize_with = "hex_opt")]
    pub pfn: Option<u64>,
    pub paddr: Option<PhysAddr>,
    pub present: bool,
    pub swapped: bool,
    pub swap_type: Option<u64>,
    #[serde(serialize_with = "hex_opt")]
    pub swap_offset: Option<u64>,
    pub exclusive: bool,
    pub file_shared: bool,
    pub soft_dirty: bool,
    pub uffd_wp: bool,
    pub guard: bool,
    pub zero: bool,
    pub huge: bool,
    pub page_size: u64,
    /// The frame's /proc/kpageflags by name; null when hidden or not present.
    pub kpageflags: Option<Vec<String>>,
    /// How many page tables map the frame (/proc/kpagecount).
    pub mapcount: Option<u64>,
}

/// A folded row of the range table: consecutive pages in the same state (and, when frame
/// numbers are visible, physically contiguous or consecutive in swap).
#[derive(Debug, Clone, Serialize)]
pub struct RunOut {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub pages: u64,
    /// `present`, `present file`, `zero page`, `swapped`, `guard`, `not present`, `unmapped`.
    pub state: String,
    pub exclusive: bool,
    /// The first page's frame and physical address.
    #[serde(serialize_with = "hex_opt")]
    pub pfn: Option<u64>,
    pub paddr: Option<PhysAddr>,
    /// Whether the frames (or swap slots) follow each other.
    pub contiguous: bool,
    pub swap_type: Option<u64>,
    #[serde(serialize_with = "hex_opt")]
    pub swap_offset: Option<u64>,
    /// Index into `regions`; null for unmapped rows.
    pub region: Option<usize>,
    #[serde(skip)]
    pub key: PageState,
}

#[derive(Debug, Serialize)]
pub struct TranslateOut {
    pub pid: i32,
    /// The address asked about, for a single page; null for a range.
    pub address: Option<VirtAddr>,
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub pages: Vec<PageOut>,
    pub runs: Vec<RunOut>,
    /// The table stopped at `--limit` rows before the end of the range (the summary still
    /// counts every page).
    pub truncated: bool,
    pub summary: Summary,
    pub pfn_visible: bool,
    pub method: ScanMethod,
    pub regions: Vec<RegionRef>,
    /// For a single page: what its state means, in one line.
    pub meaning: Option<String>,
    pub base_page: u64,
    #[serde(skip)]
    pub limit: u64,
}

/// What the arguments asked for.
#[derive(Debug, Clone)]
pub enum Request {
    /// One address.
    Page(VirtAddr),
    /// A range (page-aligned outward).
    Range(Range<VirtAddr>),
    /// The whole region holding this address.
    Region(VirtAddr),
}

/// `[name]` alone: a region by name, meant whole.
fn is_region_name(word: &str) -> bool {
    word.starts_with('[') && word.ends_with(']') && word.len() > 2
}

/// Parses `EXPR`, `EXPR LEN`, `[name]` or `--region EXPR` from `words` (positional, with
/// columns); `what` names the command in errors.
pub fn parse_request(
    session: &mut Session,
    inv: &Invocation<'_>,
    flags: &Flags<'_>,
    words: &[(usize, &str)],
    optional: bool,
) -> Result<Option<Request>> {
    let region = match flags.value(&["--region"]) {
        Some((col, e)) => Some(VirtAddr(session.eval(inv, e, col)?)),
        None => None,
    };
    match (region, words) {
        (Some(addr), []) => Ok(Some(Request::Region(addr))),
        (Some(_), _) => Err(inv.usage_error("give either --region EXPR or an address, not both")),
        (None, []) if optional => Ok(None),
        (None, []) => Err(inv.usage_error("an address, a range or a region is needed")),
        (None, [(col, w)]) => {
            let addr = VirtAddr(session.eval(inv, w, *col)?);
            Ok(Some(if is_region_name(w) {
                Request::Region(addr)
            } else {
                Request::Page(addr)
            }))
        }
        (None, [(c1, w1), (c2, w2)]) => {
            let start = session.eval(inv, w1, *c1)?;
            let len = session.eval(inv, w2, *c2)?;
            if len == 0 {
                return Err(inv.usage_error("the length must be more than zero"));
            }
            let end = start.checked_add(len).ok_or_else(|| {
                Error::usage(format!(
                    "{start:#x} + {len:#x} runs past the end of the address space"
                ))
            })?;
            Ok(Some(Request::Range(VirtAddr(start)..VirtAddr(end))))
        }
        (None, [_, _, (_, extra), ..]) => Err(inv.usage_error(format!("unexpected `{extra}`"))),
    }
}

/// The page-aligned range a request covers, given the target's regions.
pub fn request_range(req: &Request, regions: &[Region], page: u64) -> Result<Range<VirtAddr>> {
    match req {
        Request::Page(a) => Ok(a.page_down(page)..VirtAddr(a.page_down(page).get() + page)),
        Request::Region(a) => crate::regions::find(regions, *a)
            .map(|r| r.start..r.end)
            .ok_or_else(|| not_mapped(*a)),
        Request::Range(r) => {
            let start = r.start.page_down(page);
            let end = r
                .end
                .get()
                .checked_add(page - 1)
                .map(|e| VirtAddr(e).page_down(page))
                .ok_or_else(|| {
                    Error::usage(format!("{} runs past the end of the address space", r.end))
                })?;
            if !regions.iter().any(|g| g.start < end && start < g.end) {
                return Err(Error::usage(format!(
                    "nothing is mapped in {start}-{end} (see `regions`)"
                )));
            }
            Ok(start..end)
        }
    }
}

pub fn not_mapped(a: VirtAddr) -> Error {
    Error::usage(format!(
        "{a} is not mapped: no region contains it (see `regions {a}`)"
    ))
}

/// The mapped parts of `range`, sorted.
pub fn mapped_parts(regions: &[Region], range: &Range<VirtAddr>) -> Vec<Range<VirtAddr>> {
    regions
        .iter()
        .filter(|r| r.start < range.end && range.start < r.end)
        .map(|r| r.start.max(range.start)..r.end.min(range.end))
        .collect()
}

/// The target a command looks at: the session's, or another process attached for the command.
pub enum Subject<'s> {
    Session(&'s mut dyn Target),
    Other(Box<dyn Target>),
}

impl Subject<'_> {
    pub fn get(&mut self) -> &mut dyn Target {
        match self {
            Subject::Session(t) => &mut **t,
            Subject::Other(t) => t.as_mut(),
        }
    }
}

/// Regions with usage when the backend has it (for KernelPageSize), else plain.
pub fn regions_for_pages(target: &mut dyn Target) -> Result<Vec<Region>> {
    match target.regions_with_usage() {
        Err(Error::Unsupported { .. }) => target.regions(),
        other => other,
    }
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, VALUED)?;
    let limit = flags.number(inv, &["--limit"])?.unwrap_or(DEFAULT_LIMIT);
    let pid = match flags.value(&["--pid"]) {
        Some((col, e)) => {
            let v = session.eval(inv, e, col)?;
            Some(i32::try_from(v).map_err(|_| inv.usage_error(format!("{v} is not a pid")))?)
        }
        None => None,
    };
    let req = parse_request(session, inv, &flags, &flags.positional, false)?
        .expect("a request is required");
    let mut subject = match pid {
        Some(pid) => Subject::Other(crate::target::attach(pid)?),
        None => Subject::Session(session.target()?),
    };
    translate(subject.get(), &req, limit).map(Output::Translate)
}

/// Runs a translate request against `target`.
pub fn translate(target: &mut dyn Target, req: &Request, limit: u64) -> Result<TranslateOut> {
    let base = target.info().page_size;
    let pid = target.info().pid;
    let regions = regions_for_pages(target)?;
    let range = request_range(req, &regions, base)?;
    if let Request::Page(a) = req
        && crate::regions::find(&regions, *a).is_none()
    {
        return Err(not_mapped(*a));
    }
    let scan = target.pages(range.clone())?;
    crate::interrupt::check()?;
    let mapped = mapped_parts(&regions, &range);
    let range_pages = range.end.offset_from(range.start) / base;
    let summary = Summary::count(&scan.runs, &mapped, range_pages, base);
    let explained = classify::explain(target, regions)?;
    let mut out = TranslateOut {
        pid,
        address: None,
        start: range.start,
        end: range.end,
        pages: Vec::new(),
        runs: Vec::new(),
        truncated: false,
        summary,
        pfn_visible: scan.pfn_visible,
        method: scan.method,
        regions: Vec::new(),
        meaning: None,
        base_page: base,
        limit,
    };
    match req {
        Request::Page(addr) => single(target, &explained, &scan, *addr, &mut out)?,
        _ => table(target, &explained, &scan, &range, limit, &mut out)?,
    }
    Ok(out)
}

/// Looks up kpageflags and map counts for the present pages of `pages`, when frames are visible.
fn add_frames(target: &mut dyn Target, pages: &mut [PageOut]) -> Result<()> {
    let pfns: Vec<u64> = pages.iter().filter_map(|p| p.pfn).collect();
    if pfns.is_empty() {
        return Ok(());
    }
    let frames = target.frames(&pfns)?;
    let mut it = frames.into_iter();
    for p in pages.iter_mut().filter(|p| p.pfn.is_some()) {
        let Some(f) = it.next() else { break };
        if let Some(flags) = f.flags {
            p.kpageflags = Some(flags.names());
            p.zero |= flags.has(pages::KPageFlags::ZERO_PAGE);
            p.huge |= flags.has(pages::KPageFlags::THP) || flags.has(pages::KPageFlags::HUGE);
        }
        p.mapcount = f.mapcount;
    }
    Ok(())
}

fn page_out(
    e: &PageEntry,
    vaddr: VirtAddr,
    page_size: u64,
    base: u64,
    state: PageState,
) -> PageOut {
    let page_base = vaddr.page_down(page_size);
    PageOut {
        vaddr,
        page_base,
        offset: vaddr.offset_from(page_base),
        pfn: e.pfn,
        paddr: e.pfn.map(|pfn| pages::phys_addr(pfn, vaddr, base)),
        present: e.present,
        swapped: e.swapped,
        swap_type: e.swap_type,
        swap_offset: e.swap_offset,
        exclusive: e.exclusive,
        file_shared: e.file_shared,
        soft_dirty: e.soft_dirty,
        uffd_wp: e.uffd_wp,
        guard: e.guard,
        zero: state.has(PageState::ZERO),
        huge: state.has(PageState::HUGE),
        page_size,
        kpageflags: None,
        mapcount: None,
    }
}

/// The state the scan gave the page at `a` (empty when no run covers it).
fn state_at(runs: &[StateRun], a: VirtAddr) -> PageState {
    let i = runs.partition_point(|r| r.end <= a);
    runs.get(i)
        .filter(|r| r.start <= a)
        .map_or(PageState::default(), |r| r.state)
}

fn single(
    target: &mut dyn Target,
    explained: &[Explained],
    scan: &PageScan,
    addr: VirtAddr,
    out: &mut TranslateOut,
) -> Result<()> {
    let base = out.base_page;
    let i = explained
        .iter()
        .position(|e| e.region.contains(addr))
        .ok_or_else(|| not_mapped(addr))?;
    let e = &explained[i];
    let page_size = region_page_size(&e.region, base);
    let entries = target.page_entries(addr.page_down(base), 1)?;
    let entry = entries.entries.first().copied().unwrap_or_default();
    let state = state_at(&scan.runs, addr.page_down(base));
    let mut page = page_out(&entry, addr, page_size, base, state);
    add_frames(target, std::slice::from_mut(&mut page))?;
    out.pfn_visible = entries.pfn_visible;
    out.address = Some(addr);
    out.meaning = Some(pages::meaning(
        &entry,
        page.zero,
        page.huge,
        e.region.backing.path().is_some(),
        e.region.perms.shared,
    ));
    out.regions.push(RegionRef::of(e, base));
    out.runs.push(RunOut {
        start: out.start,
        end: out.end,
        pages: 1,
        state: entry.state(page.zero, page.huge).describe(),
        exclusive: entry.exclusive,
        pfn: page.pfn,
        paddr: page.pfn.map(|p| pages::phys_addr(p, out.start, base)),
        contiguous: true,
        swap_type: entry.swap_type,
        swap_offset: entry.swap_offset,
        region: Some(0),
        key: entry.state(page.zero, page.huge),
    });
    out.pages.push(page);
    Ok(())
}

/// Builds the folded table (at most `limit` rows) and the per-page entries of populated pages
/// (at most `limit`), reading page-table entries only for populated runs.
fn table(
    target: &mut dyn Target,
    explained: &[Explained],
    scan: &PageScan,
    range: &Range<VirtAddr>,
    limit: u64,
    out: &mut TranslateOut,
) -> Result<()> {
    let base = out.base_page;
    let limit = limit as usize;
    let mut builder = Rows {
        rows: Vec::new(),
        limit,
        base,
    };
    let mut at = range.start;
    for e in explained
        .iter()
        .filter(|e| e.region.start < range.end && range.start < e.region.end)
    {
        crate::interrupt::check()?;
        if builder.full() {
            break;
        }
        let lo = e.region.start.max(range.start);
        let hi = e.region.end.min(range.end);
        if at < lo {
            builder.gap(at, lo);
        }
        let ri = out.regions.len();
        out.regions.push(RegionRef::of(e, base));
        let page_size = region_page_size(&e.region, base);
        let first = scan.runs.partition_point(|r| r.end <= lo);
        let mut cursor = lo;
        for run in scan.runs[first..].iter().take_while(|r| r.start < hi) {
            if builder.full() {
                break;
            }
            let (s, t) = (run.start.max(lo), run.end.min(hi));
            if cursor < s {
                builder.empty(cursor, s, ri);
            }
            // Read the entries of this populated run, in batches, until the table is full.
            let mut p = s;
            while p < t && !builder.full() {
                crate::interrupt::check()?;
                let n = (t.offset_from(p) / base).min(ENTRY_BATCH);
                let entries = target.page_entries(p, n as usize)?;
                out.pfn_visible &= entries.pfn_visible;
                for (k, entry) in entries.entries.iter().enumerate() {
                    let v = entries.vaddr(k);
                    // The scan is the authority on state (zero, huge); the entry adds frames.
                    let state = run.state;
                    if !builder.page(v, entry, state, ri) {
                        break;
                    }
                    if out.pages.len() < limit {
                        out.pages.push(page_out(entry, v, page_size, base, state));
                    }
                }
                p = VirtAddr(p.get() + n * base);
            }
            cursor = t;
        }
        if cursor < hi && !builder.full() {
            builder.empty(cursor, hi, ri);
        }
        at = hi;
    }
    if at < range.end && !builder.full() {
        builder.gap(at, range.end);
    }
    let Rows { mut rows, .. } = builder;
    // The row that would have started past the limit tells us the table is cut short.
    out.truncated = rows.len() > limit || rows.last().is_some_and(|r| r.end < range.end);
    rows.truncate(limit);
    out.runs = rows;
    add_frames(target, &mut out.pages)?;
    Ok(())
}

/// Folds pages into rows; holds one row more than the limit to learn that the table was cut.
struct Rows {
    rows: Vec<RunOut>,
    limit: usize,
    base: u64,
}

impl Rows {
    fn full(&self) -> bool {
        self.rows.len() > self.limit
    }

    fn push(&mut self, row: RunOut) {
        if !self.full() {
            self.rows.push(row);
        }
    }

    fn plain(
        start: VirtAddr,
        end: VirtAddr,
        state: &str,
        region: Option<usize>,
        base: u64,
    ) -> RunOut {
        RunOut {
            start,
            end,
            pages: end.offset_from(start) / base,
            state: state.into(),
            exclusive: false,
            pfn: None,
            paddr: None,
            contiguous: false,
            swap_type: None,
            swap_offset: None,
            region,
            key: PageState::default(),
        }
    }

    fn gap(&mut self, start: VirtAddr, end: VirtAddr) {
        let row = Self::plain(start, end, "unmapped", None, self.base);
        self.push(row);
    }

    fn empty(&mut self, start: VirtAddr, end: VirtAddr, region: usize) {
        let row = Self::plain(start, end, "not present", Some(region), self.base);
        self.push(row);
    }

    /// Adds one populated page; false once the table is full.
    fn page(&mut self, v: VirtAddr, e: &PageEntry, state: PageState, region: usize) -> bool {
        let base = self.base;
        if let Some(last) = self.rows.last_mut()
            && last.end == v
            && last.region == Some(region)
            && last.key == state
            && !last.key.is_empty()
            && last.exclusive == e.exclusive
            && follows(last, e)
        {
            last.end = VirtAddr(v.get() + base);
            last.pages += 1;
            return true;
        }
        if self.full() {
            return false;
        }
        self.rows.push(RunOut {
            start: v,
            end: VirtAddr(v.get() + base),
            pages: 1,
            state: state.describe(),
            exclusive: e.exclusive,
            pfn: e.pfn,
            paddr: e.pfn.map(|p| pages::phys_addr(p, v, base)),
            contiguous: !state.has(PageState::ZERO) && (e.pfn.is_some() || e.swap_offset.is_some()),
            swap_type: e.swap_type,
            swap_offset: e.swap_offset,
            region: Some(region),
            key: state,
        });
        !self.full()
    }
}

/// Whether page `e` continues row `last`: with frames visible, the next frame (or the next swap
/// slot of the same swap area); with frames hidden, any page in the same state. The zero page
/// repeats one frame, so zero-page rows fold regardless.
fn follows(last: &RunOut, e: &PageEntry) -> bool {
    let n = last.pages;
    if last.key.has(PageState::ZERO) {
        return true;
    }
    match (last.pfn, e.pfn, last.swap_offset, e.swap_offset) {
        (Some(a), Some(b), _, _) => a + n == b,
        (None, None, Some(a), Some(b)) => last.swap_type == e.swap_type && a + n == b,
        (None, None, None, None) => true,
        _ => false,
    }
}
