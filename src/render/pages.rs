//! `translate` and `shared` as text: one page explained field by field, a range as a table of
//! folded runs with the counts under it, and the frames two processes share per region pair.

use super::escape::escape_str;
use super::style::{Paint, Style};
use super::units::human;
use crate::command::shared::SharedOut;
use crate::command::translate::{PageOut, RegionRef, RunOut, TranslateOut};
use crate::pages::ScanMethod;
use crate::regions::kind::Kind;
use std::io::{self, Write};

const HIDDEN: &str = "frame numbers hidden: the kernel shows them only to CAP_SYS_ADMIN \
                      (run vmscope as root); the other bits are real";

fn paint_of(kind: Kind) -> Paint {
    match kind {
        Kind::Stack => Paint::Stack,
        Kind::Heap => Paint::Heap,
        Kind::Image => Paint::Data,
        Kind::File => Paint::File,
        Kind::Shared => Paint::Shared,
        Kind::Guard | Kind::Free | Kind::System => Paint::Dim,
        Kind::Private => Paint::Plain,
    }
}

fn region_line(r: &RegionRef, style: Style) -> String {
    let detail = escape_str(&r.detail);
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(" {detail}")
    };
    style.paint(
        paint_of(r.kind),
        format!("{}-{} {} {}{}", r.start, r.end, r.perms, r.kind, detail),
    )
}

/// `1 page`, `7 pages`.
fn pages(n: u64) -> String {
    if n == 1 {
        "1 page".into()
    } else {
        format!("{n} pages")
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub fn translate(t: &TranslateOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    match (t.address, t.pages.first()) {
        (Some(addr), Some(p)) => single(t, addr, p, style, w),
        _ => range(t, style, w),
    }
}

fn single(
    t: &TranslateOut,
    addr: crate::addr::VirtAddr,
    p: &PageOut,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    let label = |s: &str| style.heading(format!("{s:<11}"));
    writeln!(w, "{} {}", label("virtual"), style.addr(addr))?;
    if let Some(r) = t.regions.first() {
        writeln!(w, "{} {}", label("region"), region_line(r, style))?;
    }
    let huge = if p.page_size > t.base_page {
        " (huge page)"
    } else {
        ""
    };
    writeln!(
        w,
        "{} {} + {:#x} (page size {}{huge})",
        label("page"),
        style.addr(p.page_base),
        p.offset,
        human(p.page_size),
    )?;
    let frame = match (p.pfn, p.paddr) {
        (Some(pfn), Some(paddr)) => {
            format!("PFN {pfn:#x} -> physical address {}", style.addr(paddr))
        }
        _ if p.present && !t.pfn_visible => style.warn(HIDDEN),
        _ if p.swapped && !t.pfn_visible => {
            style.warn("in swap; where is hidden without CAP_SYS_ADMIN (run vmscope as root)")
        }
        _ if p.swapped => format!(
            "in swap: area {} offset {:#x}",
            p.swap_type.unwrap_or(0),
            p.swap_offset.unwrap_or(0)
        ),
        _ => "none".to_string(),
    };
    writeln!(w, "{} {frame}", label("frame"))?;
    writeln!(
        w,
        "{} present {}, swapped {}, exclusive {}, file/shared-anon {}, soft-dirty {}, \
         uffd-wp {}, guard {}",
        label("pagemap"),
        yes(p.present),
        yes(p.swapped),
        yes(p.exclusive),
        yes(p.file_shared),
        yes(p.soft_dirty),
        yes(p.uffd_wp),
        yes(p.guard),
    )?;
    if p.zero || p.huge {
        let mut what = Vec::new();
        if p.zero {
            what.push("the shared zero page");
        }
        if p.huge {
            what.push("part of a huge page");
        }
        writeln!(w, "{} {}", label("also"), what.join(", "))?;
    }
    if let Some(flags) = &p.kpageflags {
        let text = if flags.is_empty() {
            "(none)".to_string()
        } else {
            flags.join(" ")
        };
        writeln!(w, "{} {text}", label("kpageflags"))?;
    }
    if let Some(n) = p.mapcount {
        let how = match n {
            0 => "mapped by no page table (the zero page and kernel pages are not counted)"
                .to_string(),
            1 => "mapped by 1 page table: private to this process".to_string(),
            n => format!("mapped by {n} page tables: shared"),
        };
        writeln!(w, "{} {how}", label("map count"))?;
    }
    if let Some(m) = &t.meaning {
        writeln!(w, "{} {m}", label("meaning"))?;
    }
    Ok(())
}

fn row_text(r: &RunOut, t: &TranslateOut) -> String {
    let last = r.end.get().saturating_sub(1);
    let mut s = format!(
        "{:#x}-{:#x} {:>7} page{} {}",
        r.start.get(),
        last,
        r.pages,
        if r.pages == 1 { " " } else { "s" },
        r.state
    );
    if r.exclusive {
        s.push_str(", exclusive");
    }
    let present = r.state.starts_with("present") || r.state.starts_with("zero");
    match (r.pfn, r.paddr) {
        (Some(pfn), _) if r.state.starts_with("zero") => {
            s.push_str(&format!(", all on frame {pfn:#x}"))
        }
        (Some(_), Some(paddr)) if r.pages > 1 && r.contiguous => {
            s.push_str(&format!(", physically contiguous from {paddr}"))
        }
        (Some(pfn), Some(paddr)) => s.push_str(&format!(", frame {pfn:#x} at {paddr}")),
        _ if present && !t.pfn_visible => s.push_str(", frame hidden"),
        _ => {}
    }
    if let (Some(ty), Some(off)) = (r.swap_type, r.swap_offset) {
        s.push_str(&format!(", swap area {ty} from offset {off:#x}"));
    }
    s
}

fn range(t: &TranslateOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let span = t.end.offset_from(t.start);
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{}-{} ({}, {} of {}) in process {}",
            t.start,
            t.end,
            human(span),
            pages(span / t.base_page),
            human(t.base_page),
            t.pid
        ))
    )?;
    let mut region = None;
    for r in &t.runs {
        if r.region != region {
            region = r.region;
            if let Some(reg) = r.region.and_then(|i| t.regions.get(i)) {
                writeln!(w, "{}", region_line(reg, style))?;
            }
        }
        let text = format!("  {}", row_text(r, t));
        let text = if r.state == "unmapped" || r.state == "not present" {
            style.dim(text)
        } else {
            text
        };
        writeln!(w, "{text}")?;
    }
    if t.truncated {
        writeln!(
            w,
            "  {}",
            style.dim(format!(
                "... the table stops at {} rows (--limit N for more); the counts below cover the \
                 whole range",
                t.limit
            ))
        )?;
    }
    let s = &t.summary;
    writeln!(
        w,
        "{} {} mapped: {} present ({} zero page, {} file, {} huge), {} swapped, {} not \
         present, {} guard; {} unmapped",
        style.heading("summary:"),
        pages(s.pages),
        s.present,
        s.zero,
        s.file,
        s.huge,
        s.swapped,
        s.not_present,
        s.guard,
        s.unmapped
    )?;
    writeln!(
        w,
        "{} {} ({} bytes)",
        style.heading("resident:"),
        human(s.resident_bytes),
        s.resident_bytes
    )?;
    if t.method == ScanMethod::PagemapRead {
        writeln!(
            w,
            "{}",
            style.dim(
                "counted with plain pagemap reads (no PAGEMAP_SCAN before Linux 6.7): huge \
                 pages are not told apart"
            )
        )?;
    }
    if !t.pfn_visible && s.present > 0 {
        writeln!(w, "{}", style.warn(HIDDEN))?;
    }
    Ok(())
}

pub fn shared(s: &SharedOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "physical frames mapped by both process {} and process {} in {}-{} (the zero page \
             is not counted)",
            s.pid, s.pid2, s.start, s.end
        ))
    )?;
    if s.regions.is_empty() {
        writeln!(w, "none")?;
    } else {
        let aw = s
            .regions
            .iter()
            .map(|r| {
                format!("{:x}", r.end.get())
                    .len()
                    .max(format!("{:x}", r.pid2_end.get()).len())
            })
            .max()
            .unwrap_or(12);
        writeln!(
            w,
            "{}",
            style.heading(format!(
                "{:<width$} {:<width$} {:>7} {:>7} {:>8}  {:<7} DETAIL",
                format!("PID {}", s.pid),
                format!("PID {}", s.pid2),
                "SHARED",
                "BYTES",
                "DIVERGED",
                "KIND",
                width = 2 * aw + 1
            ))
        )?;
        for r in &s.regions {
            let mut detail = escape_str(&r.detail).into_owned();
            if r.pid2_detail != r.detail {
                detail = format!("{detail} <-> {}", escape_str(&r.pid2_detail));
            }
            let line = format!(
                "{:0aw$x}-{:0aw$x} {:0aw$x}-{:0aw$x} {:>7} {:>7} {:>8}  {:<7} {}",
                r.start.get(),
                r.end.get(),
                r.pid2_start.get(),
                r.pid2_end.get(),
                r.shared_pages,
                human(r.shared_bytes),
                r.diverged_pages,
                r.kind,
                detail
            );
            writeln!(w, "{}", style.paint(paint_of(r.kind), line.trim_end()))?;
        }
    }
    writeln!(
        w,
        "{} {} shared ({}); {} diverged (same virtual address, different frames)",
        style.heading("total:"),
        pages(s.total_shared_pages),
        human(s.total_shared_bytes),
        pages(s.total_diverged_pages)
    )?;
    if s.show_pages {
        writeln!(
            w,
            "{}",
            style.heading(format!(
                "{:<18} {:<18} {:<12} {:<12} STATE",
                format!("VADDR {}", s.pid),
                format!("VADDR {}", s.pid2),
                "PFN",
                "PFN 2"
            ))
        )?;
        for p in &s.pages {
            let hex = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v:#x}"));
            writeln!(
                w,
                "{:<18} {:<18} {:<12} {:<12} {}",
                p.vaddr.to_string(),
                p.pid2_vaddr.to_string(),
                hex(p.pfn),
                hex(p.pid2_pfn),
                if p.same_frame { "shared" } else { "diverged" }
            )?;
        }
        if s.pages_truncated {
            writeln!(w, "{}", style.dim("... more pages (--limit N)"))?;
        }
    }
    Ok(())
}
