//! `tcvar run`: record a VAR configuration as a uniform program of circuit templates, evaluate
//! a batch of (class, noise) inputs template by template on the GPU (or the CPU), cross-check
//! every output bit against the F(p, q) reference pass, measure the format's error against the
//! f32 model, and report gates, terms, wires and depth per phase with the evaluation rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use tcvar::eval::gpu::{GpuContext, GpuOptions};
use tcvar::eval::program::{
    tensor_peak_bytes, CpuProgramEvaluator, GpuProgramEvaluator, ProgramOptions, RunStats,
    TensorValues,
};
use tcvar::eval::EvalError;
use tcvar::float::Format;
use tcvar::model::ops::weights::SeededWeights;
use tcvar::model::ops::WeightProvider;
use tcvar::model::var::config::{Sampling, VarConfig, PRESETS};
use tcvar::model::var::pass::{
    record_with, var_f32, var_reference_until, CompileOptions, RecordedVar, Until, VarInput,
    VarOutput,
};
use tcvar::model::var::weights::VarWeights;

use crate::common::{self, Backend, CliError, Outcome};
use crate::stats::{peak_rss_bytes, phases, ScopeArgs, UntilArg};

/// The default configuration of `tcvar run`.
pub const DEFAULT_CONFIG: &str = "micro";

/// `tcvar run` options.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Number of (class, noise) inputs evaluated in one batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Evaluator: auto (GPU when an adapter exists, else CPU), cpu, gpu, both.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Weights in a safetensors file with the reference implementation's tensor names
    /// (default: deterministic weights from --seed, generated tensor by tensor when used).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Seed of the generated weights and of the sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Host memory the evaluation may hold at once, in GiB (tensor values, weights in use, lane
    /// batches); a run that needs more is refused before it starts, with the figure it needs.
    #[arg(long, default_value_t = 8.0)]
    pub memory_budget: f64,
    /// Skip the reference passes (no bit-exactness check; `bit_exact` is null).
    #[arg(long)]
    pub no_check: bool,
    /// Write the images as one PNG grid, and the summary as JSON, into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
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
            batch: 256,
            backend: Backend::Auto,
            weights: None,
            seed: 0,
            memory_budget: 8.0,
            no_check: false,
            out: None,
            json: false,
            quiet: false,
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

/// The weights: from `--weights`, or seeded.
pub fn weights(cfg: &VarConfig, path: Option<&Path>, seed: u64) -> Result<VarWeights, CliError> {
    match path {
        Some(p) => VarWeights::load_safetensors(cfg, p)
            .map_err(|e| CliError::User(format!("--weights {}: {e}", p.display()))),
        None => VarWeights::seeded(cfg, seed).map_err(|e| CliError::Failure(e.to_string())),
    }
}

/// `batch` inputs: classes in turn, uniforms from a seeded generator.
pub fn inputs(cfg: &VarConfig, batch: usize, seed: u64) -> Vec<VarInput> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_7c0a);
    (0..batch)
        .map(|i| VarInput {
            class: i % cfg.num_classes,
            uniforms: match cfg.sampling {
                Sampling::Argmax => Vec::new(),
                Sampling::TopK { .. } => (0..cfg.total_tokens())
                    .map(|_| rng.random_range(0.0..1.0))
                    .collect(),
            },
        })
        .collect()
}

fn png_grid(path: &Path, cfg: &VarConfig, images: &[Vec<f64>]) -> Result<(), CliError> {
    let side = cfg.image_side();
    let ch = cfg.vae_out_ch;
    // Small images are magnified (nearest neighbour) to at least 64 pixels a side.
    let zoom = (64 / side.max(1)).max(1);
    let cell = side * zoom;
    let n = images.len().min(64);
    let cols = (n as f64).sqrt().ceil().max(1.0) as usize;
    let rows = n.div_ceil(cols).max(1);
    let (w, h) = (cols * (cell + 2) + 2, rows * (cell + 2) + 2);
    let mut px = vec![32u8; w * h * 3];
    for (k, img) in images.iter().take(n).enumerate() {
        let (gx, gy) = (2 + (k % cols) * (cell + 2), 2 + (k / cols) * (cell + 2));
        for y in 0..cell {
            for x in 0..cell {
                for c in 0..3 {
                    let v = img[(c.min(ch - 1)) * side * side + (y / zoom) * side + x / zoom];
                    // [-1, 1] -> [0, 1] -> [0, 255], as the reference implementation's output.
                    let u = ((v * 0.5 + 0.5).clamp(0.0, 1.0) * 255.0).round() as u8;
                    px[((gy + y) * w + gx + x) * 3 + c] = u;
                }
            }
        }
    }
    let f = std::fs::File::create(path)
        .map_err(|e| CliError::User(format!("cannot write {}: {e}", path.display())))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc
        .write_header()
        .map_err(|e| CliError::Failure(format!("PNG: {e}")))?;
    wr.write_image_data(&px)
        .map_err(|e| CliError::Failure(format!("PNG: {e}")))?;
    Ok(())
}

/// The weights as a provider: from `--weights` (loaded and checked up front), or generated
/// from the seed tensor by tensor when the pass asks for them.
pub fn provider(
    cfg: &VarConfig,
    path: Option<&Path>,
    seed: u64,
) -> Result<Box<dyn WeightProvider>, CliError> {
    Ok(match path {
        Some(_) => Box::new(weights(cfg, path, seed)?),
        None => {
            Box::new(SeededWeights::new(cfg, seed).map_err(|e| CliError::Failure(e.to_string()))?)
        }
    })
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
    // Counts beyond u64 (the released models' wires) are written as floats.
    u64::try_from(x).map_or_else(|_| serde_json::json!(x as f64), |v| serde_json::json!(v))
}

/// `tcvar run`.
pub fn run(a: &RunArgs) -> Result<Outcome, CliError> {
    // MPI hook (feature `mpi`): under mpirun the run is shared over the ranks.
    #[cfg(feature = "mpi")]
    if let Some(r) = crate::distributed::hook(a) {
        return r;
    }
    if !PRESETS.contains(&a.scope.config.as_str()) {
        return Err(CliError::User(format!(
            "unknown configuration {:?}; presets: {}",
            a.scope.config,
            PRESETS.join(", ")
        )));
    }
    let cfg = a.scope.config()?;
    if a.batch == 0 {
        return Err(CliError::User("--batch must be at least 1".into()));
    }
    if !(a.memory_budget.is_finite() && a.memory_budget > 0.0) {
        return Err(CliError::User(format!(
            "--memory-budget {}: a positive number of GiB is needed",
            a.memory_budget
        )));
    }
    let budget = (a.memory_budget * (1u64 << 30) as f64).min(u64::MAX as f64) as u64;
    let until: Until = a.scope.until.into();
    let fmt: Format = cfg.fmt;
    let w = provider(&cfg, a.weights.as_deref(), a.seed)?;
    let show = common::progress_allowed(a.quiet, a.json);
    let rec = record_with(
        &cfg,
        w.as_ref(),
        CompileOptions {
            progress: show,
            until,
        },
    )
    .map_err(|e| CliError::User(format!("cannot record {}: {e}", a.scope.config)))?;
    let counts = rec.program.counts();
    let depth = rec.program.depth();
    let ph = phases(&rec.program);
    // Refuse up front what the evaluation could not hold.
    let need = tensor_peak_bytes(&rec.program, a.batch);
    if need > budget as u128 {
        return Err(CliError::User(format!(
            "a batch of {} needs {need} bytes ({:.3} GiB) of tensor values at its peak, above --memory-budget {} GiB",
            a.batch,
            need as f64 / (1u64 << 30) as f64,
            a.memory_budget
        )));
    }

    let inputs = inputs(&cfg, a.batch, a.seed);
    let vals = rec
        .input_values(&inputs)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    let t = Instant::now();
    let refs: Option<Vec<(VarOutput, Option<f64>)>> = if a.no_check {
        None
    } else {
        let pb = common::spinner(show, "reference passes (F(p,q) and f32)");
        let r = inputs
            .par_iter()
            .map(|inp| {
                let r = var_reference_until(&cfg, w.as_ref(), inp, until)?;
                let err = if until == Until::Image {
                    let (_, img32) = var_f32(&cfg, w.as_ref(), inp, Some(&r.tokens))?;
                    Some(
                        r.image
                            .iter()
                            .zip(&img32)
                            .map(|(&bits, &f)| {
                                let v = fmt.from_bits(bits).map(|v| v.to_f64()).unwrap_or(f64::NAN);
                                (v - f as f64).abs()
                            })
                            .fold(0.0f64, f64::max),
                    )
                } else {
                    None
                };
                Ok((r, err))
            })
            .collect::<Result<_, tcvar::model::ModelError>>()
            .map_err(|e| CliError::Failure(e.to_string()))?;
        pb.finish_and_clear();
        Some(r)
    };
    let reference_seconds = t.elapsed().as_secs_f64();
    let max_err = refs
        .as_ref()
        .and_then(|r| r.iter().filter_map(|x| x.1).reduce(f64::max));

    let opts = ProgramOptions {
        memory_budget_bytes: budget,
        progress: show,
        ..Default::default()
    };
    let (mut evs, why) = program_evaluators(a.backend, &opts)?;
    if !a.json {
        println!("backend: {why}");
    }
    let mut results = Vec::new();
    let mut all_exact = true;
    let mut first_out: Option<Vec<VarOutput>> = None;
    for ev in evs.iter_mut() {
        let name = ev.name();
        let (out, st) = ev.run(&rec, &vals, w.as_ref()).map_err(|e| match e {
            EvalError::LimitExceeded { .. } | EvalError::NoAdapter(_) => {
                CliError::User(format!("{name}: {e}"))
            }
            e => CliError::Failure(format!("{name}: {e}")),
        })?;
        let got = rec
            .outputs(&out)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        let mismatches = refs
            .as_ref()
            .map(|r| got.iter().zip(r).filter(|(g, r)| **g != r.0).count());
        all_exact &= mismatches == Some(0);
        results.push((name, st, mismatches));
        first_out.get_or_insert(got);
    }
    let rate = |st: &RunStats, x: u128| x as f64 / st.seconds.max(1e-12);
    let first = results.first().map(|r| r.1).unwrap_or_default();
    type Phase = (String, u128, u128, u32);
    let by = |f: &dyn Fn(&Phase) -> serde_json::Value| {
        ph.iter()
            .map(|p| (p.0.clone(), f(p)))
            .collect::<serde_json::Map<_, _>>()
    };
    let summary = serde_json::json!({
        "config": a.scope.config, "p": fmt.p(), "q": fmt.q(), "patch_nums": cfg.patch_nums,
        "blocks": cfg.depth, "width": cfg.width,
        "until": match until { Until::Tokens => "tokens", Until::Image => "image" },
        "batch": a.batch,
        "backend": results.iter().map(|r| r.0.clone()).collect::<Vec<_>>().join(", "),
        "backend_reason": why,
        "gates": json_u128(counts.gates), "terms": json_u128(counts.terms),
        "wires": json_u128(counts.wires), "depth": depth,
        "templates": rec.program.templates.len(), "applications": counts.applications,
        "instances": json_u128(counts.instances),
        "depth_by_phase": by(&|p| serde_json::json!(p.3)),
        "gates_by_phase": by(&|p| json_u128(p.1)),
        "terms_by_phase": by(&|p| json_u128(p.2)),
        "record_seconds": rec.record_seconds, "template_seconds": rec.template_seconds,
        "build_seconds": rec.record_seconds,
        "reference_seconds": reference_seconds,
        "eval_seconds": first.seconds,
        "gate_evals": json_u128(first.gate_evals),
        "gate_evals_per_second": rate(&first, first.gate_evals),
        "term_evals_per_second": rate(&first, first.term_evals),
        "evaluators": results.iter().map(|(n, st, m)| serde_json::json!({"evaluator": n,
            "eval_seconds": st.seconds, "gather_seconds": st.gather_seconds,
            "gate_evals_per_second": rate(st, st.gate_evals),
            "term_evals_per_second": rate(st, st.term_evals),
            "peak_tensor_bytes": st.peak_tensor_bytes, "peak_chunk_bytes": st.peak_chunk_bytes,
            "backend_bytes": st.backend_bytes, "chunks": st.chunks,
            "mismatches": m})).collect::<Vec<_>>(),
        "bit_exact": if refs.is_some() { serde_json::json!(all_exact) } else { serde_json::Value::Null },
        "max_abs_error_vs_f32": max_err,
        "memory_budget_bytes": budget,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::User(format!("cannot create {}: {e}", dir.display())))?;
        if until == Until::Image {
            let images: Vec<Vec<f64>> = first_out
                .iter()
                .flatten()
                .map(|o| {
                    o.image
                        .iter()
                        .map(|&b| fmt.from_bits(b).map(|v| v.to_f64()).unwrap_or(0.0))
                        .collect()
                })
                .collect();
            png_grid(&dir.join("images.png"), &cfg, &images)?;
        }
        std::fs::write(dir.join("summary.json"), format!("{summary:#}\n"))
            .map_err(|e| CliError::User(format!("cannot write summary: {e}")))?;
    }
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "config {} in {fmt}: {} scales {:?}, width {}, {} blocks, vocabulary {}, up to the {}",
            a.scope.config,
            cfg.num_scales(),
            cfg.patch_nums,
            cfg.width,
            cfg.depth,
            cfg.vocab,
            match until {
                Until::Tokens => "token maps".to_string(),
                Until::Image => format!("{0}x{0} image", cfg.image_side()),
            }
        );
        println!(
            "program: {} templates, {} applications; circuit: {:.4e} gates, {:.4e} terms, {:.4e} wires, depth {depth}; recorded in {:.2} s",
            rec.program.templates.len(),
            counts.applications,
            counts.gates as f64,
            counts.terms as f64,
            counts.wires as f64,
            rec.record_seconds
        );
        for (p, g, t, d) in &ph {
            println!(
                "  phase {p:<16} depth {d:>5}  gates {:>11.4e}  terms {:>11.4e}",
                *g as f64, *t as f64
            );
        }
        for (name, st, mm) in &results {
            println!(
                "{name}: {} instances in {:.3} s ({:.3} s gather/scatter), {:.3e} gate-evals/s, {:.3e} term-evals/s, {}",
                a.batch,
                st.seconds,
                st.gather_seconds,
                rate(st, st.gate_evals),
                rate(st, st.term_evals),
                match mm {
                    None => "not checked (--no-check)".to_string(),
                    Some(0) => "every output equals the F(p,q) reference bit for bit".to_string(),
                    Some(m) => format!("{m} of {} instances DIFFER from the reference", a.batch),
                }
            );
        }
        if refs.is_some() {
            print!("reference passes: {reference_seconds:.2} s");
            match max_err {
                Some(e) => {
                    println!("; max |image error| of {fmt} against f32 (same tokens): {e:.4}")
                }
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
            if until == Until::Image {
                println!("wrote {0}/images.png and {0}/summary.json", dir.display());
            } else {
                println!("wrote {}/summary.json", dir.display());
            }
        }
    }
    Ok(if refs.is_none() || all_exact {
        Outcome::Ok
    } else {
        Outcome::Mismatch
    })
}
