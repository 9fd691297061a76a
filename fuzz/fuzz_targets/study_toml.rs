//! Arbitrary text through the study configuration reader (`slimdet study --config`): the
//! TOML parse into typed fields, then the range and consistency checks. Any outcome but a
//! panic is fine. The configuration module is the CLI's own file, compiled here with a
//! stand-in for the one CLI function it calls.

#![no_main]

use libfuzzer_sys::fuzz_target;

/// Stand-in for `slimdet::model_arg`: the built-in model's path (the default of `model.path`).
mod model_arg {
    pub fn builtin_model_path() -> std::path::PathBuf {
        "builtin.safetensors".into()
    }
}

#[allow(dead_code)]
#[path = "../../crates/cli/src/commands/study/config.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = config::StudyConfig::from_toml(text) {
        let _ = cfg.validate();
    }
});
