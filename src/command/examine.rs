//! `x/NFU EXPR`: examine memory in gdb's formats, with pointer-sized values annotated with the
//! region they point into. Format and size are remembered between uses, and `x` alone continues
//! after the last address, as in gdb.

use super::{ExamineState, Invocation, Output, Session};
use crate::addr::VirtAddr;
use crate::error::{Error, ParseError, Result};
use crate::regions::{self, Region};
use crate::render::escape::escape_bytes;
use serde::Serialize;

/// Longest string `x/s` reads before it stops looking for the terminating NUL.
const MAX_STRING: usize = 4096;
/// More units than this in one `x` is almost certainly a typo.
const MAX_COUNT: u64 = 1 << 20;

#[derive(Debug, Serialize)]
pub struct Examine {
    pub address: VirtAddr,
    pub format: char,
    /// Unit size in bytes (1, 2, 4, 8).
    pub size: u8,
    pub count: usize,
    pub items: Vec<Item>,
    /// Set when memory ran out before `count` units: how much was read and why it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial: Option<Partial>,
}

#[derive(Debug, Serialize)]
pub struct Item {
    pub address: VirtAddr,
    /// The unit's value (zero-extended; absent for strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// The value in the requested format (`0x0000000000000001`, `-3`, `'A'`, `"text"`).
    pub text: String,
    /// For `a` (and values that point into the process): where the value points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points_to: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Partial {
    pub read: usize,
    pub requested: usize,
    pub error: String,
}

/// Count, format and size from the `/NFU` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmt {
    pub count: u64,
    pub format: char,
    pub size: u8,
}

/// Parses gdb's `NFU` modifier; unknown letters are errors at their column within `m`.
pub fn parse_modifier(m: &str, last: &ExamineState) -> Result<Fmt, ParseError> {
    let digits = m.chars().take_while(|c| c.is_ascii_digit()).count();
    let count = if digits == 0 {
        1
    } else {
        m[..digits]
            .parse::<u64>()
            .ok()
            .filter(|&c| c > 0 && c <= MAX_COUNT)
            .ok_or_else(|| {
                ParseError::new(m, 0, format!("count must be between 1 and {MAX_COUNT}"))
            })?
    };
    let mut format = None;
    let mut size = None;
    for (i, c) in m.char_indices().skip(digits) {
        match c {
            'x' | 'd' | 'u' | 'o' | 't' | 'c' | 'a' | 's' => format = Some(c),
            'b' => size = Some(1),
            'h' => size = Some(2),
            'w' => size = Some(4),
            'g' => size = Some(8),
            'i' => {
                return Err(ParseError::new(
                    m,
                    i,
                    "format `i` (instructions) needs a disassembler, which vmscope does not have",
                ));
            }
            _ => {
                return Err(ParseError::new(
                    m,
                    i,
                    format!(
                        "unknown format letter `{c}`: formats are x d u o t c a s, sizes b h w g"
                    ),
                ));
            }
        }
    }
    let format = format.unwrap_or(last.format);
    let size = match (format, size) {
        ('a', _) => 8,
        ('c', None) => 1,
        ('s', _) => 1,
        (_, Some(s)) => s,
        (_, None) if last.format == 's' || last.format == 'c' => 4,
        (_, None) => last.size,
    };
    Ok(Fmt {
        count,
        format,
        size,
    })
}

pub fn run(session: &mut Session, inv: &Invocation<'_>) -> Result<Output> {
    let fmt = match inv.modifier {
        Some(m) => parse_modifier(m, &session.examine).map_err(|e| {
            let col = inv
                .line
                .find('/')
                .map_or(0, |i| inv.line[..=i].chars().count());
            Error::Parse(e.within(inv.line, col))
        })?,
        None => Fmt {
            count: 1,
            format: session.examine.format,
            size: session.examine.size,
        },
    };
    let address = if inv.args.is_empty() {
        session.examine.next.ok_or_else(|| {
            inv.usage_error("x needs an address (there is no previous `x` to continue)")
        })?
    } else {
        VirtAddr(session.eval(inv, inv.args, 0)?)
    };
    let target = session.target()?;
    let regions = target.regions()?;
    let mut out = if fmt.format == 's' {
        examine_strings(target, address, fmt)?
    } else {
        examine_units(target, &regions, address, fmt)?
    };
    super::whatis::annotate(session, &regions, &mut out.items);
    let consumed: u64 = match out.items.last() {
        Some(last) if fmt.format == 's' => {
            last.address.get() - address.get() + last.value.unwrap_or(0) + 1
        }
        _ => out.items.len() as u64 * u64::from(fmt.size),
    };
    session.examine = ExamineState {
        count: fmt.count,
        format: fmt.format,
        size: fmt.size,
        next: address.checked_add(consumed),
    };
    Ok(Output::Examine(out))
}

fn examine_units(
    target: &mut dyn crate::target::Target,
    regions: &[Region],
    address: VirtAddr,
    fmt: Fmt,
) -> Result<Examine> {
    let size = usize::from(fmt.size);
    let requested = fmt.count as usize * size;
    let mut buf = vec![0u8; requested];
    let mut read = 0;
    let mut error = None;
    while read < requested {
        crate::interrupt::check()?;
        let at = VirtAddr(address.get().wrapping_add(read as u64));
        match target.read(at, &mut buf[read..]) {
            Ok(n) => read += n,
            Err(e @ Error::Unreadable { .. }) if read > 0 => {
                error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let units = read / size;
    let items = buf[..units * size]
        .chunks_exact(size)
        .enumerate()
        .map(|(i, bytes)| {
            let mut v = [0u8; 8];
            v[..size].copy_from_slice(bytes);
            let value = u64::from_le_bytes(v);
            let points_to = (fmt.format == 'a' || (fmt.size == 8 && fmt.format == 'x'))
                .then(|| describe_pointer(regions, VirtAddr(value)))
                .flatten();
            Item {
                address: VirtAddr(address.get() + (i * size) as u64),
                value: Some(value),
                text: format_value(value, fmt.format, fmt.size),
                points_to,
            }
        })
        .collect();
    let partial = (units < fmt.count as usize).then(|| Partial {
        read: units * size,
        requested,
        error: error
            .unwrap_or_else(|| format!("cannot read at {:#x}", address.get() + read as u64)),
    });
    Ok(Examine {
        address,
        format: fmt.format,
        size: fmt.size,
        count: fmt.count as usize,
        items,
        partial,
    })
}

fn examine_strings(
    target: &mut dyn crate::target::Target,
    address: VirtAddr,
    fmt: Fmt,
) -> Result<Examine> {
    let mut items = Vec::new();
    let mut at = address;
    let mut partial = None;
    for _ in 0..fmt.count {
        crate::interrupt::check()?;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 256];
        let mut terminated = false;
        while bytes.len() < MAX_STRING {
            let here = VirtAddr(at.get() + bytes.len() as u64);
            match target.read(here, &mut chunk) {
                Ok(n) => match chunk[..n].iter().position(|&b| b == 0) {
                    Some(end) => {
                        bytes.extend_from_slice(&chunk[..end]);
                        terminated = true;
                        break;
                    }
                    None => bytes.extend_from_slice(&chunk[..n]),
                },
                Err(e) if !items.is_empty() || !bytes.is_empty() => {
                    partial = Some(Partial {
                        read: (here.get() - address.get()) as usize,
                        requested: 0,
                        error: e.to_string(),
                    });
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let mut text = format!("\"{}\"", escape_bytes(&bytes).replace('"', "\\\""));
        if !terminated {
            text.push_str("...");
        }
        items.push(Item {
            address: at,
            value: Some(bytes.len() as u64),
            text,
            points_to: None,
        });
        at = VirtAddr(at.get() + bytes.len() as u64 + 1);
        if partial.is_some() {
            break;
        }
    }
    Ok(Examine {
        address,
        format: 's',
        size: 1,
        count: fmt.count as usize,
        items,
        partial,
    })
}

/// A value in one of gdb's formats, for a unit of `size` bytes.
pub fn format_value(value: u64, format: char, size: u8) -> String {
    let bits = u32::from(size) * 8;
    let signed = if bits == 64 {
        value as i64
    } else {
        ((value << (64 - bits)) as i64) >> (64 - bits)
    };
    match format {
        'x' | 'a' => format!("{value:#0width$x}", width = usize::from(size) * 2 + 2),
        'd' => signed.to_string(),
        'u' => value.to_string(),
        'o' => format!("0{value:o}"),
        't' => format!("{value:0width$b}", width = bits as usize),
        'c' => {
            let byte = [value as u8];
            format!("{signed} '{}'", escape_bytes(&byte).replace('\'', "\\'"))
        }
        _ => format!("{value:#x}"),
    }
}

/// Where a value points, in short: `[heap]+0x10`, `libc.so.6+0x1f00` (file offset), `[stack]+0x8`.
pub fn describe_pointer(regions: &[Region], value: VirtAddr) -> Option<String> {
    let r = regions::find(regions, value)?;
    let into = value.offset_from(r.start);
    Some(match r.backing.path() {
        Some(path) => {
            let base = path
                .file_name()
                .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
            format!("{}+{:#x}", base, r.offset.get() + into)
        }
        None if r.backing.label().is_empty() => format!("anon {}+{:#x}", r.start, into),
        None => format!("{}+{:#x}", r.backing.label(), into),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> ExamineState {
        ExamineState {
            count: 1,
            format: 'x',
            size: 4,
            next: None,
        }
    }

    #[test]
    fn modifiers() {
        let cases: &[(&str, u64, char, u8)] = &[
            ("8gx", 8, 'x', 8),
            ("gx8", 1, 'x', 8), // gdb wants the count first; letters after are format/size
            ("x", 1, 'x', 4),
            ("s", 1, 's', 1),
            ("3dw", 3, 'd', 4),
            ("2a", 2, 'a', 8),
            ("c", 1, 'c', 1),
            ("4b", 4, 'x', 1),
            ("t", 1, 't', 4),
        ];
        for &(m, count, format, size) in cases {
            if m == "gx8" {
                assert!(parse_modifier(m, &last()).is_err());
                continue;
            }
            let f = parse_modifier(m, &last()).unwrap();
            assert_eq!((f.count, f.format, f.size), (count, format, size), "{m}");
        }
    }

    #[test]
    fn modifier_errors() {
        let e = parse_modifier("8gz", &last()).unwrap_err();
        assert_eq!(e.column, 2);
        assert!(e.message.contains("unknown format letter `z`"));
        assert!(
            parse_modifier("8i", &last())
                .unwrap_err()
                .message
                .contains("disassembler")
        );
        assert!(parse_modifier("0x", &last()).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_value(1, 'x', 8), "0x0000000000000001");
        assert_eq!(format_value(0xfe, 'x', 1), "0xfe");
        assert_eq!(format_value(0xffff_fffd, 'd', 4), "-3");
        assert_eq!(format_value(0xffff_fffd, 'u', 4), "4294967293");
        assert_eq!(format_value(8, 'o', 4), "010");
        assert_eq!(format_value(5, 't', 1), "00000101");
        assert_eq!(format_value(65, 'c', 1), "65 'A'");
        assert_eq!(format_value(0x1b, 'c', 1), "27 '\\e'");
    }
}
