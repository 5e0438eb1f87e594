//! The whole VAR generation pass (VAR's `autoregressive_infer_cfg` followed by
//! `fhat_to_img`), written once at tensor granularity ([`TensorArith`]), and its uses: the
//! F(p, q) reference ([`var_reference`]), the f32 model ([`var_f32`]), the explicit compiler
//! ([`compile`]: one netlist, small configurations only) and the uniform program ([`record`]:
//! any configuration, evaluated template by template).
//!
//! Inputs are the class label and, for top-k sampling, one uniform number per token (all
//! `L = sum pn^2` of them, scale after scale, row-major within a scale). Outputs are the token
//! indices of every scale and, unless the pass stops after the tokens ([`Until::Tokens`]), the
//! image `[vae_out_ch, side, side]` clamped to `[-1, 1]`.
//!
//! The explicit circuit's inputs are the word `class` (`ceil(log2 num_classes)` bits, decoded
//! to a one-hot; a label `>= num_classes` selects no row and is refused by
//! [`CompiledVar::pack_inputs`]) and the float words `u.{t}` (top-k only); its outputs are the
//! words `tok.{si}.{i}` (the binary index of each token) and then `img.{k}`. The program's
//! inputs are the tensors `class` (one choice) and `u` (`L` floats, top-k only); its outputs the
//! tensors `tok.{si}` and `img`.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::circuit::program::Program;
use crate::circuit::Batch;
use crate::circuit::{Builder, Circuit, Lit};
use crate::float::Float;
use crate::gadgets::float::FloatWord;

use super::super::arith::{CircuitArith, F32Arith, RefArith};
use super::super::error::{ModelError, Result};
use super::super::ops::record::{RTensor, Recorder, TemplateBuild, TemplateCache};
use super::super::ops::scalar::{STensor, Scalar};
use super::super::ops::{choice_bits, Kind, TensorArith, Val, WeightProvider};
use super::super::tensor::Tensor;
use super::config::{Sampling, VarConfig};
use super::decoder::decode;
use super::recon::{codebook_lookup, next_autoregressive_input};
use super::transformer::{class_vectors, embed_next, guide, sample, scale_logits, KvCache};

/// How far a pass runs.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum Until {
    /// The token maps of every scale only (no final reconstruction, no decoder).
    Tokens,
    /// Tokens and the decoded image.
    #[default]
    Image,
}

/// The inputs of one generic pass in backend `B`.
pub struct PassInputs<'t, T> {
    /// The class choice `[1]`.
    pub class: T,
    /// The uniforms `[L]` (top-k sampling), else `None`.
    pub uniforms: Option<T>,
    /// Token indices to use instead of sampling (one list per scale): the f32 model runs with
    /// the F(p, q) pass's tokens, so that the image error measures the format, not a different
    /// sample.
    pub forced_tokens: Option<&'t [Vec<u32>]>,
}

/// The outputs of one generic pass.
pub struct PassOutputs<T> {
    /// The choices `[pn^2]` of every scale.
    pub tokens: Vec<T>,
    /// The image `[vae_out_ch, side, side]` (with [`Until::Image`]).
    pub image: Option<T>,
}

/// Number of progress steps of one pass (blocks of every stream and scale, one per scale for
/// reconstruction, one for the decoder).
pub fn progress_steps(cfg: &VarConfig) -> u64 {
    let streams = if cfg.cfg_scale.is_some() { 2 } else { 1 };
    (cfg.num_scales() * (cfg.depth * streams + 1) + 1) as u64
}

/// The generic pass (see the module docs). Regions: `class`,
/// `transformer.scale{si}.{embed, block{b}, head, uncond.*, guide, sample}`,
/// `reconstruction.scale{si}`, `decoder`.
pub fn var_forward<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    inp: &PassInputs<'_, B::T>,
    until: Until,
    progress: Option<&ProgressBar>,
) -> Result<PassOutputs<B::T>> {
    cfg.validate()?;
    let sn = cfg.num_scales();
    if let Some(ft) = inp.forced_tokens {
        if ft.len() != sn || (0..sn).any(|si| ft[si].len() != cfg.scale_tokens(si)) {
            return Err(ModelError::Shape {
                op: "var_forward",
                detail: "forced tokens: one list of pn^2 indices per scale expected".into(),
            });
        }
    }
    if let Sampling::TopK { .. } | Sampling::TopP { .. } = cfg.sampling {
        if inp.forced_tokens.is_none()
            && inp.uniforms.as_ref().map(|u| b.shape(u).to_vec()) != Some(vec![cfg.total_tokens()])
        {
            return Err(ModelError::Shape {
                op: "var_forward",
                detail: format!("top-k sampling needs {} uniforms", cfg.total_tokens()),
            });
        }
    }
    let tick = || {
        if let Some(p) = progress {
            p.inc(1)
        }
    };
    b.push_region("class")?;
    let cls = class_vectors(b, cfg, &inp.class)?;
    let ucls = match cfg.cfg_scale {
        Some(_) => {
            let nc = cfg.num_classes as u32;
            let null = b.constant_choices("null_class", nc + 1, vec![1], &[nc])?;
            Some(class_vectors(b, cfg, &null)?)
        }
        None => None,
    };
    b.pop_region()?;
    let mut cache = KvCache::new(cfg);
    let mut ucache = KvCache::new(cfg);
    let mut x = cls.first_tokens.clone();
    let mut xu = ucls.as_ref().map(|u| u.first_tokens.clone());
    let mut f_hat: Option<B::T> = None;
    let mut tokens = Vec::with_capacity(sn);
    for si in 0..sn {
        let pn = cfg.patch_nums[si];
        if let Some(p) = progress {
            p.set_message(format!("scale {si}/{sn}: transformer"));
        }
        b.push_region("transformer")?;
        b.push_region(&format!("scale{si}"))?;
        let mut logits = scale_logits(b, cfg, &cls, &mut cache, &x, tick)?;
        if let (Some(uc), Some(xuv)) = (&ucls, &xu) {
            b.push_region("uncond")?;
            let lu = scale_logits(b, cfg, uc, &mut ucache, xuv, tick)?;
            b.pop_region()?;
            b.push_region("guide")?;
            logits = guide(b, cfg, si, &logits, &lu)?;
            b.pop_region()?;
        }
        b.push_region("sample")?;
        let choices = match inp.forced_tokens {
            Some(ft) => {
                let n = u32::try_from(cfg.vocab).map_err(|_| ModelError::Config {
                    field: "vocab".into(),
                    reason: "too large".into(),
                })?;
                if let Some(&t) = ft[si].iter().find(|&&t| t >= n) {
                    return Err(ModelError::Shape {
                        op: "var_forward",
                        detail: format!("forced token {t} of {n}"),
                    });
                }
                b.constant_choices(&format!("forced{si}"), n, vec![pn * pn], &ft[si])?
            }
            None => {
                let us = inp.uniforms.as_ref().map(|u| (u, cfg.scale_begin(si)));
                sample(b, cfg, &logits, us)?
            }
        };
        b.pop_region()?;
        b.pop_region()?;
        b.pop_region()?;
        let last = si + 1 == sn;
        if !(last && until == Until::Tokens) {
            if let Some(p) = progress {
                p.set_message(format!("scale {si}/{sn}: reconstruction"));
            }
            b.push_region("reconstruction")?;
            b.push_region(&format!("scale{si}"))?;
            let h = codebook_lookup(b, cfg, &choices, pn)?;
            let (fh, next) = next_autoregressive_input(b, cfg, si, f_hat.as_ref(), &h)?;
            f_hat = Some(fh);
            b.pop_region()?;
            b.pop_region()?;
            if !last {
                b.push_region("transformer")?;
                b.push_region(&format!("scale{}", si + 1))?;
                b.push_region("embed")?;
                x = embed_next(b, cfg, si + 1, &next)?;
                if xu.is_some() {
                    xu = Some(x.clone());
                }
                b.pop_region()?;
                b.pop_region()?;
                b.pop_region()?;
            }
        }
        tick();
        tokens.push(choices);
    }
    let image = match until {
        Until::Tokens => None,
        Until::Image => {
            if let Some(p) = progress {
                p.set_message("decoder");
            }
            let f_hat = f_hat.ok_or(ModelError::Shape {
                op: "var_forward",
                detail: "no scale".into(),
            })?;
            b.push_region("decoder")?;
            let image = decode(b, cfg, &f_hat)?;
            b.pop_region()?;
            Some(image)
        }
    };
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
    /// The image `[vae_out_ch, side, side]` row-major, as F(p, q) encodings (`Float::to_bits`);
    /// empty for a pass that stops after the tokens.
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
            Sampling::TopK { .. } | Sampling::TopP { .. } => cfg.total_tokens(),
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

fn class_bound(cfg: &VarConfig) -> Result<u32> {
    u32::try_from(cfg.num_classes).map_err(|_| ModelError::Config {
        field: "num_classes".into(),
        reason: "too large".into(),
    })
}

/// The F(p, q) reference pass with weights from `w`: the oracle every circuit is checked
/// against.
pub fn var_reference(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    input: &VarInput,
) -> Result<VarOutput> {
    var_reference_until(cfg, w, input, Until::Image)
}

/// [`var_reference`] up to `until`.
pub fn var_reference_until(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    input: &VarInput,
    until: Until,
) -> Result<VarOutput> {
    input.validate(cfg)?;
    let mut b = Scalar::new(RefArith::new(cfg.fmt), w);
    let class = b.constant_choices("class", class_bound(cfg)?, vec![1], &[input.class as u32])?;
    let uniforms = match cfg.sampling {
        Sampling::Argmax => None,
        Sampling::TopK { .. } | Sampling::TopP { .. } => {
            let us = input.uniform_floats(cfg)?;
            let n = us.len();
            Some(b.constant("u", vec![n], &mut |_| Tensor::new(vec![n], us.clone()))?)
        }
    };
    let inp = PassInputs {
        class,
        uniforms,
        forced_tokens: None,
    };
    let out = var_forward(&mut b, cfg, &inp, until, None)?;
    Ok(VarOutput {
        tokens: out
            .tokens
            .iter()
            .map(|t| Ok(t.to_choices()?.iter().map(|&c| c as u32).collect()))
            .collect::<Result<_>>()?,
        image: match &out.image {
            Some(img) => img.to_floats()?.to_bits(),
            None => Vec::new(),
        },
    })
}

/// The f32 model of the same pass (weights are the same F(p, q) constants, every operation in
/// f32), with the tokens `forced` (typically the F(p, q) pass's) or sampled in f32 when `None`.
/// Returns the tokens and the image values.
pub fn var_f32(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    input: &VarInput,
    forced: Option<&[Vec<u32>]>,
) -> Result<(Vec<Vec<u32>>, Vec<f32>)> {
    input.validate(cfg)?;
    let mut b = Scalar::new(F32Arith::new(cfg.fmt), w);
    let class = b.constant_choices("class", class_bound(cfg)?, vec![1], &[input.class as u32])?;
    let uniforms = match cfg.sampling {
        Sampling::Argmax => None,
        Sampling::TopK { .. } | Sampling::TopP { .. } => {
            let us: Vec<f32> = input.uniforms.iter().map(|&u| u as f32).collect();
            let data = us.into_iter().map(Val::F).collect();
            Some(STensor::new(vec![cfg.total_tokens()], Kind::Float, data)?)
        }
    };
    let inp = PassInputs {
        class,
        uniforms,
        forced_tokens: forced,
    };
    let out = var_forward(&mut b, cfg, &inp, Until::Image, None)?;
    Ok((
        out.tokens
            .iter()
            .map(|t| Ok(t.to_choices()?.iter().map(|&c| c as u32).collect()))
            .collect::<Result<_>>()?,
        match out.image {
            Some(img) => img.to_floats()?.into_data(),
            None => Vec::new(),
        },
    ))
}

/// Options of [`compile_with`] and [`record_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// Show an indicatif progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// How far the pass runs.
    pub until: Until,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            progress: true,
            until: Until::Image,
        }
    }
}

/// A compiled VAR pass: the circuit and its input/output layout.
#[derive(Debug)]
pub struct CompiledVar {
    /// The configuration it was compiled for.
    pub cfg: VarConfig,
    /// The circuit (inputs `class`, `u.{t}`; outputs `tok.{si}.{i}`, `img.{k}`).
    pub circuit: Circuit,
    /// How far the pass runs.
    pub until: Until,
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

fn progress_bar(on: bool, len: u64) -> ProgressBar {
    if on && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(len);
        if let Ok(st) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
        {
            pb.set_style(st);
        }
        pb
    } else {
        ProgressBar::hidden()
    }
}

/// Compile the pass of `cfg` with weights `w` into one circuit ([`compile_with`] with the
/// default options: a progress bar when stderr is a terminal).
pub fn compile(cfg: &VarConfig, w: &dyn WeightProvider) -> Result<CompiledVar> {
    compile_with(cfg, w, CompileOptions::default())
}

/// The pass on circuit words in `b`: returns the one-hot of every token (per scale) and the
/// image words.
type ExplicitOutputs = (Vec<Vec<Vec<Lit>>>, Vec<Vec<Lit>>);

fn explicit_pass(
    b: &mut Builder,
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    until: Until,
    pb: &ProgressBar,
) -> Result<ExplicitOutputs> {
    let fmt = cfg.fmt;
    let class_bits = b.input_word("class", cfg.class_bits())?;
    let mut onehot = Vec::with_capacity(cfg.num_classes);
    for c in 0..cfg.num_classes {
        let lits: Vec<Lit> = class_bits
            .iter()
            .enumerate()
            .map(|(k, &l)| if (c >> k) & 1 == 1 { l } else { !l })
            .collect();
        onehot.push(b.and(&lits)?);
    }
    let uniforms = match cfg.sampling {
        Sampling::Argmax => None,
        Sampling::TopK { .. } | Sampling::TopP { .. } => Some(
            (0..cfg.total_tokens())
                .map(|t| Ok(Val::F(FloatWord::input(b, &format!("u.{t}"), fmt)?)))
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let mut s = Scalar::new(CircuitArith::new(b, fmt), w);
    let class = STensor::new(
        vec![1],
        Kind::Choice(class_bound(cfg)?),
        vec![Val::C(onehot)],
    )?;
    let uniforms = match uniforms {
        Some(u) => Some(STensor::new(vec![u.len()], Kind::Float, u)?),
        None => None,
    };
    let inp = PassInputs {
        class,
        uniforms,
        forced_tokens: None,
    };
    let out = var_forward(&mut s, cfg, &inp, until, Some(pb))?;
    let tokens = out
        .tokens
        .iter()
        .map(|t| t.to_choices())
        .collect::<Result<Vec<_>>>()?;
    let image = match &out.image {
        Some(img) => img
            .to_floats()?
            .into_data()
            .into_iter()
            .map(|w| w.bits)
            .collect(),
        None => Vec::new(),
    };
    Ok((tokens, image))
}

/// Compile the pass into one explicit circuit (weights baked in as constants and folded by the
/// builder). Only small configurations fit in memory: see [`record`] for the others.
pub fn compile_with(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    opts: CompileOptions,
) -> Result<CompiledVar> {
    cfg.validate()?;
    let t0 = Instant::now();
    let pb = progress_bar(opts.progress, progress_steps(cfg));
    let mut b = Builder::new();
    let (tokens, image) = explicit_pass(&mut b, cfg, w, opts.until, &pb)?;
    let tb = cfg.token_bits();
    b.push_region("outputs")?;
    for (si, toks) in tokens.iter().enumerate() {
        for (i, ch) in toks.iter().enumerate() {
            let bits = choice_index_bits(&mut b, ch, tb)?;
            b.output_word(&format!("tok.{si}.{i}"), &bits)?;
        }
    }
    b.pop_region()?;
    for (k, v) in image.iter().enumerate() {
        b.output_word(&format!("img.{k}"), v)?;
    }
    pb.finish_and_clear();
    Ok(CompiledVar {
        cfg: cfg.clone(),
        circuit: b.finish(),
        until: opts.until,
        build_seconds: t0.elapsed().as_secs_f64(),
    })
}

fn image_len(cfg: &VarConfig, until: Until) -> usize {
    match until {
        Until::Tokens => 0,
        Until::Image => {
            let s = cfg.image_side();
            cfg.vae_out_ch * s * s
        }
    }
}

/// The per-instance input values: the class, then the uniforms' encodings (top-k only).
fn input_rows(cfg: &VarConfig, inputs: &[VarInput]) -> Result<Vec<Vec<u64>>> {
    let mut rows = Vec::with_capacity(inputs.len());
    for (i, inp) in inputs.iter().enumerate() {
        inp.validate(cfg).map_err(|e| match e {
            ModelError::Config { field, reason } => ModelError::Config {
                field,
                reason: format!("instance {i}: {reason}"),
            },
            e => e,
        })?;
        let mut v = vec![inp.class as u64];
        v.extend(inp.uniform_floats(cfg)?.iter().map(|f| f.to_bits()));
        rows.push(v);
    }
    Ok(rows)
}

impl CompiledVar {
    /// Bit widths of the input fields in circuit order: the class word, then one float word
    /// per uniform (top-k only).
    pub fn input_widths(&self) -> Vec<u32> {
        let mut v = vec![self.cfg.class_bits()];
        if let Sampling::TopK { .. } | Sampling::TopP { .. } = self.cfg.sampling {
            v.extend(std::iter::repeat_n(
                self.cfg.fmt.width(),
                self.cfg.total_tokens(),
            ));
        }
        v
    }

    /// Number of image values `vae_out_ch * side^2` (0 for a pass that stops at the tokens).
    pub fn image_len(&self) -> usize {
        image_len(&self.cfg, self.until)
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
        let rows = input_rows(&self.cfg, inputs)?;
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

/// A recorded VAR pass: the uniform program and its input/output layout.
#[derive(Debug)]
pub struct RecordedVar {
    /// The configuration it was recorded for.
    pub cfg: VarConfig,
    /// The program (inputs `class`, `u` (top-k); outputs `tok.{si}`, `img` (full pass)).
    pub program: Program,
    /// How far the pass runs.
    pub until: Until,
    /// Seconds spent recording (templates included).
    pub record_seconds: f64,
    /// Seconds spent building templates.
    pub template_seconds: f64,
    /// Every template with its build time.
    pub template_log: Vec<TemplateBuild>,
}

/// Record the pass of `cfg` as a uniform program ([`record_with`], default options).
pub fn record(cfg: &VarConfig, w: &dyn WeightProvider) -> Result<RecordedVar> {
    record_with(cfg, w, CompileOptions::default())
}

/// Record the pass as a uniform program: one application per tensor operation, one template
/// per distinct kernel, weights as named tensors whose values `w` supplies at evaluation
/// ([`RecordedVar::weight_encodings`]).
pub fn record_with(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    opts: CompileOptions,
) -> Result<RecordedVar> {
    record_cached(cfg, w, opts, None)
}

/// [`record_with`], reusing (and filling) a template cache shared between recordings.
pub fn record_cached(
    cfg: &VarConfig,
    w: &dyn WeightProvider,
    opts: CompileOptions,
    cache: Option<TemplateCache>,
) -> Result<RecordedVar> {
    cfg.validate()?;
    let t0 = Instant::now();
    let mut r = Recorder::new(cfg.fmt, w).with_progress(opts.progress);
    if let Some(c) = cache {
        r = r.with_cache(c);
    }
    let class = r.input("class", Kind::Choice(class_bound(cfg)?), vec![1])?;
    let uniforms: Option<RTensor> = match cfg.sampling {
        Sampling::Argmax => None,
        Sampling::TopK { .. } | Sampling::TopP { .. } => {
            Some(r.input("u", Kind::Float, vec![cfg.total_tokens()])?)
        }
    };
    let inp = PassInputs {
        class,
        uniforms,
        forced_tokens: None,
    };
    let out = var_forward(&mut r, cfg, &inp, opts.until, None)?;
    for (si, t) in out.tokens.iter().enumerate() {
        r.output(&format!("tok.{si}"), t)?;
    }
    if let Some(img) = &out.image {
        r.output("img", img)?;
    }
    let (program, template_seconds, template_log) = r.finish_logged()?;
    Ok(RecordedVar {
        cfg: cfg.clone(),
        program,
        until: opts.until,
        record_seconds: t0.elapsed().as_secs_f64(),
        template_seconds,
        template_log,
    })
}

impl RecordedVar {
    /// The values of every program input for a batch of `inputs`: `[input][instance][element]`
    /// encodings (the class index; the uniforms' F(p, q) encodings). Refuses invalid inputs as
    /// [`CompiledVar::pack_inputs`] does.
    pub fn input_values(&self, inputs: &[VarInput]) -> Result<Vec<Vec<Vec<u64>>>> {
        let rows = input_rows(&self.cfg, inputs)?;
        let mut v = vec![rows.iter().map(|r| vec![r[0]]).collect::<Vec<_>>()];
        if let Sampling::TopK { .. } | Sampling::TopP { .. } = self.cfg.sampling {
            v.push(rows.iter().map(|r| r[1..].to_vec()).collect());
        }
        Ok(v)
    }

    /// The encodings of a weight tensor of the program, from `w`.
    pub fn weight_encodings(
        w: &dyn WeightProvider,
        decl: &crate::circuit::program::TensorDecl,
    ) -> Result<Vec<u64>> {
        Recorder::weight_encodings(w, decl)
    }

    /// One [`VarOutput`] per batch instance from the program's output values
    /// (`[output][instance][element]`, outputs in program order).
    pub fn outputs(&self, values: &[Vec<Vec<u64>>]) -> Result<Vec<VarOutput>> {
        let sn = self.cfg.num_scales();
        let want = sn + usize::from(self.until == Until::Image);
        if values.len() != want {
            return Err(ModelError::Shape {
                op: "RecordedVar::outputs",
                detail: format!("{} outputs, expected {want}", values.len()),
            });
        }
        let batch = values[0].len();
        (0..batch)
            .map(|i| {
                let tokens = (0..sn)
                    .map(|si| {
                        let v = values[si].get(i).ok_or_else(|| ModelError::Shape {
                            op: "RecordedVar::outputs",
                            detail: "ragged batch".into(),
                        })?;
                        Ok(v.iter().map(|&x| x as u32).collect())
                    })
                    .collect::<Result<Vec<_>>>()?;
                let image = if self.until == Until::Image {
                    values[sn].get(i).cloned().unwrap_or_default()
                } else {
                    Vec::new()
                };
                Ok(VarOutput { tokens, image })
            })
            .collect()
    }

    /// Bits of a token index in the program's outputs.
    pub fn token_bits(&self) -> u32 {
        choice_bits(self.cfg.vocab as u32)
    }
}
