//! The paper's analyses as functions over trees, texts and scores (the pipeline's stages wire
//! them to tables): negation, compositionality, dissenting subphrases, similar phrases, the ACD
//! hierarchy, and the statistics they report.

pub mod compositionality;
pub mod dissenting;
pub mod hierarchy;
pub mod negation;
pub mod similar;
pub mod stats;
