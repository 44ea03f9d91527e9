//! Colors, applied only when enabled (`--color`, `set color`, NO_COLOR). One place decides what a
//! kind of text looks like, so every command colors alike.

use owo_colors::OwoColorize;
use std::fmt::Display;
use std::io::{self, Write};

/// What a piece of text is, for coloring: region kinds and parts share one palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    Code,
    Data,
    Rodata,
    Heap,
    Stack,
    File,
    Shared,
    WriteExec,
    Dim,
    Plain,
}

#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    pub fn new(enabled: bool) -> Style {
        Style { enabled }
    }

    fn paint_with<T: Display>(&self, t: T, f: impl Fn(&T) -> String) -> String {
        if self.enabled { f(&t) } else { t.to_string() }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Text in the color of what it is (pwndbg's palette: code red, data magenta, heap blue,
    /// stack yellow; writable+executable on a red background).
    pub fn paint<T: Display>(&self, what: Paint, t: T) -> String {
        self.paint_with(t, |t| match what {
            Paint::Code => t.red().to_string(),
            Paint::Data => t.magenta().to_string(),
            Paint::Rodata => t.white().to_string(),
            Paint::Heap => t.blue().to_string(),
            Paint::Stack => t.yellow().to_string(),
            Paint::File => t.cyan().to_string(),
            Paint::Shared => t.green().to_string(),
            Paint::WriteExec => t.on_red().bold().to_string(),
            Paint::Dim => t.dimmed().to_string(),
            Paint::Plain => t.to_string(),
        })
    }

    /// The line `legend: NAME NAME...`, each name in its own color; nothing when color is off
    /// (plain text needs no key).
    pub fn legend(&self, items: &[(Paint, &str)], w: &mut dyn Write) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        write!(w, "legend:")?;
        for &(what, name) in items {
            write!(w, " {}", self.paint(what, name))?;
        }
        writeln!(w)
    }

    pub fn addr<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.cyan().to_string())
    }

    pub fn heading<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.bold().to_string())
    }

    pub fn dim<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.dimmed().to_string())
    }

    pub fn error<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.red().bold().to_string())
    }

    pub fn warn<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.yellow().to_string())
    }

    pub fn name<T: Display>(&self, t: T) -> String {
        self.paint_with(t, |t| t.green().to_string())
    }
}
