//! Process control: `stop`, `continue`, `detach`, `attach`. ptrace is taken only here, on demand.

use super::misc::{Message, no_args, parse_number};
use super::{Invocation, Output, Session};
use crate::error::Result;
use crate::target::{SignalFate, TargetKind};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Stopped {
    pub pid: i32,
    pub threads: Vec<i32>,
}

pub fn run_stop(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    no_args(inv)?;
    let report = session.target()?.stop()?;
    Ok(Message::output(format!(
        "stopped process {} ({} thread{}): `continue` to resume, `detach` to let go",
        report.pid,
        report.threads.len(),
        if report.threads.len() == 1 { "" } else { "s" }
    )))
}

pub fn run_continue(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    no_args(inv)?;
    let target = session.target()?;
    target.resume()?;
    Ok(Message::output(format!(
        "process {} continues",
        target.info().pid
    )))
}

pub fn run_detach(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    no_args(inv)?;
    let mut target = session.take_target().ok_or(crate::error::Error::NoTarget)?;
    let pid = target.info().pid;
    let launched = target.info().kind == TargetKind::Launched;
    let result = target.detach();
    drop(target); // a launched process is killed here
    result?;
    Ok(Message::output(if launched {
        format!("killed process {pid}, which vmscope had started")
    } else {
        format!("detached from process {pid}; it keeps running")
    }))
}

pub fn run_attach(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let words = inv.words()?;
    let [(col, word)] = words.as_slice() else {
        return Err(inv.usage_error("attach needs one pid"));
    };
    let pid = parse_number(inv, *col, word)?;
    let pid = i32::try_from(pid).map_err(|_| inv.usage_error(format!("{pid} is not a pid")))?;
    let target = crate::target::attach(pid)?;
    if let Some(mut old) = session.take_target() {
        let _ = old.detach();
    }
    let exe = target
        .info()
        .exe
        .as_ref()
        .map(|p| crate::render::escape::escape_str(&p.to_string_lossy()).into_owned())
        .unwrap_or_else(|| "?".into());
    session.set_target(target);
    Ok(Message::output(format!(
        "attached to process {pid} ({exe})"
    )))
}

pub fn run_signal(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let words = inv.words()?;
    let (signal, pid) = match words.as_slice() {
        [(_, sig)] => (*sig, None),
        [(_, sig), (col, pid)] => {
            let pid = session.eval(inv, pid, *col)?;
            let pid =
                i32::try_from(pid).map_err(|_| inv.usage_error(format!("{pid} is not a pid")))?;
            (*sig, Some(pid))
        }
        _ => return Err(inv.usage_error("signal needs a signal name and optionally a pid")),
    };
    let sent = session.target()?.signal(signal, pid)?;
    let (name, to) = (sent.name, sent.pid);
    Ok(Message::output(match sent.fate {
        SignalFate::Delivered => format!("sent {name} to process {to}: delivered"),
        SignalFate::Ignored => format!("sent {name} to process {to}: it ignores {name}"),
        SignalFate::Pending => format!(
            "sent {name} to process {to}: still pending (every thread blocks it, or the process \
             is stopped)"
        ),
    }))
}
