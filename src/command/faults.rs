//! `faults [DURATION] [--major] [--by region|page|symbol] [--top N]`: page faults sampled with
//! their data address and pc, attributed to regions (kind and detail as `regions` says), to pages
//! and to code. Without perf events it falls back to the kernel's minflt/majflt counters and says
//! why per-region attribution is missing. [`CodeNamer`] (a pc to a symbol and source line) is
//! shared with `watch`.

use super::examine::describe_pointer;
use super::flags::Flags;
use super::watch::duration_arg;
use super::{Invocation, Output, Session, SymbolResolver};
use crate::addr::VirtAddr;
use crate::error::{Error, ParseError, Result};
use crate::regions::classify::{self, Explained};
use crate::regions::kind::Kind;
use crate::regions::{self, Region};
use crate::symbols::Detail;
use crate::target::{FaultSample, Target};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const SWITCHES: &[&str] = &["--major"];
pub const VALUED: &[&str] = &["--by", "--top"];

/// How often the live line is refreshed on a terminal.
const TICK: Duration = Duration::from_secs(1);
/// Where user space ends on every 64-bit architecture vmscope knows: a pc above is the kernel's.
const KERNEL_START: u64 = 0xffff_0000_0000_0000;

/// Names code addresses: symbol and source line through the session's symbols (`touch+59`,
/// `faulty.c:24`), else the module and offset (`libc.so.6+0x1f00`). Answers are cached by pc.
pub struct CodeNamer {
    regions: Vec<Region>,
    cache: HashMap<u64, (Option<String>, Option<String>)>,
}

impl CodeNamer {
    pub fn new(regions: Vec<Region>) -> CodeNamer {
        CodeNamer {
            regions,
            cache: HashMap::new(),
        }
    }

    /// `(symbol, file:line)` for `pc`.
    pub fn name(
        &mut self,
        target: &mut dyn Target,
        symbols: Option<&mut (dyn SymbolResolver + 'static)>,
        pc: VirtAddr,
    ) -> (Option<String>, Option<String>) {
        if let Some(done) = self.cache.get(&pc.get()) {
            return done.clone();
        }
        if pc.get() >= KERNEL_START {
            return (Some("[kernel]".into()), None);
        }
        if regions::find(&self.regions, pc).is_none()
            && let Ok(fresh) = target.regions()
        {
            self.regions = fresh;
        }
        let info = symbols.and_then(|s| s.lookup(target, &self.regions, pc, Detail::Source));
        let symbol = info
            .as_ref()
            .and_then(|i| i.short())
            .or_else(|| describe_pointer(&self.regions, pc));
        let location = info
            .as_ref()
            .and_then(|i| i.location.as_ref())
            .and_then(|l| Some(format!("{}:{}", l.file.as_deref()?, l.line?)));
        let named = (symbol, location);
        self.cache.insert(pc.get(), named.clone());
        named
    }
}

/// What `--by` puts first in the text (JSON always holds all three tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Region,
    Page,
    Symbol,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionFaults {
    pub start: VirtAddr,
    pub end: VirtAddr,
    pub kind: Option<Kind>,
    pub detail: String,
    pub minor: u64,
    pub major: u64,
    /// Distinct pages that faulted: pages first touched (or touched again after being dropped).
    pub pages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageFaults {
    pub page: VirtAddr,
    pub kind: Option<Kind>,
    pub detail: String,
    pub minor: u64,
    pub major: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeFaults {
    pub pc: VirtAddr,
    pub symbol: Option<String>,
    pub location: Option<String>,
    pub faults: u64,
}

/// The result of `faults`.
#[derive(Debug, Serialize)]
pub struct FaultsOut {
    pub pid: i32,
    pub duration_ms: u64,
    /// Faults sampled (each with its address and pc).
    pub samples: u64,
    /// Faults the kernel counted but that could not be recorded (ring buffer full).
    pub lost: u64,
    /// Faults the kernel counted in the run, by kind.
    pub minor: u64,
    pub major: u64,
    pub by_region: Vec<RegionFaults>,
    pub top_pages: Vec<PageFaults>,
    pub top_code: Vec<CodeFaults>,
    /// The process exited during the run.
    pub exited: bool,
    /// Set when perf events were unavailable: why, and that the counts come from /proc/PID/stat.
    pub fallback: Option<String>,
    #[serde(skip)]
    pub by: By,
    #[serde(skip)]
    pub major_only: bool,
}

/// The live line shown once a second on a terminal.
#[derive(Debug, Serialize)]
pub struct FaultsProgress {
    pub elapsed_ms: u64,
    pub samples: u64,
    pub major: u64,
    /// The region with the most faults so far, and how many.
    pub top: Option<(String, u64)>,
}

#[derive(Default, Clone, Copy)]
struct Count {
    minor: u64,
    major: u64,
}

impl Count {
    fn add(&mut self, s: &FaultSample) {
        if s.major {
            self.major += 1;
        } else {
            self.minor += 1;
        }
    }

    fn total(self) -> u64 {
        self.minor + self.major
    }
}

/// Samples folded by page and by pc.
#[derive(Default)]
struct Tally {
    pages: HashMap<u64, Count>,
    code: HashMap<u64, u64>,
    samples: u64,
    major: u64,
}

impl Tally {
    fn add(&mut self, batch: &[FaultSample], page: u64) {
        for s in batch {
            self.samples += 1;
            self.major += u64::from(s.major);
            self.pages
                .entry(s.addr.get() & !(page - 1))
                .or_default()
                .add(s);
            *self.code.entry(s.pc.get()).or_default() += 1;
        }
    }
}

fn index_at(explained: &[Explained], addr: u64) -> Option<usize> {
    let i = explained.partition_point(|e| e.region.end.get() <= addr);
    explained
        .get(i)
        .is_some_and(|e| e.region.contains(VirtAddr(addr)))
        .then_some(i)
}

fn explained_at(explained: &[Explained], addr: u64) -> Option<&Explained> {
    index_at(explained, addr).map(|i| &explained[i])
}

fn parse_by(inv: &Invocation<'_>, flags: &Flags<'_>) -> Result<By> {
    match flags.value(&["--by"]) {
        None | Some((_, "region")) => Ok(By::Region),
        Some((_, "page")) => Ok(By::Page),
        Some((_, "symbol" | "code")) => Ok(By::Symbol),
        Some((col, other)) => Err(inv.parse_error(
            ParseError::new(
                inv.args,
                col,
                format!("cannot group by `{other}`: region page symbol"),
            ),
            0,
        )),
    }
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, VALUED)?;
    let by = parse_by(inv, &flags)?;
    let top = flags.number(inv, &["--top"])?.unwrap_or(10) as usize;
    let major_only = flags.has("--major");
    let duration = match flags.positional.as_slice() {
        [] => None,
        [(col, text)] => Some(duration_arg(inv, *col, text)?),
        _ => return Err(inv.usage_error("faults takes one duration")),
    };
    let settings = session.settings;
    let live = !settings.json && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let Session {
        target,
        printer,
        symbols,
        ..
    } = session;
    let target = target.as_deref_mut().ok_or(Error::NoTarget)?;
    let pid = target.info().pid;
    let page = target.info().page_size;
    let regions = target.regions()?;
    let start_regions = classify::explain(target, regions)?;
    let started = Instant::now();
    let until = duration.map(|d| started + d);
    let mut tally = Tally::default();
    let mut last_line = started;
    let mut on_batch = |batch: &[FaultSample]| -> Result<()> {
        tally.add(batch, page);
        if live && last_line.elapsed() >= TICK.mul_f32(0.9) {
            last_line = Instant::now();
            let mut by_detail: HashMap<&str, u64> = HashMap::new();
            for (&p, c) in &tally.pages {
                if let Some(e) = explained_at(&start_regions, p) {
                    *by_detail.entry(e.detail.as_str()).or_default() += c.total();
                }
            }
            let top = by_detail
                .into_iter()
                .max_by_key(|&(_, n)| n)
                .map(|(d, n)| (d.to_string(), n));
            printer.emit(
                settings,
                &Output::FaultsProgress(FaultsProgress {
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    samples: tally.samples,
                    major: tally.major,
                    top,
                }),
            );
        }
        Ok(())
    };
    let totals = match target.sample_faults(major_only, until, TICK, &mut on_batch) {
        Ok(t) => t,
        Err(e @ (Error::Unsupported { .. } | Error::Permission { .. })) => {
            // Counting from the kernel's counters needs a live process: a core file or a
            // snapshot has none, so its own Unsupported error is the answer.
            if matches!(
                target.info().kind,
                crate::target::TargetKind::Core | crate::target::TargetKind::Snapshot
            ) {
                return Err(e);
            }
            return fallback(target, e.to_string(), until, by, major_only);
        }
        Err(e) => return Err(e),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let explained = if totals.exited {
        start_regions.clone()
    } else {
        match target.regions() {
            Ok(r) => classify::explain(target, r)?,
            Err(_) => start_regions.clone(),
        }
    };

    // By region.
    let mut rows: HashMap<Option<usize>, (Count, u64)> = HashMap::new();
    for (&p, c) in &tally.pages {
        let i = index_at(&explained, p);
        let row = rows.entry(i).or_default();
        row.0.minor += c.minor;
        row.0.major += c.major;
        row.1 += 1;
    }
    let mut by_region: Vec<RegionFaults> = rows
        .into_iter()
        .map(|(i, (c, pages))| match i {
            Some(i) => {
                let e = &explained[i];
                RegionFaults {
                    start: e.region.start,
                    end: e.region.end,
                    kind: Some(e.kind),
                    detail: e.detail.clone(),
                    minor: c.minor,
                    major: c.major,
                    pages,
                    bytes: pages * page,
                }
            }
            None => RegionFaults {
                start: VirtAddr(0),
                end: VirtAddr(0),
                kind: None,
                detail: "(unmapped since)".into(),
                minor: c.minor,
                major: c.major,
                pages,
                bytes: pages * page,
            },
        })
        .collect();
    by_region.sort_by_key(|r| (std::cmp::Reverse(r.minor + r.major), r.start));

    // Top pages.
    let mut pages: Vec<(u64, Count)> = tally.pages.iter().map(|(&p, &c)| (p, c)).collect();
    pages.sort_by_key(|&(p, c)| (std::cmp::Reverse(c.total()), p));
    pages.truncate(top);
    let top_pages = pages
        .into_iter()
        .map(|(p, c)| PageFaults {
            page: VirtAddr(p),
            kind: explained_at(&explained, p).map(|e| e.kind),
            detail: explained_at(&explained, p)
                .map(|e| e.detail.clone())
                .unwrap_or_else(|| "(unmapped since)".into()),
            minor: c.minor,
            major: c.major,
        })
        .collect();

    // Top code.
    let mut code: Vec<(u64, u64)> = tally.code.iter().map(|(&pc, &n)| (pc, n)).collect();
    code.sort_by_key(|&(pc, n)| (std::cmp::Reverse(n), pc));
    code.truncate(top);
    let mut namer = CodeNamer::new(explained.iter().map(|e| e.region.clone()).collect());
    let top_code = code
        .into_iter()
        .map(|(pc, faults)| {
            let (symbol, location) = namer.name(target, symbols.as_deref_mut(), VirtAddr(pc));
            CodeFaults {
                pc: VirtAddr(pc),
                symbol,
                location,
                faults,
            }
        })
        .collect();
    Ok(Output::Faults(FaultsOut {
        pid,
        duration_ms,
        samples: tally.samples,
        lost: totals.lost,
        minor: totals.minor,
        major: totals.major,
        by_region,
        top_pages,
        top_code,
        exited: totals.exited,
        fallback: None,
        by,
        major_only,
    }))
}

/// Without perf events: the kernel's own counters over the same time, and why there is no more.
fn fallback(
    target: &mut dyn Target,
    reason: String,
    until: Option<Instant>,
    by: By,
    major_only: bool,
) -> Result<Output> {
    let pid = target.info().pid;
    let started = Instant::now();
    let before = target.facts()?;
    while crate::interrupt::check().is_ok() && until.is_none_or(|u| Instant::now() < u) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = target.facts()?;
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    let minor = delta(before.minflt, after.minflt);
    let major = delta(before.majflt, after.majflt);
    Ok(Output::Faults(FaultsOut {
        pid,
        duration_ms: started.elapsed().as_millis() as u64,
        samples: 0,
        lost: 0,
        minor: if major_only { 0 } else { minor },
        major,
        by_region: Vec::new(),
        top_pages: Vec::new(),
        top_code: Vec::new(),
        exited: false,
        fallback: Some(format!(
            "per-region attribution is unavailable: {reason}; the counts are the deltas of \
             /proc/{pid}/stat minflt and majflt"
        )),
        by,
        major_only,
    }))
}
