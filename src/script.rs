//! Command files (`-x FILE`, `source FILE`) and `-ex` batches: one command per line, `#` comments
//! and blank lines skipped. A file stops at its first error, reported as `FILE:LINE: message`,
//! unless `--keep-going`; Ctrl-C stops it in any case.

use crate::command::Session;
use crate::error::{Error, Result};
use std::path::Path;

/// How deeply command files may source each other before it is taken for a loop.
const MAX_DEPTH: usize = 16;

/// Runs a command file. With `keep_going`, errors are printed and the file goes on; the result
/// says whether every command succeeded.
pub fn run_file(session: &mut Session, path: &Path, keep_going: bool) -> Result<bool> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read command file {}", path.display()), e))?;
    run_text(session, &path.display().to_string(), &text, keep_going)
}

/// Runs the lines of `text` as if read from a file named `origin`.
pub fn run_text(session: &mut Session, origin: &str, text: &str, keep_going: bool) -> Result<bool> {
    if session.source_depth >= MAX_DEPTH {
        return Err(Error::Usage(format!(
            "{origin}: command files nested more than {MAX_DEPTH} deep (does one source itself?)"
        )));
    }
    if session.source_depth == 0 {
        crate::interrupt::clear_stop();
    }
    session.source_depth += 1;
    let result = run_lines(session, origin, text, keep_going);
    session.source_depth -= 1;
    result
}

fn run_lines(session: &mut Session, origin: &str, text: &str, keep_going: bool) -> Result<bool> {
    let mut all_ok = true;
    for (i, line) in text.lines().enumerate() {
        if session.quit_requested {
            break;
        }
        let result = session.execute(line);
        // Ctrl-C during a command that finished anyway (it ends `faults` early) stops the file
        // before its next line.
        let result = match result {
            Ok(out) if crate::interrupt::stop_requested() => {
                session.printer.emit(session.settings, &out);
                Err(Error::Interrupted)
            }
            other => other,
        };
        match result {
            Ok(out) => session.printer.emit(session.settings, &out),
            Err(e) => {
                let located = match e {
                    located @ Error::Script { .. } => located,
                    other => Error::Script {
                        file: origin.to_string(),
                        line: i + 1,
                        source: Box::new(other),
                    },
                };
                if !keep_going || located.is_interrupted() {
                    return Err(located);
                }
                session.report(line, &located);
                all_ok = false;
            }
        }
    }
    Ok(all_ok)
}
