//! The command layer: a [`Session`] (the target, settings and convenience variables), the one
//! [`registry`] of commands, and dispatch. Handlers parse their arguments, run against
//! `dyn Target`, and return a typed [`Output`]; they never print.

pub mod control;
pub mod diff;
pub mod examine;
pub mod expr;
pub mod faults;
pub mod flags;
pub mod help;
pub mod info;
pub mod layout;
pub mod line;
pub mod misc;
pub mod regions;
pub mod registry;
pub mod settings;
pub mod shared;
pub mod snapshot;
pub mod threads;
pub mod translate;
pub mod watch;
pub mod whatis;

use crate::addr::VirtAddr;
use crate::error::{Error, ParseError, Result};
use crate::target::Target;
use serde::Serialize;
use std::collections::BTreeMap;

/// A command's typed result. JSON output is the inner value, untagged.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    /// Nothing to show (a blank line, `quit`).
    Nothing,
    Message(misc::Message),
    Help(help::Help),
    Info(info::Info),
    Threads(threads::Threads),
    Registers(threads::RegistersOut),
    Examine(examine::Examine),
    Value(misc::Value),
    Settings(settings::SettingsOut),
    Regions(regions::RegionsOut),
    Whatis(whatis::WhatisOut),
    Layout(layout::LayoutOut),
    Snapshot(snapshot::SnapshotOut),
    Diff(Box<diff::DiffOut>),
    Translate(translate::TranslateOut),
    Shared(shared::SharedOut),
    /// `watch` has armed its watches (printed before the first hit).
    Watching(watch::WatchingOut),
    /// One `watch` hit, printed as it happens.
    WatchHit(watch::HitOut),
    Watches(watch::WatchesOut),
    Faults(faults::FaultsOut),
    /// The live line of `faults` on a terminal.
    FaultsProgress(faults::FaultsProgress),
}

/// How output is shown; changed by `set` and the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub json: bool,
    pub color: bool,
}

/// Symbol lookup: names in expressions, and what the symbols say about an address (whatis, the
/// annotations of `x`). [`crate::symbols::Symbols`] is the implementation a target gets.
pub trait SymbolResolver {
    fn resolve(&mut self, target: &mut dyn Target, name: &str) -> Result<u64>;

    /// Module, section and symbol at `addr` (with [`crate::symbols::Detail::Source`], source
    /// line and inlined frames too), given the target's current `regions`.
    fn lookup(
        &mut self,
        target: &mut dyn Target,
        regions: &[crate::regions::Region],
        addr: VirtAddr,
        detail: crate::symbols::Detail,
    ) -> Option<crate::symbols::AddrInfo> {
        let _ = (target, regions, addr, detail);
        None
    }

    /// Symbol names starting with `prefix` (`mal`, `libc!mal`), for completion.
    fn complete(&mut self, target: &mut dyn Target, prefix: &str) -> Vec<String> {
        let _ = (target, prefix);
        Vec::new()
    }
}

/// Remembered between `x` commands, as gdb does: the format, the size and the next address.
#[derive(Debug, Clone, Copy)]
pub struct ExamineState {
    pub count: u64,
    pub format: char,
    pub size: u8,
    pub next: Option<VirtAddr>,
}

/// Everything a command runs against.
pub struct Session {
    target: Option<Box<dyn Target>>,
    pub settings: Settings,
    /// Convenience variables (`$name`), set with `set $name = EXPR` or by the demo.
    pub vars: BTreeMap<String, u64>,
    pub examine: ExamineState,
    pub symbols: Option<Box<dyn SymbolResolver>>,
    /// Nesting depth of `source`, to stop a file that sources itself.
    pub source_depth: usize,
    pub quit_requested: bool,
    /// The last memory map taken (`regions`, `snapshot`): what a bare `diff` compares with.
    pub last_snapshot: Option<crate::target::snapshot::Snapshot>,
    /// Where results and errors are written.
    pub printer: crate::render::Printer,
}

impl Session {
    pub fn new(settings: Settings) -> Session {
        Session {
            target: None,
            settings,
            vars: BTreeMap::new(),
            examine: ExamineState {
                count: 1,
                format: 'x',
                size: 4,
                next: None,
            },
            symbols: None,
            source_depth: 0,
            quit_requested: false,
            last_snapshot: None,
            printer: crate::render::Printer::default(),
        }
    }

    pub fn set_target(&mut self, target: Box<dyn Target>) {
        self.target = Some(target);
        // Symbols are per target, found lazily: setting one costs nothing.
        self.symbols = Some(Box::new(crate::symbols::Symbols::new()));
        self.examine.next = None;
    }

    pub fn take_target(&mut self) -> Option<Box<dyn Target>> {
        self.target.take()
    }

    pub fn has_target(&self) -> bool {
        self.target.is_some()
    }

    pub fn target(&mut self) -> Result<&mut dyn Target> {
        match self.target.as_deref_mut() {
            Some(t) => Ok(t),
            None => Err(Error::NoTarget),
        }
    }

    /// Parses and runs one line. Blank lines and `#` comments give [`Output::Nothing`].
    pub fn execute(&mut self, line: &str) -> Result<Output> {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(Output::Nothing);
        }
        let cl = line::parse_command_line(line)?;
        let spec =
            registry::lookup(cl.name).ok_or_else(|| Error::UnknownCommand(cl.name.into()))?;
        let inv = Invocation {
            line,
            name: cl.name,
            modifier: cl.modifier,
            args: cl.args,
            args_col: cl.args_col,
        };
        let _scope = crate::interrupt::command_scope();
        (spec.run)(self, &inv)
    }

    /// Symbol names starting with `prefix`, for REPL completion (empty without a target).
    pub fn complete_symbol(&mut self, prefix: &str) -> Vec<String> {
        match (self.symbols.as_mut(), self.target.as_deref_mut()) {
            (Some(symbols), Some(target)) => symbols.complete(target, prefix),
            _ => Vec::new(),
        }
    }

    /// Runs one line and prints its result or error; returns whether it succeeded.
    pub fn run_line(&mut self, line: &str) -> bool {
        match self.execute(line) {
            Ok(out) => {
                self.printer.emit(self.settings, &out);
                true
            }
            Err(e) => {
                self.report(line, &e);
                false
            }
        }
    }

    /// Prints an error for the command on `line`.
    pub fn report(&mut self, line: &str, error: &Error) {
        let command = line
            .split_whitespace()
            .next()
            .and_then(|w| w.split('/').next())
            .unwrap_or("");
        self.printer.emit_error(self.settings, command, error);
    }

    /// Evaluates an address expression against the target and the convenience variables.
    pub fn eval(&mut self, inv: &Invocation<'_>, text: &str, col: usize) -> Result<u64> {
        let e = expr::parse_expr(text).map_err(|e| inv.parse_error(e, col))?;
        expr::eval(&e, &mut EvalCtx { session: self })
    }
}

/// One parsed command line, handed to a handler.
pub struct Invocation<'a> {
    pub line: &'a str,
    pub name: &'a str,
    pub modifier: Option<&'a str>,
    pub args: &'a str,
    pub args_col: usize,
}

impl<'a> Invocation<'a> {
    /// A parse error in a piece of the arguments that starts at `col` (chars into `args`),
    /// re-based onto the whole line so the caret lands under the right column.
    pub fn parse_error(&self, e: ParseError, col: usize) -> Error {
        Error::Parse(e.within(self.line, self.args_col + col))
    }

    /// The arguments split into words (parentheses, brackets and quotes kept together).
    pub fn words(&self) -> Result<Vec<(usize, &'a str)>> {
        expr::split_args(self.args).map_err(|e| self.parse_error(e, 0))
    }

    pub fn usage_error(&self, message: impl std::fmt::Display) -> Error {
        let usage = registry::lookup(self.name).map_or("", |s| s.usage);
        Error::Usage(format!("{message}\nusage: {usage}"))
    }
}

/// Resolves the names in expressions: registers and convenience variables, regions, symbols.
struct EvalCtx<'s> {
    session: &'s mut Session,
}

impl expr::EvalContext for EvalCtx<'_> {
    fn var(&mut self, name: &str) -> Result<u64> {
        if let Some(&v) = self.session.vars.get(name) {
            return Ok(v);
        }
        let target = self.session.target()?;
        match target.registers(None) {
            Ok(regs) => regs.get(name).ok_or_else(|| {
                Error::usage(format!("no register or convenience variable `${name}`"))
            }),
            Err(Error::NotStopped { pid, .. }) => Err(Error::usage(format!(
                "`${name}` is not a convenience variable, and registers need the target stopped: \
                 run `stop` first (process {pid} is running)"
            ))),
            Err(e) => Err(e),
        }
    }

    fn region(&mut self, name: &str) -> Result<u64> {
        let regions = self.session.target()?.regions()?;
        let wanted = format!("[{name}]");
        regions
            .iter()
            .find(|r| r.backing.label() == wanted || r.backing.label() == name)
            .map(|r| r.start.get())
            .ok_or_else(|| Error::usage(format!("no region named [{name}]")))
    }

    fn symbol(&mut self, name: &str) -> Result<u64> {
        let session = &mut *self.session;
        match (session.symbols.as_mut(), session.target.as_deref_mut()) {
            (Some(resolver), Some(target)) => resolver.resolve(target, name),
            _ => Err(Error::usage(format!(
                "no symbol `{name}`: symbol lookup is not available yet (use an address, \
                 a register, a region like [heap], or a $variable)"
            ))),
        }
    }

    fn read_pointer(&mut self, addr: VirtAddr) -> Result<u64> {
        let mut buf = [0u8; 8];
        let n = self.session.target()?.read(addr, &mut buf)?;
        if n < buf.len() {
            return Err(Error::Unreadable {
                addr,
                len: buf.len(),
                reason: format!("only {n} bytes readable"),
            });
        }
        Ok(u64::from_le_bytes(buf))
    }
}
