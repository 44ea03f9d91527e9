//! `help`: the command list, or one command's usage and explanation, from the registry.

use super::registry::{self, COMMANDS};
use super::{Invocation, Output, Session};
use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Help {
    pub commands: Vec<HelpEntry>,
    /// True when one command was asked for: show its long help.
    pub detailed: bool,
}

#[derive(Debug, Serialize)]
pub struct HelpEntry {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub summary: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
}

fn entry(c: &'static registry::CommandSpec) -> HelpEntry {
    HelpEntry {
        name: c.name,
        aliases: c.aliases,
        summary: c.summary,
        usage: c.usage,
        help: c.help,
    }
}

pub fn run(_session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let name = inv.args.trim();
    if name.is_empty() {
        return Ok(Output::Help(Help {
            commands: COMMANDS.iter().map(entry).collect(),
            detailed: false,
        }));
    }
    let spec = registry::lookup(name).ok_or_else(|| Error::UnknownCommand(name.into()))?;
    Ok(Output::Help(Help {
        commands: vec![entry(spec)],
        detailed: true,
    }))
}
