//! `tenantctl tui` in a real terminal: tmux runs the real binary against real tenants, the test
//! types keys into the pane and reads what the screen shows.

use crate::support::{Db, Env, Repo, http};
use crate::watch::{Watch, eventually};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of its own (its socket in a temporary directory), running one command in a
/// 170×40 pane (wide enough for every column); killed on drop. `apply`'s live display is
/// tested with it too (`tests/live.rs`).
pub(crate) struct Tmux {
    socket: String,
    _dir: tempfile::TempDir,
}

/// `'text'` for `sh -c`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Tmux {
    /// Runs `tenantctl ARGS` in `cwd` with `env` set; when it exits the pane says
    /// `tui exited with CODE` and keeps showing the terminal as the program left it.
    /// `None` (with a note) when tmux is missing outside CI; in CI that fails the test.
    pub(crate) fn start(cwd: &Path, env: &[(&str, String)], args: &[&str]) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("tmux is not installed in CI: .ci/run must install it");
            }
            eprintln!("note: tmux is not installed; skipping this dashboard test");
            return None;
        }
        let mut line = String::from("env -u TENANTCTL_NAMESPACE -u TENANTCTL_DATABASE_URL");
        for (k, v) in env {
            line.push(' ');
            line.push_str(&quote(&format!("{k}={v}")));
        }
        line.push(' ');
        line.push_str(&quote(env!("CARGO_BIN_EXE_tenantctl")));
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        // After the exit: the code, and whether the terminal is back in canonical (cooked) mode.
        line.push_str(
            "; echo \"tui exited with $?\"; if stty -a | tr ' ;' '\\n\\n' | grep -qx icanon; then echo 'terminal: cooked'; else echo 'terminal: raw'; fi; exec sleep 600",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let tmux = Tmux {
            socket: dir.path().join("tmux").display().to_string(),
            _dir: dir,
        };
        let cwd = cwd.display().to_string();
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "170",
            "-y",
            "40",
            "-s",
            "t",
            "-c",
            &cwd,
            "sh",
            "-c",
            &line,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-S", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs")
    }

    /// What the pane shows now, as plain text.
    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "t"]).stdout).to_string()
    }

    /// Keys by tmux name (`Enter`, `BTab`, `q`, …).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    /// Text typed as is.
    fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "t", "-l", text])
                .status
                .success()
        );
    }

    /// Polls the pane until `check` holds for it; fails with the last screen after `within`.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not show within {within:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    /// Stops the dashboard first and waits for it (a loop's pass in progress finishes), so the
    /// test's cleanup never races a process still creating containers — also when a test fails.
    fn drop(&mut self) {
        let panes = self.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let shell = String::from_utf8_lossy(&panes.stdout).trim().to_string();
        if !shell.is_empty() {
            let _ = Command::new("pkill")
                .args(["-TERM", "-P", &shell, "-x", "tenantctl"])
                .output();
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline
                && Command::new("pgrep")
                    .args(["-P", &shell, "-x", "tenantctl"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.run(&["kill-server"]);
    }
}

/// The table row of `slug`, if shown.
fn row<'a>(screen: &'a str, slug: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().next() == Some(slug))
}

const SLUGS: [&str; 6] = ["acme", "globex", "hooli", "initech", "stark", "umbrella"];

#[test]
fn the_dashboard_runs_the_loop_filters_and_streams_live_logs() {
    let repo = Repo::example();
    // The built-in site logs each request at debug: the test makes acme log a line it can find.
    repo.edit(
        "tenants/us/acme.yaml",
        "env: { LOG_LEVEL: info }",
        "env: { LOG_LEVEL: info, RUST_LOG: debug }",
    )
    .commit("acme logs at debug");
    let Some(env) = Env::new(repo, Db::Sqlite) else {
        return;
    };
    let Some(tmux) = Tmux::start(
        env.repo.path(),
        &[("TENANTCTL_SUBNET_POOL", env.pool.clone())],
        &[
            "--namespace",
            &env.ns,
            "tui",
            "--refresh",
            "1s",
            "--interval",
            "5s",
            "--no-color",
        ],
    ) else {
        return;
    };

    // The in-process loop converges the example; the header and the table say so.
    let screen = tmux.wait_for("the converged example", Duration::from_secs(180), |s| {
        s.contains("Synced 6") && s.contains("Healthy 5") && s.contains("Suspended 1")
    });
    assert!(
        screen.contains(&format!("tenantctl {}", env.ns)),
        "{screen}"
    );
    assert!(screen.contains("loop: in-process"), "{screen}");
    assert!(screen.contains("in sync  0 pending"), "{screen}");
    for slug in SLUGS {
        assert!(row(&screen, slug).is_some(), "no row for {slug}:\n{screen}");
    }
    let acme = row(&screen, "acme").unwrap_or_default();
    for cell in ["professional", "modern", "active", "Synced", "Healthy"] {
        assert!(acme.contains(cell), "{cell} missing: {acme}");
    }
    // Live usage against the plan's limits arrives with the next stats readings.
    let screen = tmux.wait_for("acme's memory gauge", Duration::from_secs(30), |s| {
        row(s, "acme").is_some_and(|r| r.contains("/512M") && r.contains('%'))
    });
    let initech = row(&screen, "initech").unwrap_or_default();
    assert!(
        initech.contains("suspended") && initech.contains("Suspended"),
        "{initech}"
    );

    // `/` filters the table as one types; Enter keeps the filter.
    tmux.keys(&["/"]);
    tmux.type_text("acme");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the filtered table", Duration::from_secs(10), |s| {
        row(s, "acme").is_some() && SLUGS[1..].iter().all(|slug| row(s, slug).is_none())
    });
    assert!(screen.contains("1/6"), "{screen}");

    // Enter opens the detail (its file in git, its URL); Shift-Tab goes round to the Logs tab.
    tmux.keys(&["Enter"]);
    let url = env.site("acme");
    tmux.wait_for("acme's detail", Duration::from_secs(10), |s| {
        s.contains("tenants/us/acme.yaml") && s.contains(&format!("{url}/"))
    });
    tmux.keys(&["BTab"]);
    tmux.wait_for("the log pane", Duration::from_secs(10), |s| {
        // The site's first line, or, once health checks and probes have pushed it up, theirs.
        s.contains("following")
            && (s.contains("site listening") || s.contains("tenantctl::site::server"))
    });
    // A request made now is logged by the site and shows up live.
    let marker = format!("/tuimark{}", env.ns);
    assert_eq!(http("GET", &format!("{url}{marker}"), &[]).0, 404);
    tmux.wait_for("the live log line", Duration::from_secs(20), |s| {
        s.contains(&marker)
    });

    // q quits: the terminal is given back and the process exits 0.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit", Duration::from_secs(60), |s| {
        s.contains("tui exited with")
    });
    assert!(screen.contains("tui exited with 0"), "{screen}");
    assert!(screen.contains("terminal: cooked"), "{screen}");
    assert!(
        !screen.contains("TENANT") && !screen.contains("following"),
        "the dashboard is still on screen:\n{screen}"
    );
}

#[test]
fn with_watch_running_the_dashboard_attaches_read_only() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    let mut watch = Watch::start(&env.repo, &env.ns, &env.pool, &["--interval", "30s"], &[]);
    eventually(&watch, Duration::from_secs(180), "the first apply", || {
        watch.output().contains("changes applied")
    });
    let Some(tmux) = Tmux::start(
        env.repo.path(),
        &[("TENANTCTL_SUBNET_POOL", env.pool.clone())],
        &["--namespace", &env.ns, "tui", "--refresh", "1s"],
    ) else {
        return;
    };
    let screen = tmux.wait_for("the read-only header", Duration::from_secs(60), |s| {
        s.contains("read-only, loop:") && s.contains("Synced 6")
    });
    assert!(!screen.contains("in-process"), "{screen}");

    // S asks the running watch to sync now; it is that process that syncs.
    tmux.keys(&["S"]);
    let pid = watch.child.id();
    tmux.wait_for("the SIGHUP answer", Duration::from_secs(10), |s| {
        s.contains(&format!("asked `tenantctl watch` (pid {pid}) to sync now"))
    });
    eventually(&watch, Duration::from_secs(10), "the watch syncing", || {
        watch.output().contains("SIGHUP: syncing now")
    });
    // Restart is refused read-only, with the reason.
    tmux.keys(&["R"]);
    tmux.wait_for("the read-only refusal", Duration::from_secs(10), |s| {
        s.contains("read-only: `tenantctl watch`")
    });

    // Once the watch is gone (its lease released), nothing reconciles, and the header says so.
    watch.stop_cleanly();
    tmux.wait_for("the loop gone", Duration::from_secs(15), |s| {
        s.contains("read-only, no loop")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit", Duration::from_secs(30), |s| {
        s.contains("tui exited with")
    });
    assert!(screen.contains("tui exited with 0"), "{screen}");
}

#[test]
fn a_database_outage_and_a_broken_commit_show_on_screen_and_keys_keep_working() {
    let Some(env) = Env::new(Repo::example(), Db::Postgres) else {
        return;
    };
    let Some(pg) = env.pg.as_ref() else {
        return;
    };
    let url = env.url();
    let Some(tmux) = Tmux::start(
        env.repo.path(),
        &[("TENANTCTL_SUBNET_POOL", env.pool.clone())],
        &[
            "--namespace",
            &env.ns,
            "--database-url",
            &url,
            "tui",
            "--refresh",
            "1s",
            "--interval",
            "5s",
        ],
    ) else {
        return;
    };
    tmux.wait_for("the converged example", Duration::from_secs(180), |s| {
        s.contains("Synced 6") && s.contains("in sync")
    });

    // The database goes away: a fault line, and the dashboard still answers keys.
    pg.set_available(false);
    tmux.wait_for("the fault line", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.starts_with("! ") && l.contains("retrying"))
    });
    tmux.keys(&["?"]);
    tmux.wait_for("help during the outage", Duration::from_secs(5), |s| {
        s.contains("Keys") && s.contains("sync this tenant now")
    });
    tmux.keys(&["Escape"]);
    pg.set_available(true);
    let screen = tmux.wait_for("recovery", Duration::from_secs(60), |s| {
        !s.lines().any(|l| l.starts_with("! ")) && s.contains("Synced 6") && !s.contains(" old")
    });
    assert!(!screen.contains("Keys"), "{screen}");

    // A broken commit: the header says why, syncs turn Unknown, nothing is changed.
    let before = crate::support::names("container", &env.ns);
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "plan: professional",
            "plna: professional",
        )
        .commit("a typo");
    let screen = tmux.wait_for("the invalid revision", Duration::from_secs(30), |s| {
        s.contains("is invalid") && s.contains("Unknown 6")
    });
    assert!(screen.contains("tenants/us/acme.yaml"), "{screen}");
    std::thread::sleep(Duration::from_secs(6)); // a loop pass (interval 5 s) sees the broken commit too
    assert_eq!(crate::support::names("container", &env.ns), before);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit", Duration::from_secs(30), |s| {
        s.contains("tui exited with")
    });
    assert!(screen.contains("tui exited with 0"), "{screen}");
}

#[test]
fn a_panic_or_sigterm_gives_the_terminal_back() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    // A panic (debug builds panic on purpose with this variable, once the first frame is drawn).
    let Some(tmux) = Tmux::start(
        env.repo.path(),
        &[
            ("TENANTCTL_TUI_TEST_PANIC", "1".to_string()),
            ("RUST_BACKTRACE", "0".to_string()),
        ],
        &["--namespace", &env.ns, "tui", "--read-only"],
    ) else {
        return;
    };
    let screen = tmux.wait_for("the exit", Duration::from_secs(60), |s| {
        s.contains("terminal: ")
    });
    assert!(
        screen.lines().any(|l| l == "tui exited with 101"),
        "the exit line is whole (nothing printed over):\n{screen}"
    );
    assert!(
        screen.contains("panicking on purpose"),
        "the message is readable:\n{screen}"
    );
    assert!(screen.contains("terminal: cooked"), "{screen}");
    assert!(!screen.contains("sort: tenant"), "{screen}");
    drop(tmux);

    // SIGTERM: a clean exit, terminal restored.
    let Some(tmux) = Tmux::start(
        env.repo.path(),
        &[],
        &["--namespace", &env.ns, "tui", "--read-only"],
    ) else {
        return;
    };
    tmux.wait_for("the dashboard", Duration::from_secs(60), |s| {
        s.contains("TENANT")
    });
    let pid = tmux.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&pid.stdout).trim().to_string();
    let out = Command::new("pkill")
        .args(["-TERM", "-P", &shell, "-x", "tenantctl"])
        .output()
        .expect("pkill");
    assert!(
        out.status.success(),
        "no tenantctl under the pane's shell {shell}"
    );
    let screen = tmux.wait_for("the exit", Duration::from_secs(30), |s| {
        s.contains("terminal: ")
    });
    assert!(screen.contains("tui exited with 0"), "{screen}");
    assert!(screen.contains("terminal: cooked"), "{screen}");
}
