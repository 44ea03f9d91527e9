//! `set`: output settings (`color`, `json`) and convenience variables (`set $name = EXPR`).

use super::misc::Message;
use super::{Invocation, Output, Session};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct SettingsOut {
    pub color: bool,
    pub json: bool,
    pub variables: BTreeMap<String, String>,
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let args = inv.args;
    if args.is_empty() {
        return Ok(Output::Settings(SettingsOut {
            color: session.settings.color,
            json: session.settings.json,
            variables: session
                .vars
                .iter()
                .map(|(k, v)| (format!("${k}"), format!("{v:#x}")))
                .collect(),
        }));
    }
    if let Some(rest) = args.strip_prefix('$') {
        let Some((name, value)) = rest.split_once('=') else {
            return Err(inv.usage_error("expected `set $NAME = EXPR`"));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(inv.usage_error(format!("`${name}` is not a variable name")));
        }
        let col = args.len() - value.len();
        let value_text = value.trim_start();
        let col = col + (value.len() - value_text.len());
        let v = session.eval(inv, value_text.trim_end(), col)?;
        session.vars.insert(name.to_string(), v);
        return Ok(Message::output(format!("${name} = {v:#x}")));
    }
    let words = inv.words()?;
    let word = |i: usize| words.get(i).map(|w| w.1);
    let on_off = |w: Option<&str>| match w {
        Some("on" | "true" | "yes" | "1") => Ok(true),
        Some("off" | "false" | "no" | "0") => Ok(false),
        _ => Err(inv.usage_error("expected on or off")),
    };
    match word(0) {
        Some("color" | "colour") => {
            session.settings.color = match word(1) {
                Some("auto") => crate::render::color_auto(),
                w => on_off(w)?,
            };
            Ok(Message::output(format!(
                "color {}",
                if session.settings.color { "on" } else { "off" }
            )))
        }
        Some("json") => {
            session.settings.json = on_off(word(1))?;
            Ok(Message::output(format!(
                "json {}",
                if session.settings.json { "on" } else { "off" }
            )))
        }
        Some(other) => Err(Error::Usage(format!(
            "no setting `{other}`: try `set color on|off|auto`, `set json on|off` or `set $NAME = EXPR`"
        ))),
        None => unreachable!("empty arguments handled above"),
    }
}
