//! Tenant API keys: random, shown once, stored only as a SHA-256 digest.

use sha2::{Digest, Sha256};

/// A new key and its digest. The key is `tk_` and 64 hex digits (256 random bits).
pub fn generate() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let key = format!("tk_{}", hex::encode(bytes));
    let digest = digest(&key);
    Ok((key, digest))
}

/// The hex SHA-256 of a key: what the database and the container see.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_digests_match() {
        let (a, da) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("tk_") && a.len() == 67, "{a}");
        assert_eq!(da, digest(&a));
        assert_eq!(da.len(), 64);
        assert!(!da.contains(&a[3..]));
    }
}
