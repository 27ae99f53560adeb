//! The UTC calendar, through `jiff`: one place for the site's quota months, the meter's
//! periods, trial ends, RFC 3339 times in and out, and `--since`.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Unix seconds as a timestamp, clamped to what `jiff` holds (years -9999 to 9999).
fn timestamp(unix: i64) -> Timestamp {
    let unix = unix.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(unix).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Unix seconds to a UTC date and time.
pub fn civil(unix: i64) -> Civil {
    let dt = TimeZone::UTC.to_datetime(timestamp(unix));
    // jiff's fields are small signed integers within their ranges (month 1..=12, …).
    let field = |v: i8| u32::try_from(v).unwrap_or(0);
    Civil {
        year: i64::from(dt.year()),
        month: field(dt.month()),
        day: field(dt.day()),
        hour: field(dt.hour()),
        minute: field(dt.minute()),
        second: field(dt.second()),
    }
}

/// Days since the epoch of a UTC date (the inverse of [`civil`]). A day past the end of its
/// month counts on into the next (as the billing arithmetic expects of day 1 of month 13).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = i16::try_from(year.clamp(-9999, 9999)).unwrap_or(1970);
    let (extra_years, month0) = (
        i64::from(month.saturating_sub(1)) / 12,
        month.saturating_sub(1) % 12,
    );
    let first = jiff::civil::Date::new(year, i8::try_from(month0 + 1).unwrap_or(1), 1)
        .unwrap_or(jiff::civil::Date::constant(1970, 1, 1));
    let first = first
        .checked_add(jiff::Span::new().years(extra_years))
        .unwrap_or(first);
    let epoch = jiff::civil::Date::constant(1970, 1, 1);
    let days = epoch
        .until((jiff::Unit::Day, first))
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0);
    days + i64::from(day) - 1
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: i64) -> String {
    let c = civil(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses an RFC 3339 time (`2026-11-26T10:00:00Z`, `…+02:00`, `…t…z`, a space for `T`,
/// fractions ignored) to Unix seconds. The date must exist: `2026-02-31T10:00:00Z` is refused
/// with why. `None` when the text does not have the shape of one (then it may be a duration).
pub fn parse_rfc3339(text: &str) -> Option<Result<i64, String>> {
    let b = text.as_bytes();
    // The shape RFC 3339 allows (jiff reads a wider ISO 8601 grammar): a full date, `T`, `t`
    // or a space, a full time, and `Z`, `z` or `±HH:MM`.
    let shaped = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':'
        && (text.ends_with(['Z', 'z'])
            || (b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-') && b[b.len() - 3] == b':');
    if !shaped {
        return None;
    }
    let normal = text.replacen(' ', "T", 1);
    Some(
        normal
            .parse::<Timestamp>()
            .map(|t| t.as_second())
            .map_err(|e| format!("`{text}` is not a time that exists: {e}")),
    )
}

/// `YYYY-MM-DD`.
pub fn day_key(unix: i64) -> String {
    let c = civil(unix);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

/// `YYYY-MM`: the key of monthly quotas.
pub fn month_key(unix: i64) -> String {
    let c = civil(unix);
    format!("{:04}-{:02}", c.year, c.month)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(day_key(1_795_651_200), "2026-11-26");
        assert_eq!(day_key(951_782_400), "2000-02-29");
        assert_eq!(month_key(-1), "1969-12");
        assert_eq!(days_from_civil(2026, 13, 1), days_from_civil(2027, 1, 1));
        assert_eq!(days_from_civil(2026, 1, 32), days_from_civil(2026, 2, 1));
        for unix in [-86_400 * 400, 0, 951_782_400, 1_795_651_199, 4_102_444_800] {
            let c = civil(unix);
            let back = days_from_civil(c.year, c.month, c.day) * 86_400
                + i64::from(c.hour) * 3600
                + i64::from(c.minute) * 60
                + i64::from(c.second);
            assert_eq!(back, unix);
        }
    }

    #[test]
    fn rfc3339_in_refuses_dates_that_do_not_exist() {
        let z = parse_rfc3339("2026-11-26T10:00:00Z");
        assert_eq!(z, Some(Ok(1_795_687_200)));
        assert_eq!(parse_rfc3339("2026-11-26T12:00:00+02:00"), z);
        assert_eq!(parse_rfc3339("2026-11-26t10:00:00z"), z);
        assert_eq!(parse_rfc3339("2026-11-26 10:00:00Z"), z);
        assert_eq!(parse_rfc3339("2026-11-26T10:00:00.5Z"), z);
        for bad in [
            "2026-02-31T10:00:00Z",
            "2026-11-26T24:30:00Z",
            "2026-13-01T00:00:00Z",
        ] {
            let e = parse_rfc3339(bad).unwrap().unwrap_err();
            assert!(e.contains("is not a time that exists"), "{bad}: {e}");
        }
        for not_a_time in [
            "1h30m",
            "2026-11-26",
            "2026-11-26T10:00:00",
            "2026-11-26T10:00:00+0200",
        ] {
            assert_eq!(parse_rfc3339(not_a_time), None, "{not_a_time}");
        }
    }
}
