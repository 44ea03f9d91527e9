//! Text for `diff` (the changed regions, then the figures by kind, before and now, with their
//! deltas) and for `snapshot` (what was taken and where it went).

use super::escape::escape_str;
use super::style::{Paint, Style};
use super::units::human;
use crate::command::diff::{AmountDeltas, Amounts, Change, DiffOut, RegionChange, Source};
use crate::command::snapshot::SnapshotOut;
use crate::regions::kind::Kind;
use std::io::{self, Write};

/// A signed size: `+1.0M`, `-4.0K`, `0`.
fn signed(v: i64, bytes: bool) -> String {
    let mag = if bytes {
        v.unsigned_abs().to_string()
    } else {
        human(v.unsigned_abs())
    };
    match v.signum() {
        0 => "0".into(),
        1 => format!("+{mag}"),
        _ => format!("-{mag}"),
    }
}

fn source(s: &Source) -> String {
    format!(
        "{} (process {} at {})",
        escape_str(&s.origin),
        s.pid,
        s.taken_at
    )
}

fn paint_of(c: &RegionChange) -> Paint {
    let s = c.shown();
    if s.perms.contains('w') && s.perms.contains('x') {
        return Paint::WriteExec;
    }
    match s.kind {
        Kind::Stack => Paint::Stack,
        Kind::Heap => Paint::Heap,
        Kind::Image if s.perms.contains('x') => Paint::Code,
        Kind::Image if s.detail.ends_with(".rodata") => Paint::Rodata,
        Kind::Image => Paint::Data,
        Kind::File => Paint::File,
        Kind::Shared => Paint::Shared,
        Kind::Guard | Kind::Free | Kind::System => Paint::Dim,
        Kind::Private => Paint::Plain,
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn diff(out: &DiffOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let bytes = out.view.bytes;
    let size = |v: u64| if bytes { v.to_string() } else { human(v) };
    let secs = out.elapsed_ms as f64 / 1000.0;
    writeln!(w, "{} {}", style.heading("diff"), source(&out.from))?;
    writeln!(
        w,
        "  -> {}, {:.1} s {}",
        source(&out.to),
        secs.abs(),
        if secs < 0.0 { "earlier" } else { "later" }
    )?;
    if !out.same_process {
        writeln!(
            w,
            "{}",
            style.warn(
                "note: two different processes (or executables): regions are matched by \
                 address and backing all the same"
            )
        )?;
    }
    if !out.usage {
        writeln!(
            w,
            "{}",
            style.warn("note: one side has no usage figures: only ranges, permissions and kinds are compared")
        )?;
    }
    let c = &out.counts;
    let mut parts = Vec::new();
    for (n, one, many) in [
        (c.added, "added", "added"),
        (c.removed, "removed", "removed"),
        (c.grown, "grown", "grown"),
        (c.shrunk, "shrunk", "shrunk"),
        (c.moved, "moved", "moved"),
        (c.perms, "with new permissions", "with new permissions"),
        (c.kind, "reclassified", "reclassified"),
        (c.usage, "with changed usage", "with changed usage"),
        (
            c.sharing,
            "with pages now more (or less) shared",
            "with pages now more (or less) shared",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    }
    if parts.is_empty() {
        writeln!(
            w,
            "no changes: {} the same",
            plural(c.unchanged, "region", "regions")
        )?;
    } else {
        writeln!(
            w,
            "regions: {}; {} unchanged",
            parts.join(", "),
            c.unchanged
        )?;
    }
    if !out.view.summary_only && !out.changes.is_empty() {
        writeln!(w)?;
        table(out, style, w)?;
    }
    writeln!(w)?;
    by_kind(out, style, &size, w)?;
    let [old, new] = &out.largest_free;
    if let (Some(o), Some(n)) = (old, new) {
        let delta = n.size as i128 - o.size as i128;
        writeln!(
            w,
            "largest free block: {} -> {}{}",
            size(o.size),
            size(n.size),
            if delta == 0 {
                String::new()
            } else {
                format!(" ({})", signed(delta as i64, bytes))
            }
        )?;
    }
    if let Some(p) = &out.process {
        let pair = |p: [Option<u64>; 2]| match p {
            [Some(a), Some(b)] if a == b => size(b),
            [Some(a), Some(b)] => format!(
                "{} -> {} ({})",
                size(a),
                size(b),
                signed(b as i64 - a as i64, bytes)
            ),
            _ => "?".into(),
        };
        let count = |p: [Option<u64>; 2]| match p {
            [Some(a), Some(b)] => format!("{:+}", b as i64 - a as i64),
            _ => "?".into(),
        };
        let threads = match p.threads {
            [Some(a), Some(b)] if a != b => format!("{a} -> {b} threads"),
            [_, Some(b)] => plural(b, "thread", "threads"),
            _ => "? threads".into(),
        };
        writeln!(
            w,
            "process: {threads}, VmRSS {}, VmSwap {}, page faults {} minor, {} major",
            pair(p.vm_rss),
            pair(p.vm_swap),
            count(p.minflt),
            count(p.majflt)
        )?;
    }
    Ok(())
}

fn table(out: &DiffOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let bytes = out.view.bytes;
    let size = |v: u64| if bytes { v.to_string() } else { human(v) };
    let aw = out
        .changes
        .iter()
        .map(|c| format!("{:x}", c.shown().end.get()).len())
        .max()
        .unwrap_or(12)
        .max(5);
    let cw = out
        .changes
        .iter()
        .map(|c| names(&c.changes).len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "  {:<cw$} {:<aw$} {:<aw$} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:<4} {:<7} DETAIL",
            "CHANGE",
            "START",
            "END",
            "SIZE",
            "ΔSIZE",
            "ΔRSS",
            "ΔPRIV",
            "ΔSHARED",
            "ΔDIRTY",
            "ΔSWAP",
            "PERM",
            "KIND"
        ))
    )?;
    for c in &out.changes {
        let s = c.shown();
        let marker = if c.changes.contains(&Change::Added) {
            style.name("+")
        } else if c.changes.contains(&Change::Removed) {
            style.error("-")
        } else {
            "~".to_string()
        };
        let dl = &c.delta;
        let mut detail = escape_str(&s.detail).into_owned();
        let mut was = Vec::new();
        if let (Some(o), Some(n)) = (&c.old, &c.new) {
            if (o.start, o.end) != (n.start, n.end) {
                was.push(format!("{:x}-{:x}", o.start.get(), o.end.get()));
            }
            if o.perms != n.perms {
                was.push(o.perms.clone());
            }
            if o.kind != n.kind {
                was.push(o.kind.to_string());
            }
        }
        if !was.is_empty() {
            detail = format!("{detail} (was {})", was.join(", "))
                .trim_start()
                .into();
        }
        if let Some(from) = c.split_from {
            detail = format!("{detail} (split from {from})").trim_start().into();
        }
        if let Some(into) = c.merged_into {
            detail = format!("{detail} (merged into {into})").trim_start().into();
        }
        let usage = |v: i64| {
            if out.usage {
                signed(v, bytes)
            } else {
                "-".into()
            }
        };
        let line = format!(
            "{:<cw$} {:0aw$x}-{:0aw$x} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:<4} {:<7} {}",
            names(&c.changes),
            s.start.get(),
            s.end.get(),
            size(s.size),
            signed(dl.size, bytes),
            usage(dl.rss),
            usage(dl.private),
            usage(dl.shared),
            usage(dl.dirty),
            usage(dl.swap),
            s.perms,
            s.kind,
            detail
        );
        writeln!(w, "{marker} {}", style.paint(paint_of(c), line.trim_end()))?;
    }
    Ok(())
}

fn names(changes: &[Change]) -> String {
    let v: Vec<&str> = changes.iter().map(|c| c.name()).collect();
    v.join(",")
}

/// `1.6M (+132K)`, or `1.6M` when it did not change.
fn cell(new: u64, delta: i64, size: &dyn Fn(u64) -> String, bytes: bool) -> String {
    if delta == 0 {
        size(new)
    } else {
        format!("{} ({})", size(new), signed(delta, bytes))
    }
}

fn by_kind(
    out: &DiffOut,
    style: Style,
    size: &dyn Fn(u64) -> String,
    w: &mut dyn Write,
) -> io::Result<()> {
    let bytes = out.view.bytes;
    let row = |name: &str, n: &Amounts, d: &AmountDeltas, free: bool| {
        let u = |v: u64, dv: i64| {
            if free || !out.usage {
                "-".to_string()
            } else {
                cell(v, dv, size, bytes)
            }
        };
        let blocks = if d.blocks == 0 {
            n.blocks.to_string()
        } else {
            format!("{} ({:+})", n.blocks, d.blocks)
        };
        format!(
            "{:<8} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15} {:>9}",
            name,
            cell(n.size, d.size, size, bytes),
            u(n.rss, d.rss),
            u(n.private, d.private),
            u(n.shared, d.shared),
            u(n.dirty, d.dirty),
            u(n.swap, d.swap),
            blocks
        )
    };
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:<8} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15} {:>9}",
            "KIND", "SIZE", "RSS", "PRIVATE", "SHARED", "DIRTY", "SWAP", "BLOCKS"
        ))
    )?;
    for k in &out.by_kind {
        let text = row(k.kind.name(), &k.new, &k.delta, k.kind == Kind::Free);
        if k.delta.is_zero() {
            writeln!(w, "{}", style.dim(text))?;
        } else {
            writeln!(w, "{text}")?;
        }
    }
    let t = &out.totals;
    writeln!(
        w,
        "{}",
        style.heading(row("total", &t.new, &t.delta, false))
    )
}

pub fn snapshot(s: &SnapshotOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let figures = if s.usage {
        format!(
            "{} regions, {} mapped, RSS {}, dirty {}, swap {}",
            s.regions,
            human(s.size),
            human(s.rss),
            human(s.dirty),
            human(s.swap)
        )
    } else {
        format!("{} regions, {} mapped", s.regions, human(s.size))
    };
    match &s.file {
        Some(file) => writeln!(
            w,
            "saved the memory map of process {} to {}: {figures} ({})\n`diff {}` compares it \
             with now; `vmscope --snapshot {}` opens it",
            s.pid,
            style.name(escape_str(file)),
            s.taken_at,
            escape_str(file),
            escape_str(file)
        ),
        None => writeln!(
            w,
            "took the memory map of process {}: {figures} ({})\n`diff` shows what changes from \
             here",
            s.pid, s.taken_at
        ),
    }
}
