//! A private PostgreSQL primary and hot standby for the replica tests: `initdb` into a
//! temporary directory, `pg_basebackup -R` for the standby, free ports, run as the `postgres`
//! user (the servers refuse root), stopped and removed when dropped. The machine's own server
//! is never touched: it has no replication entry in its `pg_hba.conf`, and these do.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    dir: tempfile::TempDir,
    pub primary_port: u16,
    pub standby_port: u16,
    bin: PathBuf,
}

/// The directory of the server binaries (`pg_ctl` is not on every PATH).
fn bin_dir() -> Option<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(base)
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").exists() && p.join("pg_basebackup").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    cmd.args(args)
        .current_dir("/tmp")
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn ok(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgCluster {
    /// Starts a primary and a standby streaming from it, or `None` (after saying why) where
    /// the server binaries are missing.
    pub fn start(test: &str) -> Option<PgCluster> {
        let Some(bin) = bin_dir() else {
            super::skip(
                test,
                "no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) under \
                 /usr/lib/postgresql",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("cqrs-bench-replica")
            .tempdir()
            .expect("tempdir");
        let chown = Command::new("chown")
            .args(["postgres:"])
            .arg(dir.path())
            .status();
        assert!(
            chown.is_ok_and(|s| s.success()),
            "chown the cluster directory"
        );
        let (primary_port, standby_port) = (free_port(), free_port());
        let d = dir.path().display().to_string();
        let primary = format!("{d}/primary");
        let standby = format!("{d}/standby");
        ok(
            as_postgres(
                &bin,
                "initdb",
                &["-D", &primary, "-A", "trust", "-U", "postgres"],
            ),
            "initdb",
        );
        let conf = format!(
            "port = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
             max_connections = 60\nfsync = off\n"
        );
        std::fs::write(format!("{primary}/postgresql.auto.conf"), conf).expect("write conf");
        let c = PgCluster {
            dir,
            primary_port,
            standby_port,
            bin,
        };
        c.pg_ctl(&primary, "start");
        ok(
            as_postgres(
                &c.bin,
                "pg_basebackup",
                &[
                    "-D",
                    &standby,
                    "-R",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &primary_port.to_string(),
                    "-U",
                    "postgres",
                ],
            ),
            "pg_basebackup",
        );
        // -R wrote primary_conninfo into postgresql.auto.conf; the port line comes after it.
        let auto = format!("{standby}/postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).expect("standby conf");
        text.push_str(&format!("port = {standby_port}\n"));
        std::fs::write(&auto, text).expect("write standby conf");
        c.pg_ctl(&standby, "start");
        Some(c)
    }

    fn pg_ctl(&self, data: &str, action: &str) {
        let log = format!("{data}.log");
        let mut args = vec!["-D", data, "-l", &log, "-w", "-t", "60"];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        ok(
            as_postgres(&self.bin, "pg_ctl", &args),
            &format!("pg_ctl {action}"),
        );
    }

    fn data(&self, which: &str) -> String {
        format!("{}/{which}", self.dir.path().display())
    }

    pub fn primary_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.primary_port
        )
    }

    pub fn standby_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.standby_port
        )
    }

    pub fn stop_standby(&self) {
        self.pg_ctl(&self.data("standby"), "stop");
    }

    pub fn start_standby(&self) {
        self.pg_ctl(&self.data("standby"), "start");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for which in ["standby", "primary"] {
            let data = self.data(which);
            let _ = as_postgres(
                &self.bin,
                "pg_ctl",
                &["-D", &data, "-m", "immediate", "-w", "stop"],
            );
        }
    }
}
