//! Share consumer settings (KIP-932 share groups): the consumer keys a share consumer reads
//! plus `share.acknowledgement.mode`.

use super::consumer::ConsumerConfig;
use super::keys::SHARE_ACKNOWLEDGEMENT_MODE;
use super::resolve::{Resolved, Target};
use super::ClientConfig;
use crate::error::{ConfigError, Result};

/// How delivered records of a share consumer are acknowledged (`share.acknowledgement.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShareAcknowledgementMode {
    /// `implicit`, the default (as in Java): every record handed out is accepted when the
    /// application asks for more records (or commits, or closes).
    Implicit,
    /// `explicit`: the application acknowledges each record (accept, release or reject).
    Explicit,
}

/// Share consumer settings. Built by [`ClientConfig::share_consumer`].
///
/// A share consumer reads the consumer keys that make sense for a share group: `group.id`
/// (required), `client.id` and the connection keys, `max.poll.records` (most records one
/// ShareFetch acquires and one `recv_batch` returns), `fetch.min.bytes`, `fetch.max.bytes`,
/// `fetch.max.wait.ms`, `max.partition.fetch.bytes`, `check.crcs`. Offsets, resets and
/// assignment belong to the share group on the broker (`share.auto.offset.reset`,
/// `group.share.record.lock.duration.ms` are group configs), so the consumer keys about
/// them (`auto.offset.reset`, `enable.auto.commit`, `partition.assignment.strategy`, ...)
/// are accepted and ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareConsumerConfig {
    /// The consumer settings (connection, fetch sizes, `max.poll.records`).
    pub consumer: ConsumerConfig,
    /// The share group (`group.id`).
    pub group_id: String,
    /// `share.acknowledgement.mode`, default `implicit`.
    pub acknowledgement_mode: ShareAcknowledgementMode,
}

impl ShareConsumerConfig {
    pub(crate) fn from_resolved(r: &Resolved) -> Result<ShareConsumerConfig> {
        let consumer = ConsumerConfig::from_resolved(r)?;
        let group_id = match &consumer.group_id {
            Some(g) if !g.is_empty() => g.clone(),
            _ => {
                return Err(ConfigError::Missing {
                    key: "group.id".into(),
                }
                .into())
            }
        };
        Ok(ShareConsumerConfig {
            group_id,
            acknowledgement_mode: r.get(SHARE_ACKNOWLEDGEMENT_MODE),
            consumer,
        })
    }
}

impl ClientConfig {
    /// The share consumer's typed settings (validates every key present); `group.id` is
    /// required.
    pub fn share_consumer(&self) -> Result<ShareConsumerConfig> {
        ShareConsumerConfig::from_resolved(&self.resolve(Target::Consumer)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn defaults_and_spellings() {
        let cfg = ClientConfig::new()
            .with("bootstrap.servers", "127.0.0.1:9092")
            .with("group.id", "q");
        let s = cfg.share_consumer().unwrap();
        assert_eq!(s.acknowledgement_mode, ShareAcknowledgementMode::Implicit);
        assert_eq!(s.group_id, "q");
        assert_eq!(s.consumer.max_poll_records, 500);
        let s = cfg
            .clone()
            .with("share.acknowledgement.mode", "explicit")
            .share_consumer()
            .unwrap();
        assert_eq!(s.acknowledgement_mode, ShareAcknowledgementMode::Explicit);
        assert_eq!(
            "implicit".parse::<ShareAcknowledgementMode>().unwrap(),
            ShareAcknowledgementMode::Implicit
        );
        assert_eq!(ShareAcknowledgementMode::Explicit.to_string(), "explicit");
    }

    #[test]
    fn bad_values_name_the_key() {
        let base = ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092");
        let e = base.share_consumer().unwrap_err();
        assert!(
            matches!(&e, Error::Config(ConfigError::Missing { key }) if key == "group.id"),
            "{e}"
        );
        let e = base
            .clone()
            .with("group.id", "q")
            .with("share.acknowledgement.mode", "sometimes")
            .share_consumer()
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("share.acknowledgement.mode") && s.contains("sometimes"),
            "{s}"
        );
    }
}
