//! The message broker of `cqrs-broker`: NATS JetStream. This module connects (`connect`),
//! names and owns the stream and consumer of one run's database (`stream`), and says why a
//! broker could not be used (`BrokerError`). The relay and the consumer that move events
//! through it live with the other event sources in `projection`.

pub mod stream;

use std::time::Duration;

pub use stream::Names;

/// The machine's own server, the default of `--nats`.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// How long connecting may take before the URL is reported as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How a run uses the broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The server (or servers, comma-separated, of a cluster).
    pub url: String,
    /// Copies of the stream the cluster keeps (1 on a single server).
    pub replicas: usize,
    /// How long the server waits for an ack before it delivers a message again.
    pub ack_wait: Duration,
    /// Leave the stream and the consumer in place at shutdown (`--keep-db`).
    pub keep: bool,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            url: DEFAULT_URL.to_string(),
            replicas: 1,
            ack_wait: Duration::from_secs(5),
            keep: false,
        }
    }
}

/// Why the broker could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("NATS at {url} has no JetStream (start nats-server with -js): {message}")]
    NoJetStream { url: String, message: String },
    #[error("stream \"{name}\" exists on NATS at {url} but was not created by cqrs-bench; refusing to touch it")]
    ForeignStream { name: String, url: String },
    #[error(
        "stream \"{name}\" is recorded in the database but missing on NATS at {url}; seed again"
    )]
    MissingStream { name: String, url: String },
    #[error("NATS JetStream: {0}")]
    JetStream(String),
}

impl BrokerError {
    /// 2 for a broker the tool cannot use as given (unreachable, no JetStream, a stream it
    /// does not own); 3 when the broker failed mid-run.
    pub fn exit_code(&self) -> u8 {
        match self {
            BrokerError::JetStream(_) => 3,
            _ => 2,
        }
    }

    /// A failure of a JetStream call mid-run.
    pub fn js(e: impl std::fmt::Display) -> BrokerError {
        BrokerError::JetStream(e.to_string())
    }
}

/// The URL for messages: any password replaced by `***`.
pub fn redacted(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &u[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                // A lone userinfo is a token: as secret as a password.
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    "***".to_string()
                };
                format!("{}{masked}{}", &u[..scheme + 3], &u[at..])
            }
            _ => u.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Connects to `url` and checks that JetStream answers, within `CONNECT_TIMEOUT` each: an
/// unreachable server is a one-line error in seconds, not a hang. Once connected, the client
/// reconnects by itself (a restarted server is waited for, not an error).
pub async fn connect(url: &str) -> Result<async_nats::jetstream::Context, BrokerError> {
    let shown = redacted(url);
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(Duration::from_secs(5)))
        // A cluster's servers, comma-separated: the client picks one and fails over.
        .connect(url.split(',').map(str::trim).collect::<Vec<&str>>());
    let client = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            return Err(BrokerError::Connect {
                url: shown,
                message: e.to_string(),
            })
        }
        Err(_) => {
            return Err(BrokerError::Connect {
                url: shown,
                message: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            })
        }
    };
    // The account-info request answers on any JetStream server (its reply's fields vary
    // between server versions, so only whether it answers without an error is read).
    let info = client.request("$JS.API.INFO", "".into());
    let message = match tokio::time::timeout(CONNECT_TIMEOUT, info).await {
        Ok(Ok(reply)) => {
            let text = String::from_utf8_lossy(&reply.payload);
            if !text.contains("\"error\"") {
                return Ok(async_nats::jetstream::new(client));
            }
            text.into_owned()
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
    };
    Err(BrokerError::NoJetStream {
        url: shown,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redacted("nats://u:secret@h:1,nats://h2:2"),
            "nats://u:***@h:1,nats://h2:2"
        );
        assert_eq!(redacted("nats://token@h:1"), "nats://***@h:1");
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast() {
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let e = connect(&format!("nats://127.0.0.1:{port}"))
            .await
            .expect_err("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("cannot connect to NATS"), "{e}");
    }
}
