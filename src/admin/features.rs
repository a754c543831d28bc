//! Cluster features (KIP-584): the finalized and supported feature levels a broker reports
//! in ApiVersions, and UpdateFeatures, what `kafka-features describe / upgrade / downgrade`
//! do (e.g. `transaction.version`, `group.version`, `share.version`).

use std::collections::BTreeMap;

use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{ApiVersionsRequest, UpdateFeaturesRequest};

use super::util::{check, in_request_order, sb};
use super::AdminClient;
use crate::error::Result;

/// The features of the cluster as one broker reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureMetadata {
    /// Finalized feature levels (the cluster-wide level in force), by feature name.
    pub finalized: BTreeMap<String, i16>,
    /// The epoch of the finalized levels (-1 when the broker gave none).
    pub finalized_epoch: i64,
    /// The levels this broker supports, as (min, max), by feature name.
    pub supported: BTreeMap<String, (i16, i16)>,
}

/// How a feature level may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureUpgrade {
    /// Raise the level (or set it for the first time).
    Upgrade,
    /// Lower it only where no metadata is lost.
    SafeDowngrade,
    /// Lower it even where metadata is lost.
    UnsafeDowngrade,
}

impl AdminClient {
    /// The cluster's features: a fresh ApiVersions answer of one broker.
    pub async fn describe_features(&self) -> Result<FeatureMetadata> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(sb("kafka-sdk"))
            .with_client_software_version(sb(env!("CARGO_PKG_VERSION")));
        let resp = self.any_broker("ApiVersions (features)", &req).await?;
        check(resp.error_code, None, || "ApiVersions".into())?;
        Ok(FeatureMetadata {
            finalized: resp
                .finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect(),
            finalized_epoch: resp.finalized_features_epoch,
            supported: resp
                .supported_features
                .iter()
                .map(|f| (f.name.to_string(), (f.min_version, f.max_version)))
                .collect(),
        })
    }

    /// Sets finalized feature levels (`validate_only`: the controller checks and changes
    /// nothing); one result per feature, in order. Level 0 removes a feature (a downgrade).
    pub async fn update_features(
        &self,
        updates: &[(&str, i16, FeatureUpgrade)],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let req = UpdateFeaturesRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only)
            .with_feature_updates(
                updates
                    .iter()
                    .map(|(name, level, how)| {
                        FeatureUpdateKey::default()
                            .with_feature(sb(name))
                            .with_max_version_level(*level)
                            .with_allow_downgrade(*how != FeatureUpgrade::Upgrade)
                            .with_upgrade_type(match how {
                                FeatureUpgrade::Upgrade => 1,
                                FeatureUpgrade::SafeDowngrade => 2,
                                FeatureUpgrade::UnsafeDowngrade => 3,
                            })
                    })
                    .collect(),
            );
        let resp = self.any_broker("UpdateFeatures", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "UpdateFeatures".into()
        })?;
        let answers: BTreeMap<&str, Result<()>> = resp
            .results
            .iter()
            .map(|r| {
                let name = r.feature.as_str();
                let res = check(r.error_code, r.error_message.as_ref(), || {
                    format!("update feature `{name}`")
                });
                (name, res)
            })
            .collect();
        let names = updates.iter().map(|(name, _, _)| name.to_string());
        if resp.results.is_empty() {
            // v2 answers with the top-level code only (no per-feature results).
            return Ok(names.map(|n| (n, Ok(()))).collect());
        }
        in_request_order::<_, _, str, _>("UpdateFeatures", names, &answers)
    }
}
