//! Property tests of the model layer: whatever bytes a repository holds, `load` answers with a
//! complete desired state or located diagnostics, never a panic; generated valid repositories
//! load and plan deterministically; hostile values are always refused.
//!
//! Cases per property: `PROPTEST_CASES` (proptest's default, 256, when unset), e.g.
//! `PROPTEST_CASES=100000 cargo test --lib model::prop` for a long run.

use proptest::prelude::*;

use super::{SourceContent, SourceFile, load};
use crate::plan::{ObservedState, PlanOptions, compute, render};

const DIRS: [&str; 3] = ["plans", "themes", "tenants"];

fn file(path: String, bytes: Vec<u8>) -> SourceFile {
    SourceFile {
        path,
        content: SourceContent::Bytes(bytes),
    }
}

/// Every diagnostic names one of `files` and a line and column inside its text (a column may
/// point just past a line's last character, and a line just past the last line: the end).
fn assert_located(files: &[SourceFile], diagnostics: &[super::Diagnostic]) {
    assert!(!diagnostics.is_empty(), "a refusal without a diagnostic");
    for d in diagnostics {
        let f = files
            .iter()
            .find(|f| f.path == d.path)
            .unwrap_or_else(|| panic!("{d} names no file given"));
        assert!(d.line >= 1 && d.column >= 1, "{d}: not 1-based");
        if let SourceContent::Bytes(bytes) = &f.content {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.split('\n').collect();
            let line = usize::try_from(d.line).unwrap_or(usize::MAX);
            assert!(
                line <= lines.len() + 1,
                "{d}: line beyond the file ({} lines)",
                lines.len()
            );
            if let Some(content) = lines.get(line - 1) {
                let width = content.chars().count() + 2;
                assert!(
                    usize::try_from(d.column).unwrap_or(usize::MAX) <= width,
                    "{d}: column beyond line {line} ({content:?})"
                );
            }
        }
    }
}

/// Pieces YAML is made of, so random text reaches the parser's and the checks' corners.
fn yamlish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("kind".to_string()),
        Just("name".to_string()),
        Just("spec".to_string()),
        Just("displayName".to_string()),
        Just("price".to_string()),
        Just("resources".to_string()),
        Just("memory".to_string()),
        Just("cpus".to_string()),
        Just("quotas".to_string()),
        Just("env".to_string()),
        Just("plan".to_string()),
        Just("theme".to_string()),
        Just("health".to_string()),
        Just("image".to_string()),
        Just("config".to_string()),
        "[a-zA-Z_]{1,8}",
    ];
    let value = prop_oneof![
        Just(String::new()),
        Just("Plan".to_string()),
        Just("Theme".to_string()),
        Just("Tenant".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("*a".to_string()),
        Just("{ amount: 9.99, currency: USD, cycle: monthly }".to_string()),
        Just("[x, y".to_string()),
        Just("\"\\u202e\\x00\"".to_string()),
        Just("!!binary aGk=".to_string()),
        Just("99999999999999999999".to_string()),
        Just("- a\n- b".to_string()),
        Just("|\n  text".to_string()),
        "[ -~]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ];
    let line = prop_oneof![
        8 => (0usize..4, key, value).prop_map(|(indent, k, v)| format!("{}{k}: {v}", "  ".repeat(indent))),
        1 => Just("---".to_string()),
        1 => Just("%YAML 1.2".to_string()),
        1 => Just("- item".to_string()),
        1 => "\\PC{0,16}",
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

/// A file at a random place under the three state directories.
fn path() -> impl Strategy<Value = String> {
    (0usize..3, "[a-z0-9]{1,6}", prop::bool::ANY).prop_map(|(dir, name, yaml)| {
        format!("{}/{name}.{}", DIRS[dir], if yaml { "yaml" } else { "yml" })
    })
}

/// A slug: a DNS label.
fn slug() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?"
}

/// A valid repository: plans, themes, tenants that name them; (files, tenant count).
fn repository() -> impl Strategy<Value = Vec<SourceFile>> {
    let plans = prop::collection::btree_set(slug(), 1..4);
    let themes = prop::collection::btree_set(slug(), 1..4);
    let tenants = prop::collection::btree_map(
        slug(),
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            prop::bool::ANY,
            0u64..1_000_000,
            "[A-Z]{1,3}",
            "[a-z0-9 ]{0,10}",
        ),
        0..8,
    );
    (plans, themes, tenants).prop_map(|(plans, themes, tenants)| {
        let plans: Vec<String> = plans.into_iter().collect();
        let themes: Vec<String> = themes.into_iter().collect();
        let mut files = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            files.push(file(
                format!("plans/{p}.yaml"),
                format!(
                    "kind: Plan\nname: {p}\nspec:\n  displayName: Plan {p}\n  price: {{ amount: {i}.99, currency: USD, cycle: monthly }}\n  trialDays: {i}\n  resources: {{ cpus: 0.5, memory: {}Mi, pids: 128 }}\n  quotas: {{ apiCallsPerMonth: {} }}\n",
                    128 * (i + 1),
                    1000 * (i + 1)
                )
                .into_bytes(),
            ));
        }
        for (i, t) in themes.iter().enumerate() {
            let image = if i % 2 == 1 { format!("  image: registry.example/{t}:1.{i}\n") } else { String::new() };
            files.push(file(
                format!("themes/{t}.yaml"),
                format!(
                    "kind: Theme\nname: {t}\nspec:\n  displayName: Theme {t}\n  version: 1.{i}.0\n{image}  health: {{ path: /health, intervalSeconds: 10 }}\n  config: {{ primaryColor: \"#0f62fe\" }}\n"
                )
                .into_bytes(),
            ));
        }
        for (slug, (plan, theme, suspended, n, env_key, env_value)) in tenants {
            let state = if suspended { "  state: suspended\n" } else { "" };
            files.push(file(
                format!("tenants/{slug}.yaml"),
                format!(
                    "kind: Tenant\nname: {slug}\nspec:\n  displayName: Tenant {slug}\n  owner: ops{n}@{slug}.example\n  plan: {}\n  theme: {}\n{state}  env: {{ APP_{env_key}: \"{env_value}\" }}\n",
                    plan.get(&plans),
                    theme.get(&themes)
                )
                .into_bytes(),
            ));
        }
        files
    })
}

/// A character no name, display name, owner or env value may hold.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..0x20)
            .prop_filter("tab, newline, CR are allowed in env values", |c| ![
                9, 10, 13
            ]
            .contains(c))
            .prop_map(|c| char::from_u32(c).unwrap_or('\0')),
        Just('\u{7f}'),
        (0x80u32..0xa0).prop_map(|c| char::from_u32(c).unwrap_or('\0')),
        prop::sample::select(vec![
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}',
        ]),
    ]
}

/// `c` as a YAML double-quoted escape, so the parser hands the character itself to the checks.
fn escaped(c: char) -> String {
    format!("\\u{:04x}", u32::from(c))
}

fn plan_options() -> PlanOptions {
    PlanOptions {
        namespace: "prop".into(),
        revision: "0000000".into(),
        prune: false,
        tenants: vec![],
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_refusals_are_located(
        files in prop::collection::vec((path(), prop::collection::vec(any::<u8>(), 0..400)), 0..4)
    ) {
        let files: Vec<SourceFile> = files.into_iter().map(|(p, b)| file(p, b)).collect();
        if let Err(diagnostics) = load(&files) {
            assert_located(&files, &diagnostics);
        }
    }

    #[test]
    fn yaml_like_text_never_panics_and_refusals_are_located(
        files in prop::collection::vec((path(), yamlish()), 1..4)
    ) {
        let files: Vec<SourceFile> =
            files.into_iter().map(|(p, t)| file(p, t.into_bytes())).collect();
        if let Err(diagnostics) = load(&files) {
            assert_located(&files, &diagnostics);
        }
    }

    #[test]
    fn valid_repositories_load_and_plan_deterministically(files in repository()) {
        let desired = load(&files).unwrap_or_else(|d| {
            panic!("{}", d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        });
        let tenants = files.iter().filter(|f| f.path.starts_with("tenants/")).count();
        prop_assert_eq!(desired.tenants.len(), tenants);
        let observed = ObservedState::default();
        let first = compute(&desired, &observed, &plan_options());
        // The same files in another order: the same desired state and the same plan.
        let mut reversed = files.clone();
        reversed.reverse();
        let again = load(&reversed).map_err(|_| TestCaseError::fail("reordered files refused"))?;
        let second = compute(&again, &observed, &plan_options());
        prop_assert!(first.same_changes(&second));
        prop_assert_eq!(render::json(&first), render::json(&second));
        // Every tenant gets its network, volume, container and row.
        prop_assert_eq!(first.changes.iter().filter(|c| c.tenant.is_some()).count(), 4 * tenants);
    }

    #[test]
    fn hostile_characters_are_always_refused(
        files in repository(),
        c in hostile_char(),
        field in 0usize..4,
        at in any::<prop::sample::Index>(),
    ) {
        let tenants: Vec<usize> = files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.path.starts_with("tenants/"))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!tenants.is_empty());
        let i = tenants[at.index(tenants.len())];
        let mut files = files;
        let SourceContent::Bytes(bytes) = &files[i].content else { unreachable!() };
        let text = String::from_utf8_lossy(bytes).into_owned();
        let e = escaped(c);
        let hostile = match field {
            // displayName, owner, an env value, a new env entry's value.
            // Inside the name: a display name is trimmed, so whitespace controls at its ends
            // (U+000B, U+000C, U+0085) are dropped rather than kept, never stored.
            0 => text.replacen("  displayName: Tenant ", &format!("  displayName: \"x{e}y\"\n  #"), 1),
            1 => text.replacen("  owner: ", &format!("  owner: \"a{e}b@x.example\"\n  #"), 1),
            2 => text.replacen("\" }", &format!("{e}\" }}"), 1),
            _ => text.replacen("  env: {", &format!("  env: {{ APP_HOSTILE: \"v{e}\","), 1),
        };
        prop_assert_ne!(&hostile, &text);
        files[i] = file(files[i].path.clone(), hostile.into_bytes());
        match load(&files) {
            Ok(_) => prop_assert!(false, "accepted {:?} in field {}", c, field),
            Err(diagnostics) => assert_located(&files, &diagnostics),
        }
    }

    #[test]
    fn quotas_of_2_pow_63_and_more_are_refused(n in (1u128 << 63)..u128::MAX, key in 0usize..3) {
        let key = ["apiCallsPerMonth", "aiInteractionsPerMonth", "users"][key];
        let files = vec![
            file("plans/p.yaml".into(), format!(
                "kind: Plan\nname: p\nspec:\n  displayName: P\n  price: {{ amount: 1, currency: USD, cycle: monthly }}\n  resources: {{ cpus: 0.5, memory: 128Mi, pids: 64 }}\n  quotas: {{ {key}: {n} }}\n"
            ).into_bytes()),
        ];
        match load(&files) {
            Ok(_) => prop_assert!(false, "accepted {key}: {n}"),
            Err(diagnostics) => {
                assert_located(&files, &diagnostics);
                prop_assert!(diagnostics.iter().all(|d| d.line == 7), "{:?}", diagnostics);
            }
        }
    }
}
