//! pgworld's rules, free of PostgreSQL: the event state machine, ids, payload encodings,
//! request validation and entity rendering. The extension reads state, calls [`plan::plan`] and
//! applies the result; everything that decides lives here and is tested with plain `cargo test`.
#![forbid(unsafe_code)]

pub mod attributes;
pub mod error;
pub mod ids;
pub mod model;
pub mod payload;
pub mod plan;
pub mod render;
pub mod request;
pub mod ts;

pub use error::{Code, WfError, WfResult};
