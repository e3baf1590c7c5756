//! An ACL binding and its parts (operation, resource type, pattern type),
//! as chorus derives and prints them and as librdkafka names them.

use std::fmt;

use rdkafka::bindings as rd;

/// A Kafka operation, as ACLs and authorized-operation answers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    Unknown,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::Unknown => "UNKNOWN",
        }
    }

    pub(crate) fn from_rd(op: rd::rd_kafka_AclOperation_t) -> Operation {
        use rd::rd_kafka_AclOperation_t::*;
        match op {
            RD_KAFKA_ACL_OPERATION_ALL => Operation::All,
            RD_KAFKA_ACL_OPERATION_READ => Operation::Read,
            RD_KAFKA_ACL_OPERATION_WRITE => Operation::Write,
            RD_KAFKA_ACL_OPERATION_CREATE => Operation::Create,
            RD_KAFKA_ACL_OPERATION_DELETE => Operation::Delete,
            RD_KAFKA_ACL_OPERATION_ALTER => Operation::Alter,
            RD_KAFKA_ACL_OPERATION_DESCRIBE => Operation::Describe,
            RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION => Operation::ClusterAction,
            RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS => Operation::DescribeConfigs,
            RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS => Operation::AlterConfigs,
            RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE => Operation::IdempotentWrite,
            _ => Operation::Unknown,
        }
    }

    pub(crate) fn to_rd(self) -> rd::rd_kafka_AclOperation_t {
        use rd::rd_kafka_AclOperation_t::*;
        match self {
            Operation::All => RD_KAFKA_ACL_OPERATION_ALL,
            Operation::Read => RD_KAFKA_ACL_OPERATION_READ,
            Operation::Write => RD_KAFKA_ACL_OPERATION_WRITE,
            Operation::Create => RD_KAFKA_ACL_OPERATION_CREATE,
            Operation::Delete => RD_KAFKA_ACL_OPERATION_DELETE,
            Operation::Alter => RD_KAFKA_ACL_OPERATION_ALTER,
            Operation::Describe => RD_KAFKA_ACL_OPERATION_DESCRIBE,
            Operation::ClusterAction => RD_KAFKA_ACL_OPERATION_CLUSTER_ACTION,
            Operation::DescribeConfigs => RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS,
            Operation::AlterConfigs => RD_KAFKA_ACL_OPERATION_ALTER_CONFIGS,
            Operation::IdempotentWrite => RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE,
            Operation::Unknown => RD_KAFKA_ACL_OPERATION_UNKNOWN,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an ACL is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    /// The cluster (resource name `kafka-cluster`).
    Cluster,
    TransactionalId,
    Unknown,
}

/// The name of the cluster resource.
pub const CLUSTER: &str = "kafka-cluster";

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "cluster",
            ResourceType::TransactionalId => "transactional-id",
            ResourceType::Unknown => "unknown",
        }
    }

    pub(crate) fn from_rd(value: rd::rd_kafka_ResourceType_t) -> ResourceType {
        use rd::rd_kafka_ResourceType_t::*;
        match value {
            RD_KAFKA_RESOURCE_TOPIC => ResourceType::Topic,
            RD_KAFKA_RESOURCE_GROUP => ResourceType::Group,
            RD_KAFKA_RESOURCE_BROKER => ResourceType::Cluster,
            RD_KAFKA_RESOURCE_TRANSACTIONAL_ID => ResourceType::TransactionalId,
            _ => ResourceType::Unknown,
        }
    }

    pub(crate) fn to_rd(self) -> rd::rd_kafka_ResourceType_t {
        use rd::rd_kafka_ResourceType_t::*;
        match self {
            ResourceType::Topic => RD_KAFKA_RESOURCE_TOPIC,
            ResourceType::Group => RD_KAFKA_RESOURCE_GROUP,
            ResourceType::Cluster => RD_KAFKA_RESOURCE_BROKER,
            ResourceType::TransactionalId => RD_KAFKA_RESOURCE_TRANSACTIONAL_ID,
            ResourceType::Unknown => RD_KAFKA_RESOURCE_UNKNOWN,
        }
    }
}

/// How an ACL's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Literal,
    Prefixed,
    Unknown,
}

impl PatternType {
    pub fn as_str(self) -> &'static str {
        match self {
            PatternType::Literal => "literal",
            PatternType::Prefixed => "prefixed",
            PatternType::Unknown => "unknown",
        }
    }

    pub(crate) fn from_rd(value: rd::rd_kafka_ResourcePatternType_t) -> PatternType {
        use rd::rd_kafka_ResourcePatternType_t::*;
        match value {
            RD_KAFKA_RESOURCE_PATTERN_LITERAL => PatternType::Literal,
            RD_KAFKA_RESOURCE_PATTERN_PREFIXED => PatternType::Prefixed,
            _ => PatternType::Unknown,
        }
    }

    pub(crate) fn to_rd(self) -> rd::rd_kafka_ResourcePatternType_t {
        use rd::rd_kafka_ResourcePatternType_t::*;
        match self {
            PatternType::Literal => RD_KAFKA_RESOURCE_PATTERN_LITERAL,
            PatternType::Prefixed => RD_KAFKA_RESOURCE_PATTERN_PREFIXED,
            PatternType::Unknown => RD_KAFKA_RESOURCE_PATTERN_UNKNOWN,
        }
    }
}

/// One ACL: `principal` may (or, `allow` false, may not) do `operation` on
/// the resource, from `host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub principal: String,
    pub resource_type: ResourceType,
    pub pattern: PatternType,
    pub name: String,
    pub operation: Operation,
    pub host: String,
    pub allow: bool,
}

impl AclBinding {
    /// An ALLOW from any host, the only kind chorus derives.
    pub fn allow(
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        pattern: PatternType,
        name: &str,
    ) -> AclBinding {
        AclBinding {
            principal: principal.to_string(),
            resource_type,
            pattern,
            name: name.to_string(),
            operation,
            host: "*".to_string(),
            allow: true,
        }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} {:<5} {:<16} {:<5} {:<8} {}",
            self.principal,
            if self.allow { "allow" } else { "deny" },
            self.operation.as_str(),
            self.resource_type.as_str(),
            self.pattern.as_str(),
            self.name
        )?;
        if self.host != "*" {
            write!(f, " from {}", self.host)?;
        }
        Ok(())
    }
}

pub(crate) fn permission(allow: bool) -> rd::rd_kafka_AclPermissionType_t {
    if allow {
        rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
    } else {
        rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_DENY
    }
}
