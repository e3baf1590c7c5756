//! Kafka admin requests rdkafka has no Rust API for: ACLs (create, describe,
//! delete) and what the connected principal may do on topics and groups.
//! Through librdkafka's C API, each request on a blocking thread with its
//! own queue and a timeout; every object librdkafka allocates is freed, and
//! every error names the resource it is about. The only module of chorus
//! with `unsafe` code: each block says why it is sound.
#![allow(unsafe_code)]

mod acl;
mod authorized;
mod binding;
mod request;

pub use acl::{create_acls, delete_acls, describe_acls};
pub use authorized::{Access, describe_group_access, describe_topic_access};
pub use binding::{AclBinding, CLUSTER, Operation, PatternType, ResourceType};
