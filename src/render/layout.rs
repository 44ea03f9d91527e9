//! The `layout` picture: the address space as a column of boxes, highest address on top, as
//! textbooks draw it. Each boundary carries its address; mapped bands have solid sides, unmapped
//! ones dotted sides; heights follow a log scale; colors follow the kind (code, data, heap,
//! stack...) when enabled.

use super::escape::escape_str;
use super::style::{Paint, Style};
use super::units::human;
use crate::command::layout::{Band, Grows, LayoutOut, Section};
use crate::regions::elf::ImagePart;
use crate::regions::kind::Kind;
use std::io::{self, Write};

/// Inner width of the boxes.
const W: usize = 38;
/// Width of the address column (`0x` and 16 digits).
const AW: usize = 18;

fn paint_of(b: &Band) -> Paint {
    if b.perms.len() == 1 && b.perms[0].write && b.perms[0].exec {
        return Paint::WriteExec;
    }
    match (b.section, b.kind) {
        (Section::Kernel | Section::Hole | Section::Null | Section::Free, _) => Paint::Dim,
        (Section::System, _) => Paint::Dim,
        (Section::Stack, _) | (_, Some(Kind::Stack)) => Paint::Stack,
        (Section::Heap, _) | (_, Some(Kind::Heap)) => Paint::Heap,
        (Section::Image, _) => match b.part {
            Some(ImagePart::Text) => Paint::Code,
            Some(ImagePart::Rodata) => Paint::Rodata,
            Some(_) => Paint::Data,
            None => Paint::Dim,
        },
        (_, Some(Kind::Image)) => Paint::Code,
        (_, Some(Kind::File)) => Paint::File,
        (_, Some(Kind::Shared)) => Paint::Shared,
        (_, Some(Kind::Guard)) => Paint::Dim,
        _ => Paint::Plain,
    }
}

/// Sizes up to 16 EiB (the non-canonical hole is most of the 64-bit space).
fn size_text(v: u64, bytes: bool) -> String {
    if bytes {
        v.to_string()
    } else if v >= 1 << 60 {
        format!("{:.0}E", v as f64 / (1u64 << 60) as f64)
    } else {
        human(v)
    }
}

/// `s` cut to `width` characters, with an ellipsis when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn unmapped(b: &Band) -> bool {
    matches!(b.section, Section::Free | Section::Hole | Section::Null)
}

fn edge(
    style: Style,
    addr: String,
    left: char,
    fill: char,
    right: char,
    title: Option<&str>,
) -> String {
    let inner = match title {
        Some(t) => {
            let mut t = format!("{fill} {} ", escape_str(t));
            if t.chars().count() > W - 1 {
                t = fit(&t, W - 1);
            }
            let used = t.chars().count();
            format!("{t}{}", fill.to_string().repeat(W - used))
        }
        None => fill.to_string().repeat(W),
    };
    format!("{} {left}{inner}{right}", style.addr(addr))
}

pub fn layout(out: &LayoutOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let exe = out
        .exe
        .as_deref()
        .map_or_else(|| "?".to_string(), |e| escape_str(e).into_owned());
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "process {} ({exe}): its address space, highest address on top",
            out.pid
        ))
    )?;
    writeln!(
        w,
        "{}",
        style.dim(format!(
            "{:bw$}  {:<4}  {:>7}  WHAT LIVES THERE",
            "",
            "PERM",
            if out.usage { "RSS" } else { "" },
            bw = AW + 1 + W + 2
        ))
    )?;
    let hex = |v: u64| format!("{v:#018x}");
    for (i, b) in out.bands.iter().enumerate() {
        let line = if i == 0 {
            edge(style, hex(b.last.get()), '┌', '─', '┐', None)
        } else if let Some(t) = &b.title {
            edge(
                style,
                hex(b.last.get().wrapping_add(1)),
                '╞',
                '═',
                '╡',
                Some(t),
            )
        } else {
            edge(
                style,
                hex(b.last.get().wrapping_add(1)),
                '├',
                '─',
                '┤',
                None,
            )
        };
        writeln!(w, "{line}")?;
        band(out, b, style, w)?;
    }
    if let Some(b) = out.bands.last() {
        writeln!(
            w,
            "{}",
            edge(style, hex(b.start.get()), '└', '─', '┘', None)
        )?;
    }
    writeln!(
        w,
        "{}",
        style.dim(format!(
            "Heights are on a log scale: one line below 16M, one more for every 256x. \
             Dotted sides: unmapped.{}",
            if out
                .bands
                .iter()
                .any(|b| b.label.ends_with(" more mappings"))
            {
                " `layout --all` draws every mapping."
            } else {
                ""
            }
        ))
    )?;
    style.legend(
        &[
            (Paint::Code, "code"),
            (Paint::Data, "data"),
            (Paint::Rodata, "rodata"),
            (Paint::Heap, "heap"),
            (Paint::Stack, "stack"),
            (Paint::File, "file"),
            (Paint::Shared, "shared"),
        ],
        w,
    )
}

fn band(out: &LayoutOut, b: &Band, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let side = if unmapped(b) { '┊' } else { '│' };
    let text_line = if unmapped(b) {
        (b.lines as usize - 1) / 2
    } else {
        0
    };
    let height = (b.lines as usize).max(text_line + 1 + b.marks.len());
    let arrow = match b.grows {
        Some(Grows::Down) => " ↓",
        Some(Grows::Up) => " ↑",
        None => "",
    };
    let size = size_text(b.size, out.view.bytes);
    let lw = W - 2 - size.chars().count().max(7) - 1;
    let label = fit(&format!("{}{arrow}", escape_str(&b.label)), lw);
    let text = format!(" {label} {size:>7} ");
    let perms = match b.perms.as_slice() {
        [one] => one.to_string(),
        _ => String::new(),
    };
    let rss = if out.usage && b.regions > 0 {
        size_text(b.rss, out.view.bytes)
    } else {
        String::new()
    };
    let paint = paint_of(b);
    for k in 0..height {
        let pad = " ".repeat(AW);
        if k == text_line {
            writeln!(
                w,
                "{pad} {side}{}{side}  {perms:<4}  {rss:>7}  {}",
                style.paint(paint, &text),
                style.dim(&b.note)
            )?;
        } else if k > text_line && k - text_line - 1 < b.marks.len() {
            let m = &b.marks[k - text_line - 1];
            writeln!(
                w,
                "{pad} {side}{}{side}  {}",
                " ".repeat(W),
                style.name(format!("◄ {} = {}", escape_str(&m.expression), m.address))
            )?;
        } else {
            writeln!(w, "{pad} {side}{}{side}", " ".repeat(W))?;
        }
    }
    Ok(())
}
