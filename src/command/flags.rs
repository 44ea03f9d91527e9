//! Command flags: `--wide`, `--kind heap`, `-A 2`, and positional words, split from a command's
//! arguments with the column of each, so a bad flag or value gets a caret under it.

use super::Invocation;
use crate::error::{ParseError, Result};

/// The arguments of one command, sorted into switches, valued flags and positional words.
pub struct Flags<'a> {
    switches: Vec<&'static str>,
    values: Vec<(&'static str, usize, &'a str)>,
    pub positional: Vec<(usize, &'a str)>,
}

impl<'a> Flags<'a> {
    /// Sorts `inv`'s words; `switches` and `valued` list the accepted spellings (`--wide`, `-A`).
    pub fn parse(
        inv: &Invocation<'a>,
        switches: &[&'static str],
        valued: &[&'static str],
    ) -> Result<Flags<'a>> {
        let words = inv.words()?;
        let mut flags = Flags {
            switches: Vec::new(),
            values: Vec::new(),
            positional: Vec::new(),
        };
        let mut it = words.into_iter();
        while let Some((col, word)) = it.next() {
            if let Some(&name) = switches.iter().find(|s| **s == word) {
                flags.switches.push(name);
            } else if let Some(&name) = valued.iter().find(|s| **s == word) {
                let Some((vcol, value)) = it.next() else {
                    return Err(inv.parse_error(
                        ParseError::new(inv.args, col, format!("{word} needs a value")),
                        0,
                    ));
                };
                flags.values.push((name, vcol, value));
            } else if word.starts_with("--")
                || (word.starts_with('-')
                    && word.len() > 1
                    && !word[1..].starts_with(|c: char| c.is_ascii_digit()))
            {
                let known: Vec<&str> = switches.iter().chain(valued).copied().collect();
                return Err(inv.parse_error(
                    ParseError::new(
                        inv.args,
                        col,
                        format!("unknown flag `{word}` (flags: {})", known.join(" ")),
                    ),
                    0,
                ));
            } else {
                flags.positional.push((col, word));
            }
        }
        Ok(flags)
    }

    pub fn has(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }

    /// The last value given for any of `names`, with its column.
    pub fn value(&self, names: &[&str]) -> Option<(usize, &'a str)> {
        self.values
            .iter()
            .rev()
            .find(|(n, _, _)| names.contains(n))
            .map(|&(_, c, v)| (c, v))
    }

    /// A whole-number value, with a caret under a bad one.
    pub fn number(&self, inv: &Invocation<'_>, names: &[&str]) -> Result<Option<u64>> {
        match self.value(names) {
            None => Ok(None),
            Some((col, v)) => super::misc::parse_number(inv, col, v).map(Some),
        }
    }
}
