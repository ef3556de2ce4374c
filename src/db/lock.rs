//! Exclusive use of the places a command works in, so two runs cannot share a database or an
//! output folder without noticing:
//!
//! - a PostgreSQL schema: a session-level advisory lock
//!   `pg_advisory_lock(hashtext('cqrs-bench'), hashtext(<schema>))`, held on a connection of
//!   its own for the whole command, whose `application_name` says who holds it
//!   (`cqrs-bench <command> pid=<pid> since=<UTC time>`), so a second user finds the holder
//!   through `pg_locks` ⋈ `pg_stat_activity`;
//! - a SQLite file: an `flock` on `<file>.lock` beside it, holding the same three facts;
//! - an output folder: an `flock` on `<folder>/.cqrs-bench.lock`.
//!
//! A second user of the same place is refused at once, naming the holder. Both kinds of lock
//! die with their process (the kernel releases the flock, the server the session's lock), so
//! there is nothing stale to clean up by hand. The lock files are removed on release.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;
use sqlx::{ConnectOptions, Row};

use super::{DbUrl, Engine};

/// The first key of every advisory lock the tool takes (the second is the schema's).
pub const ADVISORY_CLASS: &str = "cqrs-bench";

/// Tries at taking an advisory lock, 100 ms apart, before its holder is named.
const ADVISORY_ATTEMPTS: u32 = 5;

/// The file an output folder's lock is kept in.
pub const DIR_LOCK_FILE: &str = ".cqrs-bench.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{place} is in use by {holder}; wait for it to finish or stop it")]
    Held { place: String, holder: String },
    #[error("cannot lock {place}: {source}")]
    Io {
        place: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {place}: {source}")]
    Sql {
        place: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Who takes a lock: this process, the command it runs, and since when.
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
    pub since: String,
}

impl Holder {
    /// This process running `command` (e.g. `run`), from now.
    pub fn this_process(command: &str) -> Holder {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Holder {
            pid: std::process::id(),
            command: command.to_string(),
            since: crate::format::utc_timestamp(secs),
        }
    }

    /// The one line a lock file and an `application_name` carry.
    fn tag(&self) -> String {
        format!(
            "cqrs-bench {} pid={} since={}",
            self.command, self.pid, self.since
        )
    }

    /// Reads a tag written by [`Holder::tag`].
    fn from_tag(tag: &str) -> Option<Holder> {
        let mut words = tag.trim().strip_prefix("cqrs-bench ")?.split_whitespace();
        let command = words.next()?.to_string();
        let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
        let since = words.next()?.strip_prefix("since=")?.to_string();
        Some(Holder {
            pid,
            command,
            since,
        })
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cqrs-bench {} (pid {}, since {})",
            self.command, self.pid, self.since
        )
    }
}

/// A place a command uses exclusively.
#[derive(Debug, Clone)]
pub enum Place {
    /// A PostgreSQL schema in the database of a URL.
    Schema { url: DbUrl, schema: String },
    /// A SQLite file.
    SqliteFile(PathBuf),
    /// An output folder.
    Folder(PathBuf),
}

impl Place {
    /// The place of a database: its schema on PostgreSQL, its file on SQLite.
    pub fn database(url: &DbUrl, schema: &str) -> Place {
        match (url.engine(), url.sqlite_path()) {
            (Engine::Sqlite, Some(path)) => Place::SqliteFile(path),
            _ => Place::Schema {
                url: url.clone(),
                schema: schema.to_string(),
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Schema { url, schema } => format!("schema \"{schema}\" in {}", url.redacted()),
            Place::SqliteFile(path) => path.display().to_string(),
            Place::Folder(path) => format!("output folder {}", path.display()),
        }
    }
}

/// Locks held until dropped (or until the process ends, whichever comes first).
#[derive(Default)]
pub struct Locks {
    /// Databases are taken in shared mode: the processes of one scale-out run (`--segment`)
    /// use one database together, and any other user still needs it alone.
    share_databases: bool,
    files: Vec<FileLock>,
    /// One lock session per PostgreSQL database (host, port, database name).
    sessions: Vec<(SessionKey, sqlx::PgConnection)>,
}

type SessionKey = (String, u16, Option<String>);

impl std::fmt::Debug for Locks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Locks({} files, {} sessions)",
            self.files.len(),
            self.sessions.len()
        )
    }
}

impl Locks {
    /// Takes every place for `command`, or none: the first place someone else holds refuses
    /// the lot (what was taken is released).
    pub async fn take(places: &[Place], command: &str) -> Result<Locks, LockError> {
        Locks::take_all(places, command, false).await
    }

    /// As [`Locks::take`], but databases (schemas, SQLite files) are shared with the other
    /// processes of a scale-out run, which take them the same way; an output folder is still
    /// this process's alone, and an exclusive holder of a database refuses the lot.
    pub async fn take_sharing_databases(
        places: &[Place],
        command: &str,
    ) -> Result<Locks, LockError> {
        Locks::take_all(places, command, true).await
    }

    async fn take_all(
        places: &[Place],
        command: &str,
        share_databases: bool,
    ) -> Result<Locks, LockError> {
        let holder = Holder::this_process(command);
        let mut locks = Locks {
            share_databases,
            ..Locks::default()
        };
        for place in places {
            locks.add(place, &holder).await?;
        }
        Ok(locks)
    }

    /// Takes one more place, for the same holder as the first.
    async fn add(&mut self, place: &Place, holder: &Holder) -> Result<(), LockError> {
        match place {
            Place::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
                    place: place.describe(),
                    source,
                })?;
                self.files.push(FileLock::take(
                    dir.join(DIR_LOCK_FILE),
                    place,
                    holder,
                    false,
                )?);
            }
            Place::SqliteFile(path) => {
                let mut name = path.clone().into_os_string();
                name.push(".lock");
                self.files.push(FileLock::take(
                    PathBuf::from(name),
                    place,
                    holder,
                    self.share_databases,
                )?);
            }
            Place::Schema { url, schema } => {
                let try_lock = if self.share_databases {
                    "SELECT pg_try_advisory_lock_shared(hashtext($1), hashtext($2))"
                } else {
                    "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))"
                };
                let session = self.session_for(url, holder, place).await?;
                // A holder that just died (kill -9) keeps its lock until the server has seen
                // its connection close: a moment, allowed for before refusing.
                let mut taken = false;
                for attempt in 0..ADVISORY_ATTEMPTS {
                    if attempt > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    taken = sqlx::query_scalar(try_lock)
                        .bind(ADVISORY_CLASS)
                        .bind(schema)
                        .fetch_one(&mut *session)
                        .await
                        .map_err(|source| LockError::Sql {
                            place: place.describe(),
                            source,
                        })?;
                    if taken {
                        break;
                    }
                }
                if !taken {
                    let holder = advisory_holder(session, schema).await;
                    return Err(LockError::Held {
                        place: place.describe(),
                        holder,
                    });
                }
            }
        }
        Ok(())
    }

    /// The lock session on `url`'s database (one per database, holding each of its schemas'
    /// locks), opened with the holder as its `application_name`.
    async fn session_for(
        &mut self,
        url: &DbUrl,
        holder: &Holder,
        place: &Place,
    ) -> Result<&mut sqlx::PgConnection, LockError> {
        let sql_err = |source| LockError::Sql {
            place: place.describe(),
            source,
        };
        let raw = url.raw_for_connect();
        let opts = sqlx::postgres::PgConnectOptions::from_str(&raw).map_err(sql_err)?;
        let key = (
            opts.get_host().to_string(),
            opts.get_port(),
            opts.get_database().map(str::to_string),
        );
        let position = self.sessions.iter().position(|(k, _)| *k == key);
        let index = match position {
            Some(i) => i,
            None => {
                let conn = opts
                    .application_name(&holder.tag())
                    .connect()
                    .await
                    .map_err(sql_err)?;
                self.sessions.push((key, conn));
                self.sessions.len() - 1
            }
        };
        Ok(&mut self.sessions[index].1)
    }
}

/// Who holds the tool's advisory lock on `schema`, as the server tells.
async fn advisory_holder(session: &mut sqlx::PgConnection, schema: &str) -> String {
    let row = sqlx::query(
        "SELECT a.pid, COALESCE(a.application_name, ''), \
                to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
           AND l.classid = hashtext($1)::oid AND l.objid = hashtext($2)::oid \
         LIMIT 1",
    )
    .bind(ADVISORY_CLASS)
    .bind(schema)
    .fetch_optional(&mut *session)
    .await;
    match row {
        Ok(Some(row)) => {
            let app: String = row.try_get(1).unwrap_or_default();
            match Holder::from_tag(&app) {
                Some(h) => h.to_string(),
                None => format!(
                    "another session (server pid {}, application \"{app}\", since {})",
                    row.try_get::<i32, _>(0).unwrap_or_default(),
                    row.try_get::<String, _>(2).unwrap_or_default()
                ),
            }
        }
        _ => "another session (which could not be identified)".to_string(),
    }
}

/// An `flock`ed file with the holder written into it; removed, then unlocked, when dropped.
struct FileLock {
    file: File,
    path: PathBuf,
    /// Held with other processes (shared mode): the file names the first of them and stays
    /// when this one lets go, since the others still hold it.
    shared: bool,
}

impl FileLock {
    fn take(
        path: PathBuf,
        place: &Place,
        holder: &Holder,
        shared: bool,
    ) -> Result<FileLock, LockError> {
        let io_err = |source| LockError::Io {
            place: place.describe(),
            source,
        };
        loop {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            let taken = if shared {
                FileExt::try_lock_shared(&file).map_err(io_err)?
            } else {
                file.try_lock_exclusive().map_err(io_err)?
            };
            if !taken {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match Holder::from_tag(&text) {
                    Some(h) => h.to_string(),
                    None => format!("another process (it holds {})", path.display()),
                };
                return Err(LockError::Held {
                    place: place.describe(),
                    holder,
                });
            }
            // The holder before us may have removed the file between our open and our lock:
            // then we hold a lock on a name nobody else can find. Take the file again.
            if !same_file(&file, &path) {
                continue;
            }
            if shared {
                // Another sharer may have named itself already; the first one stays named.
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                if Holder::from_tag(&text).is_none() {
                    writeln!(file, "{}", holder.tag()).map_err(io_err)?;
                }
                return Ok(FileLock { file, path, shared });
            }
            file.set_len(0).map_err(io_err)?;
            file.rewind().map_err(io_err)?;
            writeln!(file, "{}", holder.tag()).map_err(io_err)?;
            return Ok(FileLock { file, path, shared });
        }
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked, so no one takes the name in between.
        if !self.shared {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_tag_round_trips() {
        let h = Holder {
            pid: 42,
            command: "run".into(),
            since: "2026-12-06T09:00:00Z".into(),
        };
        let back = Holder::from_tag(&h.tag()).unwrap();
        assert_eq!(
            back.to_string(),
            "cqrs-bench run (pid 42, since 2026-12-06T09:00:00Z)"
        );
        assert!(Holder::from_tag("psql").is_none());
        // PostgreSQL keeps 63 bytes of an application_name: the tag must fit.
        assert!(h.tag().len() + "rebuild".len() + 5 <= 63, "{}", h.tag());
    }

    #[tokio::test]
    async fn a_second_holder_of_a_folder_is_refused_and_told_who() {
        let dir = tempfile::tempdir().unwrap();
        let place = Place::Folder(dir.path().join("out"));
        let first = Locks::take(std::slice::from_ref(&place), "run")
            .await
            .unwrap();
        let lock_file = dir.path().join("out").join(DIR_LOCK_FILE);
        assert!(lock_file.exists());
        let err = Locks::take(std::slice::from_ref(&place), "seed")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("cqrs-bench run (pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(!lock_file.exists(), "the lock file goes with the lock");
        let again = Locks::take(&[place], "seed").await;
        assert!(again.is_ok());
    }
}
