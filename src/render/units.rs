//! Human units for sizes: `4.0K`, `1.5M`, `12G`, as pmap and vmmap print them. Integer arithmetic
//! only: a 60,000-row table formats 300,000 sizes, and float formatting dominated its cost.

use std::fmt;

/// A size for a table cell, formatted without touching the heap: human units, exact bytes, or
/// `-` when unknown. Honors width and alignment (`{:>7}`).
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub value: Option<u64>,
    pub exact: bool,
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cell = Cell::default();
        match self.value {
            None => return f.pad("-"),
            Some(v) if self.exact => fmt::Write::write_fmt(&mut cell, format_args!("{v}"))?,
            Some(v) => write_human(&mut cell, v)?,
        }
        f.pad(cell.as_str())
    }
}

impl Size {
    /// Appends the cell right-aligned in `width` columns, as `{:>width}` would, without going
    /// through `fmt` (the 60,000-row table formats 240,000 of these).
    pub fn push_right(&self, out: &mut String, width: usize) {
        let mut cell = Cell::default();
        let text = match self.value {
            None => "-",
            Some(v) => {
                let written = if self.exact {
                    fmt::Write::write_fmt(&mut cell, format_args!("{v}"))
                } else {
                    write_human(&mut cell, v)
                };
                if written.is_err() { "?" } else { cell.as_str() }
            }
        };
        push_right(out, text, width);
    }
}

/// Appends `text` right-aligned in `width` columns (ASCII text: a byte is a column).
pub fn push_right(out: &mut String, text: &str, width: usize) {
    for _ in text.len()..width {
        out.push(' ');
    }
    out.push_str(text);
}

/// Appends `text` left-aligned in `width` columns (ASCII text: a byte is a column).
pub fn push_left(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    for _ in text.len()..width {
        out.push(' ');
    }
}

/// Appends `v` in lowercase hex, zero-padded to `width` digits, as `{:0width$x}` would.
pub fn push_hex(out: &mut String, v: u64, width: usize) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut x = v;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(x & 15) as usize];
        x >>= 4;
        if x == 0 {
            break;
        }
    }
    for _ in buf.len() - i..width {
        out.push('0');
    }
    // Hex digits only: ASCII.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("?"));
}

/// A small stack buffer to format one cell into.
#[derive(Default)]
struct Cell {
    buf: [u8; 32],
    len: usize,
}

impl Cell {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl fmt::Write for Cell {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Bytes in binary units with one decimal below 10 (`4.0K`, `12K`, `1.5M`), rounded half up.
pub fn human(bytes: u64) -> String {
    let mut s = String::new();
    let _ = write_human(&mut s, bytes);
    s
}

fn write_human(w: &mut impl fmt::Write, bytes: u64) -> fmt::Result {
    // Integer arithmetic and hand-made digits: `fmt` was most of a 60,000-row table's cost.
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if bytes < 1024 {
        w.write_str(decimal(&mut [0; 20], bytes))?;
        return w.write_str("B");
    }
    let mut unit = 0;
    let mut scale: u64 = 1; // at most 1024^5, so `scale * 1024` fits
    while unit < UNITS.len() - 1 && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    // Tenths of the unit, rounded half up (u128 only near the top of the range). At most
    // 16,384 P × 10.
    let tenths = match bytes.checked_mul(10).and_then(|t| t.checked_add(scale / 2)) {
        Some(t) => t / scale,
        None => ((u128::from(bytes) * 10 + u128::from(scale / 2)) / u128::from(scale)) as u64,
    };
    let mut buf = [0; 20];
    if tenths < 100 {
        w.write_str(decimal(&mut buf, tenths / 10))?;
        w.write_str(".")?;
        w.write_str(decimal(&mut buf, tenths % 10))?;
    } else {
        w.write_str(decimal(&mut buf, (tenths + 5) / 10))?;
    }
    w.write_str(UNITS[unit])
}

/// `v` in decimal, written at the end of `buf`.
fn decimal(buf: &mut [u8; 20], mut v: u64) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Decimal digits only: ASCII.
    std::str::from_utf8(&buf[i..]).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    /// The original u128 + `format!` arithmetic, as the reference for the hand-made digits.
    fn human_reference(bytes: u64) -> String {
        const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
        if bytes < 1024 {
            return format!("{bytes}B");
        }
        let mut unit = 0;
        let mut scale: u128 = 1;
        while unit < UNITS.len() - 1 && u128::from(bytes) >= scale * 1024 {
            scale *= 1024;
            unit += 1;
        }
        let tenths = (u128::from(bytes) * 10 + scale / 2) / scale;
        if tenths < 100 {
            format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
        } else {
            format!("{}{}", (tenths + 5) / 10, UNITS[unit])
        }
    }

    #[test]
    fn human_matches_the_reference() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut values = vec![0, 1, 1023, 1024, 1025, 10_239, 10_240, 1 << 50, u64::MAX];
        for shift in 0..64 {
            values.push(1u64 << shift);
            values.push((1u64 << shift).wrapping_sub(1));
            values.push((1u64 << shift) / 20 * 19);
        }
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for v in values {
            assert_eq!(super::human(v), human_reference(v), "{v}");
        }
    }

    #[test]
    fn pushes_match_format() {
        use super::{Size, push_hex, push_left, push_right};
        for v in [0u64, 1, 0xf, 0x10, 0x7fff_ffff_f000, u64::MAX] {
            for w in [0, 1, 5, 12, 16, 20] {
                let mut s = String::new();
                push_hex(&mut s, v, w);
                assert_eq!(s, format!("{v:0w$x}"));
            }
        }
        for v in [
            None,
            Some(0),
            Some(1023),
            Some(4096),
            Some(1 << 40),
            Some(u64::MAX),
        ] {
            for exact in [false, true] {
                let cell = Size { value: v, exact };
                let mut s = String::new();
                cell.push_right(&mut s, 7);
                assert_eq!(s, format!("{cell:>7}"));
            }
        }
        let (mut l, mut r) = (String::new(), String::new());
        push_left(&mut l, "rw-p", 7);
        push_right(&mut r, "toolongtext", 4);
        assert_eq!((l.as_str(), r.as_str()), ("rw-p   ", "toolongtext"));
    }

    #[test]
    fn human_units() {
        let cases = [
            (0, "0B"),
            (512, "512B"),
            (1023, "1023B"),
            (1024, "1.0K"),
            (4096, "4.0K"),
            (12 * 1024, "12K"),
            (1536 * 1024, "1.5M"),
            (3 << 30, "3.0G"),
            (10 * 1024 - 1, "10K"),
            (1000 * 1024, "1000K"),
            (u64::MAX, "16384P"),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::human(bytes), want, "{bytes}");
            let cell = super::Size {
                value: Some(bytes),
                exact: false,
            };
            assert_eq!(format!("{cell:>7}"), format!("{want:>7}"));
        }
        assert_eq!(
            format!(
                "{:>4}",
                super::Size {
                    value: None,
                    exact: false
                }
            ),
            "   -"
        );
        assert_eq!(
            format!(
                "{}",
                super::Size {
                    value: Some(4096),
                    exact: true
                }
            ),
            "4096"
        );
    }
}
