//! Text for `faults`: the live line once a second on a terminal, then the summary — faults by
//! region (minor, major, pages first touched, bytes), the top pages and the top code locations —
//! or, without perf events, the kernel's counters and why there is nothing more.

use super::escape::escape_str;
use super::style::Style;
use super::units::human;
use crate::command::faults::{By, FaultsOut, FaultsProgress};
use std::io::{self, Write};

pub fn progress(p: &FaultsProgress, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let mut line = format!(
        "[{:>5.1}s] {} faults ({} major)",
        p.elapsed_ms as f64 / 1000.0,
        p.samples,
        p.major
    );
    if let Some((detail, n)) = &p.top {
        line += &format!(", most in {} ({n})", escape_str(detail));
    }
    writeln!(w, "{}", style.dim(line))
}

pub fn faults(f: &FaultsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let secs = f.duration_ms as f64 / 1000.0;
    if let Some(why) = &f.fallback {
        writeln!(
            w,
            "process {}: {} minor, {} major page faults in {secs:.1}s",
            f.pid, f.minor, f.major
        )?;
        return writeln!(w, "{}", style.warn(format!("note: {why}")));
    }
    let mut head = format!(
        "process {}: {} page faults sampled in {secs:.1}s ({} minor, {} major counted by the \
         kernel",
        f.pid, f.samples, f.minor, f.major
    );
    head += &format!("; {} lost)", f.lost);
    if f.exited {
        head += "; the process exited";
    }
    writeln!(w, "{}", style.heading(head))?;
    if f.lost > 0 {
        writeln!(
            w,
            "{}",
            style.warn(format!(
                "warning: {} faults were counted but not recorded (the ring buffer was full)",
                f.lost
            ))
        )?;
    }
    if f.samples == 0 {
        return Ok(());
    }
    match f.by {
        By::Region => {
            regions(f, style, w)?;
            writeln!(w)?;
            pages(f, style, w)?;
            writeln!(w)?;
            code(f, style, w)
        }
        By::Page => pages(f, style, w),
        By::Symbol => code(f, style, w),
    }
}

fn regions(f: &FaultsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:<29} {:<7} {:>8} {:>7} {:>8} {:>7}  DETAIL",
            "REGION", "KIND", "MINOR", "MAJOR", "PAGES", "BYTES"
        ))
    )?;
    for r in &f.by_region {
        let range = if r.kind.is_some() {
            format!("{:x}-{:x}", r.start.get(), r.end.get())
        } else {
            "-".into()
        };
        writeln!(
            w,
            "{:<29} {:<7} {:>8} {:>7} {:>8} {:>7}  {}",
            range,
            r.kind.map_or("-".to_string(), |k| k.to_string()),
            r.minor,
            r.major,
            r.pages,
            human(r.bytes),
            escape_str(&r.detail)
        )?;
    }
    Ok(())
}

fn pages(f: &FaultsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:<18} {:>7} {:>7}  {:<7} REGION",
            "TOP PAGES", "MINOR", "MAJOR", "KIND"
        ))
    )?;
    for p in &f.top_pages {
        writeln!(
            w,
            "{} {:>7} {:>7}  {:<7} {}",
            style.addr(format!("{:<18}", p.page.to_string())),
            p.minor,
            p.major,
            p.kind.map_or("-", |k| k.name()),
            escape_str(&p.detail)
        )?;
    }
    Ok(())
}

fn code(f: &FaultsOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!("{:<18} {:>7}  SYMBOL", "TOP CODE", "FAULTS"))
    )?;
    for c in &f.top_code {
        let mut name = c
            .symbol
            .as_deref()
            .map_or("?".into(), escape_str)
            .into_owned();
        if let Some(l) = &c.location {
            name += &format!(" {}", style.dim(escape_str(l)));
        }
        writeln!(
            w,
            "{} {:>7}  {name}",
            style.addr(format!("{:<18}", c.pc.to_string())),
            c.faults
        )?;
    }
    Ok(())
}
