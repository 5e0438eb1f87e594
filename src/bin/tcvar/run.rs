//! `tcvar run`: compile a VAR configuration into one threshold circuit, evaluate a batch of
//! (class, noise) inputs on the GPU (or the CPU), cross-check every output bit against the
//! F(p, q) reference pass, measure the format's error against the f32 model, and report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use tcvar::float::Format;
use tcvar::model::var::config::{Sampling, VarConfig, PRESETS};
use tcvar::model::var::pass::{
    compile_with, record_with, var_f32, var_reference, CompileOptions, VarInput, VarOutput,
};
use tcvar::model::var::weights::VarWeights;

use crate::common::{self, Backend, CliError, Outcome};

/// The default configuration of `tcvar run`: the largest preset that builds in about a minute
/// on two cores (see BENCHMARKS.md for the measured build times).
pub const DEFAULT_CONFIG: &str = "micro";

/// `tcvar run` options.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Configuration preset (micro, tiny, d16, d20, d24, d30).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: String,
    /// Override the preset's significand bits p.
    #[arg(long)]
    pub p: Option<u32>,
    /// Override the preset's exponent bits q.
    #[arg(long)]
    pub q: Option<u32>,
    /// Number of (class, noise) inputs evaluated in one batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Evaluator: auto (GPU when an adapter exists, else CPU), cpu, gpu, both.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Weights in a safetensors file with the reference implementation's tensor names
    /// (default: deterministic weights from --seed).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Seed of the generated weights and of the sampling noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the images as one PNG grid, and the summary as JSON, into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Refuse configurations whose estimated gate count is above this (a build holds a few
    /// hundred bytes per gate: the default keeps within a 24 GiB machine).
    #[arg(long, default_value_t = 40_000_000.0)]
    pub max_gates: f64,
}

impl RunArgs {
    /// The defaults of plain `tcvar`.
    pub fn default_args() -> RunArgs {
        RunArgs {
            config: DEFAULT_CONFIG.into(),
            p: None,
            q: None,
            batch: 256,
            backend: Backend::Auto,
            weights: None,
            seed: 0,
            out: None,
            json: false,
            quiet: false,
            max_gates: 40_000_000.0,
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

/// `tcvar run`.
pub fn run(a: &RunArgs) -> Result<Outcome, CliError> {
    if !PRESETS.contains(&a.config.as_str()) {
        return Err(CliError::User(format!(
            "unknown configuration {:?}; presets: {}",
            a.config,
            PRESETS.join(", ")
        )));
    }
    let cfg = config(&a.config, a.p, a.q)?;
    if a.batch == 0 {
        return Err(CliError::User("--batch must be at least 1".into()));
    }
    let fmt: Format = cfg.fmt;
    let w = weights(&cfg, a.weights.as_deref(), a.seed)?;
    let show = common::progress_allowed(a.quiet, a.json);
    let opts = CompileOptions {
        progress: show,
        until: tcvar::model::var::pass::Until::Image,
    };
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            ..opts
        },
    )
    .map_err(|e| CliError::User(format!("cannot record {}: {e}", a.config)))?;
    let gates = rec.program.counts().gates;
    if gates as f64 > a.max_gates {
        return Err(CliError::User(format!(
            "config {}: {gates} gates (uniform program), above --max-gates {:.1e}",
            a.config, a.max_gates
        )));
    }
    let compiled = compile_with(&cfg, &w, opts)
        .map_err(|e| CliError::User(format!("cannot build {}: {e}", a.config)))?;
    let circuit = &compiled.circuit;
    let t = Instant::now();
    let lv = circuit.levelize();
    let levelize_seconds = t.elapsed().as_secs_f64();
    let stats = circuit.stats_with_levelized(&lv);
    let regions = circuit.region_stats();
    let phases: Vec<(String, u32, u64)> = regions
        .iter()
        .filter(|(path, _)| !path.is_empty() && !path.contains('.'))
        .map(|(path, s)| (path.clone(), s.depth, s.gates))
        .collect();

    let inputs = inputs(&cfg, a.batch, a.seed);
    let batch = compiled
        .pack_inputs(&inputs)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    let pb = common::spinner(show, "reference passes (F(p,q) and f32)");
    let t = Instant::now();
    let refs: Vec<(VarOutput, f64)> = inputs
        .par_iter()
        .map(|inp| {
            let r = var_reference(&cfg, &w, inp)?;
            let (_, img32) = var_f32(&cfg, &w, inp, Some(&r.tokens))?;
            let err = r
                .image
                .iter()
                .zip(&img32)
                .map(|(&bits, &f)| {
                    let v = fmt.from_bits(bits).map(|v| v.to_f64()).unwrap_or(f64::NAN);
                    (v - f as f64).abs()
                })
                .fold(0.0f64, f64::max);
            Ok((r, err))
        })
        .collect::<Result<_, tcvar::model::ModelError>>()
        .map_err(|e| CliError::Failure(e.to_string()))?;
    let reference_seconds = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let max_err = refs.iter().map(|r| r.1).fold(0.0f64, f64::max);

    let (mut evs, why) = common::evaluators(a.backend, &lv)?;
    if !a.json {
        println!("backend: {why}");
    }
    let mut results = Vec::new();
    let mut all_exact = true;
    let mut first_out: Option<Vec<VarOutput>> = None;
    for ev in evs.iter_mut() {
        let pb = common::spinner(
            show,
            &format!("evaluating {} instances on {}", a.batch, ev.name()),
        );
        let (out, secs) = common::timed_eval(ev.as_mut(), &batch)?;
        pb.finish_and_clear();
        let got = compiled
            .unpack_outputs(&out)
            .map_err(|e| CliError::Failure(e.to_string()))?;
        let mismatches = got.iter().zip(&refs).filter(|(g, r)| **g != r.0).count();
        all_exact &= mismatches == 0;
        let geps = stats.gates as f64 * a.batch as f64 / secs.max(1e-12);
        results.push((ev.name(), secs, geps, mismatches));
        first_out.get_or_insert(got);
    }

    let summary = serde_json::json!({
        "config": a.config, "p": fmt.p(), "q": fmt.q(), "batch": a.batch,
        "backend": results.iter().map(|r| r.0.clone()).collect::<Vec<_>>().join(", "),
        "backend_reason": why,
        "gates": stats.gates, "wires": stats.wires, "depth": stats.depth,
        "forms": stats.forms, "form_terms": stats.form_terms,
        "depth_by_phase": phases.iter().map(|(p, d, _)| (p.clone(), serde_json::json!(d))).collect::<serde_json::Map<_, _>>(),
        "gates_by_phase": phases.iter().map(|(p, _, g)| (p.clone(), serde_json::json!(g))).collect::<serde_json::Map<_, _>>(),
        "build_seconds": compiled.build_seconds, "levelize_seconds": levelize_seconds,
        "reference_seconds": reference_seconds,
        "eval_seconds": results.first().map(|r| r.1).unwrap_or(0.0),
        "gate_evals_per_second": results.first().map(|r| r.2).unwrap_or(0.0),
        "evaluators": results.iter().map(|(n, s, g, m)| serde_json::json!({"evaluator": n,
            "eval_seconds": s, "gate_evals_per_second": g, "mismatches": m})).collect::<Vec<_>>(),
        "bit_exact": all_exact, "max_abs_error_vs_f32": max_err,
    });
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::User(format!("cannot create {}: {e}", dir.display())))?;
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
        std::fs::write(dir.join("summary.json"), format!("{summary:#}\n"))
            .map_err(|e| CliError::User(format!("cannot write summary: {e}")))?;
    }
    if a.json {
        println!("{summary}");
    } else {
        println!(
            "config {} in {fmt}: {} scales {:?}, width {}, {} blocks, vocabulary {}, image {}x{}",
            a.config,
            cfg.num_scales(),
            cfg.patch_nums,
            cfg.width,
            cfg.depth,
            cfg.vocab,
            cfg.image_side(),
            cfg.image_side()
        );
        println!(
            "circuit: {} gates, {} wires, {} forms, depth {}; built in {:.2} s (+ {:.2} s levelize)",
            stats.gates, stats.wires, stats.forms, stats.depth, compiled.build_seconds, levelize_seconds
        );
        for (p, d, g) in &phases {
            println!("  phase {p:<16} depth {d:>4}  gates {g:>12}");
        }
        for (name, secs, geps, mm) in &results {
            println!(
                "{name}: {} instances in {:.3} s, {:.3e} gate-evals/s, {}",
                a.batch,
                secs,
                geps,
                if *mm == 0 {
                    "every output (tokens and image) equals the F(p,q) reference bit for bit"
                        .to_string()
                } else {
                    format!("{mm} of {} instances DIFFER from the reference", a.batch)
                }
            );
        }
        println!(
            "reference passes: {:.2} s; max |image error| of {fmt} against f32 (same tokens): {:.4}",
            reference_seconds, max_err
        );
        if let Some(dir) = &a.out {
            println!(
                "wrote {}/images.png and {}/summary.json",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(if all_exact {
        Outcome::Ok
    } else {
        Outcome::Mismatch
    })
}
