//! Makes a namespace's derived ACLs true on the broker: adds the missing,
//! removes the principals' other ACLs on the namespace's resources. Safe to
//! repeat; needs DESCRIBE and ALTER on the cluster.

use std::time::Duration;

use chorus_avro::TopicCatalogue;

use crate::acls::{AclChanges, Principals, changes, derive_acls};
use crate::kafka::KafkaSettings;
use crate::kafka_admin::{create_acls, delete_acls, describe_acls};

/// Compares the derived ACLs of `catalogue`'s namespace with the broker's
/// and, unless `dry_run`, applies the difference; returns the difference.
pub async fn apply_acls(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
    principals: &Principals,
    dry_run: bool,
    timeout: Duration,
) -> Result<AclChanges, String> {
    let derived = derive_acls(catalogue, principals);
    let mut existing = Vec::new();
    for principal in principals.all() {
        existing.extend(describe_acls(kafka, principal, timeout).await?);
    }
    let changes = changes(&derived, &existing, catalogue.namespace());
    if !dry_run {
        create_acls(kafka, changes.add.clone(), timeout).await?;
        delete_acls(kafka, changes.remove.clone(), timeout).await?;
    }
    Ok(changes)
}
