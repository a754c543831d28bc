//! SCRAM credentials of users (KIP-554): DescribeUserScramCredentials and
//! AlterUserScramCredentials, what Kafka's `kafka-configs --entity-type users
//! --add-config 'SCRAM-SHA-256=[password=...]'` does. The password never leaves the client:
//! it sends a random salt and the salted password (PBKDF2), as Java's admin client does.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};

use super::util::{check, in_request_order, sb};
use super::AdminClient;
use crate::config::SaslMechanism;
use crate::error::{Error, Result};

/// The iterations the brokers accept (Kafka's `ScramMechanism` bounds).
const ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=16384;

/// One change of a user's SCRAM credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum ScramAlteration {
    /// Sets (or replaces) the user's credential for a mechanism.
    Upsert {
        /// The user name.
        user: String,
        /// `ScramSha256` or `ScramSha512`.
        mechanism: SaslMechanism,
        /// PBKDF2 iterations (4096 to 16384).
        iterations: u32,
        /// The password (salted and hashed here; never sent).
        password: String,
    },
    /// Deletes the user's credential for a mechanism.
    Delete {
        /// The user name.
        user: String,
        /// `ScramSha256` or `ScramSha512`.
        mechanism: SaslMechanism,
    },
}

impl std::fmt::Debug for ScramAlteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramAlteration::Upsert {
                user,
                mechanism,
                iterations,
                ..
            } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .field("password", &"<redacted>")
                .finish(),
            ScramAlteration::Delete { user, mechanism } => f
                .debug_struct("Delete")
                .field("user", user)
                .field("mechanism", mechanism)
                .finish(),
        }
    }
}

impl ScramAlteration {
    fn user(&self) -> &str {
        match self {
            ScramAlteration::Upsert { user, .. } | ScramAlteration::Delete { user, .. } => user,
        }
    }
}

/// The protocol's code of a SCRAM mechanism.
fn mechanism_code(m: SaslMechanism) -> Result<i8> {
    match m {
        SaslMechanism::ScramSha256 => Ok(1),
        SaslMechanism::ScramSha512 => Ok(2),
        other => Err(Error::InvalidArgument(format!(
            "{} is not a SCRAM mechanism (SCRAM-SHA-256 or SCRAM-SHA-512)",
            other.name()
        ))),
    }
}

/// A user's SCRAM credential as the brokers describe it (never the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// `ScramSha256` or `ScramSha512` (`None`: a code this client does not know).
    pub mechanism: Option<SaslMechanism>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl AdminClient {
    /// The SCRAM credentials of `users` (all users with credentials when empty), by user;
    /// a user without any is an error (RESOURCE_NOT_FOUND) in its entry.
    pub async fn describe_user_scram_credentials(
        &self,
        users: &[&str],
    ) -> Result<BTreeMap<String, Result<Vec<ScramCredentialInfo>>>> {
        let req = DescribeUserScramCredentialsRequest::default().with_users(
            (!users.is_empty()).then(|| {
                users
                    .iter()
                    .map(|u| UserName::default().with_name(sb(u)))
                    .collect()
            }),
        );
        let resp = self
            .any_broker("DescribeUserScramCredentials", &req)
            .await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "DescribeUserScramCredentials".into()
        })?;
        Ok(resp
            .results
            .iter()
            .map(|r| {
                let user = r.user.to_string();
                let res = check(r.error_code, r.error_message.as_ref(), || {
                    format!("the SCRAM credentials of user `{user}`")
                })
                .map(|()| {
                    r.credential_infos
                        .iter()
                        .map(|c| ScramCredentialInfo {
                            mechanism: match c.mechanism {
                                1 => Some(SaslMechanism::ScramSha256),
                                2 => Some(SaslMechanism::ScramSha512),
                                _ => None,
                            },
                            iterations: c.iterations,
                        })
                        .collect()
                });
                (user, res)
            })
            .collect())
    }

    /// Applies `alterations`; one result per user named in them (the first failure of the
    /// user's alterations, if any). The controller takes one alteration per user per request,
    /// so a user's alterations go in successive requests, in the given order.
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[ScramAlteration],
    ) -> Result<BTreeMap<String, Result<()>>> {
        // Every alteration is checked before any is sent.
        for a in alterations {
            let mechanism = match a {
                ScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    ..
                } => {
                    if !ITERATIONS.contains(iterations) {
                        return Err(Error::InvalidArgument(format!(
                            "SCRAM iterations for user `{user}`: {iterations} is outside {}..={}",
                            ITERATIONS.start(),
                            ITERATIONS.end()
                        )));
                    }
                    mechanism
                }
                ScramAlteration::Delete { mechanism, .. } => mechanism,
            };
            mechanism_code(*mechanism)?;
        }
        // Rounds in which each user appears once: a user's n-th alteration goes in round n.
        let mut rounds: Vec<Vec<&ScramAlteration>> = Vec::new();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for a in alterations {
            let n = seen.entry(a.user()).or_default();
            if rounds.len() <= *n {
                rounds.push(Vec::new());
            }
            rounds[*n].push(a);
            *n += 1;
        }
        let mut out: BTreeMap<String, Result<()>> = BTreeMap::new();
        for round in rounds {
            for (user, r) in self.alter_scram_once(&round).await? {
                let slot = out.entry(user).or_insert(Ok(()));
                if slot.is_ok() {
                    *slot = r;
                }
            }
        }
        Ok(out)
    }

    /// One AlterUserScramCredentials request (each user at most once; checked alterations).
    async fn alter_scram_once(
        &self,
        alterations: &[&ScramAlteration],
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut upsertions = Vec::new();
        let mut deletions = Vec::new();
        for a in alterations {
            match a {
                ScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    let code = mechanism_code(*mechanism)?;
                    let mut salt = [0u8; 32];
                    getrandom::fill(&mut salt).map_err(|e| {
                        Error::State(format!("no random salt for the SCRAM credential: {e}"))
                    })?;
                    let salted = crate::connection::sasl::salted_password(
                        *mechanism,
                        password.as_bytes(),
                        &salt,
                        *iterations,
                    );
                    upsertions.push(
                        ScramCredentialUpsertion::default()
                            .with_name(sb(user))
                            .with_mechanism(code)
                            .with_iterations(*iterations as i32)
                            .with_salt(Bytes::copy_from_slice(&salt))
                            .with_salted_password(Bytes::from(salted)),
                    );
                }
                ScramAlteration::Delete { user, mechanism } => {
                    deletions.push(
                        ScramCredentialDeletion::default()
                            .with_name(sb(user))
                            .with_mechanism(mechanism_code(*mechanism)?),
                    );
                }
            }
        }
        let req = AlterUserScramCredentialsRequest::default()
            .with_upsertions(upsertions)
            .with_deletions(deletions);
        let resp = self.any_broker("AlterUserScramCredentials", &req).await?;
        let answers: BTreeMap<String, Result<()>> = resp
            .results
            .iter()
            .map(|r| {
                let user = r.user.to_string();
                let res = check(r.error_code, r.error_message.as_ref(), || {
                    format!("alter the SCRAM credentials of user `{user}`")
                });
                (user, res)
            })
            .collect();
        in_request_order::<_, _, str, _>(
            "AlterUserScramCredentials",
            alterations.iter().map(|a| a.user().to_string()),
            &answers,
        )
    }
}
