//! A throwaway PostgreSQL server for tests and examples: `initdb` into a temp dir, `postgres`
//! on a free 127.0.0.1 port with its unix socket in that dir, stopped (and the dir removed)
//! on drop.
//!
//! The binaries come from `$PG_BIN` when set, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package), else `PATH`. PostgreSQL refuses to run as root: when the
//! process is root, the server runs as the `postgres` system user (through `runuser`), with
//! the temp dir handed to that user. A watchdog shell stops the server when the test process
//! exits without dropping it (a panic in a `static`, an abort, SIGKILL).
//!
//! ```no_run
//! let pg = kafka_testkit::PostgresServer::start().unwrap();
//! println!("connect with {}", pg.url());
//! ```

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, TestkitError};

/// The database superuser created by `initdb` (trust authentication on loopback).
pub const POSTGRES_USER: &str = "postgres";

/// Stops the server when the test process (`$0`) is gone: `pg_ctl stop -m immediate`, then
/// removes the dir. `$1` = pid to watch, `$2` = pg_ctl, `$3` = data dir, `$4` = root dir,
/// `$5` = user to run pg_ctl as ("" = current user).
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$5" ]; then runuser -u "$5" -- "$2" -D "$3" -m immediate stop >/dev/null 2>&1
else "$2" -D "$3" -m immediate stop >/dev/null 2>&1; fi
rm -rf "$4"
"#;

/// A running throwaway PostgreSQL server. Dropping it stops the server and deletes its data.
pub struct PostgresServer {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    run_as: Option<String>,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("port", &self.port)
            .field("data", &self.data)
            .finish()
    }
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
        .ok_or_else(|| {
            TestkitError::Startup(
                "PostgreSQL not found (no $PG_BIN, /usr/lib/postgresql/*/bin or initdb on PATH): \
                 install it (Debian: apt-get install -y postgresql)"
                    .to_string(),
            )
        })
}

impl PostgresServer {
    /// Initialises and starts a new server; waits until it accepts connections (up to 60 s).
    pub fn start() -> Result<PostgresServer> {
        let bin = postgres_bin_dir()?;
        let root_user = is_root();
        let run_as = root_user.then(|| POSTGRES_USER.to_string());
        let root = tempfile::Builder::new()
            .prefix("kafka-testkit-pg-")
            .tempdir()
            .ctx(|| "creating the PostgreSQL temp dir".to_string())?
            .keep();
        let data = root.join("data");
        let mut server = PostgresServer {
            root: root.clone(),
            data: data.clone(),
            bin: bin.clone(),
            port: 0,
            run_as: run_as.clone(),
            watchdog: None,
        };
        if let Some(user) = &run_as {
            chown_to(&root, user)?;
        }
        let initdb = server
            .command("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                POSTGRES_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .args(["--locale=C"])
            .stdin(Stdio::null())
            .output()
            .ctx(|| format!("running {}", bin.join("initdb").display()))?;
        if !initdb.status.success() {
            return Err(TestkitError::Startup(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            )));
        }
        server.watchdog = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("kafka-testkit-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(bin.join("pg_ctl"))
            .arg(&data)
            .arg(&root)
            .arg(run_as.clone().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            server.port = port;
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                root.display()
            );
            let log = root.join("postgres.log");
            let out = server
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &opts, "-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ctx(|| "running pg_ctl start".to_string())?;
            if out.success() && server.wait_ready(Duration::from_secs(30)) {
                return Ok(server);
            }
            last = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = last.lines().rev().take(15).collect();
            last = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            if !last.contains("Address already in use") {
                break;
            }
        }
        Err(TestkitError::Startup(format!(
            "PostgreSQL did not start (log {}):\n{last}",
            root.join("postgres.log").display()
        )))
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_secs(1),
            )
            .is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the `postgres` database as the superuser
    /// (`postgres://postgres@127.0.0.1:PORT/postgres`).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for database `db` (see [`PostgresServer::create_database`]).
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{POSTGRES_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (with `createdb`), so tests sharing one server stay apart.
    pub fn create_database(&self, name: &str) -> Result<()> {
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", POSTGRES_USER, name])
            .stdin(Stdio::null())
            .output()
            .ctx(|| "running createdb".to_string())?;
        if !out.status.success() {
            return Err(TestkitError::Startup(format!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn is_root() -> bool {
    // `id -u` keeps the kit free of unsafe code (libc::geteuid is an unsafe fn).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_to(dir: &Path, user: &str) -> Result<()> {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(dir)
        .output()
        .ctx(|| "running chown".to_string())?;
    if !out.status.success() {
        return Err(TestkitError::Startup(format!(
            "chown {user} {} failed (does the `{user}` user exist? it comes with Debian's \
             postgresql package): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").ctx(|| "binding a free loopback port".to_string())?;
    l.local_addr()
        .map(|a| a.port())
        .ctx(|| "reading a bound port".to_string())
}
