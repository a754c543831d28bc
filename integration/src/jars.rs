//! The Kafka jar cache (filled by Maven), the `java` executable and the Kafka CLI tools.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{IoContext, Result, TestkitError};

/// Kafka version used when nothing else is asked for.
pub const DEFAULT_KAFKA_VERSION: &str = "4.3.1";
/// Version tried when [`DEFAULT_KAFKA_VERSION`] cannot be resolved by Maven.
pub const FALLBACK_KAFKA_VERSION: &str = "4.2.1";

/// The pom that resolves the broker + tools jars; embedded so the kit works from any directory.
const POM: &str = include_str!("../pom.xml");

/// log4j2 configuration for the CLI tools: WARN and above to stderr, so stdout is clean data.
const TOOLS_LOG4J2: &str = "\
status = warn
name = kafka-testkit-tools
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
";

/// The Kafka command-line tools the kit can run: `(name, main class)`.
///
/// Names follow the `kafka-<name>.sh` scripts of the Kafka distribution; a leading `kafka-`
/// and a trailing `.sh` are accepted too (`kafka-topics.sh` = `topics`). A fully qualified
/// Java class name (containing a `.` but not ending in `.sh`) is run as is.
pub const TOOLS: &[(&str, &str)] = &[
    ("topics", "org.apache.kafka.tools.TopicCommand"),
    ("console-producer", "org.apache.kafka.tools.ConsoleProducer"),
    (
        "console-consumer",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
    ),
    (
        "consumer-groups",
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    ),
    (
        "producer-perf",
        "org.apache.kafka.tools.ProducerPerformance",
    ),
    (
        "consumer-perf",
        "org.apache.kafka.tools.ConsumerPerformance",
    ),
    ("configs", "org.apache.kafka.tools.ConfigCommand"),
    ("dump-log", "org.apache.kafka.tools.DumpLogSegments"),
    (
        "broker-api-versions",
        "org.apache.kafka.tools.BrokerApiVersionsCommand",
    ),
    (
        "metadata-quorum",
        "org.apache.kafka.tools.MetadataQuorumCommand",
    ),
    ("transactions", "org.apache.kafka.tools.TransactionsCommand"),
    ("get-offsets", "org.apache.kafka.tools.GetOffsetShell"),
    ("storage", "kafka.tools.StorageTool"),
    ("features", "org.apache.kafka.tools.FeatureCommand"),
    (
        "leader-election",
        "org.apache.kafka.tools.LeaderElectionCommand",
    ),
    (
        "delete-records",
        "org.apache.kafka.tools.DeleteRecordsCommand",
    ),
    ("log-dirs", "org.apache.kafka.tools.LogDirsCommand"),
    ("acls", "org.apache.kafka.tools.AclCommand"),
    ("groups", "org.apache.kafka.tools.GroupsCommand"),
    (
        "verifiable-producer",
        "org.apache.kafka.tools.VerifiableProducer",
    ),
    (
        "verifiable-consumer",
        "org.apache.kafka.tools.VerifiableConsumer",
    ),
    (
        "console-share-consumer",
        "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
    ),
    (
        "share-groups",
        "org.apache.kafka.tools.consumer.group.ShareGroupCommand",
    ),
];

/// Kafka version to use by default: `$KAFKA_TESTKIT_VERSION` or [`DEFAULT_KAFKA_VERSION`].
pub fn default_version() -> String {
    env::var("KAFKA_TESTKIT_VERSION")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_KAFKA_VERSION.to_string())
}

/// Root of the kit's cache: `$KAFKA_TESTKIT_CACHE_DIR`, else `<user cache dir>/kafka-sdk`
/// (e.g. `~/.cache/kafka-sdk`), else `<temp dir>/kafka-sdk`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = env::var_os("KAFKA_TESTKIT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(env::temp_dir)
        .join("kafka-sdk")
}

/// Finds an executable on `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = env::var_os("PATH")?;
    env::split_paths(&path).map(|dir| dir.join(name)).find(|p| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// The `java` executable: `$JAVA_HOME/bin/java` if it exists, else `java` on `PATH`.
pub fn java_path() -> Result<PathBuf> {
    if let Some(home) = env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let java = Path::new(&home).join("bin").join("java");
        if java.is_file() {
            return Ok(java);
        }
    }
    find_on_path("java").ok_or(TestkitError::JavaNotFound)
}

/// Ensures the jars of Kafka `version` are in the cache and returns their directory
/// (`<cache_root>/kafka-<version>/libs`).
///
/// If `$KAFKA_TESTKIT_LIBS` is set it is returned as is (no download, version ignored).
/// Otherwise a missing cache entry is filled by `mvn dependency:copy-dependencies` into a
/// temporary directory that is then renamed into place, so parallel test processes can race
/// safely (the loser discards its copy). If the default version cannot be resolved, the
/// fallback version [`FALLBACK_KAFKA_VERSION`] is tried (with a warning on stderr).
pub fn jars_dir(version: &str) -> Result<PathBuf> {
    if let Some(dir) = env::var_os("KAFKA_TESTKIT_LIBS").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            return Err(TestkitError::Fetch {
                version: version.to_string(),
                detail: format!("KAFKA_TESTKIT_LIBS={} is not a directory", dir.display()),
            });
        }
        return Ok(dir);
    }
    match fetch(version) {
        Ok(dir) => Ok(dir),
        Err(e @ TestkitError::Fetch { .. }) if version == DEFAULT_KAFKA_VERSION => {
            eprintln!("kafka-testkit: {e}; falling back to Kafka {FALLBACK_KAFKA_VERSION}");
            fetch(FALLBACK_KAFKA_VERSION)
        }
        Err(e) => Err(e),
    }
}

fn fetch(version: &str) -> Result<PathBuf> {
    if version.is_empty()
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(TestkitError::Fetch {
            version: version.to_string(),
            detail: "invalid version string".to_string(),
        });
    }
    let dir = cache_root().join(format!("kafka-{version}"));
    let libs = dir.join("libs");
    let marker = libs.join(".complete");
    if marker.is_file() {
        return Ok(libs);
    }
    let mvn = find_on_path("mvn").ok_or(TestkitError::MavenNotFound)?;
    fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&dir)
        .ctx(|| format!("creating a temp dir in {}", dir.display()))?;
    let pom = tmp.path().join("pom.xml");
    fs::write(&pom, POM).ctx(|| format!("writing {}", pom.display()))?;
    let out_dir = tmp.path().join("libs");
    let output = Command::new(&mvn)
        .arg("-B")
        .arg("-q")
        .arg("-f")
        .arg(&pom)
        .arg(format!("-Dkafka.version={version}"))
        .arg("dependency:copy-dependencies")
        .arg("-DincludeScope=runtime")
        .arg(format!("-DoutputDirectory={}", out_dir.display()))
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("running {}", mvn.display()))?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(TestkitError::Fetch {
            version: version.to_string(),
            detail: format!("mvn exited with {}:\n{}", output.status, tail(&text, 30)),
        });
    }
    let server_jar = out_dir.join(format!("kafka_2.13-{version}.jar"));
    if !server_jar.is_file() {
        return Err(TestkitError::Fetch {
            version: version.to_string(),
            detail: format!("{} missing after mvn", server_jar.display()),
        });
    }
    fs::write(out_dir.join(".complete"), version).ctx(|| "writing .complete".to_string())?;
    if let Err(e) = fs::rename(&out_dir, &libs) {
        if !marker.is_file() {
            // A leftover incomplete directory (not produced by this code) is in the way.
            let _ = fs::remove_dir_all(&libs);
            fs::rename(&out_dir, &libs).map_err(|e2| TestkitError::Io {
                context: format!("moving jars into {} (first error: {e})", libs.display()),
                source: e2,
            })?;
        }
        // else: another process won the race; ours is dropped with `tmp`.
    }
    Ok(libs)
}

/// Writes `content` to `path` unless it already has exactly that content (atomic rename).
pub(crate) fn write_if_changed(path: &Path, content: &str) -> Result<()> {
    if fs::read_to_string(path)
        .map(|c| c == content)
        .unwrap_or(false)
    {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(parent)
        .ctx(|| format!("creating a temp file in {}", parent.display()))?;
    fs::write(tmp.path(), content).ctx(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path).map_err(|e| TestkitError::Io {
        context: format!("writing {}", path.display()),
        source: e.error,
    })?;
    Ok(())
}

/// Path of the log4j2 configuration used by the CLI tools (written on demand).
pub(crate) fn tools_log4j_file() -> Result<PathBuf> {
    let path = cache_root().join("log4j2-tools.properties");
    write_if_changed(&path, TOOLS_LOG4J2)?;
    Ok(path)
}

/// Resolves a tool name (see [`TOOLS`]) to its Java main class.
pub fn tool_class(name: &str) -> Result<String> {
    let short = name.strip_suffix(".sh").unwrap_or(name);
    let short = short.strip_prefix("kafka-").unwrap_or(short);
    let aliases = [
        ("producer-perf-test", "producer-perf"),
        ("consumer-perf-test", "consumer-perf"),
        ("dump-log-segments", "dump-log"),
        ("get-offsets-shell", "get-offsets"),
    ];
    let short = aliases
        .iter()
        .find(|(a, _)| *a == short)
        .map(|(_, n)| *n)
        .unwrap_or(short);
    if let Some((_, class)) = TOOLS.iter().find(|(n, _)| *n == short) {
        return Ok(class.to_string());
    }
    if name.contains('.') && !name.ends_with(".sh") {
        return Ok(name.to_string());
    }
    Err(TestkitError::UnknownTool {
        name: name.to_string(),
        known: TOOLS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
    })
}

/// Main classes that moved: `(class from version, class before it, version)`.
const MOVED_CLASSES: &[(&str, &str, (u32, u32))] = &[
    (
        "org.apache.kafka.tools.DumpLogSegments",
        "kafka.tools.DumpLogSegments",
        (4, 3),
    ),
    (
        "org.apache.kafka.tools.ConfigCommand",
        "kafka.admin.ConfigCommand",
        (4, 4),
    ),
];

/// `(major, minor)` of the Kafka jars in `libs`, from the `kafka-clients-<v>.jar` file name.
fn libs_version(libs: &Path) -> Option<(u32, u32)> {
    fs::read_dir(libs).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let v = name.strip_prefix("kafka-clients-")?.strip_suffix(".jar")?;
        let mut it = v.split(['.', '-']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    })
}

/// A `java` command running the Kafka main class `class` from the jars in `libs`, logging
/// WARN+ to stderr.
pub(crate) fn java_tool(libs: &Path, class: &str, args: &[&str]) -> Result<Command> {
    let mut class = class;
    if let Some((_, old, since)) = MOVED_CLASSES.iter().find(|(new, _, _)| *new == class) {
        if libs_version(libs).is_some_and(|v| v < *since) {
            class = old;
        }
    }
    let java = java_path()?;
    let log4j = tools_log4j_file()?;
    let mut cmd = Command::new(java);
    cmd.arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(class)
        .args(args);
    Ok(cmd)
}

/// Builds a command for the Kafka CLI tool `name` (see [`TOOLS`]) from the cached jars of
/// [`default_version`], fetching them first if needed. Usable without a cluster: pass
/// `--bootstrap-server` yourself. Tools log WARN and above to stderr only.
pub fn tool_command(name: &str, args: &[&str]) -> Result<Command> {
    let class = tool_class(name)?;
    let libs = jars_dir(&default_version())?;
    java_tool(&libs, &class, args)
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A random Kafka `Uuid` in its string form (URL-safe base64 without padding, never starting
/// with `-`), like `kafka-storage random-uuid` prints.
pub(crate) fn kafka_uuid() -> Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut f = fs::File::open("/dev/urandom").ctx(|| "opening /dev/urandom".to_string())?;
    loop {
        let mut b = [0u8; 16];
        f.read_exact(&mut b)
            .ctx(|| "reading /dev/urandom".to_string())?;
        if b.iter().all(|&x| x == 0) || b[..15].iter().all(|&x| x == 0) {
            continue; // ZERO_UUID / METADATA_TOPIC_ID are reserved
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut s = String::with_capacity(22);
        for &byte in &b {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                s.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            s.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        if !s.starts_with('-') {
            return Ok(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = kafka_uuid().unwrap();
        assert_eq!(u.len(), 22);
        assert!(!u.starts_with('-'));
    }

    #[test]
    fn tool_names() {
        assert_eq!(
            tool_class("kafka-topics.sh").unwrap(),
            "org.apache.kafka.tools.TopicCommand"
        );
        assert_eq!(
            tool_class("producer-perf-test").unwrap(),
            "org.apache.kafka.tools.ProducerPerformance"
        );
        assert!(tool_class("nope").is_err());
        assert_eq!(tool_class("a.b.C").unwrap(), "a.b.C");
    }
}
