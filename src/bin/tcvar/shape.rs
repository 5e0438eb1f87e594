//! The model shape of `tcvar run`, in layers: the preset (`--config`, default `micro`) < a
//! configuration file (`--config-file`, TOML or JSON) < the flags (`--p`, `--q`, `--scales`,
//! `--blocks`, `--width`, `--depth`, `--heads`, `--vocab`, `--sampling`, `--cfg`).
//!
//! A configuration file holds any subset of the [`VarConfig`] fields under their names, the
//! float format as `p` and `q`, `sampling` as `argmax`, `top-k:K` or `top-p:P`, and `cfg_scale`
//! as a number (absent = no guidance). A key that is not one of those is an error naming it.
//! [`config_json`] writes every field in that schema, so a run's printed configuration can be
//! given back as a file.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Map, Value};
use tcvar::model::var::config::{Sampling, VarConfig};

use crate::common::{self, CliError};
use crate::stats::ScopeArgs;

/// The keys a configuration file may hold.
pub const FILE_KEYS: [&str; 22] = [
    "p",
    "q",
    "patch_nums",
    "width",
    "depth",
    "heads",
    "mlp_ratio",
    "vocab",
    "cvae",
    "num_classes",
    "norm_eps",
    "vae_ch",
    "vae_ch_mult",
    "vae_num_res_blocks",
    "vae_groups",
    "vae_mid_attn",
    "vae_up_attn",
    "vae_out_ch",
    "sampling",
    "cfg_scale",
    "shared_aln",
    "preset",
];

/// The shape and sampling options of `tcvar run` beyond [`ScopeArgs`].
#[derive(Args, Debug, Clone, Default)]
pub struct ShapeArgs {
    /// A configuration file (`.toml` or `.json`) with any `VarConfig` fields (p, q, patch_nums,
    /// width, depth, heads, mlp_ratio, vocab, cvae, num_classes, norm_eps, vae_ch, vae_ch_mult,
    /// vae_num_res_blocks, vae_groups, vae_mid_attn, vae_up_attn, vae_out_ch, sampling,
    /// cfg_scale, shared_aln), applied over the preset; the flags apply over it.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Override the number of transformer blocks.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Override the number of attention heads (divides the width).
    #[arg(long)]
    pub heads: Option<usize>,
    /// Override the codebook size V.
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Token sampling: argmax, top-k:K or top-p:P (0 < P <= 1).
    #[arg(long)]
    pub sampling: Option<String>,
    /// Classifier-free guidance scale (>= 0; t = cfg * si / (SN - 1) at scale si).
    #[arg(long)]
    pub cfg: Option<f64>,
}

fn user(e: impl std::fmt::Display) -> CliError {
    CliError::User(e.to_string())
}

/// Read a configuration file as a JSON object (TOML converted), by extension.
pub fn read_file(path: &Path) -> Result<Map<String, Value>, CliError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| user(format!("--config-file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(user(format!("--config-file {shown}: not a regular file")));
    }
    // A configuration is a few hundred bytes; refuse anything large before reading it.
    if meta.len() > 1 << 20 {
        return Err(user(format!(
            "--config-file {shown}: {} bytes, more than a configuration file holds (1 MiB)",
            meta.len()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| user(format!("--config-file {shown}: {e}")))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let v: Value = match ext.to_ascii_lowercase().as_str() {
        "json" => serde_json::from_str(&text)
            .map_err(|e| user(format!("--config-file {shown}: JSON: {e}")))?,
        "toml" => {
            let t: toml::Table = toml::from_str(&text).map_err(|e| {
                let msg = e.to_string();
                let first = msg.lines().next().unwrap_or("").to_string();
                user(format!("--config-file {shown}: TOML: {first}"))
            })?;
            serde_json::to_value(t).map_err(|e| user(format!("--config-file {shown}: {e}")))?
        }
        _ => {
            return Err(user(format!(
                "--config-file {shown}: the extension must be .toml or .json"
            )))
        }
    };
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(user(format!(
            "--config-file {shown}: not a table of fields"
        ))),
    }
}

fn as_usize(k: &str, v: &Value) -> Result<usize, String> {
    v.as_u64()
        .and_then(|x| usize::try_from(x).ok())
        .ok_or_else(|| format!("{k} = {v}: a non-negative integer is needed"))
}

fn as_list(k: &str, v: &Value) -> Result<Vec<usize>, String> {
    v.as_array()
        .ok_or_else(|| format!("{k} = {v}: a list of integers is needed"))?
        .iter()
        .map(|x| as_usize(k, x))
        .collect()
}

fn as_f64(k: &str, v: &Value) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{k} = {v}: a number is needed"))
}

fn as_bool(k: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{k} = {v}: true or false is needed"))
}

/// Apply the fields of `m` to `cfg` (the format last, from `p` and `q`); unknown keys are an
/// error naming every one of them.
pub fn apply_fields(cfg: &mut VarConfig, m: &Map<String, Value>) -> Result<(), String> {
    let unknown: Vec<&str> = m
        .keys()
        .map(String::as_str)
        .filter(|k| !FILE_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown key(s) {}; known: {}",
            unknown.join(", "),
            FILE_KEYS.join(", ")
        ));
    }
    let (mut p, mut q) = (cfg.fmt.p(), cfg.fmt.q());
    for (k, v) in m {
        match k.as_str() {
            "p" => p = u32::try_from(as_usize(k, v)?).map_err(|_| format!("p = {v}"))?,
            "q" => q = u32::try_from(as_usize(k, v)?).map_err(|_| format!("q = {v}"))?,
            "patch_nums" => cfg.patch_nums = as_list(k, v)?,
            "width" => cfg.width = as_usize(k, v)?,
            "depth" => cfg.depth = as_usize(k, v)?,
            "heads" => cfg.heads = as_usize(k, v)?,
            "mlp_ratio" => cfg.mlp_ratio = as_usize(k, v)?,
            "vocab" => cfg.vocab = as_usize(k, v)?,
            "cvae" => cfg.cvae = as_usize(k, v)?,
            "num_classes" => cfg.num_classes = as_usize(k, v)?,
            "norm_eps" => cfg.norm_eps = as_f64(k, v)?,
            "vae_ch" => cfg.vae_ch = as_usize(k, v)?,
            "vae_ch_mult" => cfg.vae_ch_mult = as_list(k, v)?,
            "vae_num_res_blocks" => cfg.vae_num_res_blocks = as_usize(k, v)?,
            "vae_groups" => cfg.vae_groups = as_usize(k, v)?,
            "vae_mid_attn" => cfg.vae_mid_attn = as_bool(k, v)?,
            "vae_up_attn" => cfg.vae_up_attn = as_bool(k, v)?,
            "vae_out_ch" => cfg.vae_out_ch = as_usize(k, v)?,
            "shared_aln" => cfg.shared_aln = as_bool(k, v)?,
            "sampling" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("sampling = {v}: a string is needed"))?;
                cfg.sampling = s.parse::<Sampling>().map_err(|e| e.to_string())?;
            }
            "cfg_scale" => {
                cfg.cfg_scale = match v {
                    Value::Null => None,
                    _ => Some(as_f64(k, v)?),
                }
            }
            // The preset is chosen before the file is applied (see `base_config`).
            _ => {}
        }
    }
    cfg.fmt = tcvar::float::Format::new(p, q).map_err(|e| e.to_string())?;
    Ok(())
}

/// Every field of `cfg` in the configuration-file schema.
pub fn config_json(cfg: &VarConfig) -> Value {
    json!({
        "p": cfg.fmt.p(), "q": cfg.fmt.q(), "patch_nums": cfg.patch_nums, "width": cfg.width,
        "depth": cfg.depth, "heads": cfg.heads, "mlp_ratio": cfg.mlp_ratio, "vocab": cfg.vocab,
        "cvae": cfg.cvae, "num_classes": cfg.num_classes, "norm_eps": cfg.norm_eps,
        "vae_ch": cfg.vae_ch, "vae_ch_mult": cfg.vae_ch_mult,
        "vae_num_res_blocks": cfg.vae_num_res_blocks, "vae_groups": cfg.vae_groups,
        "vae_mid_attn": cfg.vae_mid_attn, "vae_up_attn": cfg.vae_up_attn,
        "vae_out_ch": cfg.vae_out_ch, "sampling": cfg.sampling.to_string(),
        "cfg_scale": cfg.cfg_scale, "shared_aln": cfg.shared_aln,
    })
}

/// The preset with the configuration file applied (before any flag), or `None` when neither
/// `--config` nor `--config-file` was given (the configuration then comes from the weights,
/// or is the default preset).
pub fn base_config(
    scope: &ScopeArgs,
    shape: &ShapeArgs,
    config_given: bool,
) -> Result<Option<VarConfig>, CliError> {
    let file = match &shape.config_file {
        Some(f) => Some(read_file(f)?),
        None => None,
    };
    if !config_given && file.is_none() {
        return Ok(None);
    }
    let preset = match file.as_ref().and_then(|m| m.get("preset")) {
        Some(Value::String(s)) if !config_given => s.clone(),
        Some(Value::String(_)) | None => scope.config.clone(),
        Some(v) => {
            return Err(user(format!(
                "--config-file: preset = {v}: a name is needed"
            )))
        }
    };
    let mut cfg = VarConfig::preset(&preset).map_err(user)?;
    if let (Some(m), Some(f)) = (&file, &shape.config_file) {
        apply_fields(&mut cfg, m)
            .map_err(|e| user(format!("--config-file {}: {e}", f.display())))?;
        cfg.validate()
            .map_err(|e| user(format!("--config-file {}: {e}", f.display())))?;
    }
    Ok(Some(cfg))
}

/// `cfg` with the flags applied, validated.
pub fn apply_flags(
    mut cfg: VarConfig,
    scope: &ScopeArgs,
    shape: &ShapeArgs,
) -> Result<VarConfig, CliError> {
    if scope.p.is_some() || scope.q.is_some() {
        cfg.fmt = common::format(
            scope.p.unwrap_or(cfg.fmt.p()),
            scope.q.unwrap_or(cfg.fmt.q()),
        )?;
    }
    if let Some(s) = &scope.scales {
        cfg.patch_nums = s.clone();
    }
    if let Some(d) = shape.depth {
        cfg.depth = d;
    }
    if let Some(b) = scope.blocks {
        if b == 0 || b > cfg.depth {
            return Err(user(format!(
                "--blocks {b}: the configuration has {} blocks (1..={} allowed)",
                cfg.depth, cfg.depth
            )));
        }
        cfg.depth = b;
    }
    if let Some(w) = scope.width {
        cfg.width = w;
    }
    if let Some(h) = shape.heads {
        cfg.heads = h;
    }
    if let Some(v) = shape.vocab {
        cfg.vocab = v;
    }
    if let Some(s) = &shape.sampling {
        cfg.sampling = s
            .parse::<Sampling>()
            .map_err(|e| user(format!("--sampling: {e}")))?;
    }
    if let Some(t) = shape.cfg {
        if !(t.is_finite() && t >= 0.0) {
            return Err(user(format!(
                "--cfg {t}: a finite guidance scale >= 0 is needed"
            )));
        }
        cfg.cfg_scale = Some(t);
    }
    cfg.validate().map_err(user)?;
    Ok(cfg)
}

/// The class of each of `batch` instances: `--labels` (their count must equal `--batch` when
/// both are given; alone they set it), else the classes in turn. Each label is checked against
/// the number of classes.
pub fn labels(
    cfg: &VarConfig,
    labels: Option<&[usize]>,
    batch: Option<usize>,
) -> Result<(usize, Option<Vec<usize>>), CliError> {
    let Some(ls) = labels else {
        return Ok((batch.unwrap_or(crate::run::DEFAULT_BATCH), None));
    };
    if ls.is_empty() {
        return Err(user("--labels: at least one label is needed"));
    }
    if let Some(b) = batch {
        if b != ls.len() {
            return Err(user(format!(
                "--labels gives {} classes but --batch is {b}: give one label per instance (or omit --batch)",
                ls.len()
            )));
        }
    }
    if let Some(&bad) = ls.iter().find(|&&l| l >= cfg.num_classes) {
        return Err(user(format!(
            "--labels: class {bad} is out of range (the configuration has {} classes, 0..={})",
            cfg.num_classes,
            cfg.num_classes - 1
        )));
    }
    Ok((ls.len(), Some(ls.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_round_trips_every_field() {
        for name in ["micro", "tiny", "d16"] {
            let mut c = VarConfig::preset(name).unwrap();
            c.cfg_scale = Some(1.5);
            c.shared_aln = name != "d16";
            c.sampling = Sampling::TopP { p: 0.75 };
            let Value::Object(m) = config_json(&c) else {
                panic!("not an object")
            };
            assert_eq!(m.len(), FILE_KEYS.len() - 1, "every field but `preset`");
            let mut d = VarConfig::preset(if name == "micro" { "tiny" } else { "micro" }).unwrap();
            apply_fields(&mut d, &m).unwrap();
            assert_eq!(c, d);
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let mut c = VarConfig::preset("micro").unwrap();
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"width": 16, "widht": 3, "layers": 2}"#).unwrap();
        let e = apply_fields(&mut c, &m).unwrap_err();
        assert!(e.contains("widht") && e.contains("layers"), "{e}");
    }
}
