//! `info`: the process as the OS accounts for it.

use super::misc::no_args;
use super::{Invocation, Output, Session};
use crate::error::Result;
use crate::target::{ProcessFacts, TargetInfo};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Info {
    #[serde(flatten)]
    pub target: TargetInfo,
    #[serde(flatten)]
    pub facts: ProcessFacts,
    pub stopped: bool,
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    no_args(inv)?;
    let target = session.target()?;
    let facts = target.facts()?;
    Ok(Output::Info(Info {
        target: target.info().clone(),
        facts,
        stopped: target.is_stopped(),
    }))
}
