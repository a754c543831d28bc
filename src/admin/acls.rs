//! ACLs: CreateAcls, DescribeAcls, DeleteAcls (the broker needs an authorizer).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};

use super::util::{check, sb};
use super::AdminClient;
use crate::error::{Error, Result};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $code:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A code this client does not know.
            Unknown(i8),
        }

        impl $name {
            /// The protocol code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$v => $code,)*
                    $name::Unknown(c) => c,
                }
            }

            /// From a protocol code.
            pub fn from_code(c: i8) -> Self {
                match c {
                    $($code => $name::$v,)*
                    c => $name::Unknown(c),
                }
            }
        }
    };
}

wire_enum!(
    /// The type of resource an ACL is about.
    AclResourceType {
        /// Any type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A group.
        Group = 3,
        /// The cluster.
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user principal.
        User = 7,
    }
);

wire_enum!(
    /// How an ACL's resource name matches.
    PatternType {
        /// Any pattern (filters only).
        Any = 1,
        /// Literal match, or any pattern that matches (filters only).
        Match = 2,
        /// The exact name (`*`: every resource).
        Literal = 3,
        /// Every name starting with it.
        Prefixed = 4,
    }
);

wire_enum!(
    /// An operation an ACL allows or denies.
    AclOperation {
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Cluster actions (brokers only).
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Idempotent writes.
        IdempotentWrite = 12,
        /// Create tokens.
        CreateTokens = 13,
        /// Describe tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Whether an ACL allows or denies.
    AclPermission {
        /// Any (filters only).
        Any = 1,
        /// Deny.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
);

/// An ACL: who (`principal`, e.g. `User:alice`, from `host`, `*` for any) may or may not do
/// `operation` on which resources.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// Resource type.
    pub resource_type: AclResourceType,
    /// Resource name (`kafka-cluster` for the cluster).
    pub resource_name: String,
    /// How the name matches.
    pub pattern_type: PatternType,
    /// Principal, e.g. `User:alice`.
    pub principal: String,
    /// Host, `*` for any.
    pub host: String,
    /// Operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

/// A filter over ACLs: `None` fields and `Any` values match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// Resource type (`Any` for all).
    pub resource_type: AclResourceType,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Pattern type (`Any` for all, `Match` for every pattern matching `resource_name`).
    pub pattern_type: PatternType,
    /// Principal.
    pub principal: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Operation (`Any` for all).
    pub operation: AclOperation,
    /// Permission (`Any` for all).
    pub permission: AclPermission,
}

impl AclBindingFilter {
    /// Matches every ACL.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: AclResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        }
    }

    /// Matches exactly `b`.
    pub fn exact(b: &AclBinding) -> Self {
        AclBindingFilter {
            resource_type: b.resource_type,
            resource_name: Some(b.resource_name.clone()),
            pattern_type: b.pattern_type,
            principal: Some(b.principal.clone()),
            host: Some(b.host.clone()),
            operation: b.operation,
            permission: b.permission,
        }
    }
}

impl AdminClient {
    /// Creates ACLs; one result per binding (in order).
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<Vec<Result<()>>> {
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type.code())
                        .with_resource_name(sb(&a.resource_name))
                        .with_resource_pattern_type(a.pattern_type.code())
                        .with_principal(sb(&a.principal))
                        .with_host(sb(&a.host))
                        .with_operation(a.operation.code())
                        .with_permission_type(a.permission.code())
                })
                .collect(),
        );
        let resp = self.any_broker("CreateAcls", &req).await?;
        if resp.results.len() != acls.len() {
            return Err(Error::Protocol(format!(
                "CreateAcls answered {} results for {} ACLs",
                resp.results.len(),
                acls.len()
            )));
        }
        Ok(resp
            .results
            .iter()
            .zip(acls)
            .map(|(r, a)| {
                check(r.error_code, r.error_message.as_ref(), || {
                    format!("create ACL {a:?}")
                })
            })
            .collect())
    }

    /// The ACLs matching `filter`, sorted.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.as_deref().map(sb))
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.as_deref().map(sb))
            .with_host_filter(filter.host.as_deref().map(sb))
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code());
        let resp = self.any_broker("DescribeAcls", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "DescribeAcls".into()
        })?;
        let mut out: Vec<AclBinding> = resp
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| AclBinding {
                    resource_type: AclResourceType::from_code(r.resource_type),
                    resource_name: r.resource_name.to_string(),
                    pattern_type: PatternType::from_code(r.pattern_type),
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: AclOperation::from_code(a.operation),
                    permission: AclPermission::from_code(a.permission_type),
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes the ACLs matching each filter; per filter (in order) the deleted ACLs.
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>>>> {
        let req = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type.code())
                        .with_resource_name_filter(f.resource_name.as_deref().map(sb))
                        .with_pattern_type_filter(f.pattern_type.code())
                        .with_principal_filter(f.principal.as_deref().map(sb))
                        .with_host_filter(f.host.as_deref().map(sb))
                        .with_operation(f.operation.code())
                        .with_permission_type(f.permission.code())
                })
                .collect(),
        );
        let resp = self.any_broker("DeleteAcls", &req).await?;
        if resp.filter_results.len() != filters.len() {
            return Err(Error::Protocol(format!(
                "DeleteAcls answered {} results for {} filters",
                resp.filter_results.len(),
                filters.len()
            )));
        }
        Ok(resp
            .filter_results
            .iter()
            .map(|r| {
                check(r.error_code, r.error_message.as_ref(), || {
                    "delete ACLs".into()
                })?;
                r.matching_acls
                    .iter()
                    .map(|a| {
                        check(a.error_code, a.error_message.as_ref(), || {
                            format!("delete ACL on `{}`", a.resource_name.as_str())
                        })?;
                        Ok(AclBinding {
                            resource_type: AclResourceType::from_code(a.resource_type),
                            resource_name: a.resource_name.to_string(),
                            pattern_type: PatternType::from_code(a.pattern_type),
                            principal: a.principal.to_string(),
                            host: a.host.to_string(),
                            operation: AclOperation::from_code(a.operation),
                            permission: AclPermission::from_code(a.permission_type),
                        })
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in 0..20 {
            assert_eq!(AclOperation::from_code(c).code(), c);
            assert_eq!(AclResourceType::from_code(c).code(), c);
            assert_eq!(PatternType::from_code(c).code(), c);
            assert_eq!(AclPermission::from_code(c).code(), c);
        }
        assert_eq!(AclOperation::from_code(3), AclOperation::Read);
        assert_eq!(PatternType::from_code(4), PatternType::Prefixed);
    }
}
