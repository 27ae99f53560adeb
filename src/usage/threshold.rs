//! When a tenant's usage crosses 80% or 100% of a limit, say so once per period.

/// The levels reported, in percent of the limit.
pub const LEVELS: [u8; 2] = [80, 100];

/// Whole percent of `limit` used (floor), or None for an unlimited (or zero) limit.
pub fn percent(used: u64, limit: Option<u64>) -> Option<u64> {
    let limit = limit.filter(|&l| l > 0)?;
    Some(u64::try_from(u128::from(used) * 100 / u128::from(limit)).unwrap_or(u64::MAX))
}

/// The highest level `percent` has reached (0 below the first).
pub fn level_of(percent: u64) -> u8 {
    LEVELS
        .iter()
        .rev()
        .copied()
        .find(|&l| percent >= u64::from(l))
        .unwrap_or(0)
}

/// The level to report now, given the highest one already reported in this period: only a
/// higher level is news, so falling back under and rising again stays quiet until the period
/// (day for memory, month for quotas) changes.
pub fn crossing(already: Option<i64>, percent: u64) -> Option<u8> {
    let level = level_of(percent);
    (level > 0 && i64::from(level) > already.unwrap_or(0)).then_some(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_floors_and_ignores_unlimited() {
        assert_eq!(percent(83, Some(100)), Some(83));
        assert_eq!(percent(99_999, Some(100_000)), Some(99));
        assert_eq!(percent(5, Some(5)), Some(100));
        assert_eq!(percent(5, None), None);
        assert_eq!(percent(5, Some(0)), None);
    }

    #[test]
    fn each_level_is_reported_once_per_period() {
        // A pass-by-pass story with the stored level carried along, as the meter does.
        let mut stored: Option<i64> = None;
        let mut reported = vec![];
        for pct in [10, 79, 80, 85, 100, 120, 50, 90, 100, 30] {
            if let Some(level) = crossing(stored, pct) {
                reported.push(level);
                stored = Some(i64::from(level));
            }
        }
        assert_eq!(reported, [80, 100]);
        // Straight past 100 reports only 100.
        assert_eq!(crossing(None, 150), Some(100));
        assert_eq!(crossing(Some(100), 150), None);
        assert_eq!(crossing(Some(80), 99), None);
        assert_eq!(crossing(None, 79), None);
    }
}
