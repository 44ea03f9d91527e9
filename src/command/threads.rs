//! `threads` and `registers`: the target's threads, and the registers of a stopped one.

use super::misc::{no_args, parse_number};
use super::{Invocation, Output, Session};
use crate::error::Result;
use crate::target::{Registers, Thread};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Threads {
    pub pid: i32,
    pub threads: Vec<Thread>,
}

#[derive(Debug, Serialize)]
pub struct RegistersOut {
    pub tid: i32,
    pub registers: Vec<Register>,
}

#[derive(Debug, Serialize)]
pub struct Register {
    pub name: &'static str,
    pub value: String,
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    no_args(inv)?;
    let target = session.target()?;
    let threads = target.threads()?;
    Ok(Output::Threads(Threads {
        pid: target.info().pid,
        threads,
    }))
}

pub fn run_registers(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let words = inv.words()?;
    let tid = match words.as_slice() {
        [] => None,
        [(col, w)] => Some(parse_number(inv, *col, w)? as i32),
        _ => return Err(inv.usage_error("registers takes at most one thread id")),
    };
    let regs: Registers = session.target()?.registers(tid)?;
    Ok(Output::Registers(RegistersOut {
        tid: regs.tid,
        registers: regs
            .values
            .iter()
            .map(|&(name, v)| Register {
                name,
                value: format!("{v:#x}"),
            })
            .collect(),
    }))
}
