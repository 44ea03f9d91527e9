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
        .last_end()
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

/// `regions --json`, written by hand. It is the document serde writes from [`RegionsOut`]'s
/// `Serialize` impl (a test compares the two on a live process), only faster: through serde every
/// one of a row's 27 keys is escaped anew and every address goes through `fmt`, which made the
/// JSON of a 60,000-row map cost three times the table. Rows go out in 64 KiB writes.
pub fn json(out: &RegionsOut, w: &mut dyn Write) -> io::Result<()> {
    const FLUSH: usize = 64 * 1024;
    let mut b: Vec<u8> = Vec::with_capacity(FLUSH + 4096);
    b.extend_from_slice(b"{\"pid\":");
    b.extend_from_slice(itoa::Buffer::new().format(out.pid).as_bytes());
    b.extend_from_slice(b",\"regions\":[");
    for (i, r) in out.rows().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json_row(&r, &mut b)?;
        if b.len() >= FLUSH {
            w.write_all(&b)?;
            b.clear();
        }
    }
    b.extend_from_slice(b"],\"summary\":");
    serde_json::to_writer(&mut b, &out.summary)?;
    b.extend_from_slice(b",\"totals\":");
    serde_json::to_writer(&mut b, &out.totals)?;
    b.extend_from_slice(b",\"largest_free\":");
    serde_json::to_writer(&mut b, &out.largest_free)?;
    b.extend_from_slice(b"}\n");
    w.write_all(&b)
}

/// One row as `Row`'s `Serialize` impl writes it, keys in the same order.
fn json_row(r: &Row<'_>, b: &mut Vec<u8>) -> io::Result<()> {
    let n = |b: &mut Vec<u8>, key: &[u8], v: u64| {
        b.extend_from_slice(key);
        b.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    };
    let hex = |b: &mut Vec<u8>, key: &[u8], v: u64| {
        b.extend_from_slice(key);
        b.extend_from_slice(b"\"0x");
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        let mut x = v;
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(x & 15) as usize];
            x >>= 4;
            if x == 0 {
                break;
            }
        }
        b.extend_from_slice(&digits[i..]);
        b.push(b'"');
    };
    // Plain ASCII known not to need escaping (perms, kind and sharing names, dev numbers).
    let word = |b: &mut Vec<u8>, key: &[u8], v: &str| {
        b.extend_from_slice(key);
        b.push(b'"');
        b.extend_from_slice(v.as_bytes());
        b.push(b'"');
    };
    hex(b, b"{\"start\":", r.start.get());
    hex(b, b",\"end\":", r.end.get());
    n(b, b",\"size\":", r.size);
    word(b, b",\"perms\":", &r.perms.letters());
    hex(b, b",\"offset\":", r.offset.get());
    b.extend_from_slice(b",\"dev\":");
    serde_json::to_writer(&mut *b, &r.dev)?;
    n(b, b",\"inode\":", r.inode);
    b.extend_from_slice(b",\"path\":");
    match r.path {
        Some(p) => serde_json::to_writer(&mut *b, &p.to_string_lossy())?,
        None => b.extend_from_slice(b"null"),
    }
    word(b, b",\"kind\":", r.kind.name());
    b.extend_from_slice(b",\"detail\":");
    serde_json::to_writer(&mut *b, r.detail)?;
    match r.sharing {
        Some(s) => word(b, b",\"sharing\":", s.code()),
        None => b.extend_from_slice(b",\"sharing\":null"),
    }
    b.extend_from_slice(b",\"tid\":");
    match r.tid {
        Some(t) => b.extend_from_slice(itoa::Buffer::new().format(t).as_bytes()),
        None => b.extend_from_slice(b"null"),
    }
    let u = r.usage;
    for (key, v) in [
        (&b",\"rss\":"[..], u.rss),
        (b",\"pss\":", u.pss),
        (b",\"pss_dirty\":", u.pss_dirty),
        (b",\"shared_clean\":", u.shared_clean),
        (b",\"shared_dirty\":", u.shared_dirty),
        (b",\"private_clean\":", u.private_clean),
        (b",\"private_dirty\":", u.private_dirty),
        (b",\"referenced\":", u.referenced),
        (b",\"anonymous\":", u.anonymous),
        (b",\"swap\":", u.swap),
        (b",\"swap_pss\":", u.swap_pss),
        (b",\"locked\":", u.locked),
        (b",\"thp\":", u.thp),
        (b",\"kernel_page_size\":", u.kernel_page_size),
    ] {
        n(b, key, v);
    }
    b.extend_from_slice(b",\"vmflags\":");
    serde_json::to_writer(&mut *b, u.vmflags.as_str())?;
    b.push(b'}');
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use crate::command::{Output, Session, Settings};

    /// The hand-written JSON is exactly serde's document, on this test process's own live map,
    /// with free gaps and a mapped file whose name needs every kind of JSON escaping.
    #[test]
    fn hand_written_json_is_serdes_document() {
        let dir = std::env::temp_dir().join(format!("vmscope-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q\"uote \\ back\nnew\ttab \u{1} é 😀");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: the file is this test's own, in its own directory, unchanged while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let mut session = Session::new(Settings {
            json: true,
            color: false,
        });
        session.set_target(crate::target::attach(std::process::id() as i32).unwrap());
        for line in ["regions --gaps", "regions --wide", "regions --kind free"] {
            let Output::Regions(out) = session.execute(line).unwrap() else {
                panic!("{line}: not a regions table");
            };
            let mut fast = Vec::new();
            super::json(&out, &mut fast).unwrap();
            let mut serde = serde_json::to_vec(&out).unwrap();
            serde.push(b'\n');
            // Byte for byte: same keys, same order, same escapes.
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&serde)
            );
            let slow = serde_json::to_value(&out).unwrap();
            if line == "regions --gaps" {
                let rows = slow["regions"].as_array().unwrap();
                let shown = path.to_string_lossy();
                assert!(rows.iter().any(|r| r["path"] == shown.as_ref()), "{line}");
                assert!(rows.iter().any(|r| r["kind"] == "free"), "{line}");
            }
        }
        drop(map);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
