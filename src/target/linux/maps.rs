//! The /proc/PID/maps parser: turns the text of that file into [`Region`]s, one per line, and
//! decodes the name column into a [`Backing`] (plain and deleted files, paths with spaces and
//! escaped newlines, `[heap]`-style pseudo-names, named anonymous memory, memfd and System V
//! segments). Reading the file is the caller's business; this module owns only the format.
//!
//! The parser is hand-written byte scanning, not a regex or a parser-combinator grammar: it is the
//! hot path for processes with 60,000+ mappings (re-read on every refresh), and no crate parses
//! maps exactly on the cases handled here (spaces and trailing spaces inside names, ` (deleted)`,
//! `\012`, non-UTF-8 paths). It allocates nothing per line except the name's own `String` or
//! `PathBuf` when the backing carries one.
//!
//! The line format, as fs/proc/task_mmu.c writes it (checked against Linux 6.18):
//!
//! ```text
//! 7f33276eb000-7f3327711000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
//! ```
//!
//! `start-end perms offset major:minor inode `, single spaces between fields, hex numbers except
//! the decimal inode, and always a space after the inode. A line with a name is then padded with
//! spaces to 72 characters (on 64-bit kernels), and one more space is written, so the name starts
//! at the 74th character when the header is shorter than the pad (as it is on ordinary lines), and
//! in any case after a run of at least two spaces. A line without a name ends with the inode's
//! single space. Names are absolute paths (`d_path`), pseudo-names from the dentry
//! (`anon_inode:[...]`) or bracketed names, so a name never starts with a space and "everything
//! after the padding run" is exact. Inside a path the kernel escapes only a newline, as the four
//! bytes `\012`; a literal backslash is written as is, so a file really named `a\012b` reads back
//! as `a<newline>b`. The ` (deleted)` suffix of an unlinked file is likewise indistinguishable
//! from a file whose name ends with that text.

use crate::addr::{FileOffset, VirtAddr};
use crate::regions::{Backing, Perms, Region};
use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// A malformed line of /proc/PID/maps: its 1-based number and which field is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct MapsError {
    pub line: usize,
    pub message: String,
}

/// Parses the whole text of /proc/PID/maps; lines are in address order already.
///
/// The final newline is optional and an empty text gives no regions; any other empty line is an
/// error.
pub fn parse_maps(text: &[u8]) -> Result<Vec<Region>, MapsError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut regions = Vec::with_capacity(lines);
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        regions.push(parse_fields(line).map_err(|bad| bad.at(index + 1))?);
    }
    Ok(regions)
}

/// Parses one line (without the trailing newline).
pub fn parse_line(line: &[u8]) -> Result<Region, MapsError> {
    parse_fields(line).map_err(|bad| bad.at(1))
}

/// Which field of a line is wrong, and its text; turned into a [`MapsError`] only on failure.
struct Bad<'a> {
    field: &'static str,
    text: &'a [u8],
}

impl Bad<'_> {
    fn at(self, line: usize) -> MapsError {
        /// Enough of the offending text to recognise it, without copying a huge garbage line.
        const SHOWN: usize = 64;
        let message = if self.field == "line" {
            "empty line".to_owned()
        } else if self.text.is_empty() {
            format!("missing {}", self.field)
        } else {
            let shown = &self.text[..self.text.len().min(SHOWN)];
            let more = if shown.len() < self.text.len() {
                "..."
            } else {
                ""
            };
            format!("bad {}: \"{}\"{more}", self.field, shown.escape_ascii())
        };
        MapsError { line, message }
    }
}

fn bad<'a>(field: &'static str, text: &'a [u8]) -> Bad<'a> {
    Bad { field, text }
}

/// Splits `s` at the first `sep`: the bytes before it, and those after it (empty when `sep` is
/// missing, which the next field then reports as missing).
fn split_field(s: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// A hexadecimal number of 1 to `max_digits` digits and nothing else.
fn hex(s: &[u8], max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(digit))
    })
}

/// A decimal `u64` and nothing else.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// `major:minor`, both hexadecimal.
fn device(s: &[u8]) -> Option<(u32, u32)> {
    let (major, minor) = split_field(s, b':');
    if major.len() == s.len() {
        return None; // no colon
    }
    // Eight digits fit in a u32.
    Some((hex(major, 8)? as u32, hex(minor, 8)? as u32))
}

fn parse_fields(line: &[u8]) -> Result<Region, Bad<'_>> {
    if line.is_empty() {
        return Err(bad("line", line));
    }
    let (start_text, rest) = split_field(line, b'-');
    let start = hex(start_text, 16).ok_or(bad("start address", start_text))?;
    let (end_text, rest) = split_field(rest, b' ');
    let end = hex(end_text, 16).ok_or(bad("end address", end_text))?;
    if start >= end {
        let range = &line[..start_text.len() + 1 + end_text.len()];
        return Err(bad("address range (end must be above start)", range));
    }
    let (perms_text, rest) = split_field(rest, b' ');
    let perms = Perms::parse(perms_text).ok_or(bad("permissions", perms_text))?;
    let (offset_text, rest) = split_field(rest, b' ');
    let offset = hex(offset_text, 16).ok_or(bad("offset", offset_text))?;
    let (dev_text, rest) = split_field(rest, b' ');
    let dev = device(dev_text).ok_or(bad("device", dev_text))?;
    // The inode ends at the first space, or at the end of a line without a name whose trailing
    // space was trimmed by whoever produced the text.
    let (inode_text, rest) = split_field(rest, b' ');
    let inode = decimal(inode_text).ok_or(bad("inode", inode_text))?;
    let padding = rest.iter().take_while(|&&b| b == b' ').count();
    let name = &rest[padding..];
    Ok(Region {
        start: VirtAddr(start),
        end: VirtAddr(end),
        perms,
        offset: FileOffset(offset),
        dev,
        inode,
        backing: backing(name),
        usage: None,
    })
}

/// What the kernel appends to the path of an unlinked file.
const DELETED: &[u8] = b" (deleted)";

/// Decodes the name column (after the padding).
fn backing(name: &[u8]) -> Backing {
    if name.is_empty() {
        return Backing::Anonymous;
    }
    if let Some(inner) = name.strip_prefix(b"[").and_then(|n| n.strip_suffix(b"]")) {
        return match inner {
            b"heap" => Backing::Heap,
            b"stack" => Backing::Stack,
            b"vdso" => Backing::Vdso,
            b"vvar" => Backing::Vvar,
            b"vsyscall" => Backing::Vsyscall,
            _ if inner.starts_with(b"vvar_") => Backing::Vvar,
            _ => {
                if let Some(n) = inner.strip_prefix(b"anon:") {
                    Backing::AnonNamed { name: lossy(n) }
                } else if let Some(n) = inner.strip_prefix(b"anon_shmem:") {
                    Backing::ShmemNamed { name: lossy(n) }
                } else {
                    Backing::Special { name: lossy(inner) }
                }
            }
        };
    }
    let (path, deleted) = match name.strip_suffix(DELETED) {
        Some(path) => (path, true),
        None => (name, false),
    };
    if deleted {
        // memfd and SysV files are always unlinked; without the suffix these are real files.
        if let Some(n) = path.strip_prefix(b"/memfd:") {
            return Backing::Memfd {
                name: lossy(&unescape(n)),
            };
        }
        if let Some(key) = path.strip_prefix(b"/SYSV").and_then(sysv_key) {
            return Backing::SysV { key };
        }
        // MAP_SHARED|MAP_ANONYMOUS is backed by an unlinked /dev/zero on shmem.
        if path == b"/dev/zero" {
            return Backing::SharedAnonymous;
        }
    }
    Backing::File {
        path: PathBuf::from(OsString::from_vec(unescape(path).into_owned())),
        deleted,
    }
}

/// The key of `/SYSV%08x`: exactly eight hex digits.
fn sysv_key(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    hex(digits, 8).map(|k| k as u32)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Undoes the kernel's only path escape, `\012` for a newline. Borrowed when there is none.
fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    const ESCAPE: &[u8] = b"\\012";
    if !s.contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&b, tail)) = rest.split_first() {
        if rest.starts_with(ESCAPE) {
            out.push(b'\n');
            rest = &rest[ESCAPE.len()..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::find;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::Mutex;

    fn file(path: &[u8], deleted: bool) -> Backing {
        Backing::File {
            path: PathBuf::from(OsStr::from_bytes(path)),
            deleted,
        }
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    /// Real lines (spacing as the kernel writes it: the name is the 74th character) and their
    /// backing.
    #[test]
    fn name_column_table() {
        let cases: Vec<(&[u8], Backing)> = vec![
            // Anonymous: the kernel leaves the space after the inode.
            (
                b"7f3327666000-7f3327688000 rw-p 00000000 00:00 0 ",
                Backing::Anonymous,
            ),
            // ... which a copy-paste may have trimmed.
            (
                b"7f3327666000-7f3327688000 rw-p 00000000 00:00 0",
                Backing::Anonymous,
            ),
            (
                b"7f33276eb000-7f3327711000 r--p 00000000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6",
                file(b"/usr/lib/x86_64-linux-gnu/libc.so.6", false),
            ),
            (
                b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /path/with spaces/file name",
                file(b"/path/with spaces/file name", false),
            ),
            // Trailing spaces belong to the name.
            (
                b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /tmp/trailing  ",
                file(b"/tmp/trailing  ", false),
            ),
            (
                b"7f66924c2000-7f66924c3000 r--s 00000000 fe:00 10010849                   /path (deleted)",
                file(b"/path", true),
            ),
            (
                b"7f66924c2000-7f66924c3000 r--s 00000000 fe:00 10010849                   /tmp/a b  (deleted)",
                file(b"/tmp/a b ", true),
            ),
            // Not the kernel's suffix (no space before it).
            (
                b"7f66924c2000-7f66924c3000 r--s 00000000 fe:00 10010849                   /tmp/x(deleted)",
                file(b"/tmp/x(deleted)", false),
            ),
            // `\012` is a newline; other backslashes are literal.
            (
                b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /tmp/a b\\012c\\d\\012e  ",
                file(b"/tmp/a b\nc\\d\ne  ", false),
            ),
            (
                b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /tmp/x\\01\\0122\\",
                file(b"/tmp/x\\01\n2\\", false),
            ),
            (
                b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /tmp/new\\012line (deleted)",
                file(b"/tmp/new\nline", true),
            ),
            // Not UTF-8: the bytes are kept.
            (
                b"7f66924c3000-7f66924c4000 r--p 00000000 fe:00 10010848                   /tmp/\xff\xfe latin\xe9",
                file(b"/tmp/\xff\xfe latin\xe9", false),
            ),
            (
                b"560ecd683000-560ecd6a4000 rw-p 00000000 00:00 0                          [heap]",
                Backing::Heap,
            ),
            (
                b"7fff612e7000-7fff61308000 rw-p 00000000 00:00 0                          [stack]",
                Backing::Stack,
            ),
            (
                b"7f33278de000-7f33278e0000 r-xp 00000000 00:00 0                          [vdso]",
                Backing::Vdso,
            ),
            (
                b"7f33278d8000-7f33278dc000 r--p 00000000 00:00 0                          [vvar]",
                Backing::Vvar,
            ),
            (
                b"7f33278dc000-7f33278de000 r--p 00000000 00:00 0                          [vvar_vclock]",
                Backing::Vvar,
            ),
            (
                b"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
                Backing::Vsyscall,
            ),
            (
                b"7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          [anon:libc_malloc]",
                Backing::AnonNamed { name: s("libc_malloc") },
            ),
            (
                b"7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          [anon:jit code cache]",
                Backing::AnonNamed {
                    name: s("jit code cache"),
                },
            ),
            (
                b"7f1c4a200000-7f1c4a400000 rw-s 00000000 00:01 2051                       [anon_shmem:ring buf]",
                Backing::ShmemNamed { name: s("ring buf") },
            ),
            (
                b"7f1c4a200000-7f1c4a201000 r-xp 00000000 00:00 0                          [uprobes]",
                Backing::Special { name: s("uprobes") },
            ),
            (
                b"7f1c4a200000-7f1c4a201000 rw-p 00000000 00:00 0                          [stack:1234]",
                Backing::Special {
                    name: s("stack:1234"),
                },
            ),
            (
                b"7f33a4c00000-7f33a4e00000 rw-s 00000000 00:01 2048                       /memfd:sealed-91173221a7ea (deleted)",
                Backing::Memfd {
                    name: s("sealed-91173221a7ea"),
                },
            ),
            (
                b"7f66923ba000-7f66923bb000 rw-s 00000000 00:01 24                         /memfd:my buf\\012x (deleted)",
                Backing::Memfd {
                    name: s("my buf\nx"),
                },
            ),
            // A file that happens to live at /memfd:... and is not deleted.
            (
                b"7f66923ba000-7f66923bb000 r--p 00000000 fe:00 4711                       /memfd:plain",
                file(b"/memfd:plain", false),
            ),
            (
                b"7f669184b000-7f669184c000 rw-s 00000000 00:01 32789                      /SYSV0000abcd (deleted)",
                Backing::SysV { key: 0xabcd },
            ),
            (
                b"7f6691871000-7f6691872000 rw-s 00000000 00:01 0                          /SYSV00000000 (deleted)",
                Backing::SysV { key: 0 },
            ),
            (
                b"7f6691871000-7f6691872000 rw-s 00000000 00:01 7                          /SYSVffffffff (deleted)",
                Backing::SysV { key: u32::MAX },
            ),
            // Not eight hex digits: just a deleted file.
            (
                b"7f6691871000-7f6691872000 rw-s 00000000 00:01 7                          /SYSV0000abc (deleted)",
                file(b"/SYSV0000abc", true),
            ),
            (
                b"7f6691871000-7f6691872000 rw-s 00000000 00:01 7                          /SYSV0000abcg (deleted)",
                file(b"/SYSV0000abcg", true),
            ),
            // Shared anonymous memory is a deleted /dev/zero on shmem.
            (
                b"7f6691872000-7f6691873000 rw-s 00000000 00:01 25                         /dev/zero (deleted)",
                Backing::SharedAnonymous,
            ),
            // Pseudo-files name themselves without a leading slash.
            (
                b"7f6691872000-7f6691873000 rw-s 00000000 00:0f 1057                       anon_inode:[io_uring]",
                file(b"anon_inode:[io_uring]", false),
            ),
            // A header longer than the pad column: only the seq_pad space precedes the name.
            (
                b"ffffffffff600000-ffffffffff601000 r--p 7fffffffffff0000 103:fffff 18446744073709551615  /very/long header",
                file(b"/very/long header", false),
            ),
        ];
        for (line, expected) in cases {
            let shown = line.escape_ascii().to_string();
            let region = parse_line(line).unwrap_or_else(|e| panic!("{shown}: {e}"));
            assert_eq!(region.backing, expected, "{shown}");
            assert_eq!(parse_maps(line).unwrap(), vec![region], "{shown}");
        }
    }

    #[test]
    fn numeric_fields() {
        let r = parse_line(
            b"7f33278ce000-7f33278d5000 r--s 0017c000 fe:00 325745                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
        )
        .unwrap();
        assert_eq!(r.start, VirtAddr(0x7f33_278c_e000));
        assert_eq!(r.end, VirtAddr(0x7f33_278d_5000));
        assert_eq!(r.perms, Perms::parse(b"r--s").unwrap());
        assert_eq!(r.offset, FileOffset(0x17_c000));
        assert_eq!(r.dev, (0xfe, 0));
        assert_eq!(r.inode, 325_745);

        let r = parse_line(
            b"ffffffffff600000-ffffffffff601000 r--p 7fffffffffff0000 103:fffff 18446744073709551615  /x",
        )
        .unwrap();
        assert_eq!(r.start, VirtAddr(0xffff_ffff_ff60_0000));
        assert_eq!(r.offset, FileOffset(0x7fff_ffff_ffff_0000));
        assert_eq!(r.dev, (0x103, 0xfffff));
        assert_eq!(r.inode, u64::MAX);
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty line"),
            (b"zz-1000 r--p 00000000 00:00 0 ", "bad start address"),
            (b"10000000000000000-1 r--p 0 00:00 0", "bad start address"),
            (b"1000", "missing end address"),
            (b"1000-", "missing end address"),
            (b"1000-2g00 r--p 00000000 00:00 0 ", "bad end address"),
            (b"2000-1000 r--p 00000000 00:00 0 ", "bad address range"),
            (b"1000-1000 r--p 00000000 00:00 0 ", "bad address range"),
            (b"1000-2000", "missing permissions"),
            (b"1000-2000  r--p 00000000 00:00 0 ", "missing permissions"),
            (b"1000-2000 r-q 00000000 00:00 0 ", "bad permissions"),
            (b"1000-2000 rw-pp 00000000 00:00 0 ", "bad permissions"),
            (b"1000-2000 r--p", "missing offset"),
            (b"1000-2000 r--p xyz 00:00 0", "bad offset"),
            (b"1000-2000 r--p 00000000", "missing device"),
            (b"1000-2000 r--p 0 0000 0", "bad device"),
            (b"1000-2000 r--p 0 :00 0", "bad device"),
            (b"1000-2000 r--p 0 00: 0", "bad device"),
            (b"1000-2000 r--p 0 123456789:0 0", "bad device"),
            (b"1000-2000 r--p 0 00:00", "missing inode"),
            (b"1000-2000 r--p 0 00:00  /x", "missing inode"),
            (b"1000-2000 r--p 0 00:00 12x /x", "bad inode"),
            (b"1000-2000 r--p 0 00:00 -1", "bad inode"),
            (b"1000-2000 r--p 0 00:00 99999999999999999999", "bad inode"),
            (b"1000-2000\tr--p 0 00:00 0", "bad end address"),
        ];
        for &(line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert_eq!(err.line, 1);
            assert!(
                err.message.starts_with(want),
                "{}: got {err}, want {want}",
                line.escape_ascii()
            );
        }
        let err = parse_line(b"zz\xff-1").unwrap_err();
        assert_eq!(err.to_string(), "line 1: bad start address: \"zz\\xff\"");
    }

    #[test]
    fn whole_file_shapes() {
        let text = b"560e8f314000-560e8f316000 r--p 00000000 fe:00 247030                     /usr/bin/cat\n\
                     560ecd683000-560ecd6a4000 rw-p 00000000 00:00 0                          [heap]\n\
                     7f3327666000-7f3327688000 rw-p 00000000 00:00 0 \n";
        let regions = parse_maps(text).unwrap();
        assert_eq!(regions.len(), 3);
        assert_eq!(regions[2].backing, Backing::Anonymous);
        // Without the final newline: the same.
        assert_eq!(parse_maps(&text[..text.len() - 1]).unwrap(), regions);
        assert_eq!(parse_maps(b"").unwrap(), vec![]);
        // Blank lines are not part of the format.
        let mut doubled = text.to_vec();
        doubled.push(b'\n');
        assert_eq!(parse_maps(&doubled).unwrap_err().line, 4);
        assert_eq!(parse_maps(b"\n").unwrap_err().line, 1);
        // The error carries the 1-based number of the bad line.
        let mut broken = text.to_vec();
        broken.extend_from_slice(b"7f3327688000-7f33276df000 r--p 00000000 fe:00\n");
        let err = parse_maps(&broken).unwrap_err();
        assert_eq!(err.line, 4);
        assert_eq!(err.message, "missing inode");
    }

    /// Garbage, truncations and mutations of real lines: errors, never panics.
    #[test]
    fn garbage_never_panics() {
        let sample: &[u8] = b"7f66924c3000-7f66924c4000 r--s 00000000 fe:00 10010848                   /tmp/a b\\012c (deleted)\n\
              7f669184b000-7f669184c000 rw-s 00000000 00:01 32789                      /SYSV0000abcd (deleted)\n\
              7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          [anon:x]\n\
              7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          [\n\
              7f1c4a200000-7f1c4a400000 rw-p 00000000 00:00 0                          ]\n\
              7f33a4c00000-7f33a4e00000 rw-s 00000000 00:01 2048                       /memfd: (deleted)\n";
        for cut in 0..=sample.len() {
            let _ = parse_maps(&sample[..cut]);
            let _ = parse_line(&sample[cut..]);
        }
        // A deterministic xorshift stream over an alphabet rich in the format's own bytes.
        let alphabet = b"0123456789abcdefx-: \n\\[]()/rwxsp-deleted\xff\x00";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let len = (next() % 120) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_maps(&junk);
            let _ = parse_line(&junk);
            // Mutate one byte of a real line.
            let mut line = sample[..sample.iter().position(|&b| b == b'\n').unwrap()].to_vec();
            let at = (next() % line.len() as u64) as usize;
            line[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            let _ = parse_line(&line);
        }
    }

    /// Serialises the tests that change this process's mappings, so each sees its own.
    static MAPPINGS: Mutex<()> = Mutex::new(());

    fn self_maps() -> Vec<u8> {
        std::fs::read("/proc/self/maps").expect("read /proc/self/maps")
    }

    /// A unique path in the (canonical) temp dir with `name` appended.
    fn temp_path(name: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::fs::canonicalize(std::env::temp_dir()).expect("temp dir");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("vmscope-maps-{}-{n}{name}", std::process::id()))
    }

    /// Maps the first page of `path` read-only; the descriptor is closed again.
    fn map_file(path: &Path) -> *mut libc::c_void {
        let contents = vec![0x5a_u8; 4096];
        std::fs::write(path, &contents).expect("write temp file");
        let file = std::fs::File::open(path).expect("open temp file");
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh private read-only mapping of an open file; nothing else aliases it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED, "mmap {}", path.display());
        addr
    }

    /// The backing of the region that starts at `addr` in this process, read fresh.
    fn backing_at(addr: *mut libc::c_void) -> Option<Backing> {
        let regions = parse_maps(&self_maps()).expect("parse /proc/self/maps");
        find(&regions, VirtAddr(addr as u64))
            .filter(|r| r.start == VirtAddr(addr as u64))
            .map(|r| r.backing.clone())
    }

    fn unmap(addr: *mut libc::c_void) {
        // SAFETY: `addr` is a 4096-byte mapping made by this test and not used afterwards.
        assert_eq!(unsafe { libc::munmap(addr, 4096) }, 0);
    }

    #[test]
    fn parses_this_process() {
        let _guard = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        // The kernel generates the file a page at a time and drops its lock in between, so other
        // test threads changing their stacks can make one read show a region twice. The format
        // must always parse; the ordering invariants must hold on some read.
        let mut last_failure = String::new();
        for _ in 0..10 {
            let text = self_maps();
            let regions = parse_maps(&text).expect("parse /proc/self/maps");
            let lines = text.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(regions.len(), lines);
            assert!(regions.iter().all(|r| r.start < r.end));
            match regions.windows(2).find(|w| w[0].end > w[1].start) {
                None => {
                    // The code of this test lives in the test binary.
                    let exe = std::env::current_exe().expect("current_exe");
                    let code = find(
                        &regions,
                        VirtAddr(parses_this_process as fn() as usize as u64),
                    )
                    .expect("the region holding this code");
                    assert!(code.perms.exec);
                    assert_eq!(code.backing.path(), Some(exe.as_path()));
                    return;
                }
                Some(w) => last_failure = format!("{:?} then {:?}", w[0], w[1]),
            }
        }
        panic!("regions unsorted or overlapping on every read: {last_failure}");
    }

    #[test]
    fn real_file_with_spaces_and_newline() {
        let _guard = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        let path = temp_path(" spaced name\nsecond line\\x ");
        let addr = map_file(&path);
        let found = backing_at(addr);
        unmap(addr);
        std::fs::remove_file(&path).expect("remove temp file");
        assert_eq!(
            found,
            Some(Backing::File {
                path,
                deleted: false
            })
        );
    }

    #[test]
    fn real_deleted_file() {
        let _guard = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        let path = temp_path(" gone");
        let addr = map_file(&path);
        std::fs::remove_file(&path).expect("remove temp file");
        let found = backing_at(addr);
        unmap(addr);
        assert_eq!(
            found,
            Some(Backing::File {
                path,
                deleted: true
            })
        );
    }

    #[test]
    fn real_memfd_sysv_and_shared_anonymous() {
        let _guard = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        let shared = |fd: libc::c_int| {
            // SAFETY: a fresh shared mapping of `fd` (or anonymous memory for -1).
            let flags = libc::MAP_SHARED | if fd < 0 { libc::MAP_ANONYMOUS } else { 0 };
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    fd,
                    0,
                )
            };
            assert_ne!(addr, libc::MAP_FAILED);
            addr
        };

        // SAFETY: plain system calls on a NUL-terminated name and descriptors we own.
        let memfd = unsafe { libc::memfd_create(c"vmscope buf\nx".as_ptr(), 0) };
        assert!(memfd >= 0, "memfd_create");
        assert_eq!(unsafe { libc::ftruncate(memfd, 4096) }, 0);
        let memfd_addr = shared(memfd);
        unsafe { libc::close(memfd) };
        let anon_addr = shared(-1);

        // SAFETY: a private SysV segment, attached, then marked for removal at last detach.
        let shmid = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
        assert!(shmid >= 0, "shmget");
        let shm_addr = unsafe { libc::shmat(shmid, std::ptr::null(), 0) };
        unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
        assert_ne!(shm_addr as isize, -1, "shmat");

        let memfd_found = backing_at(memfd_addr);
        let anon_found = backing_at(anon_addr);
        let shm_found = backing_at(shm_addr);
        unmap(memfd_addr);
        unmap(anon_addr);
        // SAFETY: detaching the segment attached above.
        unsafe { libc::shmdt(shm_addr) };

        assert_eq!(
            memfd_found,
            Some(Backing::Memfd {
                name: s("vmscope buf\nx")
            })
        );
        assert_eq!(anon_found, Some(Backing::SharedAnonymous));
        assert_eq!(shm_found, Some(Backing::SysV { key: 0 }));
    }
}
