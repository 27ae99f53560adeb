//! UTC calendar keys for quotas and billing periods (no date crate needed for this).

/// A UTC date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// Unix seconds to a UTC date.
pub fn date(unix: i64) -> Date {
    let c = crate::calendar::civil(unix);
    Date {
        year: c.year,
        month: c.month,
        day: c.day,
    }
}

/// Unix seconds of 00:00 UTC on a date (the inverse of `date`).
pub fn unix_of(year: i64, month: u32, day: u32) -> i64 {
    crate::calendar::days_from_civil(year, month, day) * 86_400
}

/// `YYYY-MM` (the key the built-in site writes) and `YYYY-MM-DD`.
pub use crate::calendar::{day_key, month_key};

/// Start of the UTC month holding `unix`, and of the next one.
pub fn month_bounds(unix: i64) -> (i64, i64) {
    let d = date(unix);
    let next = if d.month == 12 {
        unix_of(d.year + 1, 1, 1)
    } else {
        unix_of(d.year, d.month + 1, 1)
    };
    (unix_of(d.year, d.month, 1), next)
}

/// Start of the UTC year holding `unix`, and of the next one.
pub fn year_bounds(unix: i64) -> (i64, i64) {
    let d = date(unix);
    (unix_of(d.year, 1, 1), unix_of(d.year + 1, 1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_keys_and_bounds() {
        // 2024-02-29T12:00:00Z, a leap day.
        let t = 1_709_208_000;
        assert_eq!(day_key(t), "2024-02-29");
        assert_eq!(month_key(t), "2024-02");
        let (a, b) = month_bounds(t);
        assert_eq!(
            (day_key(a), day_key(b)),
            ("2024-02-01".into(), "2024-03-01".into())
        );
        let (a, b) = month_bounds(unix_of(2024, 12, 31));
        assert_eq!(
            (day_key(a), day_key(b)),
            ("2024-12-01".into(), "2025-01-01".into())
        );
        let (a, b) = year_bounds(t);
        assert_eq!(
            (day_key(a), day_key(b)),
            ("2024-01-01".into(), "2025-01-01".into())
        );
        assert_eq!(unix_of(1970, 1, 1), 0);
    }
}
