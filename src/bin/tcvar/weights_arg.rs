//! `--weights`: the one place where weight files become a configuration and weights.

use std::path::{Path, PathBuf};

use tcvar::model::var::config::VarConfig;
use tcvar::model::var::weights::VarWeights;

use crate::common::CliError;
use crate::run::DEFAULT_CONFIG;

/// The files named by `--weights` (each a file, or a directory whose `.safetensors` files are
/// taken in name order).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| CliError::User(format!("--weights {}: {e}", p.display())))?;
        if meta.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| CliError::User(format!("--weights {}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                return Err(CliError::User(format!(
                    "--weights {}: no .safetensors file in this directory",
                    p.display()
                )));
            }
            files.extend(inside);
        } else if meta.is_file() {
            files.push(p.clone());
        } else {
            return Err(CliError::User(format!(
                "--weights {}: not a regular file or a directory",
                p.display()
            )));
        }
    }
    Ok(files)
}

/// The configuration and the weights of a run: `base` (the preset and configuration file, or
/// `None` when neither was given) completed from the weight files, then `flags` applied; the
/// weights are loaded for the final configuration and checked against it. With no weight file
/// the weights are `None` (the caller generates them from the seed).
///
/// The weights are read with the safetensors loader (one file holding every tensor, by the
/// reference implementation's names); without `base` the configuration is the default preset.
pub fn config_and_weights(
    base: Option<VarConfig>,
    flags: impl Fn(VarConfig) -> Result<VarConfig, CliError>,
    paths: &[PathBuf],
) -> Result<(VarConfig, Option<VarWeights>), CliError> {
    let base = match base {
        Some(c) => c,
        None => VarConfig::preset(DEFAULT_CONFIG).map_err(|e| CliError::User(e.to_string()))?,
    };
    let cfg = flags(base)?;
    if paths.is_empty() {
        return Ok((cfg, None));
    }
    let files = expand(paths)?;
    let file: &Path = match files.as_slice() {
        [one] => one,
        many => {
            return Err(CliError::User(format!(
            "--weights: {} files ({}); this build reads one safetensors file holding every tensor",
            many.len(),
            many.iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
        }
    };
    let w = VarWeights::load_safetensors(&cfg, file)
        .map_err(|e| CliError::User(format!("--weights {}: {e}", file.display())))?;
    Ok((cfg, Some(w)))
}
