//! `apply`'s live display: in a real terminal (tmux) each tenant at work has a line with its
//! step, and the health wait counts its seconds; piped, the output is the plain lines, with
//! nothing of the display in it; `TERM=dumb` gets the plain lines in a terminal too.

use crate::support::{Db, Env, Repo};
use crate::tui::Tmux;
use std::time::Duration;

/// The seconds of the health wait the pane shows for `slug`, if it shows one:
/// `shop  [6/7] health: waiting for its health check (4s)` → 4.
fn health_wait(screen: &str, slug: &str) -> Option<u64> {
    let line = screen.lines().find(|l| {
        l.split_whitespace().nth(1) == Some(slug) && l.contains("[6/7] health: waiting")
    })?;
    let elapsed = line.rsplit_once('(')?.1.strip_suffix(')')?;
    elapsed.strip_suffix('s')?.parse().ok()
}

/// What the display draws, never in plain output.
fn has_display(text: &str) -> bool {
    text.contains("[6/7]") || text.contains("at work") || text.contains('\x1b')
}

#[test]
fn apply_shows_live_steps_and_the_health_wait_on_a_terminal_only() {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        Db::Sqlite,
    ) else {
        return;
    };
    // Piped: the plain lines of every apply, nothing of the display.
    let piped = env.apply_ok(&[]);
    let created = format!("shop: container.{}-shop: + created", env.ns);
    assert!(piped.contains(&created), "{piped}");
    assert!(piped.contains("Apply complete!"), "{piped}");
    assert!(!has_display(&piped), "{piped}");

    // A replacement whose new container never answers its health path: the apply waits.
    env.repo
        .edit("themes/classic.yaml", "path: /health", "path: /not-there")
        .edit("tenants/shop.yaml", "theme: minimal", "theme: classic")
        .commit("shop to classic, whose health path the site does not serve");
    let vars = [("TENANTCTL_SUBNET_POOL", env.pool.clone())];
    let mut args = vec!["--namespace", &env.ns, "apply", "--auto-approve"];
    args.extend(["--health-timeout", "25s", "--attempts", "1"]);
    let Some(tmux) = Tmux::start(env.repo.path(), &vars, &args) else {
        return;
    };
    let screen = tmux.wait_for("shop's health wait", Duration::from_secs(120), |s| {
        health_wait(s, "shop").is_some_and(|secs| secs >= 2)
    });
    let first = health_wait(&screen, "shop").unwrap_or(0);
    assert!(
        screen.contains("applying: 0 converged, 1 at work"),
        "{screen}"
    );
    // The plan is shown above the display as without it.
    assert!(screen.contains("Plan: "), "{screen}");
    // The elapsed time moves while the apply waits.
    tmux.wait_for(
        "the health wait to count on",
        Duration::from_secs(20),
        |s| health_wait(s, "shop").is_some_and(|secs| secs >= first + 3),
    );
    // The apply gives up; the display is gone, the summary is as without it.
    let screen = tmux.wait_for("the apply's end", Duration::from_secs(120), |s| {
        s.contains("tui exited with 1")
    });
    assert!(!has_display(&screen), "{screen}");
    assert!(
        screen.contains("Apply finished with errors: 1 tenant failed."),
        "{screen}"
    );
    assert!(screen.contains("/not-there"), "{screen}");
    drop(tmux);

    // TERM=dumb cannot move the cursor: the plain lines, in a terminal too.
    env.repo
        .edit("themes/classic.yaml", "path: /not-there", "path: /health")
        .commit("classic's health path is served again");
    let vars = [
        ("TENANTCTL_SUBNET_POOL", env.pool.clone()),
        ("TERM", "dumb".to_string()),
    ];
    let args = ["--namespace", &env.ns, "apply", "--auto-approve"];
    let Some(tmux) = Tmux::start(env.repo.path(), &vars, &args) else {
        return;
    };
    let screen = tmux.wait_for("the dumb terminal's apply", Duration::from_secs(180), |s| {
        s.contains("tui exited with")
    });
    assert!(screen.contains("tui exited with 0"), "{screen}");
    assert!(
        screen.contains(&format!("shop: container.{}-shop:", env.ns)),
        "{screen}"
    );
    assert!(!has_display(&screen), "{screen}");
}
