//! `kafka-sdk`: a command-line tool for Apache Kafka in the spirit of kcat and the Kafka
//! tools, built on the kafka-sdk library.
//!
//! Global options: `-b/--brokers`, `-X key=value` (any client key, repeatable), `--json`.
//! Subcommands: `produce`, `consume`, `metadata`, `topics`, `groups`, `lag`, `offsets reset`,
//! `records delete`. Errors are one line on stderr and exit code 1.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod commands;
mod format;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Command line of `kafka-sdk`.
#[derive(Parser, Debug)]
#[command(
    name = "kafka-sdk",
    version,
    about = "Apache Kafka from the command line (kafka-sdk)"
)]
pub struct Cli {
    /// Bootstrap servers (host:port[,host:port...]); default $KAFKA_BOOTSTRAP_SERVERS.
    #[arg(short = 'b', long, global = true, value_name = "SERVERS")]
    pub brokers: Option<String>,
    /// A client config key: `-X key=value`, repeatable; any key kafka-sdk knows, security
    /// included (`security.protocol`, `sasl.*`, `ssl.*`).
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses `key=value`, split at the first `=`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        Some(_) => Err(format!("`{s}` has no key before `=` (expected key=value)")),
        None => Err(format!("`{s}` has no `=` (expected key=value)")),
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Produce lines of stdin (or a file) as records.
    Produce(ProduceArgs),
    /// Consume records and print them.
    Consume(ConsumeArgs),
    /// Brokers, topics, partitions, leaders and ISRs.
    Metadata {
        /// Only this topic.
        #[arg(long, short = 't')]
        topic: Option<String>,
    },
    /// Create, delete, describe or alter topics.
    Topics {
        /// The topic operation.
        #[command(subcommand)]
        op: TopicsOp,
    },
    /// List, describe or delete groups.
    Groups {
        /// The group operation.
        #[command(subcommand)]
        op: GroupsOp,
    },
    /// Consumer group lag per partition, and the total.
    Lag(LagArgs),
    /// Committed offsets of a group.
    Offsets {
        /// The offsets operation.
        #[command(subcommand)]
        op: OffsetsOp,
    },
    /// Records of a partition.
    Records {
        /// The records operation.
        #[command(subcommand)]
        op: RecordsOp,
    },
    /// Finalized and supported feature levels of the cluster (`kafka-features describe`).
    Features,
    /// Client quotas of users and client ids (`kafka-configs --entity-type users/clients`).
    Quotas {
        /// The quotas operation.
        #[command(subcommand)]
        op: QuotasOp,
    },
}

/// The entity a `quotas` operation is about: a user, a client id, or both.
#[derive(Args, Debug)]
pub struct QuotaEntityArgs {
    /// A user principal's name (`default`: the default user).
    #[arg(long)]
    pub user: Option<String>,
    /// A client id (`default`: the default client id).
    #[arg(long)]
    pub client_id: Option<String>,
}

/// `quotas` operations.
#[derive(Subcommand, Debug)]
pub enum QuotasOp {
    /// Quotas of the entities matching the user and/or client id given (every entity
    /// with quotas when neither is).
    Describe(QuotaEntityArgs),
    /// Set quotas (`--set key=value`) and remove others (`--remove key`) of one entity.
    Alter {
        /// The entity.
        #[command(flatten)]
        entity: QuotaEntityArgs,
        /// A quota to set, e.g. `producer_byte_rate=1048576` (repeatable).
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// A quota to remove (repeatable).
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
}

/// `produce` options.
#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to produce to.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// Split each line into key and value at the first occurrence of this character.
    #[arg(long, short = 'K')]
    pub key_separator: Option<char>,
    /// A header `name=value` added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Produce to this partition (default: the partitioner).
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
}

/// `consume` options.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to consume.
    #[arg(long, short = 't')]
    pub topic: String,
    /// Start at the beginning of each partition (default: the end).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset in each partition.
    #[arg(long, conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this timestamp (ms since the epoch).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Only this partition (without --group).
    #[arg(long, short = 'p', conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Stop after this many records.
    #[arg(long, short = 'c')]
    pub count: Option<u64>,
    /// Stop once every partition reached the end offset it had at start.
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    /// Consume as a member of this group (committing offsets).
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %s value, %h headers,
    /// %T timestamp, \n newline, \t tab, %% percent. Default: the value per line.
    #[arg(long, short = 'f')]
    pub format: Option<String>,
}

/// `topics` operations.
#[derive(Subcommand, Debug)]
pub enum TopicsOp {
    /// Create a topic.
    Create {
        /// Topic name.
        #[arg(long, short = 't')]
        topic: String,
        /// Partitions (-1: the broker default).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (-1: the broker default).
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config `key=value` (repeatable).
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(long = "topic", short = 't', required = true)]
        topics: Vec<String>,
    },
    /// Describe topics (all when none is named): partitions and non-default configs.
    Describe {
        /// Topic names.
        #[arg(long = "topic", short = 't')]
        topics: Vec<String>,
    },
    /// Alter a topic: more partitions, configs set or deleted.
    Alter {
        /// Topic name.
        #[arg(long, short = 't')]
        topic: String,
        /// New partition count.
        #[arg(long)]
        partitions: Option<i32>,
        /// A config to set, `key=value` (repeatable).
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// A config to remove (repeatable).
        #[arg(long = "delete-config")]
        delete_configs: Vec<String>,
    },
}

/// `groups` operations.
#[derive(Subcommand, Debug)]
pub enum GroupsOp {
    /// List groups.
    List,
    /// Describe a group: type, state, members and their assignments.
    Describe {
        /// Group id.
        #[arg(long, short = 'g')]
        group: String,
    },
    /// Delete groups (they must have no member).
    Delete {
        /// Group ids.
        #[arg(long = "group", short = 'g', required = true)]
        groups: Vec<String>,
    },
}

/// `lag` options.
#[derive(Args, Debug)]
pub struct LagArgs {
    /// Group id.
    #[arg(long, short = 'g')]
    pub group: String,
    /// Refresh the view until interrupted, with a per-partition trend.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Refresh interval of --watch, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub interval_ms: u64,
    /// Stop --watch after this many refreshes (default: until interrupted).
    #[arg(long)]
    pub iterations: Option<u64>,
}

/// `offsets` operations.
#[derive(Subcommand, Debug)]
pub enum OffsetsOp {
    /// Reset a group's committed offsets (the group must have no active member).
    Reset(ResetArgs),
}

/// `offsets reset` options.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("spec").required(true).args(
    ["to_earliest", "to_latest", "to_datetime", "shift_by", "to_offset"])))]
pub struct ResetArgs {
    /// Group id.
    #[arg(long, short = 'g')]
    pub group: String,
    /// Only these topics (default: every topic the group has offsets for).
    #[arg(long = "topic", short = 't')]
    pub topics: Vec<String>,
    /// To the log start.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end.
    #[arg(long)]
    pub to_latest: bool,
    /// To the first record at or after this time: RFC 3339, or `YYYY-MM-DDTHH:MM:SS[.sss]`
    /// in UTC, or milliseconds since the epoch.
    #[arg(long)]
    pub to_datetime: Option<String>,
    /// Move the committed offset by N (negative: back).
    #[arg(long, allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// To this offset.
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    pub dry_run: bool,
}

/// `records` operations.
#[derive(Subcommand, Debug)]
pub enum RecordsOp {
    /// Delete the records before an offset.
    Delete {
        /// Topic.
        #[arg(long, short = 't')]
        topic: String,
        /// Partition.
        #[arg(long, short = 'p')]
        partition: i32,
        /// Delete the records before this offset (-1: all up to the high watermark).
        #[arg(long, allow_hyphen_values = true)]
        before: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
