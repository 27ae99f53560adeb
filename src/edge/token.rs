//! The admin API's bearer token: generated on first start into `admin-token` (0600) in the data
//! directory, read from there on later starts; checked in constant time.

use std::io::Write;
use std::path::Path;
use subtle::ConstantTimeEq;

pub const TOKEN_FILE: &str = "admin-token";

/// The admin token: 32 random bytes as hex. Its `Debug` never shows it.
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Reads `admin-token` from `dir`, creating it (exclusively, 0600) when missing.
    pub fn load_or_create(dir: &Path) -> Result<AdminToken, String> {
        let path = dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim();
                if token.len() < 32 {
                    return Err(format!(
                        "{}: too short to be an admin token; remove it and the edge makes a new one",
                        path.display()
                    ));
                }
                return Ok(AdminToken(token.to_string()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the token: {e}"))?;
        let token = hex::encode(bytes);
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        file.write_all(token.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(AdminToken(token))
    }

    /// True when an `Authorization` header value is `Bearer <this token>`.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(given) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        given.ct_eq(self.0.as_bytes()).into()
    }

    #[cfg(test)]
    pub fn for_test(token: &str) -> AdminToken {
        AdminToken(token.to_string())
    }
}
