//! No broker JVM may outlive the test process, even when the cluster is never dropped.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The child side: starts the shared cluster (a `static`, never dropped), reports the JVM
/// pid and the temp dir, then aborts (no destructors, no atexit).
#[test]
fn watchdog_child() {
    if std::env::var_os("KAFKA_TESTKIT_WATCHDOG_CHILD").is_none() {
        return;
    }
    let cluster = kafka_testkit::shared();
    let pid = cluster.pid(1).unwrap().unwrap();
    let dir = cluster.data_root().unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "CHILD-PID={pid}").unwrap();
    writeln!(out, "CHILD-DIR={}", dir.display()).unwrap();
    out.flush().unwrap();
    std::process::abort();
}

#[test]
fn jvm_is_killed_when_the_test_process_dies() {
    if std::env::var_os("KAFKA_TESTKIT_WATCHDOG_CHILD").is_some()
        || std::env::var_os("KAFKA_BOOTSTRAP_SERVERS").is_some()
    {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "watchdog_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KAFKA_TESTKIT_WATCHDOG_CHILD", "1")
        .env_remove("KAFKA_TESTKIT_KEEP")
        .output()
        .expect("run child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(key).map(|(_, v)| v))
            .map(str::to_string)
            .unwrap_or_else(|| {
                panic!(
                    "child printed no {key}: {stdout}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    };
    let pid = field("CHILD-PID=");
    let dir = field("CHILD-DIR=");
    assert!(!out.status.success(), "child should have aborted");

    let proc_dir = format!("/proc/{pid}");
    let t0 = Instant::now();
    while Path::new(&proc_dir).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "JVM {pid} still alive {:?} after its test process died",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("JVM {pid} gone {:.1?} after the child exited", t0.elapsed());
    while Path::new(&dir).exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "cluster dir {dir} not removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
