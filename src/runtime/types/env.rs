//! A container's environment in one allocation.

use serde::{Serialize, Serializer, ser::SerializeMap};

/// Environment variables, sorted by name, kept as one `NAME=VALUE\0…` buffer.
///
/// A host with thousands of tenants holds every container's ~20 variables while planning;
/// one buffer per container instead of forty strings and a tree keeps that a fraction of the memory.
/// Names cannot contain `=` and values cannot contain NUL, so the buffer is unambiguous.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    buf: String,
}

impl Env {
    /// Builds from pairs; a later pair with the same name wins, as in a process environment.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        let mut sorted: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable sort keeps the original order among equal names, so the last one is kept below.
        sorted.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut buf = String::new();
        for (i, (k, v)) in sorted.iter().enumerate() {
            if sorted
                .get(i + 1)
                .is_some_and(|next| next.0.as_ref() == k.as_ref())
            {
                continue;
            }
            buf.push_str(k.as_ref());
            buf.push('=');
            buf.push_str(&v.as_ref().replace('\0', ""));
            buf.push('\0');
        }
        buf.shrink_to_fit();
        Env { buf }
    }

    /// `NAME=VALUE` entries as the Engine API lists them; a bare `NAME` has an empty value.
    pub fn from_entries(entries: &[String]) -> Env {
        Env::from_pairs(
            entries
                .iter()
                .map(|e| e.split_once('=').unwrap_or((e.as_str(), ""))),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.buf
            .split_terminator('\0')
            .map(|entry| entry.split_once('=').unwrap_or((entry, "")))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.buf.matches('\0').count()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

impl Serialize for Env {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_last_wins_and_round_trips() {
        let env = Env::from_pairs([("B", "2"), ("A", "x=y"), ("B", "3"), ("EMPTY", "")]);
        let pairs: Vec<(&str, &str)> = env.iter().collect();
        assert_eq!(pairs, [("A", "x=y"), ("B", "3"), ("EMPTY", "")]);
        assert_eq!(env.get("A"), Some("x=y"));
        assert_eq!(env.get("C"), None);
        assert_eq!(env.len(), 3);
        let e2 = Env::from_entries(&["PATH=/bin".into(), "BARE".into()]);
        assert_eq!(e2.get("BARE"), Some(""));
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"A":"x=y","B":"3","EMPTY":""}"#
        );
        assert!(Env::default().is_empty());
    }
}
