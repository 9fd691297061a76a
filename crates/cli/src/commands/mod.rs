//! One module per command.

pub mod bench;
pub mod convert;
pub mod detect;
pub mod eval;
pub mod info;
