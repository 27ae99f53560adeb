//! Fixtures the tests build themselves: git repositories, Docker objects under a unique
//! namespace (removed on drop), and databases.

#![allow(dead_code)]

pub mod pebble;
pub mod proxy;

/// Every story `fn story(backend: Db)` runs as two tests: SQLite (the default) and PostgreSQL.
/// The calling module must have `Db` in scope.
macro_rules! on_both_databases {
    ($($story:ident),* $(,)?) => {
        $(
            mod $story {
                #[test]
                fn sqlite() {
                    super::$story(super::Db::Sqlite);
                }
                #[test]
                fn postgres() {
                    super::$story(super::Db::Postgres);
                }
            }
        )*
    };
}

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::sync::atomic::{AtomicU32, Ordering};

pub const PLANS: &str = include_str!("../../plans/professional.yaml");

/// A namespace no other test (or test run) uses: `tt<pid>x<n>`.
pub fn unique_namespace() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tt{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A git repository in a temporary directory.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Repo { dir };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    /// A repository holding a copy of the project's own example plans, themes and tenants, committed.
    pub fn example() -> Repo {
        let r = Repo::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in ["plans", "themes", "tenants"] {
            copy_dir(&root.join(dir), &r.path().join(dir));
        }
        r.commit("example state");
        r
    }

    /// The example's plans and themes with only the given tenants: `(slug, plan, theme)`.
    pub fn example_with_tenants(tenants: &[(&str, &str, &str)]) -> Repo {
        let repo = Repo::example();
        for file in [
            "tenants/us/acme.yaml",
            "tenants/us/globex.yaml",
            "tenants/us/initech.yaml",
            "tenants/eu/stark.yaml",
            "tenants/eu/umbrella.yaml",
        ] {
            repo.remove(file);
        }
        for (slug, plan, theme) in tenants {
            repo.write(
                &format!("tenants/{slug}.yaml"),
                &format!(
                    "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug}\n  owner: ops@{slug}.example\n  plan: {plan}\n  theme: {theme}\n  env: {{ LOG_LEVEL: info }}\n"
                ),
            );
        }
        repo.commit("only these tenants");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Replaces `from` with `to` in a file, failing if `from` is absent (so a test can't silently do nothing).
    pub fn edit(&self, rel: &str, from: &str, to: &str) -> &Self {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1))
    }

    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.path().join(rel)).unwrap();
        self
    }

    pub fn commit(&self, message: &str) -> &Self {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self
    }

    pub fn head(&self) -> String {
        let out = Std::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(self.path())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn git(&self, args: &[&str]) {
        let out = Std::new("git")
            .args([
                "-c",
                "user.name=tenantctl-tests",
                "-c",
                "user.email=tests@tenantctl.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The tenantctl binary, run in this repository.
    pub fn tenantctl(&self) -> Command {
        let mut c = Command::cargo_bin("tenantctl").unwrap();
        c.current_dir(self.path())
            .env_remove("TENANTCTL_NAMESPACE")
            .env_remove("TENANTCTL_DATABASE_URL")
            .env_remove("TENANTCTL_RUNTIME")
            .env("NO_COLOR", "1");
        c
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs a docker CLI command, returning stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Std::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Removes every container, network and volume labelled with a namespace when dropped.
pub struct Cleanup {
    pub namespace: String,
    /// Extra objects a test made without the namespace label.
    pub extra_containers: Vec<String>,
}

impl Cleanup {
    pub fn new(namespace: &str) -> Cleanup {
        Cleanup {
            namespace: namespace.to_string(),
            extra_containers: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label=tenantctl.namespace={}", self.namespace);
        let run = |args: &[&str]| {
            Std::new("docker")
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        let succeeds = |args: &[&str]| {
            Std::new("docker")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        // Swarm services first: their task containers hold the networks and volumes. On an
        // engine that is no swarm manager `service ls` fails at once, and there is nothing to do.
        if let Some(out) = Std::new("docker")
            .args(["service", "ls", "-q", "--filter", &filter])
            .output()
            .ok()
            .filter(|o| o.status.success())
        {
            let services: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !services.is_empty() {
                let mut args = vec!["service", "rm"];
                args.extend(services.iter().map(String::as_str));
                run(&args);
            }
            // Swarm removes the tasks' containers by itself, a little later.
            let prefix = format!("{}-", self.namespace);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::time::Instant::now() < deadline {
                let tasks = run(&[
                    "ps",
                    "-a",
                    "--filter",
                    "label=com.docker.swarm.service.name",
                    "--format",
                    "{{.Label \"com.docker.swarm.service.name\"}}",
                ]);
                if !tasks.split_whitespace().any(|s| s.starts_with(&prefix)) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
        let mut ids: Vec<String> = run(&["ps", "-aq", "--filter", &filter])
            .split_whitespace()
            .map(String::from)
            .collect();
        ids.extend(self.extra_containers.iter().cloned());
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            run(&args);
        }
        // Networks by id: an interrupted apply can leave two of one name, which a name cannot
        // remove. An overlay network's endpoints are released a moment after its tasks are gone:
        // what cannot be removed yet is tried again for a few seconds.
        for (kind, fmt) in [("network", "{{.ID}}"), ("volume", "{{.Name}}")] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let names = run(&[kind, "ls", "-q", "--filter", &filter, "--format", fmt]);
                let mut left = false;
                for name in names.split_whitespace() {
                    left |= !succeeds(&[kind, "rm", name]);
                }
                if !left || std::time::Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }
}

/// How many tests of this process hold the swarm, and whether this process made it.
static SWARM: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

/// Holds this engine in swarm mode for a test. The first holder makes the engine a single-node
/// swarm manager (`docker swarm init`) unless it already is one; when the last holder of a
/// process that made the swarm lets go, the engine leaves it again. A swarm that was there
/// before is never left. Declare it before the `Env`, so the namespace is cleaned up first.
pub struct SwarmGuard {
    _private: (),
}

pub fn swarm() -> SwarmGuard {
    let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
    if held.0 == 0 {
        match swarm_state().0.as_str() {
            "active" => {}
            "inactive" => {
                docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                held.1 = true;
            }
            other => panic!(
                "the Docker engine's swarm state is `{other}`: the swarm tests need it inactive \
                 (they make a single-node swarm and leave it afterwards) or an active manager"
            ),
        }
        // A fresh swarm takes a moment to elect itself leader and accept services.
        let started = std::time::Instant::now();
        loop {
            let (state, manager) = swarm_state();
            if state == "active" && manager {
                break;
            }
            assert!(
                state != "active" || held.1,
                "this Docker engine is in a swarm but is not a manager: the swarm tests create \
                 services, which only a manager can; run them on a manager, or `docker swarm leave` \
                 this worker first"
            );
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the swarm made by `docker swarm init` never became an active manager \
                 (state `{state}`)"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    held.0 += 1;
    SwarmGuard { _private: () }
}

impl Clone for SwarmGuard {
    fn clone(&self) -> SwarmGuard {
        SWARM.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        SwarmGuard { _private: () }
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0 && held.1 {
            held.1 = false;
            let _ = Std::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
        }
    }
}

/// `(LocalNodeState, ControlAvailable)` of this engine.
fn swarm_state() -> (String, bool) {
    let out = docker(&[
        "info",
        "--format",
        "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
    ]);
    let mut words = out.split_whitespace();
    let state = words.next().unwrap_or("").to_string();
    (state, words.next() == Some("true"))
}

/// Build `tag` FROM scratch through tenantctl's own image builder (no registry on these
/// machines): each `(path in the image, host binary)` with the shared objects it links.
fn build_fixture_image(tag: &str, binaries: &[(&str, PathBuf)], entrypoint: &[&str]) {
    let mut files: Vec<(String, PathBuf)> = binaries
        .iter()
        .map(|(at, host)| (at.to_string(), host.clone()))
        .collect();
    for (_, host) in binaries {
        for lib in shared_objects(&host.display().to_string()) {
            if !files.iter().any(|(p, _)| *p == lib) {
                files.push((lib.clone(), PathBuf::from(lib)));
            }
        }
    }
    let entrypoint: Vec<String> = entrypoint.iter().map(|s| s.to_string()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        tenantctl::runtime::image::build_scratch_image(
            &docker,
            tag,
            &files,
            &entrypoint,
            &Default::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("build the test image {tag}: {e}"));
    });
}

/// A FROM-scratch image holding the tenantctl binary and /sleep. Built once per test process.
pub fn fixture_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let tag = "tenantctl-test-fixture:1".to_string();
            build_fixture_image(
                &tag,
                &[
                    ("/tenantctl", PathBuf::from(env!("CARGO_BIN_EXE_tenantctl"))),
                    ("/sleep", which("sleep")),
                ],
                &["/sleep", "3600"],
            );
            tag
        })
        .clone()
}

/// A FROM-scratch image of a theme with its own image: the tenantctl site as its entrypoint
/// (running as root, the image sets no user), `/bin/sh` and `wget`, so the engine can run an
/// image theme's health check. Built once per test process.
pub fn shell_site_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let tag = "tenantctl-test-shellsite:1".to_string();
            build_fixture_image(
                &tag,
                &[
                    ("/tenantctl", PathBuf::from(env!("CARGO_BIN_EXE_tenantctl"))),
                    ("/bin/sh", which("dash")),
                    ("/usr/bin/wget", which("wget")),
                ],
                &["/tenantctl", "site"],
            );
            tag
        })
        .clone()
}

/// A FROM-scratch image (unique `tag`) whose command fails at once: `/sleep not-a-number`.
/// Removed again when dropped; declare it before the `Env` whose services use it, so they are
/// gone first.
pub struct FailingImage {
    pub tag: String,
}

impl FailingImage {
    pub fn build(tag: &str) -> FailingImage {
        build_fixture_image(
            tag,
            &[("/sleep", which("sleep"))],
            &["/sleep", "not-a-number"],
        );
        FailingImage {
            tag: tag.to_string(),
        }
    }
}

impl Drop for FailingImage {
    fn drop(&mut self) {
        let _ = Std::new("docker")
            .args(["image", "rm", "-f", &self.tag])
            .output();
    }
}

fn which(bin: &str) -> PathBuf {
    let out = Std::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The shared objects (and loader) a dynamically linked binary needs, by `ldd`.
fn shared_objects(bin: &str) -> Vec<String> {
    let out = Std::new("ldd").arg(bin).output().expect("ldd runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(String::from)
        })
        .collect()
}

/// A PostgreSQL database of its own for one test, dropped afterwards. `None` (with a note) when
/// no server is configured outside CI; in CI a missing server fails the test.
pub struct Postgres {
    pub url: String,
    admin_url: String,
    name: String,
}

impl Postgres {
    pub fn create() -> Option<Postgres> {
        let Ok(admin_url) = std::env::var("TENANTCTL_TEST_POSTGRES_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "TENANTCTL_TEST_POSTGRES_URL is not set in CI: .ci/run must start PostgreSQL"
                );
            }
            eprintln!(
                "note: TENANTCTL_TEST_POSTGRES_URL unset; skipping the PostgreSQL half of this test"
            );
            return None;
        };
        let name = format!("tenantctl_test_{}", unique_namespace());
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        Some(Postgres {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, sql)
    }

    /// Makes the database refuse connections (and drops the open ones), or accept them again:
    /// a database that is briefly unavailable.
    pub fn set_available(&self, available: bool) {
        psql(
            &self.admin_url,
            &format!(
                "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {available}",
                self.name
            ),
        );
        if !available {
            psql(
                &self.admin_url,
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                    self.name
                ),
            );
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Std::new("psql")
            .args([
                self.admin_url.as_str(),
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

pub fn psql(url: &str, sql: &str) -> String {
    let out = Std::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes the engine and the database look exactly as a successful apply of `repo`'s HEAD would
/// leave them, using the same spec and labels tenantctl computes. Returns the container ids by slug.
pub fn converge(
    repo: &Repo,
    namespace: &str,
    db_url: &str,
    start: bool,
) -> std::collections::BTreeMap<String, String> {
    use tenantctl::model::TenantState;
    use tenantctl::plan::container::{desired_container, labels};
    use tenantctl::plan::records::{plan_row, theme_row};

    let source = tenantctl::source::Repo::discover(repo.path()).unwrap();
    let snap = source.snapshot_at("HEAD").unwrap();
    let desired = tenantctl::model::load(&snap.files).expect("valid fixture");
    let image = fixture_image();
    let mut ids = std::collections::BTreeMap::new();
    for (slug, t) in &desired.tenants {
        if t.state == TenantState::Cancelled {
            continue;
        }
        let spec = desired_container(
            namespace,
            t,
            &desired.plans[&t.plan],
            &desired.themes[&t.theme],
        );
        let labels = labels(namespace, slug, &spec, &snap.revision);
        let label_args: Vec<String> = labels
            .iter()
            .flat_map(|(k, v)| ["--label".to_string(), format!("{k}={v}")])
            .collect();
        let label_refs: Vec<&str> = label_args.iter().map(String::as_str).collect();
        // Explicit small subnets: the engine's default pools hold only about 30 networks.
        let subnet = next_subnet();
        let mut net = vec!["network", "create", "--subnet", subnet.as_str()];
        net.extend(&label_refs);
        net.push(&spec.network);
        docker(&net);
        let mut vol = vec!["volume", "create"];
        vol.extend(&label_refs);
        vol.push(&spec.volume);
        docker(&vol);
        let cpus = format!("{}", spec.nano_cpus as f64 / 1e9);
        let mem = spec.memory_bytes.to_string();
        let pids = spec.pids.to_string();
        let publish = format!("{}::{}", spec.publish_address, spec.port);
        let mount = format!("{}:/data", spec.volume);
        let mut args: Vec<String> = [
            "create",
            "--name",
            &spec.name,
            "--network",
            &spec.network,
            "--cpus",
            &cpus,
            "--memory",
            &mem,
            "--pids-limit",
            &pids,
            "-p",
            &publish,
            "-v",
            &mount,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(label_args.iter().cloned());
        for (k, v) in &spec.env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        // The built-in site, so the published port answers as a converged tenant's does.
        args.extend(["--entrypoint".to_string(), "/tenantctl".to_string()]);
        args.push(image.clone());
        args.push("site".to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker(&refs).trim().to_string();
        if start && t.state == TenantState::Active {
            docker(&["start", &id]);
        }
        ids.insert(slug.clone(), id);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = tenantctl::store::Store::open(db_url)
            .await
            .expect("open the database");
        for p in desired.plans.values() {
            store
                .upsert_plan(&plan_row(p, &snap.revision, 1))
                .await
                .unwrap();
        }
        for t in desired.themes.values() {
            store
                .upsert_theme(&theme_row(t, &snap.revision, 1))
                .await
                .unwrap();
        }
        for t in desired.tenants.values() {
            store
                .upsert_tenant(&tenantctl::plan::records::tenant_row(t, &snap.revision, 1))
                .await
                .unwrap();
            // The effective flags an apply records beside the row.
            let flags: Vec<(String, String)> =
                tenantctl::model::effective_features(&desired.plans[&t.plan], t)
                    .into_iter()
                    .map(|(f, s)| (f, s.to_string()))
                    .collect();
            store.set_tenant_features(&t.slug, &flags).await.unwrap();
        }
        store.close().await;
    });
    ids
}

/// The default SQLite URL tenantctl uses for a repository.
pub fn sqlite_url(repo: &Repo) -> String {
    tenantctl::store::Store::default_url(repo.path())
}

/// A /28 no other network of this test process uses, from a block chosen by the process id.
fn next_subnet() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "10.{}.{}.{}/28",
        150 + (std::process::id() % 100),
        (i / 16) % 256,
        (i % 16) * 16
    )
}

/// A /20 address pool for one apply test, disjoint from other tests in this process and from
/// the `converge` fixture's networks.
pub fn unique_pool() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "10.{}.{}.0/20",
        100 + (std::process::id() % 40),
        (n * 16) % 256
    )
}

/// One HTTP/1.1 request over loopback; returns status, raw headers and body.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    request(host, host, method, &path, headers)
}

/// One HTTP/1.1 request to `addr` (loopback) naming `host` in its `Host` header, as a browser
/// of that host sends it through a proxy; returns status, raw headers and body.
pub fn request(
    addr: &str,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    // A refused or reset connection (a site not listening yet behind Docker's proxy) is status 0
    // with the error as the body: callers assert the status or poll again.
    let failed = |e: std::io::Error| (0, String::new(), e.to_string());
    let mut stream = match std::net::TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if let Err(e) = stream.write_all(req.as_bytes()) {
        return failed(e);
    }
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        return failed(e);
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The managed objects of a namespace, as `docker` lists them.
pub fn names(kind: &str, namespace: &str) -> Vec<String> {
    let filter = format!("label=tenantctl.namespace={namespace}");
    let out = match kind {
        "container" => docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]),
        _ => docker(&[kind, "ls", "--filter", &filter, "--format", "{{.Name}}"]),
    };
    let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

/// `docker inspect` of a container (networks share tenant names, hence the type).
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "--type", "container", "--format", format, name])
        .trim()
        .to_string()
}

/// Reads the state database through tenantctl's own store.
pub fn db(url: &str) -> tenantctl::store::ObservedDb {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = tenantctl::store::Store::open(url).await.unwrap();
        let seen = store.observe().await.unwrap();
        store.close().await;
        seen
    })
}

/// The audit log's events of one tenant, newest first, through tenantctl's own store.
pub fn events(url: &str, tenant: &str) -> Vec<tenantctl::store::EventRow> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = tenantctl::store::Store::open(url).await.unwrap();
        let events = store.events(Some(tenant), 1000).await.unwrap();
        store.close().await;
        events
    })
}

/// Which database a test runs against.
#[derive(Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A tenantctl deployment for one test: an example-like repository, its own namespace, subnet
/// pool and database, all removed when dropped.
pub struct Env {
    pub repo: Repo,
    pub ns: String,
    pub pool: String,
    pub db_url: Option<String>,
    pub pg: Option<Postgres>,
    /// Every command runs with `TENANTCTL_RUNTIME=swarm` (see [`Env::swarm`]).
    pub swarm: bool,
    _cleanup: Cleanup,
    // After `_cleanup`: fields drop in order, and the namespace goes before the swarm may.
    _swarm: Option<SwarmGuard>,
}

impl Env {
    /// `None` when PostgreSQL is not configured outside CI (in CI that panics instead).
    pub fn new(repo: Repo, db: Db) -> Option<Env> {
        let ns = unique_namespace();
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(Postgres::create()?),
        };
        Some(Env {
            _cleanup: Cleanup::new(&ns),
            repo,
            ns,
            pool: unique_pool(),
            db_url: pg.as_ref().map(|p| p.url.clone()),
            pg,
            swarm: false,
            _swarm: None,
        })
    }

    /// Like [`Env::new`], in swarm mode: every command it builds runs with
    /// `TENANTCTL_RUNTIME=swarm`, and it holds the swarm (see [`swarm`]) until its namespace
    /// is cleaned up.
    pub fn swarm(repo: Repo, db: Db) -> Option<Env> {
        let guard = swarm();
        let mut env = Env::new(repo, db)?;
        env.swarm = true;
        env._swarm = Some(guard);
        Some(env)
    }

    /// The runtime this deployment's commands use.
    fn runtime(&self) -> &'static str {
        if self.swarm { "swarm" } else { "docker" }
    }

    /// `tenantctl apply --auto-approve` as a child process (for kill -9 and lock tests).
    pub fn spawn_apply(&self, extra: &[&str]) -> std::process::Child {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"));
        c.current_dir(self.repo.path())
            .args(["--namespace", &self.ns])
            .env("TENANTCTL_SUBNET_POOL", &self.pool)
            .env("TENANTCTL_RUNTIME", self.runtime())
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(url) = &self.db_url {
            c.args(["--database-url", url]);
        }
        c.args(["apply", "--auto-approve"])
            .args(extra)
            .spawn()
            .unwrap()
    }

    pub fn url(&self) -> String {
        self.db_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.repo))
    }

    /// `--namespace`, `--runtime` and, for PostgreSQL, `--database-url`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--namespace".to_string(),
            self.ns.clone(),
            "--runtime".to_string(),
            self.runtime().to_string(),
        ];
        if let Some(url) = &self.db_url {
            a.extend(["--database-url".to_string(), url.clone()]);
        }
        a
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs tenantctl, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tenantctl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = self.repo.tenantctl();
        c.args(["--namespace", &self.ns])
            .env("TENANTCTL_SUBNET_POOL", &self.pool)
            .env("TENANTCTL_RUNTIME", self.runtime())
            .timeout(std::time::Duration::from_secs(300));
        if let Some(url) = &self.db_url {
            c.args(["--database-url", url]);
        }
        c.args(args);
        c
    }

    pub fn apply(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["apply", "--auto-approve"];
        args.extend(extra);
        self.cmd(&args).output().unwrap()
    }

    pub fn apply_ok(&self, extra: &[&str]) -> String {
        let out = self.apply(extra);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "apply failed:\n{text}");
        text
    }

    pub fn container(&self, slug: &str) -> String {
        format!("{}-{slug}", self.ns)
    }

    pub fn id(&self, slug: &str) -> String {
        inspect(&self.container(slug), "{{.Id}}")
    }

    pub fn ids(&self) -> std::collections::BTreeMap<String, String> {
        ["acme", "globex", "initech", "umbrella", "hooli", "stark"]
            .iter()
            .map(|s| (s.to_string(), self.id(s)))
            .collect()
    }

    pub fn running(&self, slug: &str) -> bool {
        inspect(&self.container(slug), "{{.State.Running}}") == "true"
    }

    pub fn site(&self, slug: &str) -> String {
        let url = db(&self.url()).tenants[slug]
            .url
            .clone()
            .expect("a URL is recorded");
        url.trim_end_matches('/').to_string()
    }

    /// `plan --detailed-exitcode`'s exit code; a plan that is not empty is printed (shown
    /// with a failing test's output) so a failure says what was left to do.
    pub fn plan_exit(&self) -> i32 {
        let out = self.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
        let code = out.status.code().unwrap();
        if code != 0 {
            eprintln!(
                "plan exited {code}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        code
    }
}

/// Polls `check` until it holds; fails with `context()` (the processes' output) after `within`.
pub fn wait_for(
    what: &str,
    within: std::time::Duration,
    context: impl Fn() -> String,
    check: impl Fn() -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}:\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    started.elapsed()
}

/// Collects a child's output in the background, so a test can wait for a line.
pub fn collect_output(
    mut out: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    seen
}

/// Waits up to `within` for `needle` in what [`collect_output`] gathered; false if it never came.
pub fn wait_for_text(
    seen: &std::sync::Mutex<String>,
    needle: &str,
    within: std::time::Duration,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if seen.lock().unwrap().contains(needle) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// SIGINT (Ctrl-C) ends a following command (`what`, for the failure) with exit 0 within 10 s.
pub fn interrupt_follow(mut child: std::process::Child, what: &str) {
    let pid = child.id().to_string();
    assert!(
        Std::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not stop on SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
