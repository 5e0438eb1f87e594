//! `tcvar run` under MPI (cargo feature `mpi`): `mpirun -np N tcvar run ...` shares the batch
//! (`--mpi-split batch`, the default) or the instances of every large template application
//! (`--mpi-split instances`) over the ranks. Every rank records the program, evaluates its
//! share on its own GPU (picked by local rank) or CPU, and checks its share of the batch
//! against the F(p, q) reference; rank 0 gathers the per-rank figures and prints one summary.
//! The protocol that keeps the ranks at the same collectives is in `tcvar::eval::distributed`.

use std::sync::Arc;
use std::time::Instant;

use clap::{Args, ValueEnum};
use rayon::prelude::*;
use tcvar::eval::distributed::{launched_by_mpi, share, Cluster, MpiInstanceSplit};
use tcvar::eval::gpu::GpuContext;
use tcvar::eval::program::{
    tensor_peak_bytes, CpuProgramEvaluator, GpuProgramEvaluator, InstanceSplit, ProgramEvaluator,
    ProgramOptions, RunStats, TemplateBackend, TensorValues, Whole,
};
use tcvar::eval::EvalError;
use tcvar::model::ops::WeightProvider;
use tcvar::model::var::pass::{
    record_with, var_reference_until, CompileOptions, RecordedVar, Until, VarInput, VarOutput,
};

use crate::common::{self, CliError, Outcome};
use crate::run::RunArgs;

/// How the ranks of an MPI job share a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum MpiSplit {
    /// Each rank evaluates a contiguous share of the batch.
    Batch,
    /// Each rank evaluates a share of the instances of every large template application over
    /// the whole batch; the outputs are all-gathered before the next step.
    Instances,
}

/// The MPI options of `tcvar run`.
#[derive(Args, Debug, Clone, Default)]
pub struct MpiArgs {
    /// Under mpirun: share the batch or each application's instances over the ranks (default:
    /// batch). Given without mpirun, runs as a job of one rank.
    #[arg(long, value_enum)]
    pub mpi_split: Option<MpiSplit>,
    /// With --mpi-split instances: share only applications with at least this many instances
    /// (smaller ones are evaluated whole on every rank).
    #[arg(long, default_value_t = 2)]
    pub mpi_min_instances: u64,
}

/// The hook of `tcvar run`: `Some` (the distributed run's result) when started by an MPI
/// launcher or given `--mpi-split`, and only when MPI cannot start: once it has, no rank returns.
/// Every rank exits with its status after MPI is finalised; rank 0 alone prints (the summary,
/// or the job's first error as one line).
pub fn hook(a: &RunArgs) -> Option<Result<Outcome, CliError>> {
    if a.mpi.mpi_split.is_none() && !launched_by_mpi() {
        return None;
    }
    let cluster = match Cluster::init() {
        Ok(c) => c,
        Err(e) => return Some(Err(CliError::Failure(format!("MPI: {e}")))),
    };
    share_cores(&cluster);
    let res = run(&cluster, a);
    // Rank 0 prints before MPI is finalised: a rank that exits with a non-zero status after
    // finalising may have the launcher end the job before a later message is written.
    let code = if cluster.is_root() {
        crate::common::conclude(&res)
    } else {
        match res {
            Ok(Outcome::Ok) => 0,
            Ok(Outcome::Mismatch) | Err(CliError::Failure(_)) => 1,
            Err(CliError::User(_)) => 2,
        }
    };
    let _ = std::io::Write::flush(&mut std::io::stderr());
    drop(cluster);
    std::process::exit(code);
}

/// The ranks of a node share its cores: each rank's rayon pool gets its part of them, unless
/// `RAYON_NUM_THREADS` says otherwise.
fn share_cores(c: &Cluster) {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / c.local_size().max(1)).max(1);
    // Fails only when the pool already exists; it then keeps its size.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

/// A `CliError` on the wire: its kind in the first character; `None` (this rank only learnt
/// that another failed) is the empty message, which [`Cluster::first_error`] passes over.
struct Wire(Option<CliError>);

impl std::fmt::Display for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(CliError::User(m)) => write!(f, "U{m}"),
            Some(CliError::Failure(m)) => write!(f, "F{m}"),
            None => Ok(()),
        }
    }
}

/// [`Cluster::settle`] for command-line results: the first failing rank's error on every
/// rank, naming the rank when it is not 0.
fn settle<T>(c: &Cluster, local: Result<T, Option<CliError>>, agreed: bool) -> Result<T, CliError> {
    c.settle(local.map_err(Wire), agreed, |r, m| {
        let (kind, text) = m.split_at(m.chars().next().map_or(0, char::len_utf8));
        let text = if r == 0 {
            text.to_string()
        } else {
            format!("rank {r}: {text}")
        };
        Wire(Some(match kind {
            "U" => CliError::User(text),
            _ => CliError::Failure(text),
        }))
    })
    .map_err(|w| {
        w.0.unwrap_or_else(|| CliError::Failure("a rank failed without a message".into()))
    })
}

/// A program evaluator of either kind.
enum Ev {
    Cpu(CpuProgramEvaluator),
    Gpu(GpuProgramEvaluator),
}

/// What one rank prepared: the program, the inputs, the evaluators.
struct Prepared {
    /// The configuration's name as the summary gives it.
    label: String,
    /// The whole batch (over every rank).
    batch: usize,
    cfg: tcvar::model::var::config::VarConfig,
    w: Box<dyn WeightProvider>,
    rec: RecordedVar,
    inputs: Vec<VarInput>,
    evs: Vec<Ev>,
    why: String,
    split: MpiSplit,
}

fn prepare(c: &Cluster, a: &RunArgs) -> Result<Prepared, CliError> {
    let split = a.mpi.mpi_split.unwrap_or(MpiSplit::Batch);
    let Some(backend) = a.backend.circuit() else {
        return Err(CliError::User(
            "--backend reference evaluates no circuit: nothing to share over MPI ranks".into(),
        ));
    };
    let s = crate::run::setup(a)?;
    let batch = s.batch;
    if split == MpiSplit::Batch && batch < c.size() {
        return Err(CliError::User(format!(
            "--batch {batch} is smaller than the {} MPI ranks: each rank needs at least one \
             instance (use a larger batch, fewer ranks, or --mpi-split instances)",
            c.size()
        )));
    }
    let (cfg, w, until, all, budget) = (s.cfg, s.w, s.until, s.inputs, s.budget);
    let rec = record_with(
        &cfg,
        w.as_ref(),
        CompileOptions {
            progress: false,
            until,
        },
    )
    .map_err(|e| CliError::User(format!("cannot record {}: {e}", s.label)))?;
    let inputs = match split {
        MpiSplit::Batch => {
            let r = share(batch as u64, c.size(), c.rank());
            all[r.start as usize..r.end as usize].to_vec()
        }
        MpiSplit::Instances => all,
    };
    let need = tensor_peak_bytes(&rec.program, inputs.len());
    if need > budget as u128 {
        return Err(CliError::User(format!(
            "a batch of {} on each rank needs {need} bytes ({:.3} GiB) of tensor values at its \
             peak, above --memory-budget {} GiB",
            inputs.len(),
            need as f64 / (1u64 << 30) as f64,
            a.memory_budget
        )));
    }
    let opts = ProgramOptions {
        memory_budget_bytes: budget,
        ..Default::default()
    };
    let g = c.gpu_options();
    let (evs, why) = common::choose(
        backend,
        || Ok(Ev::Cpu(CpuProgramEvaluator::new(opts.clone()))),
        || -> Result<Ev, EvalError> {
            let ctx = Arc::new(GpuContext::new(&g)?);
            Ok(Ev::Gpu(GpuProgramEvaluator::with_context(
                ctx,
                &g,
                opts.clone(),
            )))
        },
        |e| match e {
            Ev::Cpu(e) => e.name(),
            Ev::Gpu(e) => e.name(),
        },
    )?;
    Ok(Prepared {
        label: s.label,
        batch,
        cfg,
        w,
        rec,
        inputs,
        evs,
        why,
        split,
    })
}

/// One evaluator's run on this rank.
struct Local {
    name: String,
    stats: RunStats,
    exchange_seconds: f64,
    split_applications: u64,
    words_received: u64,
    /// The outputs of this rank's inputs (batch split) or of the whole batch (instance split).
    out: TensorValues,
}

/// Run one evaluator; `Err((error, agreed))`, `agreed` when an instance split's agreement
/// already found the failure.
fn evaluate<B: TemplateBackend>(
    c: &Cluster,
    ev: &mut ProgramEvaluator<B>,
    p: &Prepared,
    min_instances: u64,
) -> Result<Local, (Option<CliError>, bool)> {
    let name = ev.name();
    let vals = p
        .rec
        .input_values(&p.inputs)
        .map_err(|e| (Some(CliError::Failure(e.to_string())), false))?;
    let w = p.w.as_ref();
    let mut wf = |d: &tcvar::circuit::program::TensorDecl| {
        RecordedVar::weight_encodings(w, d).map_err(|e| e.to_string())
    };
    let mut mpi_split = MpiInstanceSplit::new(c, min_instances);
    let mut whole = Whole;
    let split: &mut dyn InstanceSplit = match p.split {
        MpiSplit::Batch => &mut whole,
        MpiSplit::Instances => &mut mpi_split,
    };
    let res = ev.run_split(&p.rec.program, &vals, &mut wf, split);
    let (agreed, remote) = (mpi_split.agreed_failure, mpi_split.remote_failure);
    let (out, stats) = res.map_err(|e| {
        if remote {
            return (None, true);
        }
        let e = match e {
            EvalError::LimitExceeded { .. } | EvalError::NoAdapter(_) => {
                CliError::User(format!("{name}: {e}"))
            }
            e => CliError::Failure(format!("{name}: {e}")),
        };
        (Some(e), agreed)
    })?;
    Ok(Local {
        name,
        stats,
        exchange_seconds: mpi_split.exchange_seconds,
        split_applications: mpi_split.split_applications,
        words_received: mpi_split.words_received,
        out,
    })
}

/// This rank's share of the reference check: the number of its batch instances whose outputs
/// differ from the reference, and the seconds the reference passes took.
fn check(c: &Cluster, a: &RunArgs, p: &Prepared, l: &Local) -> Result<(u64, f64), CliError> {
    let got = p
        .rec
        .outputs(&l.out)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    // Batch split: every output here is this rank's; instance split: check this rank's share.
    let (lo, hi) = match p.split {
        MpiSplit::Batch => (0, got.len()),
        MpiSplit::Instances => {
            let r = share(p.batch as u64, c.size(), c.rank());
            (r.start as usize, r.end as usize)
        }
    };
    let t = Instant::now();
    let until: Until = a.scope.until.into();
    let bad = (lo..hi)
        .into_par_iter()
        .map(|i| {
            let r = var_reference_until(&p.cfg, p.w.as_ref(), &p.inputs[i], until)?;
            Ok(u64::from(got[i] != r))
        })
        .collect::<Result<Vec<u64>, tcvar::model::ModelError>>()
        .map_err(|e| CliError::Failure(e.to_string()))?;
    Ok((bad.iter().sum(), t.elapsed().as_secs_f64()))
}

/// Figures gathered from every rank, per evaluator.
const FIELDS: usize = 10;

fn run(c: &Cluster, a: &RunArgs) -> Result<Outcome, CliError> {
    let t0 = Instant::now();
    let prepared = prepare(c, a).map_err(Some);
    let mut p = settle(c, prepared, false)?;
    let mut figures: Vec<f64> = Vec::new();
    let mut names = Vec::new();
    // The first evaluator's outputs of the whole batch, on rank 0 when --out is given.
    let mut first_out: Option<Vec<VarOutput>> = None;
    let mut evs = std::mem::take(&mut p.evs);
    for ev in evs.iter_mut() {
        let local = match ev {
            Ev::Cpu(e) => evaluate(c, e, &p, a.mpi.mpi_min_instances),
            Ev::Gpu(e) => evaluate(c, e, &p, a.mpi.mpi_min_instances),
        };
        let (local, agreed) = match local {
            Ok(l) => (Ok(l), false),
            Err((e, agreed)) => (Err(e), agreed),
        };
        let local = local.and_then(|l| {
            let (bad, secs) = if a.no_check {
                (0, 0.0)
            } else {
                check(c, a, &p, &l).map_err(Some)?
            };
            Ok((l, bad, secs))
        });
        let (l, bad, ref_secs) = settle(c, local, agreed)?;
        if names.is_empty() && a.out.is_some() {
            first_out = gather_outputs(c, &p, &l)?;
        }
        figures.extend_from_slice(&[
            l.stats.seconds,
            l.stats.gather_seconds,
            l.exchange_seconds,
            ref_secs,
            l.stats.gate_evals as f64,
            l.stats.term_evals as f64,
            bad as f64,
            share_len(&p, c) as f64,
            l.split_applications as f64,
            l.words_received as f64,
        ]);
        names.push(l.name);
    }
    let ranks = c.gather_f64(&figures);
    let Some(ranks) = ranks else {
        return Ok(Outcome::Ok);
    };
    report(
        c,
        a,
        &p,
        &names,
        &ranks,
        first_out.as_deref(),
        t0.elapsed().as_secs_f64(),
    )
}

/// The outputs of the whole batch on rank 0 (`None` elsewhere), from each rank's `l`: with the
/// batch split, every rank sends its share's outputs, each instance flattened to the same
/// number of words (the token maps, then the image) and the shares padded to the largest; with
/// the instance split every rank already holds the whole batch. Every rank must call it.
fn gather_outputs(
    c: &Cluster,
    p: &Prepared,
    l: &Local,
) -> Result<Option<Vec<VarOutput>>, CliError> {
    let local = p
        .rec
        .outputs(&l.out)
        .map_err(|e| Some(CliError::Failure(format!("outputs: {e}"))));
    let outs = settle(c, local, false)?;
    if p.split == MpiSplit::Instances {
        return Ok(c.is_root().then_some(outs));
    }
    // Every rank holds at least one instance (the batch is at least the number of ranks), and
    // every instance of one configuration has the same shape.
    let shape: Vec<usize> = outs[0].tokens.iter().map(Vec::len).collect();
    let image = outs[0].image.len();
    let per = shape.iter().sum::<usize>() + image;
    let most = (p.batch as u64).div_ceil(c.size() as u64) as usize;
    let mut flat = vec![0u64; most * per];
    for (o, dst) in outs.iter().zip(flat.chunks_exact_mut(per)) {
        let words = o
            .tokens
            .iter()
            .flatten()
            .map(|&t| t as u64)
            .chain(o.image.iter().copied());
        for (d, w) in dst.iter_mut().zip(words) {
            *d = w;
        }
    }
    let Some(all) = c.gather_u64(&flat) else {
        return Ok(None);
    };
    let mut whole = Vec::with_capacity(p.batch);
    for (r, words) in all.iter().enumerate() {
        let n = share(p.batch as u64, c.size(), r);
        for inst in words.chunks_exact(per).take((n.end - n.start) as usize) {
            let mut at = 0;
            let tokens = shape
                .iter()
                .map(|&k| {
                    at += k;
                    inst[at - k..at].iter().map(|&t| t as u32).collect()
                })
                .collect();
            whole.push(VarOutput {
                tokens,
                image: inst[at..].to_vec(),
            });
        }
    }
    Ok(Some(whole))
}

/// The batch instances this rank checks.
fn share_len(p: &Prepared, c: &Cluster) -> u64 {
    let r = share(p.batch as u64, c.size(), c.rank());
    r.end - r.start
}

/// Rank 0: print the summary; the outcome of the whole job.
fn report(
    c: &Cluster,
    a: &RunArgs,
    p: &Prepared,
    names: &[String],
    ranks: &[Vec<f64>],
    outs: Option<&[VarOutput]>,
    wall: f64,
) -> Result<Outcome, CliError> {
    let counts = p.rec.program.counts();
    let mut all_exact = true;
    let mut evaluators = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let f = |r: usize, i: usize| ranks[r][k * FIELDS + i];
        let n = ranks.len();
        let slowest = (0..n).map(|r| f(r, 0)).fold(0.0, f64::max);
        let gate_evals: f64 = (0..n).map(|r| f(r, 4)).sum();
        let term_evals: f64 = (0..n).map(|r| f(r, 5)).sum();
        let mismatches: f64 = (0..n).map(|r| f(r, 6)).sum();
        all_exact &= mismatches == 0.0;
        let per_rank: Vec<_> = (0..n)
            .map(|r| {
                serde_json::json!({
                    "rank": r, "eval_seconds": f(r, 0), "gather_seconds": f(r, 1),
                    "exchange_seconds": f(r, 2), "reference_seconds": f(r, 3),
                    "gate_evals": f(r, 4) as u64,
                    "gate_evals_per_second": f(r, 4) / f(r, 0).max(1e-12),
                    "checked": f(r, 7) as u64, "mismatches": f(r, 6) as u64,
                    "split_applications": f(r, 8) as u64, "words_received": f(r, 9) as u64,
                })
            })
            .collect();
        evaluators.push(serde_json::json!({
            "evaluator": name, "eval_seconds": slowest,
            "gate_evals": gate_evals as u64,
            "gate_evals_per_second": gate_evals / slowest.max(1e-12),
            "term_evals_per_second": term_evals / slowest.max(1e-12),
            "mismatches": if a.no_check { serde_json::Value::Null } else { serde_json::json!(mismatches as u64) },
            "per_rank": per_rank,
        }));
    }
    let first = &evaluators[0];
    let summary = serde_json::json!({
        "config": p.label, "p": p.cfg.fmt.p(), "q": p.cfg.fmt.q(),
        "until": match p.rec.until { Until::Tokens => "tokens", Until::Image => "image" },
        "batch": p.batch, "ranks": c.size(),
        "mpi_split": match p.split { MpiSplit::Batch => "batch", MpiSplit::Instances => "instances" },
        "backend": names.join(", "), "backend_reason": p.why,
        "gates": counts.gates as f64, "terms": counts.terms as f64,
        "depth": p.rec.program.depth(), "applications": counts.applications,
        "record_seconds": p.rec.record_seconds,
        "eval_seconds": first["eval_seconds"], "gate_evals": first["gate_evals"],
        "gate_evals_per_second": first["gate_evals_per_second"],
        "evaluators": evaluators,
        "bit_exact": if a.no_check { serde_json::Value::Null } else { serde_json::json!(all_exact) },
        "wall_seconds": wall,
    });
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::User(format!("cannot create {}: {e}", dir.display())))?;
        crate::run::write_out(dir, &p.cfg, p.rec.until, outs, &summary)?;
    }
    if a.json {
        println!("{summary}");
    } else {
        print_text(&summary);
    }
    Ok(if a.no_check || all_exact {
        Outcome::Ok
    } else {
        Outcome::Mismatch
    })
}

fn print_text(s: &serde_json::Value) {
    println!(
        "MPI: {} ranks, split by {}; config {} ({} gates, depth {}); backend: {}",
        s["ranks"], s["mpi_split"], s["config"], s["gates"], s["depth"], s["backend_reason"]
    );
    for e in s["evaluators"].as_array().into_iter().flatten() {
        println!(
            "{}: {} instances in {:.3} s (slowest rank), {:.3e} gate-evals/s, {}",
            e["evaluator"],
            s["batch"],
            e["eval_seconds"].as_f64().unwrap_or(0.0),
            e["gate_evals_per_second"].as_f64().unwrap_or(0.0),
            match e["mismatches"].as_u64() {
                None => "not checked (--no-check)".to_string(),
                Some(0) => "every output equals the F(p,q) reference bit for bit".to_string(),
                Some(m) => format!("{m} instances DIFFER from the reference"),
            }
        );
        for r in e["per_rank"].as_array().into_iter().flatten() {
            println!(
                "  rank {}: {:.3} s eval, {:.3} s exchange, {} instances checked",
                r["rank"],
                r["eval_seconds"].as_f64().unwrap_or(0.0),
                r["exchange_seconds"].as_f64().unwrap_or(0.0),
                r["checked"]
            );
        }
    }
}
