//! pgworld's rules, free of PostgreSQL: the event state machine, ids, payload encodings,
//! request validation and entity rendering. The extension reads state, calls [`plan::plan`] and
//! applies the result; everything that decides lives here and is tested with plain `cargo test`.
#![forbid(unsafe_code)]

/// A closed set of names: the enum, `ALL`, and text conversions from one list.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

pub mod active_runs;
pub mod api;
pub mod attributes;
pub mod cbor;
pub mod devalue;
pub mod error;
pub mod ids;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod model;
pub mod payload;
pub mod plan;
pub mod queue;
pub mod render;
pub mod request;
pub mod sdk;
pub mod sql_text;
pub mod streams;
pub mod template;
pub mod tokens;
pub mod ts;
pub mod wdk_value;

pub use error::{Code, WfError, WfResult};
