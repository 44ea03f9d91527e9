//! Text for `watch` (one line per hit, then the watches with their hit counts and how the run
//! ended) and `watches`.

use super::escape::escape_str;
use super::style::Style;
use crate::command::watch::{HitOut, WatchesOut, WatchingOut};
use crate::target::WatchAccess;
use std::io::{self, Write};

/// `watching 1 (counter) on 3 threads (perf-sigtrap) for 5 hits: Ctrl-C to stop`
pub fn watching(x: &WatchingOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let what: Vec<String> = x
        .watching
        .iter()
        .zip(&x.expressions)
        .map(|(id, e)| format!("{id} ({})", escape_str(e)))
        .collect();
    let until = x
        .until
        .as_ref()
        .map_or_else(String::new, |u| format!(" for {u}"));
    writeln!(
        w,
        "{}",
        style.dim(format!(
            "watching {} on {} thread{} ({}){until}: Ctrl-C to stop",
            what.join(", "),
            x.threads,
            if x.threads == 1 { "" } else { "s" },
            x.backend
        ))
    )
}

/// `#3 watch 1 (counter): thread 4242 at 0x55d1f1a0c1b5 <bump+12> worker.c:18  0x2 -> 0x3`
pub fn hit(h: &HitOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let pc = h.pc.map_or_else(|| "?".to_string(), |pc| pc.to_string());
    let mut line = format!(
        "#{} watch {} ({}): thread {} at {}",
        h.hit,
        h.watch,
        escape_str(&h.expression),
        h.tid,
        style.addr(pc)
    );
    if let Some(s) = &h.symbol {
        line += &format!(" <{}>", escape_str(s));
    }
    if let Some(l) = &h.location {
        line += &format!(" {}", style.dim(escape_str(l)));
    }
    match (&h.old, &h.new) {
        (Some(old), Some(new)) if old == new => line += &format!("  {new} (unchanged: a read)"),
        (Some(old), Some(new)) => line += &format!("  {old} -> {}", style.heading(new)),
        (None, Some(new)) => line += &format!("  -> {}", style.heading(new)),
        _ => {}
    }
    writeln!(w, "{line}")
}

fn access(a: WatchAccess) -> &'static str {
    match a {
        WatchAccess::Write => "write",
        WatchAccess::Read => "read",
        WatchAccess::ReadWrite => "read/write",
    }
}

pub fn watches(out: &WatchesOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    if let Some(run) = &out.run {
        let why = match run.ended.as_str() {
            "count" => "the hit count was reached",
            "time" => "its time was up",
            "interrupted" => "interrupted",
            "exited" => "the process exited",
            other => other,
        };
        let mut line = format!(
            "{} hit{} ({}; {why})",
            run.hits,
            if run.hits == 1 { "" } else { "s" },
            run.backend
        );
        if run.lost > 0 {
            line += &format!(", {} lost", run.lost);
        }
        writeln!(w, "{}", style.dim(line))?;
    }
    if out.watches.is_empty() {
        return writeln!(w, "no watches");
    }
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:>3}  {:<18} {:>4} {:<10} {:>6}  {:<7} EXPRESSION",
            "NUM", "ADDRESS", "LEN", "ACCESS", "HITS", "SLOTS"
        ))
    )?;
    for row in &out.watches {
        writeln!(
            w,
            "{:>3}  {} {:>4} {:<10} {:>6}  {:<7} {}{}",
            row.id,
            style.addr(format!("{:<18}", row.address.to_string())),
            row.len,
            access(row.access),
            row.hits,
            row.slots.len(),
            escape_str(&row.expression),
            if row.passive { "  (passive)" } else { "" }
        )?;
    }
    if let Some(note) = &out.note {
        writeln!(w, "{}", style.warn(format!("note: {note}")))?;
    }
    Ok(())
}
