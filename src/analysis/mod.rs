//! Analyses of the paper built on attribution scores.

pub mod negation;
pub mod stats;
