//! The VAR configuration: named presets, every field overridable, validation naming the field.
//!
//! Shapes follow the public reference implementation (FoundationVision/VAR, see
//! `shared/reference/var.md`); the float format F(p, q) of every value is part of the
//! configuration. `micro` and `tiny` are small shapes for tests and measurements; `d16`, `d20`,
//! `d24`, `d30` are the released models' shapes, used only for size estimates.

use crate::float::Format;

use super::super::error::{ModelError, Result};

/// How a token is chosen from the logits of its position.
///
/// Written on the command line and in configuration files as `argmax`, `top-k:K` or `top-p:P`
/// ([`std::str::FromStr`] and [`std::fmt::Display`] are inverse).
#[derive(Copy, Clone, PartialEq, Debug)]
pub enum Sampling {
    /// The largest logit, ties to the lowest index (no noise input).
    Argmax,
    /// Top-k sampling driven by one supplied uniform number `u` in `[0, 1)` per token: keep the
    /// `k` logits of lowest rank (rank of `i` = number of logits strictly greater, plus equal
    /// ones at a lower index), `p_i = exp(l_i - max)` for kept `i` (0 otherwise), `c_j` = the
    /// exact sum of `p_0..p_j` rounded once, pick the first `j` with `c_j > round(u * c_{V-1})`,
    /// or the last kept index if there is none.
    TopK {
        /// How many logits are kept (1 <= k <= vocab).
        k: usize,
    },
    /// Top-p (nucleus) sampling driven by one supplied uniform `u` in `[0, 1)` per token, with
    /// the ranks of top-k: `p_i = exp(round(l_i - max))` for every `i`, the target
    /// `T = round(round(P) * t)` where `t` is the exact sum of all `p_i` rounded once and
    /// `round(P)` is `P` rounded to the format; `i` is kept when the exact sum of the `p_j` ranked
    /// before it, rounded once, is below `T`, or when it has rank 0 (so the kept set is the
    /// smallest prefix in rank order whose rounded mass reaches `T`, at least one logit). The
    /// choice among the kept logits is then top-k's (weights of the others 0).
    TopP {
        /// The probability mass to keep, `0 < p <= 1`.
        p: f64,
    },
}

impl Sampling {
    /// Whether the pass takes one uniform number per token (top-k and top-p).
    pub fn uses_uniforms(&self) -> bool {
        !matches!(self, Sampling::Argmax)
    }
}

impl std::fmt::Display for Sampling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sampling::Argmax => write!(f, "argmax"),
            Sampling::TopK { k } => write!(f, "top-k:{k}"),
            Sampling::TopP { p } => write!(f, "top-p:{p}"),
        }
    }
}

impl std::str::FromStr for Sampling {
    type Err = ModelError;

    /// `argmax`, `top-k:K` (K an integer >= 1) or `top-p:P` (`0 < P <= 1`); `k <= vocab` is
    /// checked by [`VarConfig::validate`].
    fn from_str(s: &str) -> Result<Sampling> {
        let s = s.trim();
        let want = "expected argmax, top-k:K or top-p:P";
        if s == "argmax" {
            return Ok(Sampling::Argmax);
        }
        if let Some(k) = s.strip_prefix("top-k:") {
            let k: usize = k
                .trim()
                .parse()
                .map_err(|_| bad("sampling", format!("{s:?}: K must be an integer >= 1")))?;
            if k == 0 {
                return Err(bad("sampling", format!("{s:?}: K must be >= 1")));
            }
            return Ok(Sampling::TopK { k });
        }
        if let Some(p) = s.strip_prefix("top-p:") {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| bad("sampling", format!("{s:?}: P must be a number in (0, 1]")))?;
            let samp = Sampling::TopP { p };
            samp.check_p()?;
            return Ok(samp);
        }
        Err(bad("sampling", format!("{s:?}: {want}")))
    }
}

impl Sampling {
    fn check_p(&self) -> Result<()> {
        if let Sampling::TopP { p } = *self {
            if !(p.is_finite() && p > 0.0 && p <= 1.0) {
                return Err(bad("sampling", format!("top-p needs 0 < P <= 1, got {p}")));
            }
        }
        Ok(())
    }
}

/// A VAR configuration (all fields public and overridable; call [`VarConfig::validate`] after
/// changing them: every consumer in `model::var` validates again and refuses an invalid one).
#[derive(Clone, PartialEq, Debug)]
pub struct VarConfig {
    /// The float format of every value (weights are rounded to it).
    pub fmt: Format,
    /// Side lengths of the token maps, strictly increasing (`patch_nums`; 680 tokens for the
    /// released 10-scale schedule).
    pub patch_nums: Vec<usize>,
    /// Transformer width C (embedding dimension).
    pub width: usize,
    /// Number of transformer blocks.
    pub depth: usize,
    /// Number of attention heads (divides `width`).
    pub heads: usize,
    /// Hidden width of the FFN is `mlp_ratio * width` (4 in VAR).
    pub mlp_ratio: usize,
    /// Shared AdaLN (VAR's `shared_aln`, the VAR-d36 variant): one `shared_ada_lin` for all
    /// blocks plus a learned per-block offset `ada_gss`, instead of one `ada_lin` per block.
    pub shared_aln: bool,
    /// Codebook size V (vocabulary of the token maps).
    pub vocab: usize,
    /// Code dimension (`Cvae`): channels of the feature map f_hat.
    pub cvae: usize,
    /// Number of classes; the class embedding has one more row (the "null" class of
    /// classifier-free guidance).
    pub num_classes: usize,
    /// LayerNorm epsilon of the transformer (rounded to the format; 1e-6 in VAR).
    pub norm_eps: f64,
    /// Decoder base channel count.
    pub vae_ch: usize,
    /// Decoder channel multipliers, one per resolution level (level 0 = full resolution).
    pub vae_ch_mult: Vec<usize>,
    /// Decoder ResNet blocks per level are `vae_num_res_blocks + 1`.
    pub vae_num_res_blocks: usize,
    /// GroupNorm groups of the decoder (divides every channel count).
    pub vae_groups: usize,
    /// Attention block in the decoder's middle (ResNet, Attn, ResNet); VAR: `using_mid_sa`.
    pub vae_mid_attn: bool,
    /// Attention block after each ResNet block of the lowest-resolution level; VAR: `using_sa`.
    pub vae_up_attn: bool,
    /// Image channels (3).
    pub vae_out_ch: usize,
    /// How tokens are chosen.
    pub sampling: Sampling,
    /// Classifier-free guidance scale (`None` = off): logits = (1+t) cond - t uncond with
    /// t = cfg * si / (SN - 1) (t = 0 when there is one scale).
    pub cfg_scale: Option<f64>,
}

/// Names of the presets accepted by [`VarConfig::preset`].
pub const PRESETS: [&str; 6] = ["micro", "tiny", "d16", "d20", "d24", "d30"];

fn bad(field: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl VarConfig {
    /// The preset `name` (one of [`PRESETS`]); an unknown name is an error listing them.
    ///
    /// - `micro` (tests): scales (1, 2), C = 8, one block, one head, V = 8, Cvae = 4, 4 classes,
    ///   decoder ch 2 mult (1, 1) (one upsampling), one ResNet block per level, the middle
    ///   attention block only, 2 groups, top-k sampling with k = 4, format F(4, 5) (F(5, 4) and F(6, 4) are too coarse for this
    ///   decoder: their smallest positive value, 2^-4 and 2^-3, flushes its GroupNorm statistics
    ///   and every image comes out equal to conv_out's bias).
    /// - `tiny`: scales (1, 2, 3, 4), C = 32, 2 blocks, 2 heads, V = 32, Cvae = 8, 10 classes,
    ///   decoder ch 8 mult (1, 2), one ResNet block per level, both attention kinds, 4 groups,
    ///   top-k with k = 8, format F(6, 5).
    /// - `d16`/`d20`/`d24`/`d30`: the released shapes (10 scales, C = 64 D, D heads, V = 4096,
    ///   Cvae 32, decoder ch 160 mult (1,1,2,2,4), 2 ResNet blocks (3 per level), 32 groups,
    ///   1000 classes), format F(11, 6), top-k with k = 900 (VAR's default).
    pub fn preset(name: &str) -> Result<VarConfig> {
        let released = |d: usize| -> Result<VarConfig> {
            Ok(VarConfig {
                fmt: Format::new(11, 6)?,
                patch_nums: vec![1, 2, 3, 4, 5, 6, 8, 10, 13, 16],
                width: 64 * d,
                depth: d,
                heads: d,
                mlp_ratio: 4,
                shared_aln: false,
                vocab: 4096,
                cvae: 32,
                num_classes: 1000,
                norm_eps: 1e-6,
                vae_ch: 160,
                vae_ch_mult: vec![1, 1, 2, 2, 4],
                vae_num_res_blocks: 2,
                vae_groups: 32,
                vae_mid_attn: true,
                vae_up_attn: true,
                vae_out_ch: 3,
                sampling: Sampling::TopK { k: 900 },
                cfg_scale: None,
            })
        };
        let c = match name {
            "micro" => VarConfig {
                fmt: Format::new(4, 5)?,
                patch_nums: vec![1, 2],
                width: 8,
                depth: 1,
                heads: 1,
                mlp_ratio: 4,
                shared_aln: false,
                vocab: 8,
                cvae: 4,
                num_classes: 4,
                norm_eps: 1e-6,
                vae_ch: 2,
                vae_ch_mult: vec![1, 1],
                vae_num_res_blocks: 0,
                vae_groups: 2,
                vae_mid_attn: true,
                vae_up_attn: false,
                vae_out_ch: 3,
                sampling: Sampling::TopK { k: 4 },
                cfg_scale: None,
            },
            "tiny" => VarConfig {
                fmt: Format::new(6, 5)?,
                patch_nums: vec![1, 2, 3, 4],
                width: 32,
                depth: 2,
                heads: 2,
                mlp_ratio: 4,
                shared_aln: false,
                vocab: 32,
                cvae: 8,
                num_classes: 10,
                norm_eps: 1e-6,
                vae_ch: 8,
                vae_ch_mult: vec![1, 2],
                vae_num_res_blocks: 0,
                vae_groups: 4,
                vae_mid_attn: true,
                vae_up_attn: true,
                vae_out_ch: 3,
                sampling: Sampling::TopK { k: 8 },
                cfg_scale: None,
            },
            "d16" => released(16)?,
            "d20" => released(20)?,
            "d24" => released(24)?,
            "d30" => released(30)?,
            _ => {
                return Err(bad(
                    "preset",
                    format!("unknown preset {name:?}; presets: {}", PRESETS.join(", ")),
                ))
            }
        };
        c.validate()?;
        Ok(c)
    }

    /// Check every field; the error names the first invalid field.
    pub fn validate(&self) -> Result<()> {
        if self.patch_nums.is_empty() {
            return Err(bad("patch_nums", "at least one scale is needed"));
        }
        if self.patch_nums[0] == 0 {
            return Err(bad("patch_nums", "scale sizes must be >= 1"));
        }
        if self.patch_nums.windows(2).any(|w| w[1] <= w[0]) {
            return Err(bad(
                "patch_nums",
                format!("{:?} is not strictly increasing", self.patch_nums),
            ));
        }
        if self.width == 0 {
            return Err(bad("width", "must be >= 1"));
        }
        if self.depth == 0 {
            return Err(bad("depth", "at least one block is needed"));
        }
        if self.heads == 0 || self.width % self.heads != 0 {
            return Err(bad(
                "heads",
                format!(
                    "{} heads do not divide the width {}",
                    self.heads, self.width
                ),
            ));
        }
        if self.mlp_ratio == 0 {
            return Err(bad("mlp_ratio", "must be >= 1"));
        }
        if self.vocab == 0 {
            return Err(bad("vocab", "the codebook needs at least one entry"));
        }
        if self.cvae == 0 {
            return Err(bad("cvae", "must be >= 1"));
        }
        if self.num_classes == 0 {
            return Err(bad("num_classes", "at least one class is needed"));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return Err(bad(
                "norm_eps",
                format!("{} is not a finite value >= 0", self.norm_eps),
            ));
        }
        if self.vae_ch == 0 {
            return Err(bad("vae_ch", "must be >= 1"));
        }
        if self.vae_ch_mult.is_empty() || self.vae_ch_mult.contains(&0) {
            return Err(bad(
                "vae_ch_mult",
                "needs >= 1 level, every multiplier >= 1",
            ));
        }
        if self.vae_groups == 0 {
            return Err(bad("vae_groups", "must be >= 1"));
        }
        for &m in &self.vae_ch_mult {
            let ch = self.vae_ch * m;
            if ch % self.vae_groups != 0 {
                return Err(bad(
                    "vae_groups",
                    format!("{} groups do not divide {ch} channels", self.vae_groups),
                ));
            }
        }
        if self.vae_out_ch == 0 {
            return Err(bad("vae_out_ch", "must be >= 1"));
        }
        if let Sampling::TopK { k } = self.sampling {
            if k == 0 || k > self.vocab {
                return Err(bad(
                    "sampling",
                    format!("top-k needs 1 <= k <= vocab = {}, got {k}", self.vocab),
                ));
            }
        }
        self.sampling.check_p()?;
        if let Some(s) = self.cfg_scale {
            if !s.is_finite() {
                return Err(bad("cfg_scale", format!("{s} is not finite")));
            }
        }
        Ok(())
    }

    /// Number of scales SN.
    pub fn num_scales(&self) -> usize {
        self.patch_nums.len()
    }

    /// Number of tokens of scale `si` (`pn^2`).
    pub fn scale_tokens(&self, si: usize) -> usize {
        self.patch_nums[si] * self.patch_nums[si]
    }

    /// Offset of scale `si`'s first token in the sequence of all tokens.
    pub fn scale_begin(&self, si: usize) -> usize {
        self.patch_nums[..si].iter().map(|p| p * p).sum()
    }

    /// Total number of tokens L (sum of `pn^2`).
    pub fn total_tokens(&self) -> usize {
        self.patch_nums.iter().map(|p| p * p).sum()
    }

    /// Side of the last (largest) token map: the side of f_hat.
    pub fn last_pn(&self) -> usize {
        *self.patch_nums.last().unwrap_or(&0)
    }

    /// Head dimension `width / heads`.
    pub fn head_dim(&self) -> usize {
        self.width / self.heads
    }

    /// FFN hidden width.
    pub fn hidden(&self) -> usize {
        self.width * self.mlp_ratio
    }

    /// Side of the decoded image: `last_pn * 2^(levels - 1)` (one x2 upsampling between levels).
    pub fn image_side(&self) -> usize {
        self.last_pn() << (self.vae_ch_mult.len() - 1)
    }

    /// Bits of the class input word: `ceil(log2(num_classes))`, at least 1.
    pub fn class_bits(&self) -> u32 {
        bits_for(self.num_classes)
    }

    /// Bits of one token index output word: `ceil(log2(vocab))`, at least 1.
    pub fn token_bits(&self) -> u32 {
        bits_for(self.vocab)
    }

    /// The classifier-free guidance weight t of scale `si` (0 when guidance is off or SN = 1).
    pub fn cfg_t(&self, si: usize) -> f64 {
        match self.cfg_scale {
            Some(s) if self.num_scales() > 1 => s * si as f64 / (self.num_scales() - 1) as f64,
            _ => 0.0,
        }
    }

    /// The Phi convolution used at scale `si` (VAR's `PhiPartiallyShared` with 4 Phis).
    ///
    /// Replicates the reference in f64: `ticks = linspace(1/12, 1 - 1/12, 4)` (numpy's
    /// `start + i * step`, last tick exactly `stop`), index = first argmin of
    /// `|ticks - si / (SN - 1)|`. Gives [0,0,1,1,1,2,2,3,3,3] for 10 scales, [0,1,2,3] for 4 and
    /// [0,2,3] for 3 (checked by a test). With one scale (SN = 1, where the reference would
    /// divide by zero) the index is 0.
    pub fn phi_index(&self, si: usize) -> usize {
        phi_index(si, self.num_scales())
    }
}

/// Number of Phi convolutions (VAR's `share_quant_resi = 4`).
pub const NUM_PHI: usize = 4;

/// See [`VarConfig::phi_index`].
pub fn phi_index(si: usize, num_scales: usize) -> usize {
    if num_scales <= 1 {
        return 0;
    }
    let k = NUM_PHI;
    let start = 1.0 / 3.0 / k as f64;
    let stop = 1.0 - 1.0 / 3.0 / k as f64;
    let step = (stop - start) / (k - 1) as f64;
    let at = si as f64 / (num_scales - 1) as f64;
    let mut best = 0;
    let mut best_d = f64::INFINITY;
    for i in 0..k {
        let t = if i == k - 1 {
            stop
        } else {
            i as f64 * step + start
        };
        let d = (t - at).abs();
        if d < best_d {
            best_d = d;
            best = i;
        }
    }
    best
}

/// `ceil(log2(n))`, at least 1.
pub fn bits_for(n: usize) -> u32 {
    if n <= 2 {
        1
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_mapping_matches_reference_lists() {
        let m = |sn: usize| (0..sn).map(|i| phi_index(i, sn)).collect::<Vec<_>>();
        assert_eq!(m(10), vec![0, 0, 1, 1, 1, 2, 2, 3, 3, 3]);
        assert_eq!(m(4), vec![0, 1, 2, 3]);
        assert_eq!(m(3), vec![0, 2, 3]);
        assert_eq!(m(1), vec![0]);
    }

    #[test]
    fn presets_validate() {
        for p in PRESETS {
            VarConfig::preset(p).unwrap();
        }
        assert_eq!(VarConfig::preset("d16").unwrap().total_tokens(), 680);
    }

    #[test]
    fn sampling_parses_and_prints() {
        for s in ["argmax", "top-k:7", "top-p:0.9", "top-p:1"] {
            let v: Sampling = s.parse().unwrap();
            assert_eq!(v.to_string(), s);
        }
        assert_eq!(
            "top-p:0.25".parse::<Sampling>().unwrap(),
            Sampling::TopP { p: 0.25 }
        );
        for s in [
            "",
            "top-k:0",
            "top-k:-1",
            "top-k:x",
            "top-p:0",
            "top-p:1.5",
            "top-p:NaN",
            "top-p:inf",
            "top-p:-0.1",
            "topk:3",
            "argmax:1",
        ] {
            assert!(s.parse::<Sampling>().is_err(), "{s:?} accepted");
        }
        let mut c = VarConfig::preset("micro").unwrap();
        c.sampling = Sampling::TopP { p: f64::NAN };
        assert!(c.validate().is_err());
        c.sampling = Sampling::TopK { k: 9 };
        assert!(c.validate().is_err());
    }

    #[test]
    fn bits() {
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(3), 2);
        assert_eq!(bits_for(8), 3);
        assert_eq!(bits_for(9), 4);
    }
}
