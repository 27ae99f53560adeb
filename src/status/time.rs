//! RFC 3339 out (trial ends) and in (`logs --since`), through [`crate::calendar`].

pub use crate::calendar::rfc3339;

/// Parses an RFC 3339 time to Unix seconds; `None` if it is not one, or names a date that does
/// not exist (see [`crate::calendar::parse_rfc3339`]).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    crate::calendar::parse_rfc3339(text)?.ok()
}

/// `--since`: a duration back from `now` or an RFC 3339 time; the one parser of
/// [`crate::audit::parse_since`].
pub fn parse_since(text: &str, now: i64) -> Result<i64, String> {
    crate::audit::parse_since(text, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for t in [0, 951_782_400, 1_764_115_200, 1_795_651_199, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{}", rfc3339(t));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let z = parse_rfc3339("2026-11-26T10:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-26T12:00:00+02:00"), z);
        assert_eq!(parse_rfc3339("2026-11-26T07:30:00-02:30"), z);
        assert_eq!(parse_rfc3339("2026-11-26T10:00:00.123456789Z"), z);
        for bad in [
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-11-26T10:00:00",
            "2026-11-26T10:00:00.Z",
            "2026-11-26T10:00:00+0200",
            "x026-11-26T10:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = 1_000_000;
        assert_eq!(parse_since("10m", now), Ok(now - 600));
        assert_eq!(parse_since("2h", now), Ok(now - 7200));
        assert_eq!(parse_since("1d", now), Ok(now - 86_400));
        assert_eq!(parse_since("45", now), Ok(now - 45));
        assert_eq!(parse_since("1h30m", now), Ok(now - 5400));
        assert_eq!(parse_since("1970-01-01T00:01:00Z", now), Ok(60));
        assert!(parse_since("10x", now).is_err_and(|e| e.contains("RFC 3339")));
        assert!(parse_since("soon", now).is_err_and(|e| e.contains("RFC 3339")));
        assert!(
            parse_since("2026-02-31T10:00:00Z", now).is_err_and(
                |e| e.contains("does not exist") || e.contains("not a time that exists")
            )
        );
    }
}
