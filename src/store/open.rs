//! Opening a database by URL: a SQLite file (made 0600 in a 0700 folder, WAL, busy timeout, an
//! open that looks again when a concurrent one answers SQLITE_BUSY) or a PostgreSQL server (a
//! connect probe that reports the real cause).

use super::{BUSY_TIMEOUT, CONNECT_TIMEOUT, MAX_CONNECTIONS, StoreError, url};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub(super) async fn open_sqlite(
    url: &str,
    redacted: &str,
    create: bool,
) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl {
        url: redacted.to_string(),
        message: url::scrub(&e.to_string(), url),
    })?;
    let in_memory = url::sqlite_in_memory(url);
    if !in_memory {
        if options.get_filename().as_os_str().is_empty() {
            return Err(StoreError::InvalidUrl {
                url: redacted.to_string(),
                message: "no file path (use sqlite://PATH or sqlite::memory:)".into(),
            });
        }
        if create {
            prepare_sqlite_dir(options.get_filename())?;
        } else {
            warn_if_readable_by_others(options.get_filename());
        }
    }
    let options = options
        .create_if_missing(create)
        // WAL: readers (status, tui) never block the writer (apply, watch) nor it them.
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let pool_options = if in_memory {
        // An in-memory database lives as long as a connection to it: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
    };
    // Processes opening one fresh file together race to switch it to WAL, and SQLite can answer
    // that race with SQLITE_BUSY at once rather than through the busy handler: look again.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match pool_options
            .clone()
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options.clone())
            .await
        {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => {
                return result.map_err(|e| StoreError::Connect {
                    url: redacted.to_string(),
                    message: url::scrub(&e.to_string(), url),
                });
            }
        }
    }
}

/// SQLITE_BUSY and its extended codes (the primary code is the low byte).
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    }
}

pub(super) async fn open_postgres(url: &str, redacted: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl {
            url: redacted.to_string(),
            message: url::scrub(&e.to_string(), url),
        })?
        .application_name("tenantctl");
    // One direct attempt first: the pool would retry a refused connection until its timeout and
    // then report only "timed out", hiding the cause (refused, bad password, no such database).
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await;
    match probe {
        Err(_) => {
            return Err(StoreError::ConnectTimeout {
                url: redacted.to_string(),
                timeout: CONNECT_TIMEOUT,
            });
        }
        Ok(Err(e)) => {
            return Err(StoreError::Connect {
                url: redacted.to_string(),
                message: url::scrub(&e.to_string(), url),
            });
        }
        // Closing is best effort: the server drops an abandoned connection anyway.
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
    }
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Connect {
            url: redacted.to_string(),
            message: url::scrub(&e.to_string(), url),
        })
}

/// Creates the SQLite file's directory (0700) and the file itself (0600: it holds key digests
/// and the audit log), keeps a `.tenantctl` directory out of git, and warns about an existing
/// file or directory that others may read (it is left as it is).
fn prepare_sqlite_dir(file: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        warn_if_readable_by_others(dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| StoreError::CreateDir {
                path: dir.to_path_buf(),
                error,
            })?;
    }
    warn_if_readable_by_others(file);
    // create_new: an existing database keeps its mode; a new one is born private (SQLite gives
    // its -wal and -shm files the database file's mode).
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(StoreError::CreateDir {
                path: file.to_path_buf(),
                error: e,
            });
        }
        _ => {}
    }
    let Some(dir) = dir else {
        return Ok(());
    };
    if dir.file_name().is_some_and(|n| n == ".tenantctl") {
        let ignore = dir.join(".gitignore");
        // create_new: never overwrite a .gitignore the operator wrote, and no race between two opens.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ignore)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"*\n"));
        match written {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::CreateDir {
                    path: ignore,
                    error: e,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Says on stderr (once per open) when an existing state file or directory is readable by its
/// group or by everyone: it holds key digests and the audit log.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "{} is readable by {} (mode {:o}); tenantctl creates its state private: chmod {} {}",
            path.display(),
            if meta.permissions().mode() & 0o007 != 0 {
                "everyone"
            } else {
                "its group"
            },
            meta.permissions().mode() & 0o777,
            if meta.is_dir() { "700" } else { "600" },
            path.display()
        );
    }
}
