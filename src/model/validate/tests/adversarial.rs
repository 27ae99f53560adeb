use super::*;

/// The one diagnostic `text` at `path` gets, which must sit at `line:column` and say `needle`.
fn refused_at(path: &str, text: &str, line: u64, column: u64, needle: &str) -> Diagnostic {
    let d = errors_with(path, text);
    let d = one(&d).clone();
    assert_at(&d, path, line, column, needle);
    assert!(d.hint.is_some(), "no hint: {d}");
    d
}

fn theme_with(line: &str) -> String {
    format!("{THEME}  {line}\n")
}

#[test]
fn health_paths_that_a_shell_would_run_are_refused_where_they_stand() {
    for path in [
        "\"/health;touch${IFS}/x;#\"",
        "\"/h`id`\"",
        "\"/h$(reboot)\"",
        "\"/h|sh\"",
        "\"/h && x\"",
        "\"/h\\nx\"",
        "/h?x=1",
        "\"/h'\"",
    ] {
        let text = THEME.replace("path: /health", &format!("path: {path}"));
        refused_at("themes/modern.yaml", &text, 7, 19, "health path");
    }
    let long = THEME.replace("path: /health", &format!("path: /{}", "a".repeat(300)));
    refused_at("themes/modern.yaml", &long, 7, 19, "at most 256");
}

#[test]
fn image_references_outside_the_engine_grammar_are_refused() {
    for image in [
        "Registry.example/App",
        "\"nginx:\"",
        "\"nginx:latest; rm -rf /\"",
        "nginx@sha256:1234",
        "\"-nginx\"",
        "a//b",
        "\"nginx:$(id)\"",
    ] {
        let text = theme_with(&format!("image: {image}"));
        refused_at("themes/modern.yaml", &text, 9, 10, "not an image reference");
    }
    let text = theme_with("image: registry.example:5000/team/site:4.2");
    assert_eq!(
        state_with("themes/modern.yaml", &text).themes["modern"]
            .image
            .as_deref(),
        Some("registry.example:5000/team/site:4.2")
    );
}

#[test]
fn publish_addresses_that_are_not_local_unicast_are_refused() {
    for addr in [
        "255.255.255.255",
        "224.0.0.251",
        "\"ff02::1\"",
        "169.254.10.10",
        "\"fe80::1\"",
        "0.0.0.1",
        "\"::ffff:10.0.0.1\"",
    ] {
        let text = theme_with(&format!("publishAddress: {addr}"));
        refused_at("themes/modern.yaml", &text, 9, 19, "publishAddress");
    }
    for (addr, stored) in [("0.0.0.0", "0.0.0.0"), ("\"0::1\"", "::1")] {
        let text = theme_with(&format!("publishAddress: {addr}"));
        let state = state_with("themes/modern.yaml", &text);
        assert_eq!(state.themes["modern"].publish_address, stored);
    }
}

#[test]
fn env_values_the_kernel_cannot_pass_are_refused() {
    let nul = TENANT.replace("LOG_LEVEL: info", "LOG_LEVEL: \"in\\0fo\"");
    refused_at("tenants/acme.yaml", &nul, 10, 21, "NUL");
    let esc = TENANT.replace("LOG_LEVEL: info", "LOG_LEVEL: \"\\e[2J\"");
    refused_at("tenants/acme.yaml", &esc, 10, 21, "control character");
    // One value beyond 32 KiB, at the value.
    let big = TENANT.replace(
        "LOG_LEVEL: info",
        &format!("LOG_LEVEL: {}", "x".repeat(40 * 1024)),
    );
    refused_at("tenants/acme.yaml", &big, 10, 21, "at most 32768");
    // Many values that each fit but together overfill the environment: at the largest one.
    let many: String = (0..20)
        .map(|i| format!("\n    V{i}: {}", "y".repeat(4000 + i)))
        .collect();
    let text = TENANT.replace("env: { LOG_LEVEL: info }", &format!("env:{many}"));
    let d = refused_at(
        "tenants/acme.yaml",
        &text,
        30,
        5,
        "environment of tenant `acme`",
    );
    assert!(d.message.contains("largest: V19"), "{d}");
    // Newlines are fine (a certificate, say).
    let pem = TENANT.replace("LOG_LEVEL: info", "CERT: \"-----BEGIN-----\\nabc\\n\"");
    let state = state_with("tenants/acme.yaml", &pem);
    assert_eq!(state.tenants["acme"].env["CERT"], "-----BEGIN-----\nabc\n");
}

#[test]
fn derived_variables_count_towards_the_environment() {
    // Ten thousand plan features make TENANT_FEATURES alone larger than a variable may be.
    let features: Vec<String> = (0..10_000).map(|i| format!("feature-{i}")).collect();
    let plan = PLAN.replace(
        "features: [webhooks]",
        &format!("features: [{}]", features.join(", ")),
    );
    let d = errors_with("plans/starter.yaml", &plan);
    let d = one(&d);
    assert_at(d, "tenants/acme.yaml", 2, 7, "environment of tenant `acme`");
    assert!(d.message.contains("TENANT_FEATURES"), "{d}");
    // A theme config value too large is refused at the value, once for the theme.
    let theme = THEME.replace(
        "layout: grid",
        &format!("layout: {}", "g".repeat(33 * 1024)),
    );
    let d = errors_with("themes/modern.yaml", &theme);
    assert!(
        d.iter()
            .any(|d| d.path == "themes/modern.yaml" && d.message.contains("config `layout`")),
        "{d:#?}"
    );
}

#[test]
fn numbers_the_database_would_wrap_are_refused_at_their_line() {
    for (quota, column) in [
        ("apiCallsPerMonth: 9223372036854775808", 31),
        ("apiCallsPerMonth: 18446744073709551615", 31),
        ("users: 9223372036854775808", 20),
    ] {
        let text = PLAN.replace(
            "quotas: { apiCallsPerMonth: 10000, users: 5 }",
            &format!("quotas: {{ {quota} }}"),
        );
        refused_at(
            "plans/starter.yaml",
            &text,
            8,
            column,
            "does not fit the database",
        );
    }
    let text = PLAN.replace(
        "quotas: { apiCallsPerMonth: 10000, users: 5 }",
        "quotas: { aiInteractionsPerMonth: 9223372036854775807 }",
    );
    let state = state_with("plans/starter.yaml", &text);
    assert_eq!(
        state.plans["starter"].quotas.ai_interactions_per_month,
        Some(i64::MAX as u64),
        "i64::MAX itself fits"
    );
    for memory in ["9223372036854775808", "10E", "18446744073709551615"] {
        let text = PLAN.replace("memory: 256Mi", &format!("memory: {memory}"));
        let d = errors_with("plans/starter.yaml", &text);
        assert!(
            d.iter()
                .any(|d| d.line == 7 && d.message.contains("is not a valid quantity")),
            "{memory}: {d:#?}"
        );
    }
}

#[test]
fn trial_days_are_bounded_to_ten_years() {
    for days in ["4294967295", "3651", "100000"] {
        let text = PLAN.replace("trialDays: 14", &format!("trialDays: {days}"));
        refused_at("plans/starter.yaml", &text, 6, 14, "more than 3650");
    }
    let text = PLAN.replace("trialDays: 14", "trialDays: 3650");
    assert_eq!(
        state_with("plans/starter.yaml", &text).plans["starter"].trial_days,
        3650
    );
}

#[test]
fn control_and_bidi_characters_are_refused_in_names_and_text() {
    for (from, to, line, column) in [
        (
            "displayName: Acme Corp",
            "displayName: \"Acme\\u202ECorp\"",
            4,
            16,
        ),
        (
            "displayName: Acme Corp",
            "displayName: \"Acme\\x1b[31mCorp\"",
            4,
            16,
        ),
        (
            "displayName: Acme Corp",
            "displayName: \"Acme\\u2066Corp\"",
            4,
            16,
        ),
        (
            "displayName: Acme Corp",
            "displayName: \"Acme\\x9bCorp\"",
            4,
            16,
        ),
        (
            "displayName: Acme Corp",
            "displayName: \"Acme\\x7fCorp\"",
            4,
            16,
        ),
        (
            "owner: ops@acme.example",
            "owner: \"ops\\u202E@acme.example\"",
            5,
            10,
        ),
        (
            "owner: ops@acme.example",
            "owner: \"o\\x1bps@acme.example\"",
            5,
            10,
        ),
        (
            "domain: acme.example.com",
            "domain: \"acme\\x1b.example.com\"",
            9,
            11,
        ),
        ("name: acme", "name: \"ac\\u202Eme\"", 2, 7),
        ("name: acme", "name: \"acme\\x1b]0;pwned\\x07\"", 2, 7),
    ] {
        let text = TENANT.replace(from, to);
        let d = errors_with("tenants/acme.yaml", &text);
        assert!(
            d.iter().any(|d| (d.line, d.column) == (line, column)),
            "{to}: {d:#?}"
        );
        // Whatever the message quotes, each printed line is free of raw escapes and overrides.
        for d in &d {
            let shown = d.to_string();
            assert!(
                !shown
                    .lines()
                    .any(|l| l.chars().any(crate::model::text::is_unsafe_char)),
                "{shown:?}"
            );
        }
    }
    let d = errors_with(
        "themes/modern.yaml",
        &THEME.replace("version: 1.2.0", "version: \"1.2.0-\\x1b[2J\""),
    );
    assert_at(
        one(&d),
        "themes/modern.yaml",
        5,
        12,
        "not a semantic version",
    );
    let d = errors_with(
        "tenants/acme.yaml",
        &format!("{TENANT}  placement: {{ constraints: [\"node.labels.a == b\\u202E\"] }}\n"),
    );
    assert_at(one(&d), "tenants/acme.yaml", 11, 30, "U+202E");
    // Letters of any script stay welcome.
    let text = TENANT.replace("displayName: Acme Corp", "displayName: Ãcmé 株式会社 عربي");
    assert_eq!(
        state_with("tenants/acme.yaml", &text).tenants["acme"].display_name,
        "Ãcmé 株式会社 عربي"
    );
}

#[test]
fn file_names_with_escapes_submodules_and_non_utf8_names_are_refused() {
    for (path, content, needle) in [
        (
            "tenants/ev\u{1b}[2Jil.yaml",
            SourceContent::Bytes(TENANT.replace("acme", "evil").into_bytes()),
            "file name contains U+001B",
        ),
        (
            "tenants/\u{202E}lmay.yaml",
            SourceContent::Bytes(Vec::new()),
            "file name contains U+202E",
        ),
        ("tenants/vendor", SourceContent::Submodule, "git submodule"),
        ("plans", SourceContent::Submodule, "git submodule"),
        (
            "tenants/caf\\xe9.yaml",
            SourceContent::NonUtf8Name,
            "not valid UTF-8",
        ),
    ] {
        let mut files = base();
        files.push(SourceFile {
            path: path.into(),
            content,
        });
        let d = load(&files).unwrap_err();
        assert_at(one(&d), path, 1, 1, needle);
        assert!(!d[0].to_string().contains('\u{1b}'), "{}", d[0]);
    }
}

#[test]
fn theme_colours_must_be_colours() {
    for colour in [
        "blurple",
        "\"#12\"",
        "\"red; background: url(x)\"",
        "\"#zzzzzz\"",
    ] {
        let text = THEME.replace("\"#0f62fe\"", colour);
        refused_at("themes/modern.yaml", &text, 8, 27, "is not a colour");
    }
    let text = THEME.replace("font: Inter", "font: Inter, accentColor: \"#bad-colour\"");
    let d = errors_with("themes/modern.yaml", &text);
    assert!(one(&d).message.contains("accentColor"), "{d:#?}");
    for colour in ["teal", "\"#fff\"", "\"rgb(0, 98, 254)\""] {
        let text = THEME.replace("\"#0f62fe\"", colour);
        state_with("themes/modern.yaml", &text);
    }
}

#[test]
fn yaml_directives_are_checked_with_line_and_column() {
    for (text, line, column, needle) in [
        (
            format!("%YAML 2.0\n---\n{TENANT}"),
            1,
            7,
            "YAML version `2.0`",
        ),
        (
            format!("%YAML 1.2\n%YAML 1.2\n---\n{TENANT}"),
            2,
            1,
            "twice",
        ),
        (
            format!("%FOO bar\n---\n{TENANT}"),
            1,
            1,
            "unknown YAML directive `%FOO`",
        ),
        (format!("%\n---\n{TENANT}"), 1, 1, "has no name"),
        (format!("%YAML 1.2\n{TENANT}"), 1, 1, "followed by a `---`"),
        (
            format!("{TENANT}---\n%TAG\n---\n{TENANT}"),
            12,
            1,
            "`%TAG` takes",
        ),
    ] {
        refused_at("tenants/acme.yaml", &text, line, column, needle);
    }
    let ok = format!("%YAML 1.2\n---\n{TENANT}");
    assert_eq!(state_with("tenants/acme.yaml", &ok).tenants.len(), 1);
}

/// Valid files near the 1 MiB limit, shaped to hit every per-item check many times, must
/// validate in linear time (the watch loop validates each commit).
#[test]
fn a_one_mebibyte_adversarial_repository_validates_quickly() {
    let mib = MAX_FILE_BYTES as usize;
    // A plan with tens of thousands of features.
    let mut features = String::new();
    let mut i = 0;
    while features.len() < mib - 1024 {
        features.push_str(&format!("feature-number-{i}, "));
        i += 1;
    }
    let plan = PLAN.replace("features: [webhooks]", &format!("features: [{features}]"));
    // A tenant with thousands of env entries.
    let mut env = String::new();
    let mut i = 0;
    while env.len() < mib - 2048 {
        env.push_str(&format!("\n    OWN_VARIABLE_{i}: v"));
        i += 1;
    }
    let tenant = TENANT.replace("env: { LOG_LEVEL: info }", &format!("env:{env}"));
    // Thousands of tenants in one file, each with its own domain and owner, each naming a plan
    // that does not exist, so every one asks for a did-you-mean.
    let mut many = String::new();
    let mut i = 0;
    while many.len() < mib - 1024 {
        many.push_str(&format!(
            "---\nkind: Tenant\nname: t{i}\nspec: {{displayName: T, owner: o{i}@x.example, plan: p{i}, theme: modern, domain: d{i}.example, placement: {{constraints: [\"node.role == worker\"]}}}}\n"
        ));
        i += 1;
    }
    // And thousands of plans to suggest from.
    let mut plans = String::new();
    let mut i = 0;
    while plans.len() < mib - 1024 {
        plans.push_str(&format!(
            "---\nkind: Plan\nname: q{i}\nspec: {{displayName: Q, price: {{amount: 1, currency: USD, cycle: monthly}}, resources: {{cpus: 1, memory: 64Mi}}}}\n"
        ));
        i += 1;
    }
    for (path, text) in [
        ("plans/starter.yaml", plan),
        ("plans/many.yaml", plans),
        ("tenants/acme.yaml", tenant),
        ("tenants/many.yaml", many),
    ] {
        assert!(text.len() <= mib, "{path} is {} bytes", text.len());
        let mut files: Vec<SourceFile> = base().into_iter().filter(|f| f.path != path).collect();
        files.push(file(path, &text));
        let started = thread_cpu_time();
        let result = load(&files);
        let took = thread_cpu_time() - started;
        if let Err(d) = &result {
            assert!(
                d.iter().all(|d| d.message.contains("does not exist")
                    || d.message.contains("environment of tenant")),
                "{path}: {:#?}",
                &d[..d.len().min(3)]
            );
        }
        // Not a speed target (benches/planner.rs measures validation): a guard against the
        // quadratic checks coming back, which took over 10 s here. Linear work takes a few
        // tenths of a second of this thread's CPU in a debug build, about 1.2 s on a machine
        // loaded by parallel builds; 5 s leaves room for that and still catches the blow-up.
        assert!(
            took < std::time::Duration::from_secs(5),
            "{path} took {took:?} of CPU"
        );
    }
}

/// CPU time this thread has used, so other work on a busy machine does not count.
fn thread_cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let nanos: u64 = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("on-CPU nanoseconds");
    std::time::Duration::from_nanos(nanos)
}
