//! Arguments shared by the conformance programs: `--brokers`, `--topic`, `--count`,
//! `--group` and any number of `-X key=value` (client configuration overrides).
#![allow(dead_code)]

use rdkafka::config::ClientConfig;

/// Options of a conformance program.
#[derive(Clone, Debug)]
pub struct Opts {
    pub brokers: String,
    pub topic: String,
    pub count: usize,
    pub group: String,
    pub extra: Vec<(String, String)>,
}

impl Opts {
    pub fn new(brokers: &str, topic: &str, count: usize, group: &str) -> Opts {
        Opts {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            count,
            group: group.to_string(),
            extra: Vec::new(),
        }
    }

    /// Parses the command line.
    pub fn from_args() -> Opts {
        let mut o = Opts::new("127.0.0.1:9092", "conformance", 100, "conformance-group");
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                "--brokers" => o.brokers = value(),
                "--topic" => o.topic = value(),
                "--count" => o.count = value().parse().expect("--count takes a number"),
                "--group" => o.group = value(),
                "-X" => {
                    let kv = value();
                    let (k, v) = kv.split_once('=').expect("-X takes key=value");
                    o.extra.push((k.to_string(), v.to_string()));
                }
                other => panic!("unknown argument {other}"),
            }
        }
        o
    }

    /// A client configuration: the brokers, then `keys`, then the `-X` overrides.
    pub fn config(&self, keys: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in keys {
            c.set(*k, *v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}
