//! The site's configuration: only environment variables, as `plan::container::desired_env` sets them.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where usage counters persist unless `SITE_DATA_DIR` says otherwise (the tenant's data volume).
pub const DEFAULT_DATA_DIR: &str = "/data";

/// The plan's limits in force; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub rate_limit_rpm: Option<u32>,
    pub api_calls_per_month: Option<u64>,
    pub ai_interactions_per_month: Option<u64>,
    pub users: Option<u64>,
}

/// SHA-256 of the tenant's API key. Its Debug hides the value: it is kept out of every output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// Everything the built-in site needs to know.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// `PORT`: where `serve` listens (on all addresses of the container).
    pub port: u16,
    pub tenant_slug: String,
    /// `TENANT_NAME`: the display name; the page's title.
    pub tenant_name: String,
    pub plan: String,
    pub theme: String,
    pub domain: Option<String>,
    /// `TENANT_FEATURES`, comma separated, empty items dropped.
    pub features: Vec<String>,
    pub limits: Limits,
    pub theme_name: String,
    pub theme_display_name: String,
    pub theme_version: String,
    /// `THEME_<KEY>` values other than name, display name and version, keyed by lower-case
    /// `<key>` (`THEME_PRIMARY_COLOR` → `primary_color`).
    pub theme_config: BTreeMap<String, String>,
    /// `TENANT_API_KEY_SHA256`; `None` (unset or empty) makes the API answer 503.
    pub api_key_sha256: Option<KeyHash>,
    /// `SITE_DATA_DIR` (default `/data`); `None` (set empty) disables persistence.
    pub data_dir: Option<PathBuf>,
    /// Length of the rate-limit window: one minute, shorter only in tests.
    pub rate_window: Duration,
    /// How often changed counters are written to disk.
    pub persist_interval: Duration,
}

/// Every problem with the environment at once, so one restart fixes them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid site configuration: {}",
            self.problems.join("; ")
        )
    }
}

impl SiteConfig {
    /// Reads the process environment (values that are not UTF-8 are read lossily).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    /// Reads the given variables instead of the process environment.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let mut problems = Vec::new();
        let get = |k: &str| vars.get(k).map(String::as_str);

        let port = match get("PORT") {
            None => {
                problems.push("PORT is not set".to_string());
                0
            }
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    problems.push(format!("PORT: `{v}` is not a port number (1-65535)"));
                    0
                }
            },
        };
        let mut required = |k: &str| match get(k) {
            Some(v) if !v.is_empty() => v.to_string(),
            Some(_) => {
                problems.push(format!("{k} is empty"));
                String::new()
            }
            None => {
                problems.push(format!("{k} is not set"));
                String::new()
            }
        };
        let tenant_slug = required("TENANT_SLUG");
        let plan = required("TENANT_PLAN");
        let theme = required("TENANT_THEME");
        let tenant_name = match get("TENANT_NAME") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => tenant_slug.clone(),
        };

        let limits = Limits {
            rate_limit_rpm: number::<u32>(get, "PLAN_RATE_LIMIT_RPM", 1, &mut problems),
            api_calls_per_month: number::<u64>(get, "PLAN_API_CALLS_PER_MONTH", 0, &mut problems),
            ai_interactions_per_month: number::<u64>(
                get,
                "PLAN_AI_INTERACTIONS_PER_MONTH",
                0,
                &mut problems,
            ),
            users: number::<u64>(get, "PLAN_USERS", 0, &mut problems),
        };

        let api_key_sha256 = match get("TENANT_API_KEY_SHA256") {
            None | Some("") => None,
            Some(v) => {
                let mut out = [0u8; 32];
                match hex::decode_to_slice(v, &mut out) {
                    Ok(()) => Some(KeyHash(out)),
                    Err(_) => {
                        // The value is a hash, but say only its shape: it still stays out of logs.
                        problems.push(format!(
                            "TENANT_API_KEY_SHA256 is not a SHA-256 in hex (64 hex digits; got {} characters)",
                            v.len()
                        ));
                        None
                    }
                }
            }
        };

        let theme_config = vars
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("THEME_")?;
                match key {
                    "NAME" | "DISPLAY_NAME" | "VERSION" | "" => None,
                    _ => Some((key.to_ascii_lowercase(), v.clone())),
                }
            })
            .collect();

        let data_dir = match get("SITE_DATA_DIR") {
            None => Some(PathBuf::from(DEFAULT_DATA_DIR)),
            Some("") => None,
            Some(d) => Some(PathBuf::from(d)),
        };

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let text = |k: &str| get(k).unwrap_or_default().to_string();
        Ok(SiteConfig {
            port,
            tenant_name,
            domain: get("TENANT_DOMAIN")
                .filter(|d| !d.is_empty())
                .map(str::to_string),
            features: get("TENANT_FEATURES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            limits,
            theme_name: match get("THEME_NAME") {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => theme.clone(),
            },
            theme_display_name: text("THEME_DISPLAY_NAME"),
            theme_version: text("THEME_VERSION"),
            theme_config,
            api_key_sha256,
            data_dir,
            rate_window: Duration::from_secs(60),
            persist_interval: Duration::from_secs(5),
            tenant_slug,
            plan,
            theme,
        })
    }

    /// The value of theme config key `key` (`primary_color`), if set and not empty.
    pub fn theme_value(&self, key: &str) -> Option<&str> {
        self.theme_config
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// An optional whole number of at least `min`: unset means unlimited, anything else must parse.
fn number<'a, T>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &str,
    min: T,
    problems: &mut Vec<String>,
) -> Option<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let v = get(key)?;
    match v.parse::<T>() {
        Ok(n) if n >= min => Some(n),
        Ok(_) => {
            problems.push(format!("{key}: `{v}` is below the minimum of {min}"));
            None
        }
        Err(_) if v.is_empty() => {
            problems.push(format!(
                "{key} is set but empty; unset it for no limit, or give a whole number"
            ));
            None
        }
        Err(_) if v.bytes().all(|b| b.is_ascii_digit()) => {
            problems.push(format!("{key}: `{v}` is too large"));
            None
        }
        Err(_) => {
            problems.push(format!("{key}: `{v}` is not a whole number"));
            None
        }
    }
}
