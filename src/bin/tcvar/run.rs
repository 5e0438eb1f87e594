//! `tcvar run`: record a VAR configuration as a uniform program of circuit templates, evaluate
//! a batch of (class, noise) inputs template by template on the GPU (or the CPU), cross-check
//! every output bit against the F(p, q) reference pass, measure the format's error against the
//! f32 model, and report gates, terms, fan-in and depth per phase with the evaluation rate.
//! `--backend reference` runs the F(p, q) reference pass alone (no circuit).
//!
//! The whole batch is held in host memory at once; a batch whose inputs, outputs and tensor
//! values exceed `--memory-budget` is refused before anything is built, with the bytes it needs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use tcvar::eval::gpu::{GpuContext, GpuOptions};
use tcvar::eval::program::{
    tensor_peak_bytes, CpuProgramEvaluator, GpuProgramEvaluator, ProgramOptions, RunStats,
    TensorValues,
};
use tcvar::eval::EvalError;
use tcvar::model::ops::weights::SeededWeights;
use tcvar::model::ops::WeightProvider;
use tcvar::model::var::config::{VarConfig, PRESETS};
use tcvar::model::var::pass::{
    record_with, var_f32, var_reference_until, CompileOptions, RecordedVar, Until, VarInput,
    VarOutput,
};

use crate::common::{self, Backend, CliError, Outcome};
use crate::outputs;
use crate::shape::{self, ShapeArgs};
use crate::stats::{peak_rss_bytes, phases, ScopeArgs, UntilArg};
use crate::weights_arg::config_and_weights;

/// The default configuration of `tcvar run`.
pub const DEFAULT_CONFIG: &str = "micro";

/// The batch when neither `--batch` nor `--labels` gives it.
pub const DEFAULT_BATCH: usize = 256;

/// What evaluates the batch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum RunBackend {
    /// The GPU when an adapter exists, else the CPU (with a notice).
    #[default]
    Auto,
    /// The CPU evaluator.
    Cpu,
    /// The GPU evaluator (an error when no adapter exists).
    Gpu,
    /// Both, cross-checked against each other and the reference.
    Both,
    /// The F(p, q) reference pass alone: no circuit is built (any format, fast).
    Reference,
}

impl RunBackend {
    /// The circuit evaluators' backend, `None` for the reference alone.
    pub(crate) fn circuit(self) -> Option<Backend> {
        match self {
            RunBackend::Auto => Some(Backend::Auto),
            RunBackend::Cpu => Some(Backend::Cpu),
            RunBackend::Gpu => Some(Backend::Gpu),
            RunBackend::Both => Some(Backend::Both),
            RunBackend::Reference => None,
        }
    }
}

/// `tcvar run` options.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Class of each instance, e.g. `0,1,2,3`: their count must equal --batch, or, without
    /// --batch, sets it (default: the classes in turn).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<usize>>,
    /// Number of (class, noise) inputs evaluated in one batch (default 256, or the number of
    /// --labels); the batch is held in memory at once, within --memory-budget.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Evaluator: auto (GPU when an adapter exists, else CPU), cpu, gpu, both, or reference
    /// (the F(p, q) reference pass alone, no circuit).
    #[arg(long, value_enum, default_value_t = RunBackend::Auto)]
    pub backend: RunBackend,
    /// Weights with the reference implementation's tensor names: a safetensors file or a
    /// directory holding one (default: deterministic weights from --seed, generated tensor by
    /// tensor when used). Without --config / --config-file the configuration comes from the
    /// weights, and the flags apply over it.
    #[arg(long)]
    pub weights: Vec<PathBuf>,
    /// Seed of the generated weights and of the sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Host memory the evaluation may hold at once, in GiB (inputs, outputs, tensor values,
    /// weights in use, lane batches); a run that needs more is refused before it starts, with
    /// the figure it needs.
    #[arg(long, default_value_t = 8.0)]
    pub memory_budget: f64,
    /// Skip the reference passes (no bit-exactness check; `bit_exact` is null); with
    /// `--backend reference`, skip the comparison with the f32 model.
    #[arg(long)]
    pub no_check: bool,
    /// Write images.png (up to 64 images), images.npy, tokens.json and summary.json into this
    /// directory (created and checked for writing before anything is built).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Whether `--config` was given on the command line (set by `main`).
    #[arg(skip)]
    pub config_given: bool,
    // MPI hook (feature `mpi`): the distributed run's options.
    #[cfg(feature = "mpi")]
    #[command(flatten)]
    pub mpi: crate::distributed::MpiArgs,
}

impl RunArgs {
    /// The defaults of plain `tcvar`.
    pub fn default_args() -> RunArgs {
        RunArgs {
            scope: ScopeArgs {
                config: DEFAULT_CONFIG.into(),
                p: None,
                q: None,
                scales: None,
                blocks: None,
                width: None,
                until: UntilArg::Image,
            },
            shape: ShapeArgs::default(),
            labels: None,
            batch: None,
            backend: RunBackend::Auto,
            weights: Vec::new(),
            seed: 0,
            memory_budget: 8.0,
            no_check: false,
            out: None,
            json: false,
            quiet: false,
            config_given: false,
            #[cfg(feature = "mpi")]
            mpi: Default::default(),
        }
    }
}

/// The configuration named by `--config` with `--p`/`--q` applied.
pub fn config(name: &str, p: Option<u32>, q: Option<u32>) -> Result<VarConfig, CliError> {
    let mut cfg = VarConfig::preset(name).map_err(|e| CliError::User(e.to_string()))?;
    if p.is_some() || q.is_some() {
        cfg.fmt = common::format(p.unwrap_or(cfg.fmt.p()), q.unwrap_or(cfg.fmt.q()))?;
    }
    cfg.validate().map_err(|e| CliError::User(e.to_string()))?;
    Ok(cfg)
}

/// The weights of `tcvar build`: from a safetensors file, or seeded.
pub fn weights(
    cfg: &VarConfig,
    path: Option<&std::path::Path>,
    seed: u64,
) -> Result<tcvar::model::var::weights::VarWeights, CliError> {
    use tcvar::model::var::weights::VarWeights;
    match path {
        Some(p) => VarWeights::load_safetensors(cfg, p)
            .map_err(|e| CliError::User(format!("--weights {}: {e}", p.display()))),
        None => VarWeights::seeded(cfg, seed).map_err(|e| CliError::Failure(e.to_string())),
    }
}

/// `batch` inputs: the classes `labels` (else the classes in turn), uniforms from a seeded
/// generator.
pub fn inputs(cfg: &VarConfig, batch: usize, labels: Option<&[usize]>, seed: u64) -> Vec<VarInput> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_7c0a);
    (0..batch)
        .map(|i| VarInput {
            class: labels.map_or(i % cfg.num_classes, |l| l[i]),
            uniforms: if cfg.sampling.uses_uniforms() {
                (0..cfg.total_tokens())
                    .map(|_| rng.random_range(0.0..1.0))
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// Host bytes one instance of the batch holds outside the tensor values: its input (class and
/// uniforms) and their encodings, and its outputs (token lists and image encodings) from the
/// reference and from each circuit evaluator, with the error figure.
pub fn instance_bytes(cfg: &VarConfig, until: Until, outputs_held: u128) -> u128 {
    let vec = 24u128;
    let uniforms = if cfg.sampling.uses_uniforms() {
        8 * cfg.total_tokens() as u128
    } else {
        0
    };
    let input = 2 * (8 + vec + uniforms) + 2 * vec + 8;
    let image = match until {
        Until::Image => 8 * (cfg.vae_out_ch * cfg.image_side() * cfg.image_side()) as u128,
        Until::Tokens => 0,
    };
    let output = 2 * vec + (vec * cfg.num_scales() as u128) + 4 * cfg.total_tokens() as u128;
    input + outputs_held * (output + image + 16)
}

/// A positive finite `--memory-budget` in bytes.
fn budget_bytes(gib: f64) -> Result<u64, CliError> {
    if !(gib.is_finite() && gib > 0.0) {
        return Err(CliError::User(format!(
            "--memory-budget {gib}: a positive number of GiB is needed"
        )));
    }
    Ok((gib * (1u64 << 30) as f64).min(u64::MAX as f64) as u64)
}

fn refuse(what: &str, batch: usize, need: u128, a: &RunArgs) -> CliError {
    CliError::User(format!(
        "a batch of {batch} needs {need} bytes ({:.3} GiB) of {what}, above --memory-budget {} GiB",
        need as f64 / (1u64 << 30) as f64,
        a.memory_budget
    ))
}

/// Everything a run needs before the reference passes: checked options, configuration,
/// weights and inputs.
pub(crate) struct Setup {
    pub(crate) label: String,
    pub(crate) cfg: VarConfig,
    pub(crate) inferred: bool,
    pub(crate) w: Box<dyn WeightProvider>,
    pub(crate) until: Until,
    pub(crate) batch: usize,
    pub(crate) budget: u64,
    pub(crate) host_bytes: u128,
    pub(crate) inputs: Vec<VarInput>,
}

pub(crate) fn setup(a: &RunArgs) -> Result<Setup, CliError> {
    if a.config_given && !PRESETS.contains(&a.scope.config.as_str()) {
        return Err(CliError::User(format!(
            "unknown configuration {:?}; presets: {}",
            a.scope.config,
            PRESETS.join(", ")
        )));
    }
    let budget = budget_bytes(a.memory_budget)?;
    if a.batch == Some(0) {
        return Err(CliError::User("--batch must be at least 1".into()));
    }
    if let Some(dir) = &a.out {
        outputs::check_writable(dir)?;
    }
    let base = shape::base_config(&a.scope, &a.shape, a.config_given)?;
    let inferred = base.is_none() && !a.weights.is_empty();
    let label = match (&a.shape.config_file, a.config_given || a.weights.is_empty()) {
        (Some(f), _) => f.display().to_string(),
        (None, true) => a.scope.config.clone(),
        (None, false) => "from --weights".to_string(),
    };
    let flags = |c| shape::apply_flags(c, &a.scope, &a.shape);
    let (cfg, loaded) = config_and_weights(base, flags, &a.weights)?;
    let (batch, labels) = shape::labels(&cfg, a.labels.as_deref(), a.batch)?;
    let until: Until = a.scope.until.into();
    let held = 2 + matches!(a.backend, RunBackend::Both) as u128;
    let host_bytes = (batch as u128).saturating_mul(instance_bytes(&cfg, until, held));
    if host_bytes > budget as u128 {
        return Err(refuse("inputs and outputs", batch, host_bytes, a));
    }
    let w: Box<dyn WeightProvider> = match loaded {
        Some(w) => Box::new(w),
        None => Box::new(
            SeededWeights::new(&cfg, a.seed).map_err(|e| CliError::Failure(e.to_string()))?,
        ),
    };
    let inputs = inputs(&cfg, batch, labels.as_deref(), a.seed);
    Ok(Setup {
        label,
        cfg,
        inferred,
        w,
        until,
        batch,
        budget,
        host_bytes,
        inputs,
    })
}

/// The reference outputs with, for images, the largest error against the f32 model (same
/// tokens; `None` without `f32_check` or before the image).
type Refs = Vec<(VarOutput, Option<f64>)>;

fn references(s: &Setup, f32_check: bool, show: bool) -> Result<Refs, CliError> {
    let pb = common::spinner(show, "reference passes (F(p,q) and f32)");
    let (cfg, w, until) = (&s.cfg, s.w.as_ref(), s.until);
    let r = s
        .inputs
        .par_iter()
        .enumerate()
        .map(|(n, inp)| {
            let model = |e: tcvar::model::ModelError| CliError::Failure(e.to_string());
            let r = var_reference_until(cfg, w, inp, until).map_err(model)?;
            let err = if until == Until::Image && f32_check {
                let (_, img32) = var_f32(cfg, w, inp, Some(&r.tokens)).map_err(model)?;
                let what = format!("reference image {n}");
                Some(outputs::max_abs_error(cfg.fmt, &r.image, &img32, &what)?)
            } else {
                None
            };
            Ok((r, err))
        })
        .collect::<Result<_, CliError>>()?;
    pb.finish_and_clear();
    Ok(r)
}

/// A program evaluator of either kind.
enum ProgramEv {
    Cpu(CpuProgramEvaluator),
    Gpu(GpuProgramEvaluator),
}

impl ProgramEv {
    fn name(&self) -> String {
        match self {
            ProgramEv::Cpu(e) => e.name(),
            ProgramEv::Gpu(e) => e.name(),
        }
    }

    fn run(
        &mut self,
        rec: &RecordedVar,
        vals: &[Vec<Vec<u64>>],
        w: &dyn WeightProvider,
    ) -> Result<(TensorValues, RunStats), EvalError> {
        let mut wf = |d: &tcvar::circuit::program::TensorDecl| {
            RecordedVar::weight_encodings(w, d).map_err(|e| e.to_string())
        };
        match self {
            ProgramEv::Cpu(e) => e.run(&rec.program, vals, &mut wf),
            ProgramEv::Gpu(e) => e.run(&rec.program, vals, &mut wf),
        }
    }
}

/// The program evaluators chosen by `--backend`, with the line explaining the choice.
fn program_evaluators(
    backend: Backend,
    opts: &ProgramOptions,
) -> Result<(Vec<ProgramEv>, String), CliError> {
    common::choose(
        backend,
        || Ok(ProgramEv::Cpu(CpuProgramEvaluator::new(opts.clone()))),
        || -> Result<ProgramEv, EvalError> {
            let g = GpuOptions::default();
            let ctx = Arc::new(GpuContext::new(&g)?);
            Ok(ProgramEv::Gpu(GpuProgramEvaluator::with_context(
                ctx,
                &g,
                opts.clone(),
            )))
        },
        |e| e.name(),
    )
}

fn json_u128(x: u128) -> serde_json::Value {
    // Counts beyond u64 (the released models' fan-in) are written as floats.
    u64::try_from(x).map_or_else(|_| serde_json::json!(x as f64), |v| serde_json::json!(v))
}

/// One circuit evaluator's result: its name, statistics and mismatching instances.
type EvResult = (String, RunStats, Option<usize>);

/// The recorded program, its evaluation by each evaluator, and their outputs.
struct CircuitRun {
    rec: RecordedVar,
    why: String,
    results: Vec<EvResult>,
    first_out: Option<Vec<VarOutput>>,
}

/// Record the program, refuse what the budget cannot hold, evaluate with every evaluator of
/// `backend` and compare with `refs`.
fn circuit(
    s: &Setup,
    a: &RunArgs,
    backend: Backend,
    refs: Option<&Refs>,
    show: bool,
) -> Result<CircuitRun, CliError> {
    let rec = record_with(
        &s.cfg,
        s.w.as_ref(),
        CompileOptions {
            progress: show,
            until: s.until,
        },
    )
    .map_err(|e| CliError::User(format!("cannot record {}: {e}", s.label)))?;
    // Refuse up front what the evaluation could not hold.
    let need = tensor_peak_bytes(&rec.program, s.batch).saturating_add(s.host_bytes);
    if need > s.budget as u128 {
        return Err(refuse(
            "tensor values, inputs and outputs at its peak",
            s.batch,
            need,
            a,
        ));
    }
    let vals = rec
        .input_values(&s.inputs)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    let opts = ProgramOptions {
        memory_budget_bytes: s.budget,
        progress: show,
        ..Default::default()
    };
    let (mut evs, why) = program_evaluators(backend, &opts)?;
    if !a.json {
        println!("backend: {why}");
    }
    let mut results = Vec::new();
    let mut first_out: Option<Vec<VarOutput>> = None;
    for ev in evs.iter_mut() {
        let name = ev.name();
        let (out, st) = ev.run(&rec, &vals, s.w.as_ref()).map_err(|e| match e {
            EvalError::LimitExceeded { .. } | EvalError::NoAdapter(_) => {
                CliError::User(format!("{name}: {e}"))
            }
            e => CliError::Failure(format!("{name}: {e}")),
        })?;
        let got = rec
            .outputs(&out)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        let mismatches = refs.map(|r| got.iter().zip(r).filter(|(g, r)| **g != r.0).count());
        results.push((name, st, mismatches));
        first_out.get_or_insert(got);
    }
    Ok(CircuitRun {
        rec,
        why,
        results,
        first_out,
    })
}

/// The summary of a run (the `--json` object and `summary.json`).
fn summary(
    s: &Setup,
    c: Option<&CircuitRun>,
    refs: Option<&Refs>,
    reference_seconds: f64,
) -> Result<serde_json::Value, CliError> {
    let cfg = &s.cfg;
    let max_err = refs.and_then(|r| r.iter().filter_map(|x| x.1).reduce(f64::max));
    let all_exact = c.is_some_and(|c| c.results.iter().all(|r| r.2 == Some(0)));
    let mut v = serde_json::json!({
        "config": s.label, "p": cfg.fmt.p(), "q": cfg.fmt.q(), "patch_nums": cfg.patch_nums,
        "blocks": cfg.depth, "width": cfg.width,
        "var_config": shape::config_json(cfg), "config_inferred_from_weights": s.inferred,
        "until": match s.until { Until::Tokens => "tokens", Until::Image => "image" },
        "batch": s.batch,
        "reference_seconds": reference_seconds,
        "max_abs_error_vs_f32": max_err,
        "memory_budget_bytes": s.budget,
        "peak_rss_bytes": peak_rss_bytes(),
        "backend": "reference",
        "bit_exact": serde_json::Value::Null,
    });
    let Some(c) = c else { return Ok(v) };
    let counts = c.rec.program.counts();
    let ph = phases(&c.rec.program);
    let rate = |st: &RunStats, x: u128| x as f64 / st.seconds.max(1e-12);
    let first = c.results.first().map(|r| r.1).unwrap_or_default();
    type Phase = (String, u128, u128, u32);
    let by = |f: &dyn Fn(&Phase) -> serde_json::Value| {
        ph.iter()
            .map(|p| (p.0.clone(), f(p)))
            .collect::<serde_json::Map<_, _>>()
    };
    let circuit = serde_json::json!({
        "backend": c.results.iter().map(|r| r.0.clone()).collect::<Vec<_>>().join(", "),
        "backend_reason": c.why,
        "gates": json_u128(counts.gates), "terms": json_u128(counts.terms),
        "fan_in": json_u128(counts.fan_in), "depth": c.rec.program.depth(),
        "templates": c.rec.program.templates.len(), "applications": counts.applications,
        "instances": json_u128(counts.instances),
        "depth_by_phase": by(&|p| serde_json::json!(p.3)),
        "gates_by_phase": by(&|p| json_u128(p.1)),
        "terms_by_phase": by(&|p| json_u128(p.2)),
        "record_seconds": c.rec.record_seconds, "template_seconds": c.rec.template_seconds,
        "build_seconds": c.rec.record_seconds,
        "eval_seconds": first.seconds,
        "gate_evals": json_u128(first.gate_evals),
        "gate_evals_per_second": rate(&first, first.gate_evals),
        "term_evals_per_second": rate(&first, first.term_evals),
        "evaluators": c.results.iter().map(|(n, st, m)| serde_json::json!({"evaluator": n,
            "eval_seconds": st.seconds, "gather_seconds": st.gather_seconds,
            "gate_evals_per_second": rate(st, st.gate_evals),
            "term_evals_per_second": rate(st, st.term_evals),
            "peak_tensor_bytes": st.peak_tensor_bytes, "peak_chunk_bytes": st.peak_chunk_bytes,
            "backend_bytes": st.backend_bytes, "chunks": st.chunks,
            "mismatches": m})).collect::<Vec<_>>(),
        "bit_exact": if refs.is_some() { serde_json::json!(all_exact) } else { serde_json::Value::Null },
    });
    if let (Some(o), serde_json::Value::Object(add)) = (v.as_object_mut(), circuit) {
        o.extend(add);
    }
    Ok(v)
}

/// Write the `--out` files (the images only for a pass `until` the image); the list of names
/// written.
pub fn write_out(
    dir: &std::path::Path,
    cfg: &VarConfig,
    until: Until,
    outs: Option<&[VarOutput]>,
    summary: &serde_json::Value,
) -> Result<Vec<&'static str>, CliError> {
    let mut wrote = Vec::new();
    if let Some(outs) = outs {
        if until == Until::Image {
            outputs::png_grid(&dir.join("images.png"), cfg, outs)?;
            outputs::write_npy(&dir.join("images.npy"), cfg, outs)?;
            wrote.extend(["images.png", "images.npy"]);
        }
        outputs::write_tokens(&dir.join("tokens.json"), outs)?;
        wrote.push("tokens.json");
    }
    std::fs::write(dir.join("summary.json"), format!("{summary:#}\n"))
        .map_err(|e| CliError::User(format!("cannot write summary: {e}")))?;
    wrote.push("summary.json");
    Ok(wrote)
}

/// `tcvar run`.
pub fn run(a: &RunArgs) -> Result<Outcome, CliError> {
    // MPI hook (feature `mpi`): under mpirun the run is shared over the ranks.
    #[cfg(feature = "mpi")]
    if let Some(r) = crate::distributed::hook(a) {
        return r;
    }
    let s = setup(a)?;
    let show = common::progress_allowed(a.quiet, a.json);
    let backend = a.backend.circuit();
    let t = Instant::now();
    // The reference alone always runs its pass; --no-check then skips the f32 comparison.
    let refs = match (backend, a.no_check) {
        (Some(_), true) => None,
        (Some(_), false) => Some(references(&s, true, show)?),
        (None, no_check) => Some(references(&s, !no_check, show)?),
    };
    let reference_seconds = t.elapsed().as_secs_f64();
    let c = match backend {
        Some(b) => Some(circuit(&s, a, b, refs.as_ref(), show)?),
        None => None,
    };
    let summary = summary(&s, c.as_ref(), refs.as_ref(), reference_seconds)?;
    let outs: Option<Vec<VarOutput>> = match &c {
        Some(c) => c.first_out.clone(),
        None => refs
            .as_ref()
            .map(|r| r.iter().map(|x| x.0.clone()).collect()),
    };
    let wrote = match &a.out {
        Some(dir) => write_out(dir, &s.cfg, s.until, outs.as_deref(), &summary)?,
        None => Vec::new(),
    };
    if a.json {
        println!("{summary}");
    } else {
        print_text(a, &s, c.as_ref(), &summary, &wrote);
    }
    let differs = |c: &CircuitRun| c.results.iter().any(|r| matches!(r.2, Some(m) if m > 0));
    Ok(if c.as_ref().is_some_and(differs) {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}

/// The text summary.
fn print_text(
    a: &RunArgs,
    s: &Setup,
    c: Option<&CircuitRun>,
    summary: &serde_json::Value,
    wrote: &[&str],
) {
    let cfg = &s.cfg;
    let fmt = cfg.fmt;
    if s.inferred {
        println!("configuration: {}", shape::config_json(cfg));
    }
    println!(
        "config {} in {fmt}: {} scales {:?}, width {}, {} blocks, {} heads, vocabulary {}, {} sampling{}, up to the {}",
        s.label,
        cfg.num_scales(),
        cfg.patch_nums,
        cfg.width,
        cfg.depth,
        cfg.heads,
        cfg.vocab,
        cfg.sampling,
        cfg.cfg_scale.map_or(String::new(), |t| format!(", guidance {t}")),
        match s.until {
            Until::Tokens => "token maps".to_string(),
            Until::Image => format!("{0}x{0} image", cfg.image_side()),
        }
    );
    if let Some(c) = c {
        print_circuit(s, c);
    } else {
        println!("backend: the F(p,q) reference pass alone (--backend reference), no circuit");
    }
    let reference_seconds = summary["reference_seconds"].as_f64().unwrap_or(0.0);
    if c.is_none() || !a.no_check {
        print!("reference passes: {reference_seconds:.2} s");
        match summary["max_abs_error_vs_f32"].as_f64() {
            Some(e) => println!("; max |image error| of {fmt} against f32 (same tokens): {e:.4}"),
            None => println!(),
        }
    }
    if let Some(m) = peak_rss_bytes() {
        println!(
            "peak resident memory: {:.1} MiB",
            m as f64 / (1u64 << 20) as f64
        );
    }
    if let Some(dir) = &a.out {
        let names: Vec<String> = wrote
            .iter()
            .map(|n| format!("{}/{n}", dir.display()))
            .collect();
        println!("wrote {}", names.join(", "));
    }
}

/// The circuit's part of the text summary.
fn print_circuit(s: &Setup, c: &CircuitRun) {
    let counts = c.rec.program.counts();
    println!(
        "program: {} templates, {} applications; circuit: {:.4e} gates, {:.4e} terms, fan-in {:.4e}, depth {}; recorded in {:.2} s",
        c.rec.program.templates.len(),
        counts.applications,
        counts.gates as f64,
        counts.terms as f64,
        counts.fan_in as f64,
        c.rec.program.depth(),
        c.rec.record_seconds
    );
    for (p, g, t, d) in &phases(&c.rec.program) {
        println!(
            "  phase {p:<16} depth {d:>5}  gates {:>11.4e}  terms {:>11.4e}",
            *g as f64, *t as f64
        );
    }
    let rate = |st: &RunStats, x: u128| x as f64 / st.seconds.max(1e-12);
    for (name, st, mm) in &c.results {
        println!(
            "{name}: {} instances in {:.3} s ({:.3} s gather/scatter), {:.3e} gate-evals/s, {:.3e} term-evals/s, {}",
            s.batch,
            st.seconds,
            st.gather_seconds,
            rate(st, st.gate_evals),
            rate(st, st.term_evals),
            match mm {
                None => "not checked (--no-check)".to_string(),
                Some(0) => "every output equals the F(p,q) reference bit for bit".to_string(),
                Some(m) => format!("{m} of {} instances DIFFER from the reference", s.batch),
            }
        );
    }
}
