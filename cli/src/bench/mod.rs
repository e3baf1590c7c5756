//! `chorus bench …`: the ceilings `make bench` sets the sagas against, measured
//! on the same machine and stack in the same run, and the assembled report.

pub mod kafka;
pub mod pg;
pub mod report;
pub mod summary;
