//! Turns a raw [`ClientConfig`](super::ClientConfig) map into validated canonical values.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::keys::{def, lookup, Clients, KeyDef, Status, Value};
use crate::error::{ConfigError, Result};

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
#[derive(Debug)]
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
            let d = lookup(key).ok_or_else(|| ConfigError::UnknownKey {
                key: key.to_string(),
            })?;
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

    /// Canonical names of every key that was set explicitly.
    pub(crate) fn explicit_keys(&self) -> BTreeSet<&'static str> {
        self.set.keys().copied().collect()
    }

    /// Whether `key` (canonical) was set explicitly, under any spelling.
    pub(crate) fn is_explicit(&self, key: &str) -> bool {
        self.set.contains_key(key)
    }

    /// The spelling `key` was set under, else its canonical name (for error messages).
    pub(crate) fn spelling<'a>(&'a self, key: &'a str) -> &'a str {
        self.set.get(key).map_or(key, |s| s.spelling.as_str())
    }

    /// The explicit value, else the parsed default, else `None`.
    pub(crate) fn value(&self, key: &str) -> Option<Value> {
        let d = def(key);
        if let Some(s) = self.set.get(d.name) {
            return Some(s.value.clone());
        }
        d.default.map(|text| {
            d.parse(d.name, text)
                .unwrap_or_else(|e| panic!("default of `{}` does not parse: {e}", d.name))
        })
    }

    pub(crate) fn opt_int(&self, key: &str) -> Option<i64> {
        match self.value(key)? {
            Value::Int(i) => Some(i),
            other => panic!("`{key}` is not an integer key: {other:?}"),
        }
    }

    pub(crate) fn int(&self, key: &str) -> i64 {
        self.opt_int(key)
            .unwrap_or_else(|| panic!("`{key}` has no default"))
    }

    pub(crate) fn usize(&self, key: &str) -> usize {
        usize::try_from(self.int(key)).unwrap_or(usize::MAX)
    }

    pub(crate) fn ms(&self, key: &str) -> Duration {
        Duration::from_millis(u64::try_from(self.int(key)).unwrap_or(0))
    }

    pub(crate) fn bool(&self, key: &str) -> bool {
        match self.value(key) {
            Some(Value::Bool(b)) => b,
            other => panic!("`{key}` is not a boolean key with a default: {other:?}"),
        }
    }

    pub(crate) fn opt_str(&self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::Str(s) => Some(s),
            other => panic!("`{key}` is not a string key: {other:?}"),
        }
    }

    pub(crate) fn str(&self, key: &str) -> String {
        self.opt_str(key)
            .unwrap_or_else(|| panic!("`{key}` has no default"))
    }

    pub(crate) fn list(&self, key: &str) -> Option<Vec<String>> {
        match self.value(key)? {
            Value::List(l) => Some(l),
            other => panic!("`{key}` is not a list key: {other:?}"),
        }
    }
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
