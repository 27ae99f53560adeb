//! The shape of single values that reach the engine or a page: health paths, image references,
//! publish addresses, colours, environment sizes. Each check returns what is wrong, for a hint.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest health path: a probe URL, not a place for data.
pub const MAX_HEALTH_PATH_BYTES: usize = 256;

/// Longest `KEY=VALUE` string one environment variable may be: a quarter of the kernel's
/// MAX_ARG_STRLEN (128 KiB), which the engine cannot exceed when it starts the process.
pub const MAX_ENV_ENTRY_BYTES: usize = 32 * 1024;

/// Most bytes a container's whole environment (every `KEY=VALUE` and its NUL, the derived
/// `TENANT_*`/`PLAN_*`/`THEME_*`/`PORT` included) may take: far below ARG_MAX (2 MiB by default).
pub const MAX_ENV_BYTES: usize = 64 * 1024;

/// Longest trial: ten years. Beyond that `trialDays` is a mistake, and far beyond it dates overflow.
pub const MAX_TRIAL_DAYS: u32 = 3650;

/// Checks a health-check path: `/`, then RFC 3986 path characters without any the shell or a
/// glob would read (no `$ & ' ( ) * ; ? [ ]`, whitespace or controls), `%` only as `%XX`.
pub fn health_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("does not start with `/`".into());
    }
    if path.len() > MAX_HEALTH_PATH_BYTES {
        return Some(format!(
            "is {} bytes; at most {MAX_HEALTH_PATH_BYTES} are allowed",
            path.len()
        ));
    }
    let bytes = path.as_bytes();
    for (i, c) in path.char_indices() {
        let ok = c.is_ascii_alphanumeric() || "/-._~:@!+,=".contains(c);
        if c == '%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Some("has a `%` that is not followed by two hex digits".into());
            }
        } else if !ok {
            return Some(format!(
                "contains `{}`, which is not allowed in a health path",
                c.escape_default()
            ));
        }
    }
    None
}

/// Checks an image reference against the engine's grammar:
/// `[HOST[:PORT]/]PATH[:TAG][@sha256:HEX]`, PATH of lowercase components joined by `/`.
pub fn image_reference_problem(image: &str) -> Option<String> {
    if image.is_empty() {
        return Some("is empty".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(d) = digest
        && let Some(problem) = digest_problem(d)
    {
        return Some(problem);
    }
    // A `:` after the last `/` starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = (1..=128).contains(&t.len())
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Some(format!(
                "tag `{t}` is not 1 to 128 letters, digits, `_`, `.` or `-` (not starting with `.` or `-`)"
            ));
        }
    }
    if name.len() > 255 {
        return Some(format!(
            "repository name is {} characters; at most 255 are allowed",
            name.len()
        ));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.contains(char::is_uppercase))
    {
        if let Some(problem) = registry_problem(first) {
            return Some(problem);
        }
        components.remove(0);
    }
    for c in components {
        if !is_path_component(c) {
            return Some(format!(
                "path component `{c}` is not lowercase letters and digits joined by `.`, `_`, `__` or `-`"
            ));
        }
    }
    None
}

fn digest_problem(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':').unwrap_or((digest, ""));
    let length = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Some(format!(
                "digest `{digest}` is not `sha256:` and 64 hex digits"
            ));
        }
    };
    let ok = hex.len() == length
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    (!ok).then(|| {
        format!("digest `{digest}` is not `{algorithm}:` and {length} lowercase hex digits")
    })
}

fn registry_problem(host_port: &str) -> Option<String> {
    // `[v6]:port` keeps its colons inside the brackets.
    let after_host = host_port.find(']').map_or(0, |i| i + 1);
    let (host, port) = match host_port[after_host..].find(':') {
        Some(i) => (
            &host_port[..after_host + i],
            Some(&host_port[after_host + i + 1..]),
        ),
        None => (host_port, None),
    };
    if let Some(p) = port
        && !(!p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Some(format!("registry port `{p}` is not a number"));
    }
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok());
    let domain = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    (!(ipv6 || domain)).then(|| format!("registry `{host_port}` is not a host name[:port]"))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// Checks a publish address: an IP address a host can bind to. `0.0.0.0` and `::` (every
/// address) are allowed on purpose: swarm publishes through its routing mesh only on them.
/// Returns the address written the canonical way.
pub fn publish_address(text: &str) -> Result<String, String> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address"))?;
    let refused = match ip {
        IpAddr::V4(v4) => v4_problem(v4),
        IpAddr::V6(v6) => {
            if v6.to_ipv4_mapped().is_some() {
                Some("is an IPv4-mapped IPv6 address; write the IPv4 address itself")
            } else if v6.is_multicast() {
                Some("is a multicast address")
            } else if v6.is_unicast_link_local() {
                Some("is link-local, which needs an interface the engine cannot be told")
            } else {
                None
            }
        }
    };
    match refused {
        Some(why) => Err(format!("`{text}` {why}")),
        None => Ok(ip.to_string()),
    }
}

fn v4_problem(v4: Ipv4Addr) -> Option<&'static str> {
    if v4.is_unspecified() {
        None
    } else if v4.is_broadcast() {
        Some("is the broadcast address")
    } else if v4.is_multicast() {
        Some("is a multicast address")
    } else if v4.is_link_local() {
        Some("is link-local (169.254.0.0/16), which the host assigns itself and may change")
    } else if v4.octets()[0] == 0 {
        Some("is in 0.0.0.0/8, which names no host")
    } else if v4.octets()[0] >= 240 {
        Some("is in the reserved 240.0.0.0/4")
    } else {
        None
    }
}

/// The colour names CSS knows (CSS Color 4), `transparent` and `currentcolor`.
const CSS_COLOR_NAMES: &str = "aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue \
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk \
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki \
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen \
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue \
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro \
    ghostwhite gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo \
    ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral \
    lightcyan lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon \
    lightseagreen lightskyblue lightslategray lightslategrey lightsteelblue lightyellow \
    lime limegreen linen magenta maroon mediumaquamarine mediumblue mediumorchid \
    mediumpurple mediumseagreen mediumslateblue mediumspringgreen mediumturquoise \
    mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite navy oldlace \
    olive olivedrab orange orangered orchid palegoldenrod palegreen paleturquoise \
    palevioletred papayawhip peachpuff peru pink plum powderblue purple rebeccapurple red \
    rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell sienna silver \
    skyblue slateblue slategray slategrey snow springgreen steelblue tan teal thistle \
    tomato turquoise violet wheat white whitesmoke yellow yellowgreen transparent \
    currentcolor";

/// Checks a theme colour: what the built-in site accepts (`#rgb`, `#rgba`, `#rrggbb`,
/// `#rrggbbaa`, `rgb()`/`hsl()`), with names limited to the ones CSS knows.
pub fn color_problem(value: &str) -> Option<String> {
    let v = value.trim();
    let named = v.bytes().all(|b| b.is_ascii_alphabetic());
    let known = if named {
        CSS_COLOR_NAMES
            .split_ascii_whitespace()
            .any(|n| n.eq_ignore_ascii_case(v))
    } else {
        crate::site::css_color(v).is_some()
    };
    (!known).then(|| format!("`{value}` is not a colour"))
}

/// The bytes an environment takes when the kernel copies it: each `KEY=VALUE` and its NUL.
pub fn env_entry_bytes(key: &str, value: &str) -> usize {
    key.len() + 1 + value.len() + 1
}

#[cfg(test)]
mod tests;
