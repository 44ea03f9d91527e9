//! Text for the process-level results: help, info, threads, registers, examined memory, settings.

use super::escape::escape_str;
use super::style::Style;
use super::units::human;
use crate::command::threads::{RegistersOut, Threads};
use crate::command::{examine::Examine, help::Help, info::Info, settings::SettingsOut};
use std::io::{self, Write};

pub fn help(h: &Help, style: Style, w: &mut dyn Write) -> io::Result<()> {
    if h.detailed {
        for c in &h.commands {
            writeln!(
                w,
                "{}  {}",
                style.heading(c.usage),
                style.dim(format!("— {}", c.summary))
            )?;
            if !c.aliases.is_empty() {
                writeln!(w, "aliases: {}", c.aliases.join(", "))?;
            }
            writeln!(w)?;
            writeln!(w, "{}", c.help)?;
        }
        return Ok(());
    }
    let width = h.commands.iter().map(|c| c.name.len()).max().unwrap_or(0);
    writeln!(w, "{}", style.heading("Commands (help COMMAND for more):"))?;
    for c in &h.commands {
        let aliases = if c.aliases.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.aliases.join(", "))
        };
        writeln!(
            w,
            "  {}{}  {}{}",
            style.name(c.name),
            " ".repeat(width - c.name.len()),
            c.summary,
            style.dim(aliases)
        )?;
    }
    writeln!(
        w,
        "\nAddresses are expressions: 0x7f00_1000, $sp+8 (stopped), [heap], *($sp+8), $var."
    )
}

pub fn info(i: &Info, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let f = &i.facts;
    let size = |v: Option<u64>| v.map_or_else(|| "-".to_string(), human);
    let exe = i.target.exe.as_ref().map_or_else(
        || "?".to_string(),
        |p| escape_str(&p.to_string_lossy()).into_owned(),
    );
    let cmdline: Vec<String> = f
        .cmdline
        .iter()
        .map(|a| escape_str(a).into_owned())
        .collect();
    let rows = [
        ("pid", format!("{}", i.target.pid)),
        ("executable", exe),
        ("command line", cmdline.join(" ")),
        (
            "state",
            format!(
                "{}{}",
                escape_str(&f.state),
                if i.stopped {
                    ", stopped by vmscope"
                } else {
                    ""
                }
            ),
        ),
        ("threads", f.threads.to_string()),
        ("VmSize", size(f.vm_size)),
        (
            "VmRSS",
            format!(
                "{}  (anon {}, file {}, shmem {})",
                size(f.vm_rss),
                size(f.rss_anon),
                size(f.rss_file),
                size(f.rss_shmem)
            ),
        ),
        ("VmSwap", size(f.vm_swap)),
        (
            "page faults",
            format!(
                "{} minor, {} major",
                f.minflt.map_or("-".into(), |v| v.to_string()),
                f.majflt.map_or("-".into(), |v| v.to_string())
            ),
        ),
        ("page size", human(i.target.page_size)),
    ];
    for (k, v) in rows {
        writeln!(w, "{:<13} {v}", style.heading(format!("{k}:")))?;
    }
    Ok(())
}

pub fn threads(t: &Threads, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(
        w,
        "{}",
        style.heading(format!(
            "{:>8}  {:<16} {:<5} {:<22} {:<18} {}",
            "TID", "NAME", "STATE", "SYSCALL", "SP", "PC"
        ))
    )?;
    for th in &t.threads {
        let syscall = match &th.syscall {
            Some(s) => match s.name {
                Some(n) => format!("{n} ({})", s.number),
                None => format!("#{}", s.number),
            },
            None => "-".into(),
        };
        let opt = |a: Option<crate::addr::VirtAddr>| a.map_or("-".into(), |a| a.to_string());
        writeln!(
            w,
            "{:>8}  {:<16} {:<5} {:<22} {} {}",
            th.tid,
            escape_str(&th.name),
            th.state,
            syscall,
            style.addr(format!("{:<18}", opt(th.sp))),
            style.addr(opt(th.pc)),
        )?;
    }
    Ok(())
}

pub fn registers(r: &RegistersOut, style: Style, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "{}", style.heading(format!("thread {}", r.tid)))?;
    for reg in &r.registers {
        let v = u64::from_str_radix(reg.value.trim_start_matches("0x"), 16).unwrap_or(0);
        writeln!(
            w,
            "{:<9} {}  {}",
            reg.name,
            style.addr(format!("{:#018x}", v)),
            v
        )?;
    }
    Ok(())
}

pub fn examine(x: &Examine, style: Style, w: &mut dyn Write) -> io::Result<()> {
    let per_line = match (x.format, x.size) {
        ('s', _) => 1,
        ('a', _) | (_, 8) => 2,
        (_, 4) => 4,
        _ => 8,
    };
    for line in x.items.chunks(per_line) {
        write!(w, "{}:", style.addr(line[0].address))?;
        for item in line {
            write!(w, "  {}", item.text)?;
            if let Some(p) = &item.points_to {
                write!(w, " {}", style.dim(format!("<{}>", escape_str(p))))?;
            }
        }
        writeln!(w)?;
    }
    if let Some(p) = &x.partial {
        writeln!(
            w,
            "{}",
            style.warn(format!(
                "warning: read {} of {} bytes: {}",
                p.read, p.requested, p.error
            ))
        )?;
    }
    Ok(())
}

pub fn settings(s: &SettingsOut, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, "color {}", if s.color { "on" } else { "off" })?;
    writeln!(w, "json  {}", if s.json { "on" } else { "off" })?;
    for (k, v) in &s.variables {
        writeln!(w, "{k} = {v}")?;
    }
    Ok(())
}
