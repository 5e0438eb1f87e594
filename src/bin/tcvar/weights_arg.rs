//! `--weights`: the one place where weight files become a configuration and weights.

use std::path::PathBuf;

use tcvar::model::var::checkpoint::read_tensor_files;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::infer::{infer_config, restrict};
use tcvar::model::var::weights::VarWeights;

use crate::common::CliError;
use crate::run::DEFAULT_CONFIG;

fn user(e: impl std::fmt::Display) -> CliError {
    CliError::User(format!("--weights: {e}"))
}

/// The configuration and the weights of a run (docs/var.md, "Checkpoints").
///
/// - No weight file: `base` (the preset and configuration file; the default preset when
///   `None`) with `flags` applied; the weights are `None` (the caller generates them).
/// - Weight files (PyTorch checkpoints, safetensors files, or directories of them, read by
///   `checkpoint::read_tensor_files`): the configuration is `base` checked against every
///   tensor's shape (a contradiction names the tensor and both shapes), or, without `base`,
///   inferred from the shapes (`infer::infer_config`); then `flags` apply, the tensors are
///   restricted to what a `--scales` / `--blocks` prefix reads (`infer::restrict`), and the
///   weights are built for the final configuration (`VarWeights::from_raw`: an unexpected or
///   missing tensor is an error naming it).
pub fn config_and_weights(
    base: Option<VarConfig>,
    flags: impl Fn(VarConfig) -> Result<VarConfig, CliError>,
    paths: &[PathBuf],
) -> Result<(VarConfig, Option<VarWeights>), CliError> {
    if paths.is_empty() {
        let base = match base {
            Some(c) => c,
            None => VarConfig::preset(DEFAULT_CONFIG).map_err(|e| CliError::User(e.to_string()))?,
        };
        return Ok((flags(base)?, None));
    }
    let raw = read_tensor_files(paths).map_err(user)?;
    let full = infer_config(&raw, base.as_ref()).map_err(user)?;
    let cfg = flags(full)?;
    let raw = restrict(raw, &cfg).map_err(user)?;
    let w = VarWeights::from_raw(&cfg, &raw).map_err(user)?;
    Ok((cfg, Some(w)))
}
