//! Human units for sizes: `4.0K`, `1.5M`, `12G`, as pmap and vmmap print them. Integer arithmetic
//! only: a 60,000-row table formats 300,000 sizes, and float formatting dominated its cost.

/// Bytes in binary units with one decimal below 10 (`4.0K`, `12K`, `1.5M`), rounded half up.
pub fn human(bytes: u64) -> String {
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
    // Tenths of the unit, rounded half up.
    let tenths = (u128::from(bytes) * 10 + scale / 2) / scale;
    if tenths < 100 {
        format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
    } else {
        format!("{}{}", (tenths + 5) / 10, UNITS[unit])
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
        }
    }
}
