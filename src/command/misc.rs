//! Small commands: `print`, `echo`, `source`, `quit`, and the plain message/value results.

use super::{Invocation, Output, Session};
use crate::error::{Error, Result};
use serde::Serialize;

/// A one-line answer (`detached from 42`).
#[derive(Debug, Serialize)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn output(message: impl Into<String>) -> Output {
        Output::Message(Message {
            message: message.into(),
        })
    }
}

/// The value of an expression.
#[derive(Debug, Serialize)]
pub struct Value {
    pub expression: String,
    pub value: u64,
    pub hex: String,
}

pub fn run_print(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    if inv.args.is_empty() {
        return Err(inv.usage_error("print needs an expression"));
    }
    let value = session.eval(inv, inv.args, 0)?;
    Ok(Output::Value(Value {
        expression: inv.args.to_string(),
        value,
        hex: format!("{value:#x}"),
    }))
}

pub fn run_echo(_session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    Ok(Message::output(inv.args.replace("\\n", "\n")))
}

pub fn run_source(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    if inv.args.is_empty() {
        return Err(inv.usage_error("source needs a file name"));
    }
    crate::script::run_file(session, std::path::Path::new(inv.args), false)?;
    Ok(Output::Nothing)
}

pub fn run_quit(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    if !inv.args.is_empty() {
        return Err(inv.usage_error("quit takes no arguments"));
    }
    session.quit_requested = true;
    Ok(Output::Nothing)
}

/// Parses a decimal or 0x number argument, with the caret on failure.
pub fn parse_number(inv: &Invocation<'_>, col: usize, word: &str) -> Result<u64> {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => word.replace('_', "").parse(),
    };
    parsed.map_err(|_| {
        inv.parse_error(
            crate::error::ParseError::new(inv.args, col, format!("`{word}` is not a number")),
            0,
        )
    })
}

/// Fails when a command got arguments it does not take.
pub fn no_args(inv: &Invocation<'_>) -> Result<()> {
    if inv.args.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!("`{}` takes no arguments", inv.name)))
    }
}
