//! The interactive REPL (rustyline): prompt `(vmscope) `, history in
//! `$XDG_STATE_HOME/vmscope/history`, completion of command names, flags and file names from the
//! registry, hints with each command's usage. Ctrl-C at the prompt clears the line (during a
//! command it interrupts the command); Ctrl-D lets go of the target and exits.

use crate::command::Session;
use crate::command::registry::{self, Completion};
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

pub const PROMPT: &str = "(vmscope) ";

/// Completion candidates for `line` with the cursor at `pos`: where the word being completed
/// starts and the words that fit. Pure, so it is tested without a terminal.
pub fn complete(line: &str, pos: usize) -> (usize, Vec<String>, Completion) {
    let head = &line[..pos];
    let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &head[start..];
    let first = head[..start].split_whitespace().next();
    let Some(first) = first else {
        let mut names: Vec<String> = registry::all_names()
            .filter(|n| n.starts_with(word) && n.len() > 1)
            .map(String::from)
            .collect();
        names.sort();
        names.dedup();
        return (start, names, Completion::Words);
    };
    let name = first.split('/').next().unwrap_or(first);
    let Some(spec) = registry::lookup(name) else {
        return (start, Vec::new(), Completion::Words);
    };
    let mut words: Vec<String> = spec
        .words
        .iter()
        .filter(|w| w.starts_with(word))
        .map(|w| w.to_string())
        .collect();
    if spec.completion == Completion::Commands {
        words.extend(
            registry::COMMANDS
                .iter()
                .map(|c| c.name)
                .filter(|n| n.starts_with(word))
                .map(String::from),
        );
    }
    words.sort();
    words.dedup();
    (start, words, spec.completion)
}

/// A hint after the cursor: the rest of a command name typed so far, then its usage.
pub fn hint(line: &str) -> Option<String> {
    if line.is_empty() || line.starts_with(char::is_whitespace) {
        return None;
    }
    match line.split_once(char::is_whitespace) {
        None => {
            let mut matches = registry::COMMANDS
                .iter()
                .filter(|c| c.name.starts_with(line));
            let c = matches.next()?;
            if matches.next().is_some() {
                return None;
            }
            let rest = &c.name[line.len()..];
            let args = c.usage.strip_prefix(c.name).unwrap_or("");
            Some(format!("{rest}{args}"))
        }
        Some((name, "")) => {
            let c = registry::lookup(name.split('/').next()?)?;
            let args = c.usage.strip_prefix(c.name)?.trim_start();
            (!args.is_empty()).then(|| args.to_string())
        }
        _ => None,
    }
}

/// Most symbol candidates offered at once: a prefix of one letter can match 100,000 names.
const MAX_SYMBOL_CANDIDATES: usize = 500;

struct ReplHelper {
    files: FilenameCompleter,
    /// The session, for symbol completion. Commands and completion never run at the same time.
    session: Rc<RefCell<Session>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, mut words, kind) = complete(line, pos);
        if kind == Completion::Files && words.is_empty() {
            return self.files.complete(line, pos, ctx);
        }
        if kind == Completion::Expr {
            // A symbol starts after the last operator: `x/a *(main+`, `whatis libc!mal`.
            let head = &line[..pos];
            let sym_start = head
                .rfind(|c: char| c.is_whitespace() || "*()+-/".contains(c))
                .map_or(0, |i| i + 1);
            let prefix = &head[sym_start..];
            if !prefix.is_empty() && !prefix.starts_with(|c: char| c.is_ascii_digit() || c == '$') {
                let mut names = self.session.borrow_mut().complete_symbol(prefix);
                names.truncate(MAX_SYMBOL_CANDIDATES);
                let pairs = names
                    .into_iter()
                    .map(|w| Pair {
                        display: w.clone(),
                        replacement: w,
                    })
                    .collect();
                return Ok((sym_start, pairs));
            }
            words.retain(|w| w.starts_with('-'));
        }
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        (pos == line.len()).then(|| hint(line)).flatten()
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        std::borrow::Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

fn history_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("vmscope").join("history"))
}

/// Runs the REPL until `quit` or Ctrl-D. Returns whether the last command succeeded.
pub fn run(session: &mut Session) -> bool {
    // The line editor's completer needs the session too (symbol names): share it for the
    // REPL's lifetime and hand it back at the end.
    let placeholder = Session::new(session.settings);
    let shared = Rc::new(RefCell::new(std::mem::replace(session, placeholder)));
    let ok = run_shared(&shared);
    drop(std::mem::replace(
        session,
        Rc::try_unwrap(shared)
            .ok()
            .map(RefCell::into_inner)
            .expect("the editor is gone"),
    ));
    ok
}

fn run_shared(shared: &Rc<RefCell<Session>>) -> bool {
    let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("vmscope: cannot start the line editor: {e}");
            return false;
        }
    };
    editor.set_helper(Some(ReplHelper {
        files: FilenameCompleter::new(),
        session: Rc::clone(shared),
    }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    crate::interrupt::set_repl_active(true);
    let mut ok = true;
    let mut last: Option<String> = None;
    while !shared.borrow().quit_requested {
        match editor.readline(PROMPT) {
            Ok(line) => {
                let trimmed = line.trim();
                if trimmed.is_empty() {
                    // An empty line repeats only what is harmless to repeat: `x` continues
                    // after the last address with the same count, format and size, as in gdb.
                    if last
                        .as_deref()
                        .is_some_and(|l| l == "x" || l.starts_with("x/") || l.starts_with("x "))
                    {
                        let count = shared.borrow().examine.count;
                        ok = shared.borrow_mut().run_line(&format!("x/{count}"));
                    }
                    continue;
                }
                let _ = editor.add_history_entry(trimmed);
                ok = shared.borrow_mut().run_line(&line);
                last = Some(trimmed.to_string());
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("vmscope: {e}");
                ok = false;
                break;
            }
        }
    }
    crate::interrupt::set_repl_active(false);
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_command_names_and_words() {
        let (start, words, _) = complete("th", 2);
        assert_eq!(start, 0);
        assert_eq!(words, vec!["thread", "threads"]);
        let (start, words, _) = complete("set co", 6);
        assert_eq!(start, 4);
        assert_eq!(words, vec!["color"]);
        let (_, words, _) = complete("help reg", 8);
        assert_eq!(words, vec!["regions", "registers"]);
        let (_, _, kind) = complete("source ", 7);
        assert_eq!(kind, Completion::Files);
    }

    #[test]
    fn hints_finish_the_name_then_show_usage() {
        assert_eq!(hint("atta").as_deref(), Some("ch PID"));
        assert_eq!(hint("x ").as_deref(), Some("[/NFU] EXPR"));
        assert_eq!(hint("s"), None); // set, source, stop: ambiguous
        assert_eq!(hint("info "), None);
    }
}
