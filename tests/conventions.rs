//! The conventions every command shares: completions, the man page, environment variables,
//! exit codes, colour, -q and -v.

use crate::support::{Db, Env, Repo};
use std::process::Output;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn has_ansi(out: &Output) -> bool {
    text(&out.stdout).contains("\x1b[")
}

#[test]
fn completions_for_each_shell_and_bash_accepts_its_script() {
    let repo = Repo::new();
    for (shell, marker) in [
        ("bash", "complete -F _tenantctl"),
        ("zsh", "#compdef tenantctl"),
        ("fish", "complete -c tenantctl"),
    ] {
        let out = repo
            .tenantctl()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and their flags are completed.
        assert!(script.contains("detailed-exitcode"), "{shell}");
        if shell == "bash" {
            let path = repo.path().join("tenantctl.bash");
            std::fs::write(&path, &script).unwrap();
            let check = std::process::Command::new("bash")
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap();
            assert!(check.status.success(), "bash -n: {}", text(&check.stderr));
        }
    }
    let bad = repo
        .tenantctl()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn man_prints_a_roff_page() {
    let out = Repo::new().tenantctl().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    let head: Vec<&str> = page.lines().take(6).collect();
    assert!(
        head.iter().any(|l| l.starts_with(".TH tenantctl 1")),
        "{head:?}"
    );
    assert!(
        page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"),
        "{page}"
    );
    // Each option names its variable; --auto-approve is not on this page (apply's flag).
    assert!(page.contains("TENANTCTL_REPO"), "{page}");
    assert!(
        page.contains("tenantctl\\-completions"),
        "subcommands are listed"
    );
}

#[test]
fn usage_errors_exit_64_help_and_version_exit_0() {
    let repo = Repo::example();
    for args in [
        &["--bogus"][..],
        &["validate", "--bogus"],
        &["plan", "--output", "yaml"],
        &["apply", "--parallelism", "0"],
        &[],
        &["nosuchcommand"],
    ] {
        let out = repo.tenantctl().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let said = text(&out.stderr);
        assert!(
            said.contains("error:") || said.contains("Usage:"),
            "{args:?}"
        );
    }
    for args in [
        &["--help"][..],
        &["plan", "--help"],
        &["-V"],
        &["help", "apply"],
    ] {
        let out = repo.tenantctl().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let help = text(
        &repo
            .tenantctl()
            .args(["apply", "--help"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(help.contains("[env: TENANTCTL_LOCK_TIMEOUT="), "{help}");
    // A forgotten variable must never approve or allow destruction: no variable for these.
    let approve = help.split("--auto-approve").nth(1).unwrap();
    let approve = approve.split("\n\n").next().unwrap();
    assert!(!approve.contains("[env:"), "{approve}");
}

#[test]
fn tenantctl_repo_names_the_repository_from_another_directory() {
    let repo = Repo::example();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = repo
        .tenantctl()
        .current_dir(elsewhere.path())
        .env("TENANTCTL_REPO", repo.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Valid: 3 plans, 3 themes, 6 tenants"),
        "{}",
        text(&out.stdout)
    );
    // Without it, the other directory is what is read.
    let out = repo
        .tenantctl()
        .current_dir(elsewhere.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn quiet_validate_prints_nothing_but_problems() {
    let repo = Repo::example();
    let out = repo.tenantctl().args(["-q", "validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
    let loud = repo.tenantctl().args(["validate"]).output().unwrap();
    assert!(text(&loud.stdout).contains("Valid:"));
    repo.edit("plans/professional.yaml", "memory: 512Mi", "memory: 512Mb");
    let out = repo
        .tenantctl()
        .args(["validate", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("plans/professional.yaml:"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs tenantctl with `args` on a pseudo-terminal (util-linux `script`), with `vars` set.
fn on_a_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut line = format!("'{}'", env!("CARGO_BIN_EXE_tenantctl"));
    for a in env
        .args()
        .iter()
        .map(String::as_str)
        .chain(args.iter().copied())
    {
        line.push_str(&format!(" '{a}'"));
    }
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .current_dir(env.repo.path())
        .env("TENANTCTL_SUBNET_POOL", &env.pool)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("TENANTCTL_DATABASE_URL")
        .env_remove("TENANTCTL_NAMESPACE")
        .env_remove("TENANTCTL_RUNTIME");
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    text(&out.stdout)
}

fn colour_follows_the_flag_and_the_environment(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    for command in ["plan", "status"] {
        // The harness sets NO_COLOR=1 and pipes stdout: no colour...
        let plain = env.run(&[command]);
        assert!(plain.status.success(), "{}", text(&plain.stderr));
        assert!(!has_ansi(&plain), "{command}: {}", text(&plain.stdout));
        // ...unless the command line asks: it outranks the environment.
        let forced = env.run(&["--color", "always", command]);
        assert!(
            has_ansi(&forced),
            "{command} --color always: {}",
            text(&forced.stdout)
        );
        let never = env
            .cmd(&["--color", "never", command])
            .env("CLICOLOR_FORCE", "1")
            .output()
            .unwrap();
        assert!(!has_ansi(&never), "{command} --color never");
        // --no-color is --color never.
        let no_color = env
            .cmd(&[command, "--no-color"])
            .env_remove("NO_COLOR")
            .env("CLICOLOR_FORCE", "1")
            .output()
            .unwrap();
        assert!(!has_ansi(&no_color), "{command} --no-color");
        // CLICOLOR_FORCE colours a pipe; NO_COLOR outranks it.
        let clicolor = env
            .cmd(&[command])
            .env_remove("NO_COLOR")
            .env("CLICOLOR_FORCE", "1")
            .output()
            .unwrap();
        assert!(
            has_ansi(&clicolor),
            "{command} CLICOLOR_FORCE=1: {}",
            text(&clicolor.stdout)
        );
        let both = env
            .cmd(&[command])
            .env("NO_COLOR", "1")
            .env("CLICOLOR_FORCE", "1")
            .output()
            .unwrap();
        assert!(!has_ansi(&both), "{command} NO_COLOR=1 CLICOLOR_FORCE=1");
        let piped = env.cmd(&[command]).env_remove("NO_COLOR").output().unwrap();
        assert!(
            !has_ansi(&piped),
            "{command}: a pipe is not coloured by default"
        );
        // On a terminal: coloured, but not with TERM=dumb nor NO_COLOR.
        let tty = on_a_terminal(&env, &[command], &[("TERM", "xterm")]);
        assert!(tty.contains("\x1b["), "{command} on a terminal: {tty}");
        assert!(tty.contains("Sync") || tty.contains("Plan:"), "{tty}");
        let dumb = on_a_terminal(&env, &[command], &[("TERM", "dumb")]);
        assert!(!dumb.contains("\x1b["), "{command} TERM=dumb: {dumb}");
        assert!(dumb.contains("Sync") || dumb.contains("Plan:"), "{dumb}");
        let no = on_a_terminal(&env, &[command], &[("TERM", "xterm"), ("NO_COLOR", "1")]);
        assert!(
            !no.contains("\x1b[") && !no.is_empty(),
            "{command} NO_COLOR on a terminal: {no}"
        );
    }
    // Log lines (RUST_LOG) follow the same rules on stderr.
    let logged = env
        .cmd(&["--color", "always", "plan"])
        .env("RUST_LOG", "tenantctl=debug")
        .output()
        .unwrap();
    let stderr = text(&logged.stderr);
    assert!(
        stderr.contains("computed plan") && stderr.contains("\x1b["),
        "{stderr}"
    );
    let logged = env
        .cmd(&["plan"])
        .env("RUST_LOG", "tenantctl=debug")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    let stderr = text(&logged.stderr);
    assert!(
        stderr.contains("computed plan") && !stderr.contains("\x1b["),
        "NO_COLOR: {stderr}"
    );
}

fn verbose_raises_the_log_level_unless_rust_log_is_set(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    let run = |args: &[&str], rust_log: Option<&str>| {
        let mut c = env.cmd(args);
        match rust_log {
            Some(v) => c.env("RUST_LOG", v),
            None => c.env_remove("RUST_LOG"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    assert!(!run(&["plan"], None).contains("computed plan"));
    assert!(
        !run(&["-v", "plan"], None).contains("computed plan"),
        "-v is info"
    );
    assert!(
        run(&["-vv", "plan"], None).contains("computed plan"),
        "-vv is debug"
    );
    assert!(run(&["plan", "--verbose", "--verbose"], None).contains("DEBUG"));
    assert!(
        !run(&["-vv", "plan"], Some("error")).contains("computed plan"),
        "RUST_LOG wins"
    );
}

fn quiet_apply_prints_only_new_keys_and_failures(backend: Db) {
    let Some(env) = Env::new(Repo::example(), backend) else {
        return;
    };
    // A forgotten variable never approves: apply still asks, and without a terminal refuses.
    let out = env
        .cmd(&["apply"])
        .env("TENANTCTL_AUTO_APPROVE", "true")
        .env("TENANTCTL_ALLOW_DESTROY", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs confirmation"),
        "{}",
        text(&out.stderr)
    );
    assert!(crate::support::names("container", &env.ns).is_empty());
    let out = env
        .cmd(&["-q", "apply", "--auto-approve"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    // The keys are shown once: they stay. The plan, progress and summary go.
    assert!(stdout.contains("New API keys"), "{stdout}");
    assert!(
        !stdout.contains("Plan:") && !stdout.contains("Apply complete"),
        "{stdout}"
    );
    assert!(!stdout.contains("acme: "), "no progress lines: {stdout}");
    assert!(env.running("acme"));
    // Nothing to do: nothing printed at all.
    let out = env
        .cmd(&["apply", "--auto-approve", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    // Without -q the same apply says so.
    assert!(env.apply_ok(&[]).contains("Apply complete! Nothing to do."));
    // plan keeps its plan (what it is run for), status its table.
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "plan: professional",
            "plan: enterprise",
        )
        .commit("acme up");
    let plan = env.ok(&["-q", "plan"]);
    assert!(
        plan.contains("Plan: 0 to create, 1 to update") || plan.contains("to replace"),
        "{plan}"
    );
}

on_both_databases!(
    colour_follows_the_flag_and_the_environment,
    verbose_raises_the_log_level_unless_rust_log_is_set,
    quiet_apply_prints_only_new_keys_and_failures,
);
