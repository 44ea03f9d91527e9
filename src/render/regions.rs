//! The `regions` table and summary: aligned columns, human or exact sizes, colored by kind (code,
//! data, rodata, heap, stack...) with writable+executable mappings highlighted, and a legend.

use super::escape::escape_str;
use super::style::{Paint, Style};
use super::units::{Size, human, push_hex, push_left};
use crate::command::regions::{RegionsOut, Row};
use crate::regions::elf::ImagePart;
use crate::regions::kind::Kind;
use std::fmt::Write as _;
use std::io::{self, Write};

/// What a row is painted as.
fn paint_of(row: &Row<'_>) -> Paint {
    if row.perms.has('w') && row.perms.has('x') {
        return Paint::WriteExec;
    }
    match row.kind {
        Kind::Stack => Paint::Stack,
        Kind::Heap => Paint::Heap,
        Kind::Image if row.perms.has('x') => Paint::Code,
        Kind::Image if row.detail.ends_with(ImagePart::Rodata.name()) => Paint::Rodata,
        Kind::Image => Paint::Data,
        Kind::File => Paint::File,
        Kind::Shared => Paint::Shared,
        Kind::Guard | Kind::Free | Kind::System => Paint::Dim,
        Kind::Private => Paint::Plain,
    }
}

pub fn regions(out: &RegionsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let size = |v: u64| {
        if out.view.bytes {
            v.to_string()
        } else {
            human(v)
        }
    };
    if !out.view.summary_only {
        table(out, style, w)?;
        writeln!(w)?;
    }
    summary(out, style, &size, w)
}

fn table(out: &RegionsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    style.legend(
        &[
            (Paint::Code, "code"),
            (Paint::Data, "data"),
            (Paint::Rodata, "rodata"),
            (Paint::Heap, "heap"),
            (Paint::Stack, "stack"),
            (Paint::Shared, "shared"),
            (Paint::WriteExec, "write+exec"),
        ],
        w,
    )?;
    // Hex digits of the highest end (the digit count grows with the value).
    let aw = out
        .rows()
        .map(|r| r.end.get())
        .max()
        .map_or(12, |end| {
            (64 - end.leading_zeros()).div_ceil(4).max(1) as usize
        })
        .max(5);
    let exact = out.view.bytes;
    let cell = |v: u64| Size {
        value: Some(v),
        exact,
    };
    let usage = |r: Row<'_>, v: u64| Size {
        value: r.has_usage.then_some(v),
        exact,
    };
    let mut header = format!(
        "{:<aw$}  {:<aw$} {:>7} {:>7} {:>7} {:>7} {:<4} {:<3} {:<7}",
        "START", "END", "SIZE", "RSS", "DIRTY", "SWAP", "PERM", "SM", "KIND"
    );
    if out.view.wide {
        header += &format!(
            " {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:<14} {:<30}",
            "PSS",
            "P_CLEAN",
            "P_DIRTY",
            "S_CLEAN",
            "S_DIRTY",
            "LOCKED",
            "THP",
            "OFFSET",
            "DEV:INODE",
            "VMFLAGS"
        );
    }
    header += " DETAIL";
    writeln!(w, "{}", style.heading(header))?;
    // One reused line buffer: a 60,000-row table should not cost 60,000 allocations per column.
    let mut line = String::with_capacity(256);
    for r in out.rows() {
        line.clear();
        // `{:0aw$x}-{:0aw$x} {:>7} {:>7} {:>7} {:>7} {:<4} {:<3} {:<7}`, by hand: through
        // `fmt` this line cost more than reading the region.
        push_hex(&mut line, r.start.get(), aw);
        line.push('-');
        push_hex(&mut line, r.end.get(), aw);
        for size in [
            cell(r.size),
            usage(r, r.usage.rss),
            usage(r, r.usage.dirty()),
            usage(r, r.usage.swap),
        ] {
            line.push(' ');
            size.push_right(&mut line, 7);
        }
        line.push(' ');
        push_left(&mut line, &r.perms.letters(), 4);
        line.push(' ');
        push_left(&mut line, r.sharing.map_or("", |s| s.code()), 3);
        line.push(' ');
        push_left(&mut line, r.kind.name(), 7);
        if out.view.wide {
            let u = r.usage;
            let _ = write!(
                line,
                " {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8x} {:<14} {:<30}",
                usage(r, u.pss),
                usage(r, u.private_clean),
                usage(r, u.private_dirty),
                usage(r, u.shared_clean),
                usage(r, u.shared_dirty),
                usage(r, u.locked),
                usage(r, u.thp),
                r.offset.get(),
                format!("{}:{}", r.dev, r.inode),
                u.vmflags,
            );
        }
        if r.kind == Kind::Free {
            let _ = write!(line, " free ({})", cell(r.size));
        } else {
            line.push(' ');
            line.push_str(&escape_str(r.detail));
        }
        if r.selected {
            line.push_str("  <--");
        }
        let text = line.trim_end();
        if style.enabled() {
            writeln!(w, "{}", style.paint(paint_of(&r), text))?;
        } else {
            // One write per line.
            line.truncate(text.len());
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

fn summary(
    out: &RegionsOut,
    style: Style,
    size: &dyn Fn(u64) -> String,
    w: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
            "KIND", "SIZE", "RSS", "PRIVATE", "SHARED", "DIRTY", "SWAP", "BLOCKS", "LARGEST"
        ))
    )?;
    let mut blocks = 0;
    let mut total_size = 0;
    for s in &out.summary {
        let free = s.kind == Kind::Free;
        let u = |v: u64| {
            if free || !out.view.has_usage {
                "-".to_string()
            } else {
                size(v)
            }
        };
        writeln!(
            w,
            "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
            s.kind,
            size(s.size),
            u(s.rss),
            u(s.private),
            u(s.shared),
            u(s.dirty),
            u(s.swap),
            s.blocks,
            size(s.largest)
        )?;
        if !free {
            blocks += s.blocks;
            total_size += s.size;
        }
    }
    let t = &out.totals;
    let used = |v: u64| {
        if out.view.has_usage {
            size(v)
        } else {
            "-".to_string()
        }
    };
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "total",
            size(total_size),
            used(t.rss),
            used(t.private()),
            used(t.shared()),
            used(t.dirty()),
            used(t.swap),
            blocks
        ))
    )?;
    if out.view.has_usage {
        writeln!(w, "proportional set size (PSS): {}", size(t.pss))?;
    } else {
        writeln!(
            w,
            "no usage figures: this target does not report resident memory"
        )?;
    }
    if let Some(g) = &out.largest_free {
        writeln!(
            w,
            "largest free block: {}-{} ({})",
            g.start,
            g.end,
            human(g.size)
        )?;
    }
    Ok(())
}
