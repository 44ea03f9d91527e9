//! `snapshot [save FILE]`: takes the memory map of this moment (every region with its usage, kind
//! and detail, the process facts, the threads) as the session's baseline for `diff`, and with
//! `save FILE` writes it as versioned JSON that `diff FILE` and `vmscope --snapshot FILE` read.

use super::diff::unquote;
use super::{Invocation, Output, Session};
use crate::error::Result;
use crate::target::snapshot::Snapshot;
use serde::Serialize;
use std::path::Path;

/// What was taken (and where it was written).
#[derive(Debug, Serialize)]
pub struct SnapshotOut {
    /// The file written, or null for a snapshot kept only in the session.
    pub file: Option<String>,
    pub pid: i32,
    pub taken_at: String,
    pub regions: usize,
    /// Bytes mapped, resident, dirty and swapped, over every region.
    pub size: u64,
    pub rss: u64,
    pub dirty: u64,
    pub swap: u64,
    pub usage: bool,
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let words = inv.words()?;
    let file = match words.as_slice() {
        [] => None,
        [(_, "save"), (_, file)] => Some(unquote(file)),
        [(_, "save")] => return Err(inv.usage_error("snapshot save needs a file name")),
        [(_, "save"), _, (_, extra), ..] => {
            return Err(inv.usage_error(format!(
                "unexpected `{extra}` after the file name (quote a name with spaces)"
            )));
        }
        [(_, word), ..] => {
            return Err(inv.usage_error(format!(
                "unknown `{word}`: `snapshot` alone keeps one for `diff`, `snapshot save FILE` \
                 also writes it"
            )));
        }
    };
    let snap = Snapshot::take(session.target()?)?;
    if let Some(file) = file {
        snap.save(Path::new(file))?;
    }
    let mut out = SnapshotOut {
        file: file.map(str::to_string),
        pid: snap.pid,
        taken_at: snap.taken_at(),
        regions: snap.regions.len(),
        size: 0,
        rss: 0,
        dirty: 0,
        swap: 0,
        usage: snap.usage,
    };
    for e in snap.regions.iter() {
        out.size += e.region.size();
        if let Some(u) = &e.region.usage {
            out.rss += u.rss;
            out.dirty += u.dirty();
            out.swap += u.swap;
        }
    }
    session.last_snapshot = Some(snap);
    Ok(Output::Snapshot(out))
}
