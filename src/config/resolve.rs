//! Turns a raw [`ClientConfig`](super::ClientConfig) map into validated canonical values, read
//! back through the table's typed handles ([`Resolved::get`]).

use std::collections::{BTreeMap, BTreeSet};

use super::keys::{lookup, Clients, Key, KeyDef, Status, Value};
use crate::error::{ConfigError, Result};

/// librdkafka's properties the table does not know (no effect, rejected, pending).
#[path = "librdkafka.rs"]
mod librdkafka;

/// Which typed config is being built (decides which keys are "used").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Common,
    Producer,
    Consumer,
    Admin,
}

impl Target {
    fn uses(self, c: Clients) -> bool {
        match self {
            Target::Common => true,
            Target::Producer => c.producer,
            Target::Consumer => c.consumer,
            Target::Admin => c.admin,
        }
    }
}

/// An explicitly set key: its value and the spelling it was set under.
#[derive(Debug)]
struct Set {
    value: Value,
    spelling: String,
}

/// Validated values by canonical key name; absent keys fall back to the table default.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    set: BTreeMap<&'static str, Set>,
}

impl Resolved {
    /// Validates every entry (in insertion order; the first problem is reported).
    pub(crate) fn new<'a>(
        entries: impl Iterator<Item = (&'a str, &'a str)>,
        target: Target,
    ) -> Result<Resolved> {
        let mut set: BTreeMap<&'static str, Set> = BTreeMap::new();
        for (key, raw) in entries {
            let Some(d) = lookup(key) else {
                // Not in the table: a librdkafka property accepted with no effect, or an
                // error (rejected, or unknown to librdkafka too).
                librdkafka::accept(key, raw)?;
                continue;
            };
            let value = d.parse(key, raw)?;
            check_status(d, key, &value)?;
            if !target.uses(d.clients) {
                tracing::debug!(
                    key,
                    "configuration key is not used by the {target:?} client; ignored"
                );
            }
            if let Some(prev) = set.get(d.name) {
                if prev.value != value {
                    return Err(ConfigError::Conflict(format!(
                        "`{}` = `{}` and `{}` = `{}` are spellings of the same key `{}` \
                         with different values",
                        prev.spelling,
                        prev.value.text(),
                        key,
                        value.text(),
                        d.name
                    ))
                    .into());
                }
                continue;
            }
            set.insert(
                d.name,
                Set {
                    value,
                    spelling: key.to_string(),
                },
            );
        }
        Ok(Resolved { set })
    }

    /// Nothing set: every key reads as its table default.
    pub(crate) fn defaults() -> Resolved {
        Resolved::default()
    }

    /// Canonical names of every key that was set explicitly.
    pub(crate) fn explicit_keys(&self) -> BTreeSet<&'static str> {
        self.set.keys().copied().collect()
    }

    /// Whether `key` was set explicitly, under any spelling.
    pub(crate) fn is_explicit<T>(&self, key: Key<T>) -> bool {
        self.set.contains_key(key.def.name)
    }

    /// The spelling `key` was set under, else its canonical name (for error messages).
    pub(crate) fn spelling<T>(&self, key: Key<T>) -> &str {
        self.set
            .get(key.def.name)
            .map_or(key.def.name, |s| s.spelling.as_str())
    }

    /// The value of `key`: as set, else the table default.
    pub(crate) fn get<T>(&self, key: Key<T>) -> T {
        match self.set.get(key.def.name) {
            Some(s) => key.read(Some(&s.value)),
            None => key.read(default_of(&key.def).as_ref()),
        }
    }

    /// The explicit value of the key `def`, else its parsed default (for tests that walk the
    /// table).
    #[cfg(test)]
    pub(crate) fn value(&self, def: &KeyDef) -> Option<Value> {
        match self.set.get(def.name) {
            Some(s) => Some(s.value.clone()),
            None => default_of(def),
        }
    }
}

/// The parsed default of `def` (the table's defaults all parse: checked by tests).
fn default_of(def: &KeyDef) -> Option<Value> {
    def.default.map(|text| {
        def.parse(def.name, text)
            .unwrap_or_else(|e| unreachable!("default of `{}` does not parse: {e}", def.name))
    })
}

fn check_status(d: &KeyDef, key: &str, value: &Value) -> Result<(), ConfigError> {
    match d.status {
        Status::Supported => Ok(()),
        Status::Ignored { detail } => {
            tracing::info!(
                key,
                "configuration key has no effect in kafka-sdk: {detail}"
            );
            Ok(())
        }
        Status::Partial { supported, detail } => {
            if supported.contains(&value.text().as_str()) {
                Ok(())
            } else {
                Err(ConfigError::NotSupported {
                    key: key.to_string(),
                    detail: Some(detail.to_string()),
                })
            }
        }
        Status::NotSupported { detail } => Err(ConfigError::NotSupported {
            key: key.to_string(),
            detail: Some(detail.to_string()),
        }),
    }
}
