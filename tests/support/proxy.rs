//! A unix-socket forwarder between tenantctl and the engine, to play an engine restart: point
//! `DOCKER_HOST` at [`EngineProxy::host`], then [`EngineProxy::down`] cuts every open connection
//! (an event stream among them) and turns new ones away — each accepted and closed at once, so
//! they are counted — until [`EngineProxy::up`].

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The engine's own socket: DOCKER_HOST's when it names a unix socket, else the default.
pub fn engine_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

#[derive(Default)]
struct Shared {
    up: AtomicBool,
    closing: AtomicBool,
    /// Both ends of every forwarded connection, to cut them.
    open: Mutex<Vec<UnixStream>>,
    /// Connections forwarded, and turned away while down.
    forwarded: AtomicUsize,
    turned_away: AtomicUsize,
}

pub struct EngineProxy {
    path: PathBuf,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl EngineProxy {
    /// A proxy to [`engine_socket`], up.
    pub fn start() -> EngineProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind the proxy socket");
        let shared = Arc::new(Shared::default());
        shared.up.store(true, Ordering::SeqCst);
        let target = engine_socket();
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, &target, &shared))
        };
        EngineProxy {
            path,
            shared,
            accept: Some(accept),
            _dir: dir,
        }
    }

    /// `unix:///…/engine.sock`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Cuts every open connection and turns new ones away.
    pub fn down(&self) {
        self.shared.up.store(false, Ordering::SeqCst);
        cut_all(&self.shared);
    }

    /// Forwards new connections again.
    pub fn up(&self) {
        self.shared.up.store(true, Ordering::SeqCst);
    }

    /// Connections turned away while down so far.
    pub fn turned_away(&self) -> usize {
        self.shared.turned_away.load(Ordering::SeqCst)
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        cut_all(&self.shared);
        // Wake the accept loop so it sees `closing`.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn cut_all(shared: &Shared) {
    for s in shared
        .open
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: UnixListener, target: &Path, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if !shared.up.load(Ordering::SeqCst) {
            shared.turned_away.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(engine) = UnixStream::connect(target) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        shared.forwarded.fetch_add(1, Ordering::SeqCst);
        let pair = (
            client.try_clone(),
            client.try_clone(),
            engine.try_clone(),
            engine.try_clone(),
        );
        let (Ok(c_read), Ok(c_keep), Ok(e_write), Ok(e_keep)) = pair else {
            continue;
        };
        {
            let mut open = shared.open.lock().unwrap_or_else(|e| e.into_inner());
            open.push(c_keep);
            open.push(e_keep);
        }
        std::thread::spawn(move || pipe(c_read, e_write));
        std::thread::spawn(move || pipe(engine, client));
    }
}

/// Copies `from` into `to` until either side ends, then ends both.
fn pipe(mut from: UnixStream, mut to: UnixStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
