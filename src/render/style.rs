//! Colors, applied only when enabled (`--color`, `set color`, NO_COLOR). One place decides what a
//! kind of text looks like, so every command colors alike.

use owo_colors::OwoColorize;
use std::fmt::Display;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    pub fn new(enabled: bool) -> Style {
        Style { enabled }
    }

    fn paint<T: Display>(&self, t: T, f: impl Fn(&T) -> String) -> String {
        if self.enabled { f(&t) } else { t.to_string() }
    }

    pub fn addr<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.cyan().to_string())
    }

    pub fn heading<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.bold().to_string())
    }

    pub fn dim<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.dimmed().to_string())
    }

    pub fn error<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.red().bold().to_string())
    }

    pub fn warn<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.yellow().to_string())
    }

    pub fn name<T: Display>(&self, t: T) -> String {
        self.paint(t, |t| t.green().to_string())
    }
}
