//! Rendering: typed command results to text (aligned, colored, human units) or JSON (one document
//! per command per line). Knows nothing of targets; writes to any `impl Write`, so tests render to
//! a buffer. [`Printer`] is where results and errors leave vmscope.

mod diff;
pub mod escape;
mod faults;
pub mod json;
mod layout;
mod pages;
mod process;
mod regions;
pub mod style;
pub mod units;
mod watch;
mod whatis;

use crate::command::{Output, Settings};
use crate::error::Error;
use std::io::{self, IsTerminal, Write};
use style::Style;

/// Colors by default when stdout is a terminal and NO_COLOR is unset or empty.
pub fn color_auto() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
}

/// Writes one result as text.
pub fn text(out: &Output, style: Style, w: &mut dyn Write) -> io::Result<()> {
    match out {
        Output::Nothing => Ok(()),
        Output::Message(m) => writeln!(w, "{}", m.message),
        Output::Value(v) => writeln!(w, "{} = {} ({})", v.expression, style.addr(&v.hex), v.value),
        Output::Help(h) => process::help(h, style, w),
        Output::Info(i) => process::info(i, style, w),
        Output::Threads(t) => process::threads(t, style, w),
        Output::Registers(r) => process::registers(r, style, w),
        Output::Examine(x) => process::examine(x, style, w),
        Output::Settings(s) => process::settings(s, w),
        Output::Regions(r) => regions::regions(r, style, w),
        Output::Whatis(x) => whatis::whatis(x, style, w),
        Output::Layout(l) => layout::layout(l, style, w),
        Output::Snapshot(s) => diff::snapshot(s, style, w),
        Output::Diff(d) => diff::diff(d, style, w),
        Output::Translate(t) => pages::translate(t, style, w),
        Output::Shared(s) => pages::shared(s, style, w),
        Output::Watching(x) => watch::watching(x, style, w),
        Output::WatchHit(h) => watch::hit(h, style, w),
        Output::Watches(x) => watch::watches(x, style, w),
        Output::Faults(f) => faults::faults(f, style, w),
        Output::FaultsProgress(p) => faults::progress(p, style, w),
    }
}

/// Where command results and errors go: stdout for results, stderr for text errors, stdout for
/// JSON errors (a script reading JSON Lines sees every answer in one stream).
pub struct Printer {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
}

impl Default for Printer {
    fn default() -> Self {
        Printer {
            out: Box::new(io::stdout()),
            err: Box::new(io::stderr()),
        }
    }
}

impl Printer {
    pub fn new(out: Box<dyn Write>, err: Box<dyn Write>) -> Printer {
        Printer { out, err }
    }

    pub fn emit(&mut self, settings: Settings, output: &Output) {
        // Buffered: a 60,000-row table is one write per 64 KiB, not one per line, and JSON is
        // streamed rather than built as one string.
        let mut out = io::BufWriter::with_capacity(64 * 1024, &mut self.out);
        let result = if settings.json {
            match output {
                Output::Nothing => Ok(()),
                Output::Regions(r) => regions::json(r, &mut out),
                other => serde_json::to_writer(&mut out, other)
                    .map_err(io::Error::other)
                    .and_then(|()| writeln!(out)),
            }
        } else {
            text(output, Style::new(settings.color), &mut out)
        };
        let _ = result.and_then(|()| out.flush());
    }

    pub fn emit_error(&mut self, settings: Settings, command: &str, error: &Error) {
        let message = format!("{error:#}");
        if settings.json {
            let _ = writeln!(self.out, "{}", json::error_document(command, &message));
            let _ = self.out.flush();
        } else {
            let style = Style::new(settings.color);
            let _ = writeln!(self.err, "{} {message}", style.error("error:"));
            let _ = self.err.flush();
        }
    }
}
