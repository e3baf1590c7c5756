//! `chorus acls apply [--dry-run]`: the namespace's Kafka ACLs, derived from
//! the topic catalogue, made true on the broker — the missing added, the
//! principals' other ACLs on the namespace removed — so they never drift
//! from the code. Safe to repeat. Needs ALTER and DESCRIBE on the cluster
//! (the stack's plaintext listener is a super user).

use chorus_platform::Env;
use chorus_platform::acl_apply::apply_acls;
use chorus_platform::acls::{Principals, derive_acls};

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
    let changes = apply_acls(
        &kafka,
        &catalogue,
        &principals,
        args.dry_run,
        global.timeout(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let (add, remove) = if args.dry_run {
        ("would add", "would remove")
    } else {
        ("added", "removed")
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
    Ok(())
}
