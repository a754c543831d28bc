//! Optional testcontainers backend (feature `testcontainers`): one `apache/kafka-native`
//! container, used only when a Docker engine answers. Node control is unavailable for it.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::cluster::ClusterOptions;
use crate::error::{Result, TestkitError};

/// True when a Docker engine answers `GET /_ping` on `$DOCKER_HOST` (unix socket) or
/// `/var/run/docker.sock`.
pub(crate) fn docker_available() -> bool {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let path = match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        // A TCP engine: let testcontainers try it.
        Ok(h) if !h.is_empty() => return true,
        _ => "/var/run/docker.sock".to_string(),
    };
    let Ok(mut s) = UnixStream::connect(&path) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.") && buf[..n].windows(3).any(|w| w == b"200"))
}

/// A running container, owned by a helper thread with its own tokio runtime (so the kit never
/// nests a runtime inside the caller's).
pub(crate) struct Container {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Container {
    /// Starts the container (single node only; `features` and `nodes != 1` are rejected).
    pub(crate) fn start(opts: &ClusterOptions) -> Result<Container> {
        use testcontainers::runners::AsyncRunner;
        use testcontainers::ImageExt;
        use testcontainers_modules::kafka::apache;

        if opts.nodes != 1 || !opts.features.is_empty() {
            return Err(TestkitError::Container(
                "only single-node clusters without --feature are supported in containers"
                    .to_string(),
            ));
        }
        let version = opts
            .kafka_version
            .clone()
            .unwrap_or_else(crate::jars::default_version);
        let props = opts.broker_props.clone();
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let mut req = apache::Kafka::default().with_tag(version);
                for (k, v) in props {
                    req = req
                        .with_env_var(format!("KAFKA_{}", k.to_uppercase().replace('.', "_")), v);
                }
                match req.start().await {
                    Ok(c) => match c.get_host_port_ipv4(apache::KAFKA_PORT).await {
                        Ok(port) => {
                            let _ = ready_tx.send(Ok(format!("127.0.0.1:{port}")));
                            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                            let _ = c.rm().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                        }
                    },
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match ready_rx.recv() {
            Ok(Ok(bootstrap)) => Ok(Container {
                bootstrap,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(TestkitError::Container(e)),
            Err(_) => Err(TestkitError::Container(
                "container thread ended unexpectedly".to_string(),
            )),
        }
    }

    /// Bootstrap address of the container's broker.
    pub(crate) fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
