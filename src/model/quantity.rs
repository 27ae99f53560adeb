//! Byte quantities as Kubernetes writes them: `512Mi`, `1Gi`, `50G`, `1048576`.

use std::fmt;

/// Why a quantity did not parse, with the hint shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    pub message: String,
    pub hint: String,
}

const BINARY: [(&str, u64); 6] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
];
const DECIMAL: [(&str, u64); 6] = [
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

const HINT: &str = "write a whole number with a binary suffix (Ki, Mi, Gi, Ti) or a decimal one (k, M, G, T), e.g. 512Mi or 2Gi";

/// Parses a quantity into bytes. Fractions are allowed when the result is a whole number of bytes (`1.5Gi`).
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    let t = text.trim();
    let err = |message: String| QuantityError {
        message,
        hint: HINT.to_string(),
    };
    if t.is_empty() {
        return Err(err("empty quantity".to_string()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() {
        return Err(err(format!("`{text}` does not start with a number")));
    }
    let multiplier = if suffix.is_empty() {
        1
    } else if let Some((_, m)) = BINARY
        .iter()
        .chain(DECIMAL.iter())
        .find(|(s, _)| *s == suffix)
    {
        *m
    } else {
        let lower = suffix.to_ascii_lowercase();
        let suggestion = match lower.trim_end_matches('b').trim_end_matches("i") {
            "k" => Some("Ki"),
            "m" => Some("Mi"),
            "g" => Some("Gi"),
            "t" => Some("Ti"),
            _ => None,
        };
        let message = format!("`{text}` is not a valid quantity: unknown unit `{suffix}`");
        return Err(QuantityError {
            message,
            hint: match suggestion {
                Some(s) => format!("did you mean {number}{s}? {HINT}"),
                None => HINT.to_string(),
            },
        });
    };
    let value = parse_scaled(number, multiplier)
        .ok_or_else(|| err(format!("`{text}` is not a valid quantity")))?;
    Ok(value)
}

/// Multiplies a decimal string by `multiplier` exactly, refusing overflow and fractional bytes.
fn parse_scaled(number: &str, multiplier: u64) -> Option<u64> {
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(multiplier as u128)?;
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let scale = 10u128.pow(frac.len() as u32);
        let scaled = digits.checked_mul(multiplier as u128)?;
        if scaled % scale != 0 {
            return None;
        }
        total = total.checked_add(scaled / scale)?;
    }
    u64::try_from(total).ok().filter(|v| *v <= i64::MAX as u64)
}

/// Renders bytes in the largest binary unit that divides them exactly, the canonical form in diffs.
pub fn format_bytes(bytes: u64) -> String {
    for (suffix, m) in BINARY.iter().rev() {
        if bytes >= *m && bytes.is_multiple_of(*m) {
            return format!("{}{}", bytes / m, suffix);
        }
    }
    bytes.to_string()
}

/// A byte count that displays canonically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_bytes(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse_bytes("512Mi").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_bytes("1Gi").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("50G").unwrap(), 50_000_000_000);
        assert_eq!(parse_bytes("2k").unwrap(), 2000);
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
    }

    #[test]
    fn refuses_bad_units_with_a_suggestion() {
        let e = parse_bytes("512Mb").unwrap_err();
        assert!(e.message.contains("unknown unit `Mb`"), "{}", e.message);
        assert!(e.hint.contains("did you mean 512Mi?"), "{}", e.hint);
        let e = parse_bytes("1GB").unwrap_err();
        assert!(e.hint.contains("1Gi"), "{}", e.hint);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("1.2.3Mi").is_err());
        assert!(parse_bytes("0.5").is_err(), "half a byte");
        assert!(parse_bytes("99999999999Ei").is_err(), "overflow");
    }

    #[test]
    fn formats_canonically() {
        assert_eq!(format_bytes(512 * 1024 * 1024), "512Mi");
        assert_eq!(format_bytes(3 << 29), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_bytes(50 << 30), "50Gi");
    }
}
