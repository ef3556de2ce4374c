//! `nats-server -js` processes of a test's own: free local ports, store directories in a
//! temporary folder, killed when the guard drops (at the end of the test, and on a panic).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// One `nats-server` with JetStream.
pub struct NatsServer {
    pub port: u16,
    /// The cluster port, for a node of a cluster.
    cluster: Option<(u16, Vec<u16>, String)>,
    store: PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A single server on a free port with its own store directory.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = NatsServer {
            port: free_port(),
            cluster: None,
            store: dir.path().join("js"),
            child: None,
            _dir: Some(dir),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("nats-server");
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(&self.store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if let Some((cport, routes, name)) = &self.cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["-n", name, "--cluster_name", "cqrs_bench_test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cport}")])
                .args(["--routes", &routes.join(",")]);
        }
        self.child = Some(cmd.spawn().expect("nats-server on PATH"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (as `kill -9` would).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store (a restart).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three servers routed into one JetStream cluster.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
    /// Removed after the nodes are killed (fields drop in order).
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start() -> NatsCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let cports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes: Vec<NatsServer> = (0..3)
            .map(|i| NatsServer {
                port: free_port(),
                cluster: Some((
                    cports[i],
                    cports.iter().copied().filter(|p| *p != cports[i]).collect(),
                    format!("n{i}"),
                )),
                store: dir.path().join(format!("n{i}")),
                child: None,
                _dir: None,
            })
            .collect();
        for n in &mut nodes {
            n.spawn();
        }
        NatsCluster { nodes, _dir: dir }
    }

    /// Every node's URL, comma-separated (the client picks one and fails over).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url())
            .collect::<Vec<_>>()
            .join(",")
    }
}
