//! The configuration that weight files determine, and the check of weight files against a
//! configuration (docs/var.md, "Checkpoints"). Re-exported by `checkpoint`.

use super::super::error::{ModelError, Result};
use super::checkpoint::{RawData, RawTensors};
use super::config::{Sampling, VarConfig, PRESETS};
use super::weights::expected_tensors;

/// The released 10-scale schedule (`patch_nums` of VAR's released models).
pub const RELEASED_PATCH_NUMS: [usize; 10] = [1, 2, 3, 4, 5, 6, 8, 10, 13, 16];

/// Why a tensor that the generation pass does not read may be present in a weight file, or
/// `None` when it has no place there. These are the only tensors [`check_tensors`] accepts
/// beyond those of [`expected_tensors`].
pub fn unused_by_design(name: &str) -> Option<&'static str> {
    if name.starts_with("encoder.") {
        return Some("VQ-VAE encoder (images to features; generation does not encode)");
    }
    if name.starts_with("quant_conv.") {
        return Some("the encoder's output convolution");
    }
    match name {
        "quantize.ema_vocab_hit_SV" => return Some("codebook usage statistics of training"),
        "lvl_1L" => return Some("scale index of every token (checked against the schedule)"),
        "attn_bias_for_masking" => {
            return Some("block-causal mask of training (the pass keeps a KV cache)")
        }
        _ => {}
    }
    let rest = name.strip_prefix("blocks.")?;
    let (i, tail) = rest.split_once('.')?;
    if i.parse::<usize>().is_ok() && tail == "attn.zero_k_bias" {
        return Some("the zero key bias (checked to be zero)");
    }
    None
}

fn wt(name: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Weights {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// Check the weight files' tensors against `cfg`: every tensor of [`expected_tensors`] present
/// with its shape (errors name the tensor and both shapes), no tensor beyond them except those
/// [`unused_by_design`] (an error names the first and counts the others), `lvl_1L` (if present)
/// equal to the schedule and every `zero_k_bias` zero.
pub fn check_tensors(cfg: &VarConfig, raw: &RawTensors) -> Result<()> {
    let specs = expected_tensors(cfg)?;
    for s in &specs {
        match raw.get(&s.name) {
            None => {
                return Err(wt(
                    &s.name,
                    format!(
                        "missing from the weights (the configuration needs shape {:?})",
                        s.shape
                    ),
                ))
            }
            Some(t) if t.shape != s.shape => {
                return Err(wt(
                    &s.name,
                    format!(
                        "shape {:?} in {}, but the configuration needs {:?}",
                        t.shape,
                        t.file.display(),
                        s.shape
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let extra: Vec<&String> = raw
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !known.contains(n.as_str()) && unused_by_design(n).is_none())
        .collect();
    if let Some(first) = extra.first() {
        let t = raw
            .get(first)
            .map(|t| (t.shape.clone(), t.file.display().to_string()));
        let (shape, file) = t.unwrap_or_default();
        let more = if extra.len() > 1 {
            format!(
                "; {} unexpected tensors in all: {}",
                extra.len(),
                extra
                    .iter()
                    .take(8)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if extra.len() > 8 { ", ..." } else { "" }
            )
        } else {
            String::new()
        };
        return Err(wt(
            first,
            format!(
                "unexpected tensor (shape {shape:?}, in {file}): the configuration has no place \
                 for it{more}"
            ),
        ));
    }
    if let Some(sched) = schedule_from_lvl(raw)? {
        if sched != cfg.patch_nums {
            return Err(wt(
                "lvl_1L",
                format!(
                    "gives the schedule {sched:?}, the configuration has {:?}",
                    cfg.patch_nums
                ),
            ));
        }
    }
    for (n, t) in raw.iter() {
        if n.ends_with(".attn.zero_k_bias") {
            if let RawData::Float(v) = &t.data {
                if v.iter().any(|&x| x != 0.0) {
                    return Err(wt(n, "is not zero (the pass has no key bias)"));
                }
            }
        }
    }
    Ok(())
}

/// The schedule that the `lvl_1L` buffer (the scale index of every token, `[1, L]`) encodes, if
/// present: scale `s` has `pn_s^2` tokens. An invalid buffer is an error naming it.
pub fn schedule_from_lvl(raw: &RawTensors) -> Result<Option<Vec<usize>>> {
    let Some(t) = raw.get("lvl_1L") else {
        return Ok(None);
    };
    let RawData::Int(v) = &t.data else {
        return Err(wt("lvl_1L", "is not an integer tensor"));
    };
    let mut counts: Vec<usize> = Vec::new();
    for &x in v {
        let s = usize::try_from(x).map_err(|_| wt("lvl_1L", format!("holds {x}")))?;
        if s + 1 == counts.len() {
            counts[s] += 1;
        } else if s == counts.len() {
            counts.push(1);
        } else {
            return Err(wt(
                "lvl_1L",
                "scale indices are not 0, 0, .., 1, 1, .. in order",
            ));
        }
    }
    let mut pns = Vec::with_capacity(counts.len());
    for c in counts {
        let pn = (c as f64).sqrt().round() as usize;
        if pn * pn != c {
            return Err(wt(
                "lvl_1L",
                format!("a scale of {c} tokens is not a square"),
            ));
        }
        pns.push(pn);
    }
    Ok(Some(pns))
}

fn need<'a>(raw: &'a RawTensors, name: &str, rank: usize, what: &str) -> Result<&'a [usize]> {
    let s = raw
        .shape(name)
        .ok_or_else(|| wt(name, format!("missing: it gives the {what}")))?;
    if s.len() != rank {
        return Err(wt(name, format!("shape {s:?} has not {rank} dimensions")));
    }
    Ok(s)
}

/// Indices `i` of the names `{prefix}{i}.*`, checked to be `0..n`; `what` names them.
fn indices(raw: &RawTensors, prefix: &str) -> Result<usize> {
    let mut seen = std::collections::BTreeSet::new();
    for (n, _) in raw.iter() {
        if let Some(rest) = n.strip_prefix(prefix) {
            if let Some((i, _)) = rest.split_once('.') {
                if let Ok(i) = i.parse::<usize>() {
                    seen.insert(i);
                }
            }
        }
    }
    let n = seen.len();
    if let Some(&last) = seen.iter().next_back() {
        if last + 1 != n {
            let gap = (0..n).find(|i| !seen.contains(i)).unwrap_or(n);
            return Err(wt(
                &format!("{prefix}{gap}"),
                format!("missing, while {prefix}{last} is present"),
            ));
        }
    }
    Ok(n)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The shape-determined fields, the others left as in `d`.
fn shape_fields(raw: &RawTensors, mut c: VarConfig, notes: &mut Vec<String>) -> Result<VarConfig> {
    let ce = need(raw, "class_emb.weight", 2, "width and number of classes")?;
    c.width = ce[1];
    c.num_classes = ce[0].checked_sub(1).filter(|&n| n > 0).ok_or_else(|| {
        wt(
            "class_emb.weight",
            "needs at least two rows (classes and the null class)",
        )
    })?;
    c.depth = indices(raw, "blocks.")?;
    c.heads = need(raw, "blocks.0.attn.scale_mul_1H11", 4, "number of heads")?[1];
    let fc1 = need(raw, "blocks.0.ffn.fc1.weight", 2, "MLP width")?;
    if c.width == 0 || fc1[0] % c.width != 0 {
        return Err(wt(
            "blocks.0.ffn.fc1.weight",
            format!(
                "{} rows are not a multiple of the width {}",
                fc1[0], c.width
            ),
        ));
    }
    c.mlp_ratio = fc1[0] / c.width;
    c.shared_aln = raw.get("shared_ada_lin.1.weight").is_some();
    c.vocab = need(raw, "head.weight", 2, "vocabulary")?[0];
    c.cvae = need(raw, "word_embed.weight", 2, "code dimension")?[1];
    c.patch_nums = infer_schedule(raw, notes)?;
    // Decoder: levels, channels, blocks per level, attention kinds, output channels.
    let nl = indices(raw, "decoder.up.")?;
    if nl == 0 {
        return Err(wt(
            "decoder.up.0.block.0.conv1.weight",
            "missing: no decoder level",
        ));
    }
    let mut chans = Vec::with_capacity(nl);
    for l in 0..nl {
        let n = format!("decoder.up.{l}.block.0.conv1.weight");
        chans.push(need(raw, &n, 4, "channels of its level")?[0]);
    }
    let blocks = indices(raw, &format!("decoder.up.{}.block.", nl - 1))?;
    if blocks == 0 {
        return Err(wt("decoder.up.0.block.0.conv1.weight", "missing"));
    }
    for l in 0..nl {
        let b = indices(raw, &format!("decoder.up.{l}.block."))?;
        if b != blocks {
            return Err(wt(
                &format!("decoder.up.{l}.block.{}", b.min(blocks)),
                format!(
                    "level {l} has {b} ResNet blocks, level {} has {blocks}",
                    nl - 1
                ),
            ));
        }
    }
    c.vae_num_res_blocks = blocks - 1;
    c.vae_ch = chans.iter().fold(0, |a, &x| gcd(a, x));
    c.vae_ch_mult = chans.iter().map(|&x| x / c.vae_ch.max(1)).collect();
    c.vae_mid_attn = raw.get("decoder.mid.attn_1.norm.weight").is_some();
    c.vae_up_attn = raw
        .get(&format!("decoder.up.{}.attn.0.norm.weight", nl - 1))
        .is_some();
    c.vae_out_ch = need(raw, "decoder.conv_out.weight", 4, "image channels")?[0];
    Ok(c)
}

fn infer_schedule(raw: &RawTensors, notes: &mut Vec<String>) -> Result<Vec<usize>> {
    if let Some(s) = schedule_from_lvl(raw)? {
        notes.push(format!("patch_nums {s:?} from the lvl_1L buffer"));
        return Ok(s);
    }
    let l = need(raw, "pos_1LC", 3, "number of tokens")?[1];
    let sn = need(raw, "lvl_embed.weight", 2, "number of scales")?[0];
    let first = need(raw, "pos_start", 3, "first scale's tokens")?[1];
    let rel = RELEASED_PATCH_NUMS;
    let fits = |s: &[usize]| {
        l == s.iter().map(|p| p * p).sum::<usize>() && sn == s.len() && first == s[0] * s[0]
    };
    if fits(&rel) {
        notes.push("patch_nums: the released schedule (it fits pos_1LC and lvl_embed)".into());
        return Ok(rel.to_vec());
    }
    for p in PRESETS {
        let s = VarConfig::preset(p)?.patch_nums;
        if fits(&s) {
            notes.push(format!(
                "patch_nums {s:?}: the preset {p}'s schedule (it fits pos_1LC and lvl_embed)"
            ));
            return Ok(s);
        }
    }
    Err(ModelError::Config {
        field: "patch_nums".into(),
        reason: format!(
            "the weights have {l} tokens in {sn} scales (pos_1LC, lvl_embed.weight), the first of \
             {first} tokens, and no lvl_1L buffer: give the scales"
        ),
    })
}

/// The configuration the weights determine (see docs/var.md, "Checkpoints", for the rules),
/// with notes saying where each field that is not a shape came from.
///
/// With `base`, the weights are checked against it ([`check_tensors`]: a tensor whose shape
/// contradicts it is an error naming the tensor and both shapes) and `base` is returned.
/// Without, the shapes give width, depth, heads, MLP ratio, vocabulary, code dimension,
/// classes, shared AdaLN, the schedule (from `lvl_1L`, or the released one, or a preset's, when `pos_1LC` and
/// `lvl_embed` fit it; otherwise a [`ModelError::Config`] asking for the scales), and the
/// decoder (channels per level as `vae_ch` = their gcd times `vae_ch_mult`, ResNet blocks per
/// level, attention kinds, image channels). The other fields (format, LayerNorm eps, GroupNorm
/// groups, sampling, guidance) come from the preset with exactly these shapes (shared AdaLN
/// aside: it is a variant of a shape) if there is one,
/// else from the released models' values (F(11, 6), eps 1e-6, 32 groups, top-k with
/// k = min(900, vocab), no guidance); groups that do not divide the decoder's channels are then
/// an error on `vae_groups`.
pub fn infer_config_with_notes(
    raw: &RawTensors,
    base: Option<&VarConfig>,
) -> Result<(VarConfig, Vec<String>)> {
    let mut notes = Vec::new();
    if let Some(b) = base {
        b.validate()?;
        check_tensors(b, raw)?;
        notes.push("configuration as given; every tensor's shape agrees with it".into());
        return Ok((b.clone(), notes));
    }
    let released = VarConfig::preset("d16")?;
    let mut c = shape_fields(raw, released.clone(), &mut notes)?;
    let mut matched = None;
    for p in PRESETS {
        let p_cfg = VarConfig::preset(p)?;
        let mut same = c.clone();
        same.fmt = p_cfg.fmt;
        same.norm_eps = p_cfg.norm_eps;
        same.vae_groups = p_cfg.vae_groups;
        same.sampling = p_cfg.sampling;
        same.cfg_scale = p_cfg.cfg_scale;
        let mut p_cfg = p_cfg;
        p_cfg.shared_aln = c.shared_aln;
        if same == p_cfg {
            matched = Some(p);
            c = same;
            break;
        }
    }
    match matched {
        Some(p) => notes.push(format!(
            "the shapes are those of the preset {p}: format, norm_eps, vae_groups and sampling \
             from it"
        )),
        None => {
            if let Sampling::TopK { k } = c.sampling {
                c.sampling = Sampling::TopK { k: k.min(c.vocab) };
            }
            notes.push(format!(
                "format {}, norm_eps {}, vae_groups {}, sampling {:?}: the released models' values \
                 (not stored in the weights)",
                c.fmt, c.norm_eps, c.vae_groups, c.sampling
            ));
            if let Some(ch) = c
                .vae_ch_mult
                .iter()
                .map(|m| m * c.vae_ch)
                .find(|ch| ch % c.vae_groups != 0)
            {
                return Err(ModelError::Config {
                    field: "vae_groups".into(),
                    reason: format!(
                        "GroupNorm groups are not stored in the weights and the released 32 do \
                         not divide {ch} decoder channels: give vae_groups"
                    ),
                });
            }
        }
    }
    c.validate()?;
    check_tensors(&c, raw)?;
    Ok((c, notes))
}

/// [`infer_config_with_notes`] without the notes.
pub fn infer_config(raw: &RawTensors, base: Option<&VarConfig>) -> Result<VarConfig> {
    Ok(infer_config_with_notes(raw, base)?.0)
}

fn keep_rows(raw: &mut RawTensors, name: &str, axis: usize, rows: usize) -> Result<()> {
    let Some(mut t) = raw.remove(name) else {
        return Ok(());
    };
    let have = t.shape.get(axis).copied().unwrap_or(0);
    if rows > have {
        return Err(wt(
            name,
            format!("has {have} rows along axis {axis}, the configuration needs {rows}"),
        ));
    }
    let inner: usize = t.shape[axis + 1..].iter().product();
    let outer: usize = t.shape[..axis].iter().product();
    if outer != 1 {
        return Err(wt(name, format!("shape {:?} cannot be cut", t.shape)));
    }
    let n = rows * inner;
    match &mut t.data {
        RawData::Float(v) if v.len() >= n => v.truncate(n),
        RawData::Int(v) if v.len() >= n => v.truncate(n),
        _ => return Err(wt(name, "holds fewer values than its shape")),
    }
    t.shape[axis] = rows;
    raw.insert(name.to_string(), t)
}

/// The part of a full model's weights that a restricted configuration `cfg` reads, as the
/// command line's `--scales` and `--blocks` restrict seeded weights (docs/var.md, "Restricting
/// the pass"): the schedule a prefix of the weights' (checked against `lvl_1L` when present),
/// the first `total_tokens` rows of `pos_1LC`, the first `num_scales` rows of `lvl_embed.weight`,
/// the blocks `0..depth`. The other tensors are kept; [`check_tensors`] then checks the result.
pub fn restrict(mut raw: RawTensors, cfg: &VarConfig) -> Result<RawTensors> {
    cfg.validate()?;
    if let Some(full) = schedule_from_lvl(&raw)? {
        if !full.starts_with(&cfg.patch_nums) {
            return Err(wt(
                "lvl_1L",
                format!(
                    "the weights' schedule {full:?} does not begin with {:?}",
                    cfg.patch_nums
                ),
            ));
        }
    }
    keep_rows(&mut raw, "pos_1LC", 1, cfg.total_tokens())?;
    keep_rows(&mut raw, "lvl_1L", 1, cfg.total_tokens())?;
    keep_rows(&mut raw, "lvl_embed.weight", 0, cfg.num_scales())?;
    raw.remove("attn_bias_for_masking");
    let drop: Vec<String> = raw
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            n.strip_prefix("blocks.")
                .and_then(|r| r.split_once('.'))
                .and_then(|(i, _)| i.parse::<usize>().ok())
                .is_some_and(|i| i >= cfg.depth)
        })
        .cloned()
        .collect();
    for n in drop {
        raw.remove(&n);
    }
    Ok(raw)
}
