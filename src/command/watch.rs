//! `watch`, `watches`, `unwatch`: hardware watchpoints reported in the program's terms. Each hit
//! shows the thread, the pc with its symbol and source line, the value before and after, and
//! the hit number; the target runs on. Watches are armed only while `watch` runs (until Ctrl-C,
//! `--count N` hits or `--for DURATION`), so between commands the target is neither stopped nor
//! trapped; `watches` lists them with their hit counts and `unwatch` removes them.

use super::faults::CodeNamer;
use super::flags::Flags;
use super::misc::Message;
use super::{Invocation, Output, Session};
use crate::addr::VirtAddr;
use crate::error::{Error, ParseError, Result};
use crate::target::{Target, WatchAccess, WatchEvent, WatchInfo, WatchRun};
use serde::Serialize;
use std::time::{Duration, Instant};

pub const SWITCHES: &[&str] = &["-w", "-rw", "-r", "--passive"];
pub const VALUED: &[&str] = &["--count", "--for"];

/// What a passive watch cannot tell.
pub const PASSIVE_NOTE: &str = "passive watches sample pc and tid with perf events, without \
                                stopping the thread: old and new values are not available";

/// One hit, as printed (one JSON line each).
#[derive(Debug, Clone, Serialize)]
pub struct HitOut {
    pub watch: u32,
    pub tid: i32,
    pub pc: Option<VirtAddr>,
    /// `main+17`, `libc.so.6!memcpy+40`, or the region and offset without symbols.
    pub symbol: Option<String>,
    /// `file.c:42` when the program has DWARF line information.
    pub location: Option<String>,
    /// The watched value before and after the access (`0x2a`; bytes in memory order for watches
    /// longer than 8 bytes); null for passive watches.
    pub old: Option<String>,
    pub new: Option<String>,
    pub hit: u64,
    /// The watch's expression, for the text form.
    #[serde(skip)]
    pub expression: String,
}

/// The line `watch` prints once its watches are armed: accesses count from then on.
#[derive(Debug, Clone, Serialize)]
pub struct WatchingOut {
    /// The watch numbers armed.
    pub watching: Vec<u32>,
    /// `perf-sigtrap`, `debug-registers` or `perf-sampling` (passive).
    pub backend: String,
    pub threads: usize,
    #[serde(skip)]
    pub expressions: Vec<String>,
    #[serde(skip)]
    pub until: Option<String>,
}

/// A watch in `watches` and at the end of `watch`.
#[derive(Debug, Clone, Serialize)]
pub struct WatchRow {
    pub id: u32,
    pub expression: String,
    pub address: VirtAddr,
    pub len: u64,
    pub access: WatchAccess,
    pub passive: bool,
    /// The hardware slots it takes (aligned pieces of 1, 2, 4 or 8 bytes).
    pub slots: Vec<SlotOut>,
    pub hits: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotOut {
    pub address: VirtAddr,
    pub len: u8,
}

impl WatchRow {
    fn of(w: &WatchInfo) -> WatchRow {
        WatchRow {
            id: w.id,
            expression: w.expression.clone(),
            address: w.address,
            len: w.len,
            access: w.access,
            passive: w.passive,
            slots: w
                .slots
                .iter()
                .map(|&(address, len)| SlotOut { address, len })
                .collect(),
            hits: w.hits,
        }
    }
}

/// `watches`, and the summary that ends `watch`.
#[derive(Debug, Serialize)]
pub struct WatchesOut {
    pub watches: Vec<WatchRow>,
    /// How the `watch` run went (absent for `watches`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<WatchRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A duration: `500ms`, `2s`, `1.5s`, `3m`, or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0 && value * scale < 1e9)
        .then(|| Duration::from_secs_f64(value * scale))
}

/// `--for DURATION` (or a positional duration), with a caret under a bad one.
pub fn duration_arg(inv: &Invocation<'_>, col: usize, text: &str) -> Result<Duration> {
    parse_duration(text).ok_or_else(|| {
        inv.parse_error(
            ParseError::new(
                inv.args,
                col,
                format!("`{text}` is not a duration (500ms, 2s, 1.5m)"),
            ),
            0,
        )
    })
}

/// A value as shown: the little-endian integer for up to 8 bytes, else the bytes in order.
pub fn format_value(bytes: &[u8]) -> String {
    if bytes.len() <= 8 {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        format!("{:#x}", u64::from_le_bytes(w))
    } else {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn run_watch(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let flags = Flags::parse(inv, SWITCHES, VALUED)?;
    let access = if flags.has("-rw") {
        WatchAccess::ReadWrite
    } else if flags.has("-r") {
        WatchAccess::Read
    } else {
        WatchAccess::Write
    };
    let passive = flags.has("--passive");
    let count = flags.number(inv, &["--count"])?;
    if count == Some(0) {
        return Err(inv.usage_error("--count needs at least 1 hit"));
    }
    let duration = match flags.value(&["--for"]) {
        Some((col, text)) => Some(duration_arg(inv, col, text)?),
        None => None,
    };
    let new_watch = match flags.positional.as_slice() {
        [] => None,
        [(col, expr)] => Some((session.eval(inv, expr, *col)?, 8, *expr)),
        [(col, expr), (lcol, len)] => {
            let address = session.eval(inv, expr, *col)?;
            let len = session.eval(inv, len, *lcol)?;
            Some((address, len, *expr))
        }
        _ => return Err(inv.usage_error("watch takes an address and optionally a length")),
    };
    if new_watch.is_none() && (flags.has("-w") || flags.has("-rw") || flags.has("-r") || passive) {
        return Err(inv.usage_error("-w, -rw, -r and --passive go with an address to watch"));
    }
    let settings = session.settings;
    let Session {
        target,
        printer,
        symbols,
        ..
    } = session;
    let target = target.as_deref_mut().ok_or(Error::NoTarget)?;
    let added = match new_watch {
        Some((address, len, expr)) => Some(
            target
                .watch_set(expr, VirtAddr(address), len, access, passive)?
                .id,
        ),
        None => None,
    };
    let until = duration.map(|d| Instant::now() + d);
    let regions = target.regions()?;
    let mut namer = CodeNamer::new(regions);
    let names: Vec<(u32, String)> = target
        .watch_list()?
        .iter()
        .map(|w| (w.id, w.expression.clone()))
        .collect();
    let mut symbols = symbols
        .as_deref_mut()
        .map(|s| s as &mut (dyn super::SymbolResolver + 'static));
    let limit = match (count, duration) {
        (Some(n), _) => Some(format!("{n} hit{}", if n == 1 { "" } else { "s" })),
        (None, Some(d)) => Some(format!("{:?}", d)),
        (None, None) => None,
    };
    let mut on_event = |target: &mut dyn Target, event: WatchEvent<'_>| -> Result<()> {
        let hit = match event {
            WatchEvent::Armed { backend, threads } => {
                let out = WatchingOut {
                    watching: names.iter().map(|(id, _)| *id).collect(),
                    backend: backend.to_string(),
                    threads,
                    expressions: names.iter().map(|(_, e)| e.clone()).collect(),
                    until: limit.clone(),
                };
                printer.emit(settings, &Output::Watching(out));
                return Ok(());
            }
            WatchEvent::Hit(hit) => hit,
        };
        let (symbol, location) = match hit.pc {
            Some(pc) => namer.name(target, symbols.as_deref_mut(), pc),
            None => (None, None),
        };
        let out = HitOut {
            watch: hit.id,
            tid: hit.tid,
            pc: hit.pc,
            symbol,
            location,
            old: hit.old.as_deref().map(format_value),
            new: hit.new.as_deref().map(format_value),
            hit: hit.hit,
            expression: names
                .iter()
                .find(|(id, _)| *id == hit.id)
                .map(|(_, e)| e.clone())
                .unwrap_or_default(),
        };
        printer.emit(settings, &Output::WatchHit(out));
        Ok(())
    };
    let run = match target.watch_wait(until, count, &mut on_event) {
        Ok(run) => run,
        Err(e) => {
            // A watch that could not even be armed is not kept.
            if let Some(id) = added
                && !e.is_exit()
                && target
                    .watch_list()
                    .is_ok_and(|l| l.iter().any(|w| w.id == id && w.hits == 0))
            {
                let _ = target.watch_clear(Some(id));
            }
            return Err(e);
        }
    };
    let watches: Vec<WatchRow> = target.watch_list()?.iter().map(WatchRow::of).collect();
    let note = watches
        .iter()
        .any(|w| w.passive)
        .then(|| PASSIVE_NOTE.to_string());
    Ok(Output::Watches(WatchesOut {
        watches,
        run: Some(run),
        note,
    }))
}

pub fn run_watches(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    super::misc::no_args(inv)?;
    let watches: Vec<WatchRow> = session
        .target()?
        .watch_list()?
        .iter()
        .map(WatchRow::of)
        .collect();
    let note = watches
        .iter()
        .any(|w| w.passive)
        .then(|| PASSIVE_NOTE.to_string());
    Ok(Output::Watches(WatchesOut {
        watches,
        run: None,
        note,
    }))
}

pub fn run_unwatch(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let words = inv.words()?;
    let id = match words.as_slice() {
        [(_, "all")] => None,
        [(col, word)] => {
            let n = super::misc::parse_number(inv, *col, word)?;
            Some(u32::try_from(n).map_err(|_| inv.usage_error(format!("no watch {n}")))?)
        }
        _ => return Err(inv.usage_error("unwatch needs a watch number or `all`")),
    };
    let removed = session.target()?.watch_clear(id)?;
    Ok(Message::output(match removed.as_slice() {
        [] => "there were no watches".to_string(),
        [one] => format!("removed watch {one}"),
        many => format!(
            "removed watches {}",
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("2s", Some(2000)),
            ("500ms", Some(500)),
            ("1.5s", Some(1500)),
            ("3", Some(3000)),
            ("1m", Some(60_000)),
            ("x", None),
            ("-1s", None),
            ("", None),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text).map(|d| d.as_millis() as u64),
                ms,
                "{text}"
            );
        }
    }

    #[test]
    fn values() {
        assert_eq!(format_value(&[5, 0, 0, 0]), "0x5");
        assert_eq!(
            format_value(&[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]),
            "0x1122334455667788"
        );
        assert_eq!(format_value(&[1; 9]), "01 01 01 01 01 01 01 01 01");
    }
}
