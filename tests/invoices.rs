//! Invoices: at the turn of a billing period, `invoices close` closes every tenant's invoice of
//! the period just ended into the database, once; `invoices` lists them. The clock is
//! TENANTCTL_NOW, moved across a month boundary. The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, events};
use tenantctl::usage::time::{month_bounds, month_key};

fn at(env: &Env, now: i64, args: &[&str]) -> std::process::Output {
    env.cmd(args)
        .env("TENANTCTL_NOW", now.to_string())
        .output()
        .unwrap()
}

fn ok_at(env: &Env, now: i64, args: &[&str]) -> String {
    let out = at(env, now, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn listed(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["invoices"];
    all.extend(args);
    all.extend(["-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&env.ok(&all)).unwrap();
    assert_eq!(doc["format_version"], 1, "{doc}");
    doc["invoices"].clone()
}

fn a_period_is_closed_once_when_the_clock_crosses_its_end(backend: Db) {
    let repo = Repo::example_with_tenants(&[
        ("shop", "professional", "minimal"),
        ("trial", "starter", "minimal"),
    ]);
    repo.edit("plans/professional.yaml", "trialDays: 14", "trialDays: 0")
        .commit("professional without a trial");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    env.apply_ok(&[]);
    // The tenants are recorded now; the month they were recorded in ends at `boundary`.
    let now = tenantctl::store::now_unix();
    let (start, boundary) = month_bounds(now);
    let period = month_key(start);

    // A minute before the boundary: the period that ended last is the month before, when
    // neither tenant existed.
    let before = ok_at(&env, boundary - 60, &["invoices", "close"]);
    assert!(
        before.contains("Closed 0 invoices; 0 already closed."),
        "{before}"
    );
    assert_eq!(listed(&env, &[]), serde_json::json!([]));

    // A minute after: this month is closed, one invoice per tenant.
    let after = ok_at(&env, boundary + 60, &["invoices", "close"]);
    assert!(
        after.contains("Closed 2 invoices; 0 already closed."),
        "{after}"
    );
    let all = listed(&env, &[]);
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    let shop = &listed(&env, &["shop", "--period", &period])[0];
    assert_eq!(shop["period"], period.as_str(), "{shop}");
    assert_eq!(shop["plan"], "professional");
    assert_eq!(shop["currency"], "USD");
    assert_eq!(shop["total_cents"], 7999, "{shop}");
    assert_eq!(shop["overage_cents"], 0);
    assert_eq!(shop["trial_until"], serde_json::Value::Null);
    assert_eq!(shop["lines"][0]["amount_cents"], 7999);
    let trial = &listed(&env, &["trial"])[0];
    assert_eq!(trial["total_cents"], 0, "{trial}");
    assert!(trial["trial_until"].is_string(), "{trial}");
    let text = env.ok(&["invoices", "shop"]);
    assert!(
        text.contains(&format!("shop {period} (professional, monthly"))
            && text.contains("USD 79.99"),
        "{text}"
    );

    // Closing again, then or days later, changes nothing.
    let again = ok_at(&env, boundary + 60, &["invoices", "close"]);
    assert!(
        again.contains("Closed 0 invoices; 2 already closed."),
        "{again}"
    );
    let later = ok_at(&env, boundary + 10 * 86_400, &["invoices", "close"]);
    assert!(
        later.contains("Closed 0 invoices; 2 already closed."),
        "{later}"
    );
    assert_eq!(listed(&env, &[]), all, "a closed invoice never changes");
    for slug in ["shop", "trial"] {
        let closes: Vec<_> = events(&env.url(), slug)
            .into_iter()
            .filter(|e| e.kind == "invoice.close")
            .collect();
        assert_eq!(closes.len(), 1, "{slug}: {closes:?}");
        assert!(
            closes[0]
                .message
                .starts_with(&format!("invoice {period} closed"))
        );
    }

    let bad = env.run(&["invoices", "--period", "2026-13"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM"));
}

on_both_databases!(a_period_is_closed_once_when_the_clock_crosses_its_end);
