//! Arguments of `chorus acls`.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum AclsCommand {
    /// Derive the namespace's Kafka ACLs from the topic catalogue and apply
    /// them: add the missing, remove the principals' others on the namespace.
    /// Principals: CHORUS_ACL_PRINCIPAL_{GATEWAY,ORDER,INVENTORY,PAYMENT,NOTIFICATION,OPERATOR}.
    Apply(ApplyAclsArgs),
}

#[derive(Debug, Args)]
pub struct ApplyAclsArgs {
    /// Print the ACLs and what would be added and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}
