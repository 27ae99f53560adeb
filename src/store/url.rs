//! Database URLs: which backend they name, and how to print them without their secrets.

use super::Backend;

/// The backend a URL names by its scheme, or None for anything else.
pub(crate) fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// The URL with its password (userinfo or `password=` query value) replaced by `***`; a
/// libpq `key=value` connection string (`host=db password=secret`) gets its password values
/// replaced the same way.
pub fn redact(url: &str) -> String {
    if is_key_value(url) {
        return redact_key_value(url);
    }
    let (head, query) = match url.find(['?', '#']) {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let head = match head.find("://") {
        Some(i) => {
            let (scheme, rest) = head.split_at(i + 3);
            // The last '@' ends the userinfo, so a password holding a raw '@' or '/' is still hidden.
            match rest.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = rest.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, _)) => format!("{scheme}{user}:***{host}"),
                        None => head.to_string(),
                    }
                }
                None => head.to_string(),
            }
        }
        None => head.to_string(),
    };
    format!("{head}{}", redact_query(query))
}

/// Hides the values of query parameters whose name mentions a password (`password`, `sslpassword`).
fn redact_query(query: &str) -> String {
    let Some(marker) = query.chars().next() else {
        return String::new();
    };
    let pairs: Vec<String> = query[1..]
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{marker}{}", pairs.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    key.to_ascii_lowercase().contains("password")
}

/// A libpq keyword/value string rather than a URL: no scheme, and `keyword=` somewhere.
fn is_key_value(text: &str) -> bool {
    !text.contains("://") && text.contains('=')
}

/// The `key=value` pairs of a libpq connection string as byte ranges of their values; a value
/// may be single-quoted, with `\'` and `\\` escapes, and spaces may surround the `=`.
fn key_value_pairs(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let bytes = text.as_bytes();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[key_start..i].to_string();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            // Not a pair: skip the word.
            i += 1;
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value_start = i;
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(bytes.len());
        }
        pairs.push((key, value_start..i));
    }
    pairs
}

fn redact_key_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (key, value) in key_value_pairs(text) {
        if is_secret_key(&key) {
            out.push_str(&text[last..value.start]);
            out.push_str("***");
            last = value.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Every secret a URL carries, raw and percent-decoded, so messages can be scrubbed of them.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if is_key_value(url) {
        for (key, value) in key_value_pairs(url) {
            if is_secret_key(&key) {
                let raw = &url[value];
                found.push(raw.to_string());
                let unquoted = raw
                    .trim_matches('\'')
                    .replace("\\'", "'")
                    .replace("\\\\", "\\");
                found.push(unquoted);
            }
        }
        found.retain(|s| !s.is_empty());
        found.sort_by_key(|s| std::cmp::Reverse(s.len()));
        found.dedup();
        return found;
    }
    let (head, query) = match url.find(['?', '#']) {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    if let Some((_, rest)) = head.split_once("://")
        && let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password.to_string());
    }
    for pair in query.get(1..).unwrap_or("").split('&') {
        if let Some((key, value)) = pair.split_once('=')
            && is_secret_key(key)
        {
            found.push(value.to_string());
        }
    }
    let decoded: Vec<String> = found.iter().map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    // Longest first, so a secret that contains another is replaced whole.
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// A driver's message with every secret of `url` replaced by `***`: drivers may echo what they were given.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    secrets(url).iter().fold(message.to_string(), |m, secret| {
        m.replace(secret.as_str(), "***")
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes the characters sqlx's SQLite URL parser would take as syntax (`?` starts parameters,
/// `%` starts an escape, `#` a fragment), so any path survives the round trip.
pub(crate) fn sqlite_path_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// True for SQLite URLs naming an in-memory database (`sqlite::memory:`, `mode=memory`).
pub(crate) fn sqlite_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    path == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact("postgres://tenantctl:hunter2@db.example:5432/app"),
            "postgres://tenantctl:***@db.example:5432/app"
        );
        assert_eq!(
            redact("postgresql://u:p%40ss@h/db?sslmode=require"),
            "postgresql://u:***@h/db?sslmode=require"
        );
        // A raw '@' or '/' in the password is still hidden.
        assert_eq!(redact("postgres://u:a@b/c@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn redacts_query_passwords() {
        assert_eq!(
            redact("postgres://h/db?user=u&password=hunter2&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://h/db?sslpassword=x"),
            "postgres://h/db?sslpassword=***"
        );
    }

    #[test]
    fn redacts_key_value_connection_strings() {
        assert_eq!(
            redact("host=db.example port=5432 user=app password=hunter2 dbname=app"),
            "host=db.example port=5432 user=app password=*** dbname=app"
        );
        assert_eq!(
            redact("host=db password = 'two words\\' here' sslpassword=x"),
            "host=db password = *** sslpassword=***"
        );
        assert_eq!(redact("password=last"), "password=***");
        assert_eq!(redact("host=db user=app"), "host=db user=app");
        let dsn = "host=db password='s3 cret'";
        assert_eq!(
            scrub("bad password 's3 cret' or s3 cret for host=db", dsn),
            "bad password *** or *** for host=db"
        );
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        for url in [
            "sqlite:///tmp/x/state.db",
            "sqlite::memory:",
            "postgres://u@h/db",
            "postgres://h:5432/db",
            "mysql://h/db",
            "",
        ] {
            assert_eq!(redact(url), url);
        }
    }

    #[test]
    fn scrubs_raw_and_decoded_secrets() {
        let url = "postgres://u:p%40ss@h/db?password=other";
        let msg = "failed for p%40ss and p@ss and other";
        assert_eq!(scrub(msg, url), "failed for *** and *** and ***");
        assert_eq!(
            scrub("no secret here", "postgres://u@h/db"),
            "no secret here"
        );
    }

    #[test]
    fn percent_decoding_tolerates_bad_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }

    #[test]
    fn detects_backends_and_memory() {
        assert_eq!(backend_of("sqlite:x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("sqlite:///x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgres://h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://h/db"), None);
        assert_eq!(backend_of("/tmp/state.db"), None);
        assert!(sqlite_in_memory("sqlite::memory:"));
        assert!(sqlite_in_memory("sqlite://?mode=memory"));
        assert!(!sqlite_in_memory("sqlite:///tmp/memory.db"));
    }
}
