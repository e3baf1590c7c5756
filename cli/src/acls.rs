//! `chorus acls apply [--dry-run]`: the namespace's Kafka ACLs, derived from
//! the topic catalogue, made true on the broker — the missing added, the
//! principals' other ACLs on the namespace removed — so they never drift
//! from the code. Safe to repeat. Needs ALTER and DESCRIBE on the cluster
//! (the stack's plaintext listener is a super user).

use chorus_platform::Env;
use chorus_platform::acls::{Principals, changes, derive_acls};
use chorus_platform::kafka_admin::{create_acls, delete_acls, describe_acls};

use crate::args::{ApplyAclsArgs, Global};

pub async fn apply(global: &Global, args: &ApplyAclsArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let principals = Principals::from_env(&Env::process())?;
    let derived = derive_acls(&catalogue, &principals);
    println!(
        "ACLs of namespace {} ({}):",
        catalogue.namespace(),
        derived.len()
    );
    for acl in &derived {
        println!("  {acl}");
    }
    let kafka = global.kafka()?;
    let mut existing = Vec::new();
    for principal in principals.all() {
        existing.extend(
            describe_acls(&kafka, principal, global.timeout())
                .await
                .map_err(anyhow::Error::msg)?,
        );
    }
    let changes = changes(&derived, &existing, catalogue.namespace());
    let (add, remove) = if args.dry_run {
        ("would add", "would remove")
    } else {
        ("add", "remove")
    };
    for acl in &changes.add {
        println!("{add:<12} {acl}");
    }
    for acl in &changes.remove {
        println!("{remove:<12} {acl}");
    }
    if changes.add.is_empty() && changes.remove.is_empty() {
        println!("up to date: nothing to add or remove");
    }
    if args.dry_run {
        return Ok(());
    }
    create_acls(&kafka, changes.add, global.timeout())
        .await
        .map_err(anyhow::Error::msg)?;
    delete_acls(&kafka, changes.remove, global.timeout())
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(())
}
