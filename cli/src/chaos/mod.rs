//! `chorus chaos poison|check`: the CLI half of `make chaos` — poison for
//! every worker input topic, and the invariant check after the campaign.

pub mod check;
pub mod payloads;
pub mod poison;
