//! Escaping of untrusted text. Everything read from a target (file names, memfd names, thread
//! names, memory bytes) may hold control characters; a mapping named with an ANSI escape must not
//! repaint the user's terminal. These functions make such text printable and unambiguous.

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes control characters (C0, DEL, C1) and backslashes in a string: `\n`, `\t`, `\e`,
/// `\x7f`, `\u{9b}`. Printable text, including non-ASCII letters, is kept.
pub fn escape_str(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`escape_str`] for raw bytes: invalid UTF-8 becomes `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => escape_str(s),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    push_escaped(&mut out, c);
                }
                for b in chunk.invalid() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\'
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\0' => out.push_str("\\0"),
        '\x1b' => out.push_str("\\e"),
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_control() {
        let cases = [
            ("plain /usr/lib/libc.so.6", "plain /usr/lib/libc.so.6"),
            ("evil\x1b[2Jname", "evil\\e[2Jname"),
            ("new\nline", "new\\nline"),
            ("back\\slash", "back\\\\slash"),
            ("del\x7f", "del\\x7f"),
            ("csi\u{9b}", "csi\\u{9b}"),
            ("héllo wörld", "héllo wörld"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_str(input), want, "{input:?}");
        }
    }

    #[test]
    fn escapes_invalid_utf8() {
        assert_eq!(escape_bytes(b"ab\xffc\x1b"), "ab\\xffc\\e");
        assert_eq!(escape_bytes(b"ok"), "ok");
    }
}
