//! One module per command.

pub mod bench;
pub mod convert;
pub mod dataset;
pub mod demo;
pub mod detect;
pub mod eval;
pub mod export;
pub mod info;
pub mod init;
pub mod prune;
pub mod quantize;
pub mod sensitivity;
pub mod study;
pub mod train;
