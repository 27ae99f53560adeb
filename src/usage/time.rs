//! UTC calendar keys for quotas and billing periods (no date crate needed for this).

/// A UTC date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

/// Unix seconds to a UTC date (Howard Hinnant's civil_from_days).
pub fn date(unix: i64) -> Date {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    Date {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
    }
}

/// Unix seconds of 00:00 UTC on a date (the inverse of `date`).
pub fn unix_of(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

/// `YYYY-MM`: the key of monthly quotas, as the built-in site writes it.
pub fn month_key(unix: i64) -> String {
    let d = date(unix);
    format!("{:04}-{:02}", d.year, d.month)
}

/// `YYYY-MM-DD`.
pub fn day_key(unix: i64) -> String {
    let d = date(unix);
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

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
