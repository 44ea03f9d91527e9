//! The `whatis` answer as text: for one address, a labelled row for each thing known about it
//! (region, file, module, section, symbol, source, inlined frames, thread, gap, value chain,
//! notes); for several, one line each. Everything that comes from the target — paths, details,
//! symbol names, strings — is escaped.

use super::escape::escape_str;
use super::style::{Paint, Style};
use super::units::human;
use crate::command::whatis::{RegionRef, Whatis, WhatisOut};
use crate::regions::kind::Kind;
use std::io::{self, Write};

fn paint_of(r: &RegionRef) -> Paint {
    match r.kind {
        Kind::Stack => Paint::Stack,
        Kind::Heap => Paint::Heap,
        Kind::Image if r.perms.contains('x') => Paint::Code,
        Kind::Image if r.detail.ends_with(".rodata") => Paint::Rodata,
        Kind::Image => Paint::Data,
        Kind::File => Paint::File,
        Kind::Shared => Paint::Shared,
        Kind::Guard | Kind::Free | Kind::System => Paint::Dim,
        Kind::Private => Paint::Plain,
    }
}

fn esc(s: &str) -> String {
    escape_str(s).into_owned()
}

/// `main+17 (size 96)`.
fn symbol_text(w: &Whatis) -> Option<String> {
    let s = w.symbol.as_ref()?;
    let name = esc(s.demangled.as_deref().unwrap_or(&s.name));
    let at = if s.offset == 0 {
        name
    } else {
        format!("{name}+{}", s.offset)
    };
    Some(format!("{at} (size {})", s.size))
}

/// `file.c:12:5` (null parts left out).
fn location_text(file: Option<&str>, line: Option<u32>, column: Option<u32>) -> String {
    let mut s = esc(file.unwrap_or("??"));
    if let Some(l) = line {
        s.push_str(&format!(":{l}"));
        if let Some(c) = column.filter(|&c| c > 0) {
            s.push_str(&format!(":{c}"));
        }
    }
    s
}

/// `0x2a → 0x7ffd… [stack of 4242] → 0x55d0… main+17`.
fn chain_text(w: &Whatis, style: Style) -> Option<String> {
    let value = w.value.as_ref()?;
    let mut parts = Vec::new();
    for (i, v) in w.chain.iter().enumerate() {
        let mut p = style.addr(v);
        if let Some(Some(what)) = w.chain_what.get(i) {
            p.push_str(&format!(" {}", esc(what)));
        }
        parts.push(p);
    }
    if parts.is_empty() {
        parts.push(style.addr(value));
    }
    Some(parts.join(" → "))
}

fn row(w: &mut dyn Write, style: Style, label: &str, text: impl AsRef<str>) -> io::Result<()> {
    writeln!(
        w,
        "  {} {}",
        style.heading(format!("{label:<8}")),
        text.as_ref()
    )
}

fn one(x: &Whatis, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let mut headline = format!("{}:", style.addr(x.address));
    if let Some(s) = symbol_text(x) {
        headline.push_str(&format!(" {s}"));
    }
    match (&x.region, &x.gap) {
        (Some(r), _) => headline.push_str(&format!(
            " in {}",
            style.paint(
                paint_of(r),
                format!("{} {}", r.kind, esc(&r.detail)).trim_end()
            )
        )),
        (None, Some(_)) => headline.push_str(" in free space"),
        (None, None) => headline.push_str(" outside the user address space"),
    }
    writeln!(w, "{headline}")?;
    if let (Some(r), Some(off)) = (&x.region, x.offset_in_region) {
        row(
            w,
            style,
            "region",
            format!(
                "{}-{} {} {} {}, offset {off:#x}",
                r.start,
                r.end,
                r.perms,
                r.kind,
                style.paint(paint_of(r), esc(&r.detail))
            ),
        )?;
        if let (Some(path), Some(fo)) = (&r.path, x.file_offset) {
            row(
                w,
                style,
                "file",
                format!("{} at file offset {fo}", esc(path)),
            )?;
        }
    }
    if let Some(m) = &x.module {
        let mut text = esc(&m.name);
        if let Some(b) = m.bias {
            text.push_str(&format!(", load bias {b}"));
        }
        if let Some(id) = &m.build_id {
            text.push_str(&format!(", build-id {id}"));
        }
        if let Some(d) = &m.debug_file {
            text.push_str(&format!(", debug file {}", esc(d)));
        }
        row(w, style, "module", text)?;
    }
    if let Some(s) = &x.section {
        row(w, style, "section", esc(s))?;
    }
    if let Some(s) = symbol_text(x) {
        row(w, style, "symbol", s)?;
    }
    if let Some(l) = &x.location {
        row(
            w,
            style,
            "source",
            location_text(l.file.as_deref(), l.line, l.column),
        )?;
    }
    if let Some(frames) = x.inlined.as_ref().filter(|f| !f.is_empty()) {
        for (i, f) in frames.iter().enumerate() {
            let text = format!(
                "{} at {}",
                esc(f.function.as_deref().unwrap_or("??")),
                location_text(f.file.as_deref(), f.line, None)
            );
            let label = if i == 0 { "inlined" } else { "" };
            let text = if i == 0 { text } else { format!("  in {text}") };
            row(w, style, label, text)?;
        }
    }
    if let Some(t) = &x.thread {
        let text = match (t.sp, t.sp_distance) {
            (Some(sp), Some(d)) if d >= 0 => {
                format!("{}, {d:#x} above its stack pointer {sp}", t.tid)
            }
            (Some(sp), Some(d)) => format!(
                "{}, {:#x} below its stack pointer {sp} (not in use)",
                t.tid,
                d.unsigned_abs()
            ),
            _ => format!("{} (stack pointer unknown: the thread is running)", t.tid),
        };
        row(w, style, "thread", text)?;
    }
    if let Some(g) = &x.gap {
        let side = |r: &Option<RegionRef>| match r {
            None => "nothing".to_string(),
            Some(r) if r.detail.is_empty() => format!("{} region {}-{}", r.kind, r.start, r.end),
            Some(r) => format!("{} {}-{}", esc(&r.detail), r.start, r.end),
        };
        let (below, above) = (side(&g.below), side(&g.above));
        row(
            w,
            style,
            "gap",
            format!(
                "free {}-{} ({}), {:#x} into it",
                g.start,
                g.end,
                human(g.size),
                x.address.offset_from(g.start)
            ),
        )?;
        row(w, style, "below", below)?;
        row(w, style, "above", above)?;
    }
    match chain_text(x, style) {
        Some(c) => row(w, style, "value", c)?,
        None if x.gap.is_none() => row(w, style, "value", "unreadable")?,
        None => {}
    }
    if let Some(s) = &x.string {
        row(
            w,
            style,
            "string",
            format!("\"{}\"", esc(s).replace('"', "\\\"")),
        )?;
    }
    for n in &x.notes {
        row(w, style, "note", style.dim(esc(n)))?;
    }
    Ok(())
}

/// One line per address: address, kind, detail, section, symbol, source, value chain.
fn compact(x: &Whatis, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let mut line = style.addr(format!("{:#018x}", x.address.get())).to_string();
    match &x.region {
        Some(r) => line.push_str(&format!(
            "  {:<7} {}",
            r.kind,
            style.paint(paint_of(r), esc(&r.detail))
        )),
        None => line.push_str(&format!("  {:<7} ", Kind::Free)),
    }
    if let Some(s) = &x.section {
        line.push_str(&format!("  {}", esc(s)));
    }
    if let Some(s) = &x.symbol {
        let name = esc(s.demangled.as_deref().unwrap_or(&s.name));
        line.push_str(&format!("  {name}+{}", s.offset));
    }
    if let Some(l) = &x.location {
        line.push_str(&format!(
            "  {}",
            location_text(l.file.as_deref(), l.line, None)
        ));
    }
    if let Some(t) = &x.thread
        && let Some(d) = t.sp_distance
    {
        line.push_str(&format!("  sp{d:+#x}"));
    }
    if let Some(c) = chain_text(x, style) {
        line.push_str(&format!("  = {c}"));
    }
    writeln!(w, "{line}")
}

pub fn whatis(out: &WhatisOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    if out.single {
        for x in &out.results {
            one(x, style, w)?;
        }
        return Ok(());
    }
    for x in &out.results {
        compact(x, style, w)?;
    }
    Ok(())
}
