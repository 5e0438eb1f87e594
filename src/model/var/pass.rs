//! The whole VAR generation pass (VAR's `autoregressive_infer_cfg` followed by
//! `fhat_to_img`), generic over [`Arith`], and its three uses: the F(p, q) reference
//! ([`var_reference`]), the f32 model ([`var_f32`]) and the compiler ([`compile`]) with input
//! packing and output unpacking.
//!
//! Inputs are the class label and, for top-k sampling, one uniform number per token (all
//! `L = sum pn^2` of them, scale after scale, row-major within a scale). Outputs are the token
//! indices of every scale and the image `[vae_out_ch, side, side]` clamped to `[-1, 1]`.
//!
//! The circuit's inputs are the word `class` (`ceil(log2 num_classes)` bits, decoded to a
//! one-hot; a label `>= num_classes` selects no row and is refused by
//! [`CompiledVar::pack_inputs`]) and the float words `u.{t}` (top-k only); its outputs are the
//! words `tok.{si}.{i}` (`ceil(log2 V)` bits, the binary index of the one-hot choice) and then
//! `img.{k}` (row-major image values, F(p, q) encodings). Class-only values are folded (see
//! `transformer.rs`): region `class` holds the depth-1 selection of the class's row.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::circuit::{Builder, Circuit, Lit};
use crate::eval::Batch;
use crate::float::Float;
use crate::gadgets::float::FloatWord;

use super::super::arith::{Arith, CircuitArith, F32Arith, RefArith};
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::config::{Sampling, VarConfig};
use super::decoder::decode;
use super::recon::{codebook_lookup, next_autoregressive_input};
use super::transformer::{
    class_vectors, embed_next, guide, sample, scale_logits, ClassVectors, KvCache,
};
use super::weights::VarWeights;

/// The inputs of one generic pass in backend `A`.
#[derive(Clone, Debug)]
pub struct PassInputs<'t, V> {
    /// Class-only vectors of the label.
    pub class: ClassVectors<V>,
    /// Class-only vectors of the null class (guidance on), else `None`.
    pub uncond: Option<ClassVectors<V>>,
    /// One uniform per token (top-k sampling; ignored for argmax and forced tokens).
    pub uniforms: Vec<V>,
    /// Token indices to use instead of sampling (one list per scale): the f32 model runs with
    /// the F(p, q) pass's tokens, so that the image error measures the format, not a different
    /// sample.
    pub forced_tokens: Option<&'t [Vec<u32>]>,
}

/// The outputs of one generic pass.
#[derive(Clone, Debug)]
pub struct PassOutputs<C, V> {
    /// The choice of every token, per scale.
    pub tokens: Vec<Vec<C>>,
    /// The image `[vae_out_ch, side, side]`, clamped to `[-1, 1]`.
    pub image: Tensor<V>,
}

/// Number of progress steps of one pass (blocks of every stream and scale, one per scale for
/// reconstruction, one for the decoder).
pub fn progress_steps(cfg: &VarConfig) -> u64 {
    let streams = if cfg.cfg_scale.is_some() { 2 } else { 1 };
    (cfg.num_scales() * (cfg.depth * streams + 1) + 1) as u64
}

/// The generic pass (see the module docs). Regions (recorded by the circuit backend):
/// `transformer.scale{si}.{embed, block{b}, head, uncond.*, guide, sample}`,
/// `reconstruction.scale{si}`, `decoder`.
pub fn var_forward<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    inp: &PassInputs<'_, A::V>,
    progress: Option<&ProgressBar>,
) -> Result<PassOutputs<A::Choice, A::V>> {
    cfg.validate()?;
    w.check(cfg)?;
    let sn = cfg.num_scales();
    if let Some(ft) = inp.forced_tokens {
        if ft.len() != sn || (0..sn).any(|si| ft[si].len() != cfg.scale_tokens(si)) {
            return Err(ModelError::Shape {
                op: "var_forward",
                detail: "forced tokens: one list of pn^2 indices per scale expected".into(),
            });
        }
    }
    if cfg.cfg_scale.is_some() != inp.uncond.is_some() {
        return Err(ModelError::Shape {
            op: "var_forward",
            detail: "unconditional class vectors are needed exactly when guidance is on".into(),
        });
    }
    let tick = || {
        if let Some(p) = progress {
            p.inc(1)
        }
    };
    let mut cache = KvCache::new(cfg);
    let mut ucache = KvCache::new(cfg);
    let mut x = inp.class.first_tokens.clone();
    let mut xu = inp.uncond.as_ref().map(|u| u.first_tokens.clone());
    let mut f_hat: Option<Tensor<A::V>> = None;
    let mut tokens = Vec::with_capacity(sn);
    for si in 0..sn {
        let pn = cfg.patch_nums[si];
        if let Some(p) = progress {
            p.set_message(format!("scale {si}/{sn}: transformer"));
        }
        a.push_region("transformer")?;
        a.push_region(&format!("scale{si}"))?;
        let mut logits = scale_logits(a, cfg, w, &inp.class, &mut cache, &x, tick)?;
        if let (Some(ucls), Some(xuv)) = (&inp.uncond, &xu) {
            a.push_region("uncond")?;
            let lu = scale_logits(a, cfg, w, ucls, &mut ucache, xuv, tick)?;
            a.pop_region()?;
            a.push_region("guide")?;
            logits = guide(a, cfg, si, &logits, &lu)?;
            a.pop_region()?;
        }
        a.push_region("sample")?;
        let choices = match inp.forced_tokens {
            Some(ft) => ft[si]
                .iter()
                .map(|&t| a.choice_const(t as usize, cfg.vocab))
                .collect::<Result<Vec<_>>>()?,
            None => {
                let b = cfg.scale_begin(si);
                let us: &[A::V] = match cfg.sampling {
                    Sampling::Argmax => &[],
                    Sampling::TopK { .. } => {
                        inp.uniforms.get(b..b + pn * pn).ok_or(ModelError::Shape {
                            op: "var_forward",
                            detail: format!(
                                "{} uniforms for {} tokens",
                                inp.uniforms.len(),
                                cfg.total_tokens()
                            ),
                        })?
                    }
                };
                sample(a, cfg, &logits, us)?
            }
        };
        a.pop_region()?;
        a.pop_region()?;
        a.pop_region()?;

        if let Some(p) = progress {
            p.set_message(format!("scale {si}/{sn}: reconstruction"));
        }
        a.push_region("reconstruction")?;
        a.push_region(&format!("scale{si}"))?;
        let h = codebook_lookup(a, &w.recon, &choices, pn)?;
        let (fh, next) =
            next_autoregressive_input(a, &cfg.patch_nums, &w.recon, si, f_hat.as_ref(), &h)?;
        f_hat = Some(fh);
        a.pop_region()?;
        a.pop_region()?;
        tick();
        tokens.push(choices);

        if si + 1 < sn {
            a.push_region("transformer")?;
            a.push_region(&format!("scale{}", si + 1))?;
            a.push_region("embed")?;
            x = embed_next(a, cfg, w, si + 1, &next)?;
            if xu.is_some() {
                xu = Some(x.clone());
            }
            a.pop_region()?;
            a.pop_region()?;
            a.pop_region()?;
        }
    }
    if let Some(p) = progress {
        p.set_message("decoder");
    }
    let f_hat = f_hat.ok_or(ModelError::Shape {
        op: "var_forward",
        detail: "no scale".into(),
    })?;
    a.push_region("decoder")?;
    let image = decode(a, cfg, &w.decoder, &f_hat)?;
    a.pop_region()?;
    tick();
    Ok(PassOutputs { tokens, image })
}

/// One generation request: the class label and the sampling noise.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInput {
    /// The class label, `< num_classes`.
    pub class: usize,
    /// One uniform in `[0, 1)` per token (`L` of them) for top-k sampling, rounded to the
    /// format (a value that rounds up to 1 selects the last kept index); empty for argmax.
    pub uniforms: Vec<f64>,
}

/// The result of one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarOutput {
    /// Token indices, one list of `pn^2` per scale.
    pub tokens: Vec<Vec<u32>>,
    /// The image `[vae_out_ch, side, side]` row-major, as F(p, q) encodings (`Float::to_bits`).
    pub image: Vec<u64>,
}

impl VarInput {
    /// Check the input against `cfg` (class range, number and range of the uniforms).
    pub fn validate(&self, cfg: &VarConfig) -> Result<()> {
        if self.class >= cfg.num_classes {
            return Err(ModelError::Config {
                field: "input.class".into(),
                reason: format!("class {} of {} classes", self.class, cfg.num_classes),
            });
        }
        let need = match cfg.sampling {
            Sampling::Argmax => 0,
            Sampling::TopK { .. } => cfg.total_tokens(),
        };
        if self.uniforms.len() != need {
            return Err(ModelError::Config {
                field: "input.uniforms".into(),
                reason: format!(
                    "{} uniforms, expected {need} (one per token for top-k, none for argmax)",
                    self.uniforms.len()
                ),
            });
        }
        if let Some(u) = self.uniforms.iter().find(|u| !(0.0..1.0).contains(*u)) {
            return Err(ModelError::Config {
                field: "input.uniforms".into(),
                reason: format!("{u} is not in [0, 1)"),
            });
        }
        Ok(())
    }

    fn uniform_floats(&self, cfg: &VarConfig) -> Result<Vec<Float>> {
        self.uniforms
            .iter()
            .map(|&u| Ok(cfg.fmt.from_f64(u)?))
            .collect()
    }
}

fn ref_inputs<'t>(
    cfg: &VarConfig,
    w: &VarWeights,
    input: &VarInput,
) -> Result<PassInputs<'t, Float>> {
    input.validate(cfg)?;
    let mut r = RefArith::new(cfg.fmt);
    Ok(PassInputs {
        class: class_vectors(&mut r, cfg, w, input.class)?,
        uncond: match cfg.cfg_scale {
            Some(_) => Some(class_vectors(&mut r, cfg, w, cfg.num_classes)?),
            None => None,
        },
        uniforms: input.uniform_floats(cfg)?,
        forced_tokens: None,
    })
}

/// The F(p, q) reference pass: the oracle the circuit is checked against.
pub fn var_reference(cfg: &VarConfig, w: &VarWeights, input: &VarInput) -> Result<VarOutput> {
    let inp = ref_inputs(cfg, w, input)?;
    let mut r = RefArith::new(cfg.fmt);
    let out = var_forward(&mut r, cfg, w, &inp, None)?;
    Ok(VarOutput {
        tokens: out
            .tokens
            .iter()
            .map(|s| s.iter().map(|&c| c as u32).collect())
            .collect(),
        image: out.image.to_bits(),
    })
}

/// The f32 model of the same pass (weights are the same F(p, q) constants, every operation in
/// f32), with the tokens `forced` (typically the F(p, q) pass's) or sampled in f32 when `None`.
/// Returns the tokens and the image values.
pub fn var_f32(
    cfg: &VarConfig,
    w: &VarWeights,
    input: &VarInput,
    forced: Option<&[Vec<u32>]>,
) -> Result<(Vec<Vec<u32>>, Vec<f32>)> {
    input.validate(cfg)?;
    let mut f = F32Arith::new(cfg.fmt);
    let inp = PassInputs {
        class: class_vectors(&mut f, cfg, w, input.class)?,
        uncond: match cfg.cfg_scale {
            Some(_) => Some(class_vectors(&mut f, cfg, w, cfg.num_classes)?),
            None => None,
        },
        uniforms: input.uniforms.iter().map(|&u| u as f32).collect(),
        forced_tokens: forced,
    };
    let out = var_forward(&mut f, cfg, w, &inp, None)?;
    Ok((
        out.tokens
            .iter()
            .map(|s| s.iter().map(|&c| c as u32).collect())
            .collect(),
        out.image.into_data(),
    ))
}

/// Options of [`compile_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Show an indicatif progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions { progress: true }
    }
}

/// A compiled VAR pass: the circuit and its input/output layout.
#[derive(Debug)]
pub struct CompiledVar {
    /// The configuration it was compiled for.
    pub cfg: VarConfig,
    /// The circuit (inputs `class`, `u.{t}`; outputs `tok.{si}.{i}`, `img.{k}`).
    pub circuit: Circuit,
    /// Seconds spent building.
    pub build_seconds: f64,
}

/// Bit `b` of the index of a one-hot choice: OR of the alternatives whose index has bit `b`.
fn choice_index_bits(b: &mut Builder, onehot: &[Lit], bits: u32) -> Result<Vec<Lit>> {
    (0..bits)
        .map(|k| {
            let on: Vec<Lit> = onehot
                .iter()
                .enumerate()
                .filter(|(j, _)| (j >> k) & 1 == 1)
                .map(|(_, &l)| l)
                .collect();
            Ok(b.or(&on)?)
        })
        .collect()
}

/// Compile the pass of `cfg` with weights `w` into one circuit ([`compile_with`] with the
/// default options: a progress bar when stderr is a terminal).
pub fn compile(cfg: &VarConfig, w: &VarWeights) -> Result<CompiledVar> {
    compile_with(cfg, w, CompileOptions::default())
}

/// Compile the pass into one circuit (weights baked in as constants; class-only values folded
/// by evaluating [`class_vectors`] under [`RefArith`] for every class, then selected by the
/// class one-hot).
pub fn compile_with(cfg: &VarConfig, w: &VarWeights, opts: CompileOptions) -> Result<CompiledVar> {
    cfg.validate()?;
    w.check(cfg)?;
    let t0 = Instant::now();
    let pb = if opts.progress && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(progress_steps(cfg));
        if let Ok(st) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
        {
            pb.set_style(st);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let fmt = cfg.fmt;
    let mut b = Builder::new();
    let class_bits = b.input_word("class", cfg.class_bits())?;
    let mut a = CircuitArith::new(&mut b, fmt);
    let uniforms = match cfg.sampling {
        Sampling::Argmax => Vec::new(),
        Sampling::TopK { .. } => (0..cfg.total_tokens())
            .map(|t| a.input(&format!("u.{t}")))
            .collect::<Result<Vec<_>>>()?,
    };
    // Class one-hot and the folded class-only vectors.
    a.push_region("class")?;
    let mut onehot = Vec::with_capacity(cfg.num_classes);
    for c in 0..cfg.num_classes {
        let lits: Vec<Lit> = class_bits
            .iter()
            .enumerate()
            .map(|(k, &l)| if (c >> k) & 1 == 1 { l } else { !l })
            .collect();
        onehot.push(a.b.and(&lits)?);
    }
    let mut r = RefArith::new(fmt);
    let table = (0..cfg.num_classes)
        .map(|c| Ok(class_vectors(&mut r, cfg, w, c)?.flatten()))
        .collect::<Result<Vec<_>>>()?;
    let sel = a.select_const(&onehot, &table)?;
    let class = ClassVectors::unflatten(cfg, sel)?;
    let uncond = match cfg.cfg_scale {
        Some(_) => {
            let u = class_vectors(&mut r, cfg, w, cfg.num_classes)?.flatten();
            let words = u
                .into_iter()
                .map(|c| a.constant(c))
                .collect::<Result<Vec<_>>>()?;
            Some(ClassVectors::unflatten(cfg, words)?)
        }
        None => None,
    };
    a.pop_region()?;
    let inp = PassInputs {
        class,
        uncond,
        uniforms,
        forced_tokens: None,
    };
    let out = var_forward(&mut a, cfg, w, &inp, Some(&pb))?;
    let tb = cfg.token_bits();
    b.push_region("outputs")?;
    for (si, toks) in out.tokens.iter().enumerate() {
        for (i, ch) in toks.iter().enumerate() {
            let bits = choice_index_bits(&mut b, ch, tb)?;
            b.output_word(&format!("tok.{si}.{i}"), &bits)?;
        }
    }
    b.pop_region()?;
    for (k, v) in out.image.data().iter().enumerate() {
        b.output_word(&format!("img.{k}"), &v.bits)?;
    }
    pb.finish_and_clear();
    Ok(CompiledVar {
        cfg: cfg.clone(),
        circuit: b.finish(),
        build_seconds: t0.elapsed().as_secs_f64(),
    })
}

impl CompiledVar {
    /// Bit widths of the input fields in circuit order: the class word, then one float word
    /// per uniform (top-k only).
    pub fn input_widths(&self) -> Vec<u32> {
        let mut v = vec![self.cfg.class_bits()];
        if let Sampling::TopK { .. } = self.cfg.sampling {
            v.extend(std::iter::repeat_n(
                self.cfg.fmt.width(),
                self.cfg.total_tokens(),
            ));
        }
        v
    }

    /// Number of image values `vae_out_ch * side^2`.
    pub fn image_len(&self) -> usize {
        let s = self.cfg.image_side();
        self.cfg.vae_out_ch * s * s
    }

    /// Bit widths of the output fields in circuit order: one token word per token, then one
    /// float word per image value.
    pub fn output_widths(&self) -> Vec<u32> {
        let mut v = vec![self.cfg.token_bits(); self.cfg.total_tokens()];
        v.extend(std::iter::repeat_n(self.cfg.fmt.width(), self.image_len()));
        v
    }

    /// Pack inputs into a bit-sliced batch (one instance per input). Refuses a class
    /// `>= num_classes`, a wrong number of uniforms, a uniform outside `[0, 1)`.
    pub fn pack_inputs(&self, inputs: &[VarInput]) -> Result<Batch> {
        let mut rows = Vec::with_capacity(inputs.len());
        for (i, inp) in inputs.iter().enumerate() {
            inp.validate(&self.cfg).map_err(|e| match e {
                ModelError::Config { field, reason } => ModelError::Config {
                    field,
                    reason: format!("instance {i}: {reason}"),
                },
                e => e,
            })?;
            let mut v = vec![inp.class as u64];
            v.extend(inp.uniform_floats(&self.cfg)?.iter().map(|f| f.to_bits()));
            rows.push(v);
        }
        Batch::pack_fields(&self.input_widths(), &rows).map_err(|e| ModelError::Shape {
            op: "pack_inputs",
            detail: e.to_string(),
        })
    }

    /// Unpack an evaluator's result batch into one [`VarOutput`] per instance.
    pub fn unpack_outputs(&self, out: &Batch) -> Result<Vec<VarOutput>> {
        let fields = out
            .unpack_fields(&self.output_widths())
            .map_err(|e| ModelError::Shape {
                op: "unpack_outputs",
                detail: e.to_string(),
            })?;
        let l = self.cfg.total_tokens();
        Ok(fields
            .into_iter()
            .map(|f| {
                let mut tokens = Vec::with_capacity(self.cfg.num_scales());
                let mut k = 0;
                for si in 0..self.cfg.num_scales() {
                    let n = self.cfg.scale_tokens(si);
                    tokens.push(f[k..k + n].iter().map(|&x| x as u32).collect());
                    k += n;
                }
                VarOutput {
                    tokens,
                    image: f[l..].to_vec(),
                }
            })
            .collect())
    }
}

/// Gate counts of single gadgets in one format, measured by building each once on fresh
/// inputs (the unit costs of [`estimate_gates`]).
#[derive(Clone, Debug, PartialEq)]
pub struct UnitCosts {
    /// `round(x * c)` averaged over a few constants.
    pub mul_const: f64,
    /// `round(x * y)`.
    pub mul: f64,
    /// `round(x + y)` (and subtraction).
    pub add: f64,
    /// `round(x / y)`.
    pub div: f64,
    /// A unary lookup (average of exp, rsqrt, sqrt, GELU, SiLU).
    pub unary: f64,
    /// `[x < y]`.
    pub lt: f64,
    /// Iterated sum of n terms: `sum0 + sum1 * n` (fitted at n = 8 and 32).
    pub sum0: f64,
    /// See `sum0`.
    pub sum1: f64,
    /// Max of n values: `max2 * n^2` (all-pairs; fitted at n = 8).
    pub max2: f64,
}

fn gadget_cost(
    fmt: crate::float::Format,
    n_in: usize,
    f: impl FnOnce(&mut CircuitArith<'_>, &[FloatWord]) -> Result<()>,
) -> Result<f64> {
    let mut b = Builder::new();
    let mut a = CircuitArith::new(&mut b, fmt);
    let xs = (0..n_in)
        .map(|i| a.input(&format!("x{i}")))
        .collect::<Result<Vec<_>>>()?;
    let g0 = a.b.num_gates();
    f(&mut a, &xs)?;
    Ok((a.b.num_gates() - g0) as f64)
}

impl UnitCosts {
    /// Measure the unit costs in format `fmt`.
    pub fn measure(fmt: crate::float::Format) -> Result<UnitCosts> {
        use super::super::arith::Unary;
        let consts = [0.3, -1.7, 0.011, 5.5, -0.25];
        let mut mc = 0.0;
        for c in consts {
            let k = fmt.from_f64(c)?;
            mc += gadget_cost(fmt, 1, |a, x| a.mul_const(&x[0], k).map(|_| ()))?;
        }
        let mut un = 0.0;
        let kinds = [
            Unary::Exp,
            Unary::Rsqrt,
            Unary::Sqrt,
            Unary::GeluTanh,
            Unary::Silu,
        ];
        for u in kinds {
            un += gadget_cost(fmt, 1, |a, x| a.unary(u, &x[0]).map(|_| ()))?;
        }
        let s8 = gadget_cost(fmt, 8, |a, x| a.sum(x).map(|_| ()))?;
        let s32 = gadget_cost(fmt, 32, |a, x| a.sum(x).map(|_| ()))?;
        let sum1 = (s32 - s8) / 24.0;
        Ok(UnitCosts {
            mul_const: mc / consts.len() as f64,
            mul: gadget_cost(fmt, 2, |a, x| a.mul(&x[0], &x[1]).map(|_| ()))?,
            add: gadget_cost(fmt, 2, |a, x| a.add(&x[0], &x[1]).map(|_| ()))?,
            div: gadget_cost(fmt, 2, |a, x| a.div(&x[0], &x[1]).map(|_| ()))?,
            unary: un / kinds.len() as f64,
            lt: gadget_cost(fmt, 2, |a, x| a.lt(&x[0], &x[1]).map(|_| ()))?,
            sum0: s8 - 8.0 * sum1,
            sum1,
            max2: gadget_cost(fmt, 8, |a, x| a.max_n(x).map(|_| ()))? / 64.0,
        })
    }

    fn sum(&self, n: f64) -> f64 {
        if n <= 1.0 {
            0.0
        } else {
            self.sum0 + self.sum1 * n
        }
    }
    /// A dot product with constants of n terms plus a bias.
    fn affine(&self, n: f64) -> f64 {
        n * self.mul_const + self.sum(n + 1.0)
    }
    /// A dot product of two activation vectors of n terms.
    fn dot(&self, n: f64) -> f64 {
        n * self.mul + self.sum(n)
    }
    /// LayerNorm / GroupNorm of a group of n values (statistics once, then per element).
    fn norm(&self, n: f64) -> f64 {
        2.0 * self.sum(n) + 2.0 * self.div + n * (self.add + self.mul) + self.add + self.unary
    }
}

/// Estimated gate counts of the compiled pass, per phase.
#[derive(Clone, Debug, PartialEq)]
pub struct GateEstimate {
    /// Transformer blocks, heads, embeddings and guidance (all scales, all streams).
    pub transformer: f64,
    /// Sampling (all tokens).
    pub sampling: f64,
    /// Codebook lookup, bicubic, Phi, f_hat, area (all scales).
    pub reconstruction: f64,
    /// post_quant_conv and the decoder.
    pub decoder: f64,
    /// The sum of the phases.
    pub total: f64,
    /// The unit costs used.
    pub units: UnitCosts,
}

/// Estimate the gate count of `compile(cfg, ..)` without building it: operation counts of the
/// pass (exact formulas in the configuration's sizes, the same operation sequence as
/// [`var_forward`]) times unit gadget costs measured in `cfg.fmt` ([`UnitCosts::measure`]).
/// Constant folding (zero or unit weights, class-only values) is ignored, so this is an upper
/// estimate; `tests/var_model.rs` compares it with built circuits.
pub fn estimate_gates(cfg: &VarConfig) -> Result<GateEstimate> {
    cfg.validate()?;
    let u = UnitCosts::measure(cfg.fmt)?;
    let (c, d, f) = (cfg.width as f64, cfg.depth as f64, cfg.hidden() as f64);
    let (hd, heads, v) = (cfg.head_dim() as f64, cfg.heads as f64, cfg.vocab as f64);
    let streams = if cfg.cfg_scale.is_some() { 2.0 } else { 1.0 };
    let width = cfg.fmt.width() as f64;
    let mut tr = 0.0;
    let mut sa = 0.0;
    let mut re = 0.0;
    let last = cfg.last_pn() as f64;
    let cv = cfg.cvae as f64;
    for si in 0..cfg.num_scales() {
        let n = cfg.scale_tokens(si) as f64;
        let keys = (cfg.scale_begin(si) + cfg.scale_tokens(si)) as f64;
        // One block on n tokens attending to `keys` keys.
        let per_token = 2.0 * (u.norm(c) + c * (u.mul + u.add))
            + 3.0 * c * u.affine(c)
            + heads * 2.0 * (u.dot(hd) + u.unary + hd * u.mul)
            + heads * hd * u.mul_const
            + c * u.affine(c)
            + 2.0 * c * (u.mul + u.add)
            + f * u.affine(c)
            + f * u.unary
            + c * u.affine(f);
        let attn = heads
            * n
            * (keys * u.dot(hd)
                + u.max2 * keys * keys
                + keys * (2.0 * u.add + u.unary + u.div)
                + u.sum(keys)
                + hd * u.dot(keys));
        let head = n * (u.norm(c) + c * (u.mul + u.add) + v * u.affine(c));
        let embed = if si > 0 {
            n * c * (u.affine(cv) + u.add)
        } else {
            0.0
        };
        tr += streams * (d * (n * per_token + attn) + head) + embed;
        if streams > 1.0 {
            tr += n * v * (2.0 * u.mul_const + u.add);
        }
        sa += n * match cfg.sampling {
            Sampling::Argmax => u.max2 * v * v,
            Sampling::TopK { k } => {
                let ranks = if k < cfg.vocab {
                    v * v * u.lt + v * (1.0 + width)
                } else {
                    0.0
                };
                ranks
                    + u.max2 * v * v
                    + v * (u.add + u.unary)
                    + (1..=cfg.vocab).map(|j| u.sum(j as f64)).sum::<f64>()
                    + u.mul
                    + v * (u.lt + 4.0)
            }
        };
        // Reconstruction: lookup (one OR per bit), bicubic to the last size (<= 16 taps),
        // Phi (9 Cvae + 2 terms), f_hat add, area down (window sum and a constant multiply).
        let pn = cfg.patch_nums[si] as f64;
        re += n * cv * width;
        let outs = cv * last * last;
        if si + 1 < cfg.num_scales() {
            re += outs * u.affine(16.0);
            let nx = cfg.patch_nums[si + 1] as f64;
            let win = (last / nx).ceil() + 1.0;
            re += cv * nx * nx * (u.sum(win * win) + u.mul_const);
        }
        re += outs * (u.affine(9.0 * cv + 1.0) + if si > 0 { u.add } else { 0.0 });
        let _ = pn;
    }
    // Decoder.
    let conv = |hw: f64, cin: f64, cout: f64, k: f64| hw * cout * u.affine(cin * k * k);
    let g = cfg.vae_groups as f64;
    let gn = |hw: f64, ch: f64| g * u.norm(hw * ch / g) + hw * ch * (u.mul + u.add);
    let silu = |hw: f64, ch: f64| hw * ch * u.unary;
    let resnet = |hw: f64, cin: f64, cout: f64| {
        gn(hw, cin)
            + silu(hw, cin)
            + conv(hw, cin, cout, 3.0)
            + gn(hw, cout)
            + silu(hw, cout)
            + conv(hw, cout, cout, 3.0)
            + if cin != cout {
                conv(hw, cin, cout, 1.0)
            } else {
                0.0
            }
            + hw * cout * u.add
    };
    let attn = |hw: f64, ch: f64| {
        gn(hw, ch)
            + conv(hw, ch, 3.0 * ch, 1.0)
            + hw * hw * (u.dot(ch) + u.mul_const + 2.0 * u.add + u.unary + u.div)
            + hw * u.max2 * hw * hw
            + hw * u.sum(hw)
            + ch * hw * u.dot(hw)
            + conv(hw, ch, ch, 1.0)
            + hw * ch * u.add
    };
    let nl = cfg.vae_ch_mult.len();
    let mut side = last;
    let mut ch = (cfg.vae_ch * cfg.vae_ch_mult[nl - 1]) as f64;
    let mut de = conv(side * side, cv, cv, 3.0) + conv(side * side, cv, ch, 3.0);
    de += 2.0 * resnet(side * side, ch, ch);
    if cfg.vae_mid_attn {
        de += attn(side * side, ch);
    }
    for level in (0..nl).rev() {
        let out = (cfg.vae_ch * cfg.vae_ch_mult[level]) as f64;
        for _ in 0..=cfg.vae_num_res_blocks {
            de += resnet(side * side, ch, out);
            ch = out;
            if level == nl - 1 && cfg.vae_up_attn {
                de += attn(side * side, ch);
            }
        }
        if level != 0 {
            side *= 2.0;
            de += conv(side * side, ch, ch, 3.0);
        }
    }
    let hw = side * side;
    de += gn(hw, ch) + silu(hw, ch) + conv(hw, ch, cfg.vae_out_ch as f64, 3.0);
    de += hw * cfg.vae_out_ch as f64 * 2.0 * (u.lt + width);
    Ok(GateEstimate {
        transformer: tr,
        sampling: sa,
        reconstruction: re,
        decoder: de,
        total: tr + sa + re + de,
        units: u,
    })
}
