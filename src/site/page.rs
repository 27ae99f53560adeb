//! The themed landing page. Every value from the environment is HTML-escaped where it lands in
//! markup, and checked against a strict shape where it lands in CSS (escaping does not apply
//! inside `<style>`), so a tenant or theme value can never inject markup, script or style.

use super::config::SiteConfig;
use std::fmt::Write;

/// Used when the theme gives no primary colour or one that is not a plain CSS colour.
pub const DEFAULT_PRIMARY_COLOR: &str = "#334155";

/// Generic CSS families, written unquoted (quoted they would name a font called "serif").
const GENERIC_FONTS: [&str; 10] = [
    "serif",
    "sans-serif",
    "monospace",
    "cursive",
    "fantasy",
    "system-ui",
    "ui-serif",
    "ui-sans-serif",
    "ui-monospace",
    "ui-rounded",
];

/// Escapes the five characters that matter in HTML text and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `value` if it is a plain CSS colour: `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, a colour name,
/// or `rgb()`/`rgba()`/`hsl()`/`hsla()` of numbers and units. Anything else could break out of the rule.
pub fn css_color(value: &str) -> Option<&str> {
    let v = value.trim();
    let ok = if let Some(hex) = v.strip_prefix('#') {
        matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    } else if let Some((func, rest)) = v.split_once('(') {
        matches!(func, "rgb" | "rgba" | "hsl" | "hsla")
            && rest.strip_suffix(')').is_some_and(|args| {
                args.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" .,%/+-".contains(&b))
            })
    } else {
        (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphabetic())
    };
    ok.then_some(v)
}

/// A CSS `font-family` list from a theme's `font` (`Inter` or `"IBM Plex Sans", serif`): each
/// family of letters, digits, spaces, `-` and `_`, quoted unless generic, then safe fallbacks.
/// Families with other characters are dropped and reported.
pub fn css_font_stack(value: &str) -> (String, Vec<String>) {
    let mut families = Vec::new();
    let mut dropped = Vec::new();
    for raw in value.split(',') {
        let name = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        if name.is_empty() {
            continue;
        }
        let safe = name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'));
        if !safe {
            dropped.push(name.to_string());
        } else if GENERIC_FONTS.contains(&name.to_ascii_lowercase().as_str()) {
            families.push(name.to_ascii_lowercase());
        } else {
            families.push(format!("\"{name}\""));
        }
    }
    families.push("system-ui".into());
    families.push("sans-serif".into());
    families.dedup();
    (families.join(", "), dropped)
}

/// A CSS class name from any string: lower case, runs of other characters as one `-`.
pub fn css_class(value: &str) -> String {
    let mut out = String::new();
    for c in value.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(40).collect();
    if out.is_empty() {
        "default".into()
    } else {
        out
    }
}

/// Black or white, whichever reads better on a `#hex` background (white for other colours).
fn text_on(color: &str) -> &'static str {
    let Some(hex) = color.strip_prefix('#') else {
        return "#ffffff";
    };
    let digits: Vec<u8> = hex
        .chars()
        .filter_map(|c| c.to_digit(16).map(|d| d as u8))
        .collect();
    let (r, g, b) = match digits.len() {
        3 | 4 => (digits[0] * 17, digits[1] * 17, digits[2] * 17),
        6 | 8 => (
            digits[0] * 16 + digits[1],
            digits[2] * 16 + digits[3],
            digits[4] * 16 + digits[5],
        ),
        _ => return "#ffffff",
    };
    // Perceived brightness (ITU-R BT.601 weights); above the middle, dark text reads better.
    let luma = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    if luma > 150_000 { "#111111" } else { "#ffffff" }
}

/// The landing page and the problems with the theme's look that were replaced by defaults.
pub fn render(config: &SiteConfig) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let color = match config.theme_value("primary_color") {
        None => DEFAULT_PRIMARY_COLOR,
        Some(c) => css_color(c).unwrap_or_else(|| {
            warnings.push(format!(
                "THEME_PRIMARY_COLOR `{c}` is not a plain CSS colour; using {DEFAULT_PRIMARY_COLOR}"
            ));
            DEFAULT_PRIMARY_COLOR
        }),
    };
    let (font, dropped) = css_font_stack(config.theme_value("font").unwrap_or_default());
    for f in dropped {
        warnings.push(format!(
            "THEME_FONT family `{f}` has characters a font name does not need; left out"
        ));
    }
    let layout = css_class(config.theme_value("layout").unwrap_or("single"));
    let theme_class = css_class(&config.theme_name);
    let e = html_escape;

    let mut limits = String::new();
    let l = &config.limits;
    let rows: [(&str, Option<u64>, &str); 4] = [
        ("API calls", l.api_calls_per_month, "per month"),
        ("AI interactions", l.ai_interactions_per_month, "per month"),
        (
            "Rate limit",
            l.rate_limit_rpm.map(u64::from),
            "requests per minute",
        ),
        ("Users", l.users, ""),
    ];
    for (label, value, unit) in rows {
        let value = value.map_or("unlimited".to_string(), |v| format!("{v} {unit}"));
        let _ = write!(
            limits,
            "<li><span>{label}</span> <strong>{}</strong></li>",
            e(value.trim())
        );
    }
    let features = if config.features.is_empty() {
        "<p class=\"muted\">No extra features on this plan.</p>".to_string()
    } else {
        let items: String = config
            .features
            .iter()
            .map(|f| format!("<li>{}</li>", e(f)))
            .collect();
        format!("<ul class=\"features\">{items}</ul>")
    };
    let domain = config
        .domain
        .as_deref()
        .map(|d| format!("<p class=\"domain\">{}</p>", e(d)))
        .unwrap_or_default();
    let theme_label = match (
        config.theme_display_name.as_str(),
        config.theme_version.as_str(),
    ) {
        ("", _) => e(&config.theme_name),
        (name, "") => e(name),
        (name, version) => format!("{} {}", e(name), e(version)),
    };

    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title>
<style>
:root {{ --primary: {color}; --on-primary: {on_primary}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: {font}; color: #1b1b1b; background: #f6f7f9; line-height: 1.5; }}
header {{ background: var(--primary); color: var(--on-primary); padding: 3rem 1.5rem 2.5rem; }}
header h1 {{ margin: 0; font-size: 2.25rem; }}
header .domain {{ margin: .25rem 0 0; opacity: .85; }}
main {{ padding: 1.5rem; gap: 1.25rem; max-width: 72rem; margin: 0 auto; }}
.card {{ background: #fff; border-radius: .5rem; padding: 1.25rem 1.5rem; border-top: 4px solid var(--primary); box-shadow: 0 1px 3px rgba(0,0,0,.08); break-inside: avoid; margin-bottom: 1.25rem; }}
.card h2 {{ margin-top: 0; font-size: 1.1rem; color: var(--primary); }}
.plan {{ font-size: 1.5rem; font-weight: 600; margin: 0 0 .5rem; }}
ul {{ padding-left: 1.2rem; }}
.muted {{ color: #666; }}
code {{ background: #eef0f3; padding: .1rem .3rem; border-radius: .25rem; }}
footer {{ text-align: center; color: #777; font-size: .85rem; padding: 2rem 1rem; }}
.layout-grid main {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }}
.layout-grid .card {{ margin-bottom: 0; }}
.layout-columns main {{ column-count: 2; column-gap: 1.25rem; }}
.layout-single main {{ max-width: 40rem; }}
@media (max-width: 40rem) {{ .layout-columns main {{ column-count: 1; }} }}
</style>
</head>
<body class="theme-{theme_class} layout-{layout}">
<header>
<h1>{name}</h1>
{domain}
</header>
<main>
<section class="card">
<h2>Plan</h2>
<p class="plan">{plan}</p>
<ul class="limits">{limits}</ul>
</section>
<section class="card">
<h2>Features</h2>
{features}
</section>
<section class="card">
<h2>API</h2>
<p><code>GET /api/ping</code> with <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>.</p>
<p>Health: <code>/health</code> &middot; usage: <code>/usage</code></p>
</section>
</main>
<footer>{theme_label} &middot; served by tenantctl</footer>
</body>
</html>
"#,
        name = e(&config.tenant_name),
        on_primary = text_on(color),
        plan = e(&config.plan),
    );
    (page, warnings)
}
