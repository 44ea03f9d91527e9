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
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return write!(w, "{bytes}B");
    }
    let mut unit = 0;
    let mut scale: u128 = 1;
    while unit < UNITS.len() - 1 && u128::from(bytes) >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    // Tenths of the unit, rounded half up.
    let tenths = (u128::from(bytes) * 10 + scale / 2) / scale;
    if tenths < 100 {
        write!(w, "{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
    } else {
        write!(w, "{}{}", (tenths + 5) / 10, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
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
