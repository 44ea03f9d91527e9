//! Human units for sizes: `4.0K`, `1.5M`, `12G`, as pmap and vmmap print them.

/// Bytes in binary units with one decimal below 10 (`4.0K`, `12K`, `1.5M`).
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else if value < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_units() {
        let cases = [
            (0, "0B"),
            (512, "512B"),
            (4096, "4.0K"),
            (12 * 1024, "12K"),
            (1536 * 1024, "1.5M"),
            (3 << 30, "3.0G"),
        ];
        for (bytes, want) in cases {
            assert_eq!(super::human(bytes), want);
        }
    }
}
