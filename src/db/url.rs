//! Database URLs: which engine, the SQLite file or PostgreSQL server, and a display that never
//! shows a password.

use std::path::PathBuf;
use std::str::FromStr;

use super::{DbError, DbResult, Engine};

/// Whether opening a SQLite URL may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    CreateIfMissing,
    Existing,
}

/// A parsed database URL. Its `Display` never shows a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbUrl {
    engine: Engine,
    raw: String,
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbUrl({})", self.redacted())
    }
}

impl std::fmt::Display for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DbUrl {
    type Err = DbError;
    fn from_str(s: &str) -> DbResult<Self> {
        DbUrl::parse(s)
    }
}

impl DbUrl {
    pub fn parse(s: &str) -> DbResult<Self> {
        let invalid = |reason: &str| DbError::InvalidUrl {
            url: redact_url(s),
            reason: reason.to_string(),
        };
        if let Some(path) = s.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(invalid("give a file path, e.g. sqlite://bench.db"));
            }
            Ok(DbUrl {
                engine: Engine::Sqlite,
                raw: s.to_string(),
            })
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if s.split("://").nth(1).is_none_or(|rest| rest.is_empty()) {
                return Err(invalid("missing host"));
            }
            Ok(DbUrl {
                engine: Engine::Postgres,
                raw: s.to_string(),
            })
        } else {
            Err(invalid(
                "expected sqlite://PATH or postgres://USER@HOST:PORT/DB",
            ))
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with any password replaced by `***`: the only form that is ever printed.
    pub fn redacted(&self) -> String {
        redact_url(&self.raw)
    }

    /// The URL as given, password included: for connecting only, never for printing.
    pub fn raw_for_connect(&self) -> String {
        self.raw.clone()
    }

    /// The SQLite file path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.raw.strip_prefix("sqlite://")?;
        Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    }

    /// For SQLite: the same URL with the file name suffixed (`bench.db` → `bench.SUFFIX.db`),
    /// so each backend gets its own file. PostgreSQL URLs are returned unchanged (backends get
    /// their own schema instead).
    pub fn with_file_suffix(&self, suffix: &str) -> DbUrl {
        match self.sqlite_path() {
            Some(path) => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "bench".into());
                let ext = path
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "db".into());
                let file = path.with_file_name(format!("{stem}.{suffix}.{ext}"));
                DbUrl {
                    engine: Engine::Sqlite,
                    raw: format!("sqlite://{}", file.display()),
                }
            }
            None => self.clone(),
        }
    }

    /// Whether two URLs name the same database: the same SQLite file, or the same database
    /// on the same PostgreSQL server (users and options aside).
    pub fn same_database(&self, other: &DbUrl) -> bool {
        if self.engine != other.engine {
            return false;
        }
        match self.engine {
            Engine::Sqlite => {
                let absolute =
                    |u: &DbUrl| u.sqlite_path().and_then(|p| std::path::absolute(p).ok());
                absolute(self) == absolute(other)
            }
            Engine::Postgres => {
                let place = |u: &DbUrl| {
                    sqlx::postgres::PgConnectOptions::from_str(&u.raw)
                        .ok()
                        .map(|o| {
                            (
                                o.get_host().to_string(),
                                o.get_port(),
                                o.get_database().map(str::to_string),
                            )
                        })
                };
                // A URL that does not parse is the same only as itself.
                match (place(self), place(other)) {
                    (Some(a), Some(b)) => a == b,
                    _ => self.raw == other.raw,
                }
            }
        }
    }

    pub(super) fn connect_string(&self, mode: OpenMode) -> String {
        match self.engine {
            // mode=rwc creates the file when missing, mode=rw does not.
            Engine::Sqlite => {
                if self.raw.contains('?') {
                    self.raw.clone()
                } else {
                    match mode {
                        OpenMode::CreateIfMissing => format!("{}?mode=rwc", self.raw),
                        OpenMode::Existing => format!("{}?mode=rw", self.raw),
                    }
                }
            }
            Engine::Postgres => self.raw.clone(),
        }
    }
}

/// Replaces the password in `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{host}{tail}"),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    // libpq also accepts ?password=… in the query string.
    if let Some(q) = out.find("password=") {
        let end = out[q..].find('&').map(|e| q + e).unwrap_or(out.len());
        out.replace_range(q + "password=".len()..end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_same_database_apart_from_another() {
        let u = |s: &str| DbUrl::parse(s).unwrap();
        let pg = u("postgres://postgres@127.0.0.1:5432/test");
        assert!(pg.same_database(&u(
            "postgres://other:pw@127.0.0.1:5432/test?sslmode=disable"
        )));
        assert!(!pg.same_database(&u("postgres://postgres@127.0.0.1:5432/postgres")));
        assert!(!pg.same_database(&u("postgres://postgres@127.0.0.1:5433/test")));
        let file = u("sqlite:///tmp/x/a.db");
        assert!(!file.same_database(&u("sqlite:///tmp/x/b.db")));
        assert!(file.same_database(&u("sqlite:///tmp/x/a.db?mode=rw")));
        assert!(!file.same_database(&pg));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://bob@db/x?password=s3cret&sslmode=off"),
            "postgres://bob@db/x?password=***&sslmode=off"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        let url = DbUrl::parse("postgres://u:pw@h/d").unwrap();
        assert!(!format!("{url} {url:?}").contains("pw@"));
    }

    #[test]
    fn rejects_unknown_schemes() {
        assert!(DbUrl::parse("mysql://x").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
        assert!(DbUrl::parse("sqlite://a.db").is_ok());
    }

    #[test]
    fn suffixes_sqlite_files() {
        let url = DbUrl::parse("sqlite://out/bench.db").unwrap();
        assert_eq!(
            url.with_file_suffix("normalized").sqlite_path().unwrap(),
            PathBuf::from("out/bench.normalized.db")
        );
    }
}
