//! Evaluating a uniform program ([`crate::circuit::program::Program`]) without materialising
//! its circuit (docs/program.md).
//!
//! The program is run step by step. Every tensor value is held bit-sliced over the batch
//! ([`TensorData`]); a [`Step::Apply`] is evaluated over `lanes = instances x batch` lanes, lane
//! `j * batch + b` being instance `j` of the application for batch instance `b`:
//!
//! 1. **gather**: for every template input word of every instance, the index map names a tensor
//!    element (or the zero word); its bits are copied, for all batch instances at once, into the
//!    template's input rows ([`bits::or_bits`]); constant and weight tensors, identical across
//!    the batch, are broadcast into the lanes;
//! 2. **evaluate**: the template's levelized circuit runs over the lanes on a
//!    [`TemplateBackend`]: the bit-sliced CPU evaluator ([`CpuTemplates`]) or the wgpu evaluator
//!    ([`GpuTemplates`]), each compiled once per template and reused by every application of it;
//! 3. **scatter**: output word `k` of instance `j` becomes element `j` of the step's `k`-th
//!    output tensor.
//!
//! Large applications are split into chunks of instances so that the lane batches stay inside
//! the memory budget. A tensor is freed after the last step that reads it, weights are fetched
//! from the caller when first read and freed likewise. The peak memory of the tensor store is
//! computed before anything is evaluated ([`tensor_peak_bytes`]); a run that would exceed
//! [`ProgramOptions::memory_budget_bytes`] is refused up front with the figure it needs.
//!
//! The result equals the flattened circuit's ([`Program::flatten`]) bit for bit: both instantiate
//! every template instance with the same gathered inputs.

pub mod backend;
pub mod bits;

pub use backend::{CpuTemplates, GpuTemplates, TemplateBackend};
pub use bits::TensorData;

use std::borrow::Cow;
use std::time::Instant;

use rayon::prelude::*;

use super::{Batch, EvalError};
use crate::circuit::program::{
    next_index, num_instances, Gather, IndexMap, Program, Step, TemplateId, TensorDecl, TensorId,
    TensorKind,
};
use bits::{extract_bits, or_bits, set_bits, words_per_row, zeroed_words};

/// Values of several tensors over a batch: `[tensor][batch instance][element]` encodings.
pub type TensorValues = Vec<Vec<Vec<u64>>>;

/// Supplies the values of a weight tensor ([`TensorKind::Weight`]): one encoding per element.
pub type WeightFn<'a> = dyn FnMut(&TensorDecl) -> Result<Vec<u64>, String> + 'a;

/// Options of a program run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramOptions {
    /// Host bytes the run may hold at once: tensor values, loaded weights and the lane batches
    /// of one chunk (the backend's compiled templates come on top: they are reported in
    /// [`RunStats::backend_bytes`]). Default 8 GiB.
    pub memory_budget_bytes: u64,
    /// Most lanes (instances x batch) per template evaluation. Default 2^20.
    pub max_chunk_lanes: u64,
    /// Draw a progress bar on stderr (weighted by terms x lanes).
    pub progress: bool,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        ProgramOptions {
            memory_budget_bytes: 8 << 30,
            max_chunk_lanes: 1 << 20,
            progress: false,
        }
    }
}

/// What a run did.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Gate evaluations: sum over applications of gates x instances x batch.
    pub gate_evals: u128,
    /// Term evaluations: sum over applications of terms x instances x batch (the work).
    pub term_evals: u128,
    /// Lanes evaluated: sum over applications of instances x batch.
    pub lanes: u128,
    /// Template evaluations (chunks) issued to the backend.
    pub chunks: u64,
    /// Seconds in all.
    pub seconds: f64,
    /// Seconds gathering inputs and scattering outputs.
    pub gather_seconds: f64,
    /// Seconds in the backend.
    pub eval_seconds: f64,
    /// Largest bytes of tensor values and weights held at once (as planned and as measured).
    pub peak_tensor_bytes: u64,
    /// Largest bytes of one chunk's lane batches (inputs and outputs).
    pub peak_chunk_bytes: u64,
    /// Largest bytes held by the backend after a template evaluation (compiled templates and
    /// their scratch).
    pub backend_bytes: u64,
}

/// How the instances of an application are shared among cooperating evaluators (MPI ranks,
/// see `eval::distributed`): each evaluates [`InstanceSplit::range`] of every application and
/// [`InstanceSplit::complete`] fills in the rest of the output tensors before the next step.
pub trait InstanceSplit {
    /// The instances this evaluator computes of an application with `n` instances.
    fn range(&mut self, n: u64) -> std::ops::Range<u64>;
    /// Called after every application, also when it failed here (`local`): agree on success
    /// and make every instance's outputs (element `j` of each of `outs` for instance `j`)
    /// present in `outs`. Every cooperating evaluator calls it for the same applications.
    fn complete(
        &mut self,
        n: u64,
        outs: &mut [TensorData],
        local: Result<(), EvalError>,
    ) -> Result<(), EvalError>;
}

/// Every instance evaluated here (a run on its own).
pub struct Whole;

impl InstanceSplit for Whole {
    fn range(&mut self, n: u64) -> std::ops::Range<u64> {
        0..n
    }

    fn complete(
        &mut self,
        _: u64,
        _: &mut [TensorData],
        local: Result<(), EvalError>,
    ) -> Result<(), EvalError> {
        local
    }
}

/// A tensor's value during a run.
enum Slot<'p> {
    /// Not yet written, or freed.
    Empty,
    /// The same encodings for every batch instance (constants, weights).
    Uniform(Cow<'p, [u64]>),
    /// Bit-sliced over the batch.
    Sliced(TensorData),
}

fn slot_bytes(s: &Slot) -> u64 {
    match s {
        Slot::Empty => 0,
        Slot::Uniform(Cow::Owned(v)) => v.len() as u64 * 8,
        Slot::Uniform(Cow::Borrowed(_)) => 0,
        Slot::Sliced(t) => t.bytes(),
    }
}

/// Bytes of a bit-sliced value of `decl` over `batch` instances.
fn sliced_bytes(decl: &TensorDecl, batch: usize) -> u128 {
    decl.len as u128 * decl.width as u128 * words_per_row(batch) as u128 * 8
}

/// The most bytes of tensor values (bit-sliced computed tensors and inputs) and loaded weights
/// that a run of `prog` over `batch` instances holds at once, with every tensor freed after the
/// last step that reads it (program outputs are kept to the end).
pub fn tensor_peak_bytes(prog: &Program, batch: usize) -> u128 {
    let last = prog.last_reads();
    let is_output = output_mask(prog);
    let mut live: u128 = prog
        .inputs
        .iter()
        .map(|t| sliced_bytes(&prog.tensors[t.index()], batch))
        .sum();
    let mut loaded = vec![false; prog.tensors.len()];
    let mut peak = live;
    for (s, step) in prog.steps.iter().enumerate() {
        for t in step.reads() {
            let d = &prog.tensors[t.index()];
            if matches!(d.kind, TensorKind::Weight(_)) && !loaded[t.index()] {
                loaded[t.index()] = true;
                live += d.len as u128 * 8;
            }
        }
        for t in step.writes() {
            live += sliced_bytes(&prog.tensors[t.index()], batch);
        }
        peak = peak.max(live);
        for t in freed_by(step, s, &last, &is_output) {
            let d = &prog.tensors[t.index()];
            live -= match d.kind {
                TensorKind::Weight(_) => d.len as u128 * 8,
                TensorKind::Const(_) => 0,
                _ => sliced_bytes(d, batch),
            };
        }
    }
    peak
}

/// Evaluates programs template by template on a [`TemplateBackend`].
pub struct ProgramEvaluator<B: TemplateBackend> {
    backend: B,
    opts: ProgramOptions,
}

/// The program evaluator on the CPU.
pub type CpuProgramEvaluator = ProgramEvaluator<CpuTemplates>;
/// The program evaluator on the GPU.
pub type GpuProgramEvaluator = ProgramEvaluator<GpuTemplates>;

impl<B: TemplateBackend> ProgramEvaluator<B> {
    /// An evaluator on `backend`.
    pub fn with_backend(backend: B, opts: ProgramOptions) -> Self {
        ProgramEvaluator { backend, opts }
    }

    /// The backend's name ("cpu", "gpu: <adapter>").
    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The options.
    pub fn options(&self) -> &ProgramOptions {
        &self.opts
    }

    /// Run `prog` over a batch: `inputs[k][b][e]` is element `e` of program input `k` for
    /// batch instance `b` (every input has the same number of batch instances, at least one);
    /// `weights` supplies every weight tensor when it is first read. Returns the program
    /// outputs as `[output][b][e]` encodings (outputs wider than 64 bits are refused) and the
    /// run's statistics.
    ///
    /// Errors: inputs of the wrong count, shape or width ([`EvalError::BatchShape`]); a run
    /// that needs more than the memory budget ([`EvalError::LimitExceeded`], before anything
    /// is evaluated when the tensor store alone exceeds it); a weight the callback refuses or
    /// returns with the wrong length or values wider than the tensor; backend failures.
    pub fn run(
        &mut self,
        prog: &Program,
        inputs: &[Vec<Vec<u64>>],
        weights: &mut WeightFn<'_>,
    ) -> Result<(TensorValues, RunStats), EvalError> {
        self.run_split(prog, inputs, weights, &mut Whole)
    }

    /// [`ProgramEvaluator::run`] with the instances of every application shared as `split`
    /// says; the statistics count the instances evaluated here.
    pub fn run_split(
        &mut self,
        prog: &Program,
        inputs: &[Vec<Vec<u64>>],
        weights: &mut WeightFn<'_>,
        split: &mut dyn InstanceSplit,
    ) -> Result<(TensorValues, RunStats), EvalError> {
        let t0 = Instant::now();
        let batch = check_inputs(prog, inputs)?;
        let chunk_budget = chunk_budget(prog, batch, self.opts.memory_budget_bytes)?;
        let mut stats = RunStats::default();
        let mut store = initial_store(prog, inputs)?;
        let last = prog.last_reads();
        let is_output = output_mask(prog);
        let mut template_last = vec![usize::MAX; prog.templates.len()];
        for (s, step) in prog.steps.iter().enumerate() {
            if let Step::Apply { template, .. } = step {
                template_last[template.index()] = s;
            }
        }
        let total_work: u128 = prog
            .steps
            .iter()
            .map(|s| prog.step_counts(s).terms)
            .sum::<u128>()
            .max(1);
        let bar = progress_bar(self.opts.progress);
        let mut done_work: u128 = 0;
        let mut live_bytes: u64 = store.iter().map(slot_bytes).sum();
        stats.peak_tensor_bytes = live_bytes;
        for (s, step) in prog.steps.iter().enumerate() {
            if self.opts.progress {
                bar.set_message(format!(
                    "step {}/{} {}",
                    s + 1,
                    prog.steps.len(),
                    prog.region_path(step.region())
                ));
            }
            // Weights are fetched when first read.
            for t in step.reads() {
                let d = &prog.tensors[t.index()];
                if matches!(d.kind, TensorKind::Weight(_))
                    && matches!(store[t.index()], Slot::Empty)
                {
                    let v = load_weight(d, weights)?;
                    live_bytes += v.len() as u64 * 8;
                    store[t.index()] = Slot::Uniform(Cow::Owned(v));
                }
            }
            match step {
                Step::Apply {
                    template,
                    outputs,
                    inst_shape,
                    ..
                } => {
                    let mut outs: Vec<TensorData> = outputs
                        .iter()
                        .map(|o| {
                            let d = &prog.tensors[o.index()];
                            TensorData::zeros(d.width, d.len, batch)
                        })
                        .collect::<Result<_, _>>()?;
                    live_bytes += outs.iter().map(|t| t.bytes()).sum::<u64>();
                    stats.peak_tensor_bytes = stats.peak_tensor_bytes.max(live_bytes);
                    let c = prog.step_counts(step);
                    let n = num_instances(inst_shape);
                    let range = split.range(n);
                    let local = self.apply(
                        prog,
                        step,
                        &store,
                        &mut outs,
                        Chunking {
                            batch,
                            chunk_budget,
                            range: (range.start, range.end),
                        },
                        &mut stats,
                        &mut |done: u64, of: u64| {
                            done_work += c.terms * done as u128 / of.max(1) as u128;
                            bar.set_position((done_work * 1_000_000 / total_work) as u64);
                        },
                    );
                    split.complete(n, &mut outs, local)?;
                    let part = |x: u128| x * (range.end - range.start) as u128 / n.max(1) as u128;
                    stats.gate_evals += part(c.gates) * batch as u128;
                    stats.term_evals += part(c.terms) * batch as u128;
                    stats.lanes += part(c.instances) * batch as u128;
                    for (o, td) in outputs.iter().zip(outs) {
                        store[o.index()] = Slot::Sliced(td);
                    }
                    if template_last[template.index()] == s {
                        self.backend.release(*template);
                    }
                }
                Step::Concat { parts, out, .. } => {
                    let d = &prog.tensors[out.index()];
                    let v = concat(d, parts, &store, batch)?;
                    live_bytes += slot_bytes(&v);
                    store[out.index()] = v;
                    stats.peak_tensor_bytes = stats.peak_tensor_bytes.max(live_bytes);
                }
            }
            for t in freed_by(step, s, &last, &is_output) {
                live_bytes -= slot_bytes(&store[t.index()]);
                store[t.index()] = match &prog.tensors[t.index()].kind {
                    TensorKind::Const(v) => Slot::Uniform(Cow::Borrowed(v)),
                    _ => Slot::Empty,
                };
            }
        }
        bar.finish_and_clear();
        let result = collect_outputs(prog, &store, batch, weights)?;
        stats.seconds = t0.elapsed().as_secs_f64();
        Ok((result, stats))
    }

    /// Evaluate one application (`step`, a [`Step::Apply`]) chunk by chunk into `outs`;
    /// `progress` is told `(instances done in this chunk, instances of the step)`.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        prog: &Program,
        step: &Step,
        store: &[Slot],
        outs: &mut [TensorData],
        ch: Chunking,
        stats: &mut RunStats,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), EvalError> {
        let Step::Apply {
            template,
            inst_shape,
            gathers,
            ..
        } = step
        else {
            return Ok(());
        };
        let batch = ch.batch;
        let tp = &prog.templates[template.index()];
        let n = num_instances(inst_shape);
        let rows = tp.circuit.num_inputs as u64 + tp.out_bits() as u64;
        // Lanes per chunk: the lane batches (inputs + outputs, bit-sliced) of a chunk take at
        // most half of what the tensor store leaves.
        let by_memory = (ch.chunk_budget / 2).saturating_mul(8) / rows.max(1);
        let lanes = by_memory.min(self.opts.max_chunk_lanes).max(1);
        let per_chunk = (lanes / batch as u64).clamp(1, n.max(1));
        let (mut i0, end) = (ch.range.0, ch.range.1.min(n));
        while i0 < end {
            let cnt = per_chunk.min(end - i0);
            let tg = Instant::now();
            let lane_batch = gather(prog, *template, inst_shape, gathers, store, i0, cnt, batch)?;
            stats.gather_seconds += tg.elapsed().as_secs_f64();
            let te = Instant::now();
            let out = self.backend.evaluate(*template, tp, &lane_batch)?;
            stats.eval_seconds += te.elapsed().as_secs_f64();
            stats.backend_bytes = stats.backend_bytes.max(self.backend.bytes());
            stats.peak_chunk_bytes = stats
                .peak_chunk_bytes
                .max((lane_batch.words().len() + out.words().len()) as u64 * 8);
            drop(lane_batch);
            let ts = Instant::now();
            scatter(tp.outputs.as_slice(), &out, outs, i0, cnt, batch);
            stats.gather_seconds += ts.elapsed().as_secs_f64();
            stats.chunks += 1;
            progress(cnt, n);
            i0 += cnt;
        }
        Ok(())
    }
}

/// The batch size and the bytes the lane batches of one chunk may use.
#[derive(Copy, Clone)]
struct Chunking {
    batch: usize,
    chunk_budget: u64,
    /// The instances to evaluate, `start..end`.
    range: (u64, u64),
}

/// Check the inputs of a run of `prog` (see [`ProgramEvaluator::run`]); returns the batch.
fn check_inputs(prog: &Program, inputs: &[Vec<Vec<u64>>]) -> Result<usize, EvalError> {
    prog.validate()
        .map_err(|e| EvalError::Unsupported(e.to_string()))?;
    if inputs.len() != prog.inputs.len() {
        return Err(EvalError::BatchShape(format!(
            "{} input tensors given, the program has {}",
            inputs.len(),
            prog.inputs.len()
        )));
    }
    let batch = inputs.first().map_or(0, |v| v.len());
    if batch == 0 {
        return Err(EvalError::BatchShape(
            "the batch is empty (at least one instance is needed)".into(),
        ));
    }
    if let Some((k, _)) = inputs.iter().enumerate().find(|(_, v)| v.len() != batch) {
        return Err(EvalError::BatchShape(format!(
            "input {k} has {} batch instances, input 0 has {batch}",
            inputs[k].len()
        )));
    }
    if let Some((name, t)) = prog
        .outputs
        .iter()
        .find(|(_, t)| prog.tensors[t.index()].width > 64)
    {
        return Err(EvalError::Unsupported(format!(
            "output {name} has {}-bit elements (outputs are returned as u64 encodings)",
            prog.tensors[t.index()].width
        )));
    }
    Ok(batch)
}

/// What the budget leaves for the lane batches of a chunk, after the tensor store's planned
/// peak; refuses a run whose peak plus one instance of its widest template exceeds `budget`.
fn chunk_budget(prog: &Program, batch: usize, budget: u64) -> Result<u64, EvalError> {
    let planned = tensor_peak_bytes(prog, batch);
    let min_chunk = prog
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Apply { template, .. } => {
                let tp = &prog.templates[template.index()];
                Some(
                    (tp.circuit.num_inputs as u128 + tp.out_bits() as u128)
                        * words_per_row(batch) as u128
                        * 8,
                )
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    if planned + min_chunk > budget as u128 {
        return Err(EvalError::LimitExceeded {
            what: format!(
                "memory for a batch of {batch} (tensor values {planned} bytes at the peak, \
                 plus {min_chunk} bytes for one instance of the widest template)"
            ),
            needed: u64::try_from(planned + min_chunk).unwrap_or(u64::MAX),
            limit: budget,
        });
    }
    Ok(budget - planned as u64)
}

/// The store at the start of a run: constants borrowed from the program, inputs bit-sliced.
fn initial_store<'p>(
    prog: &'p Program,
    inputs: &[Vec<Vec<u64>>],
) -> Result<Vec<Slot<'p>>, EvalError> {
    let mut store: Vec<Slot> = (0..prog.tensors.len()).map(|_| Slot::Empty).collect();
    for (t, d) in prog.tensors.iter().enumerate() {
        if let TensorKind::Const(v) = &d.kind {
            store[t] = Slot::Uniform(Cow::Borrowed(v));
        }
    }
    for (k, &t) in prog.inputs.iter().enumerate() {
        let d = &prog.tensors[t.index()];
        let td = TensorData::from_values(d.width, d.len, &inputs[k])
            .map_err(|e| EvalError::BatchShape(format!("input {:?}: {e}", d.name)))?;
        store[t.index()] = Slot::Sliced(td);
    }
    Ok(store)
}

/// A progress bar on stderr, or a hidden one.
fn progress_bar(on: bool) -> indicatif::ProgressBar {
    if !on {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(1_000_000);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} evaluating [{elapsed_precise}] {wide_bar} {percent}% {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// The program outputs as `[output][b][e]` encodings.
fn collect_outputs(
    prog: &Program,
    store: &[Slot],
    batch: usize,
    weights: &mut WeightFn<'_>,
) -> Result<TensorValues, EvalError> {
    let mut result = Vec::with_capacity(prog.outputs.len());
    for (name, t) in &prog.outputs {
        let d = &prog.tensors[t.index()];
        let vals = match &store[t.index()] {
            Slot::Sliced(td) => td.to_values(),
            Slot::Uniform(v) => vec![v.to_vec(); batch],
            Slot::Empty => {
                // A weight that no step reads.
                let v = load_weight(d, weights)?;
                vec![v; batch]
            }
        };
        debug_assert!(vals.iter().all(|v| v.len() as u64 == d.len), "{name}");
        result.push(vals);
    }
    Ok(result)
}

/// Which tensors are program outputs (kept to the end of a run).
fn output_mask(prog: &Program) -> Vec<bool> {
    let mut v = vec![false; prog.tensors.len()];
    for (_, t) in &prog.outputs {
        v[t.index()] = true;
    }
    v
}

/// The tensors step `s` reads for the last time (each once), program outputs excepted.
fn freed_by(step: &Step, s: usize, last: &[Option<usize>], is_output: &[bool]) -> Vec<TensorId> {
    let mut reads = step.reads();
    reads.sort();
    reads.dedup();
    reads.retain(|t| last[t.index()] == Some(s) && !is_output[t.index()]);
    reads
}

/// Fetch and check the values of a weight tensor.
fn load_weight(d: &TensorDecl, weights: &mut WeightFn<'_>) -> Result<Vec<u64>, EvalError> {
    let v = weights(d).map_err(|e| EvalError::BatchShape(format!("weight {:?}: {e}", d.name)))?;
    if v.len() as u64 != d.len {
        return Err(EvalError::BatchShape(format!(
            "weight {:?}: {} values given for {} elements",
            d.name,
            v.len(),
            d.len
        )));
    }
    if d.width < 64 {
        if let Some(x) = v.iter().find(|&&x| x >> d.width != 0) {
            return Err(EvalError::BatchShape(format!(
                "weight {:?}: value {x:#x} does not fit in {} bits",
                d.name, d.width
            )));
        }
    }
    Ok(v)
}

/// The multi-index of flat instance `i` in `shape` (row-major).
fn multi_index(mut i: u64, shape: &[u64]) -> Vec<u64> {
    let mut idx = vec![0u64; shape.len()];
    for ax in (0..shape.len()).rev() {
        idx[ax] = i % shape[ax];
        i /= shape[ax];
    }
    idx
}

/// The element read by one port word, with the word's part of the index map evaluated once.
enum WordElem<'a> {
    Affine {
        /// `base + word . j` of the element expression.
        c: i64,
        inst: &'a [i64],
        /// `(constant, instance coefficients, bound)` of each guard.
        guards: Vec<(i64, &'a [i64], i64)>,
    },
    Table {
        table: &'a [u32],
        w: u64,
        words: u64,
    },
}

impl<'a> WordElem<'a> {
    fn new(map: &'a IndexMap, w: u64, words: u64) -> Self {
        match map {
            IndexMap::Affine {
                elem,
                word_shape,
                guards,
            } => {
                let mut j = [0u64; crate::circuit::program::MAX_WORD_AXES];
                let mut rest = w;
                for ax in (0..word_shape.len()).rev() {
                    let n = word_shape[ax] as u64;
                    j[ax] = rest % n;
                    rest /= n;
                }
                let word_part = |a: &crate::circuit::program::Affine| {
                    a.base
                        + a.word
                            .iter()
                            .zip(&j)
                            .map(|(&c, &x)| c * x as i64)
                            .sum::<i64>()
                };
                WordElem::Affine {
                    c: word_part(elem),
                    inst: &elem.inst,
                    guards: guards
                        .iter()
                        .map(|g| (word_part(&g.expr), g.expr.inst.as_slice(), g.bound))
                        .collect(),
                }
            }
            IndexMap::Table(t) => WordElem::Table { table: t, w, words },
        }
    }

    /// The element read by instance `inst` (multi-index `idx`), `None` for the zero word.
    #[inline]
    fn at(&self, idx: &[u64], inst: u64) -> Option<i64> {
        let dot =
            |c: i64, k: &[i64]| c + k.iter().zip(idx).map(|(&a, &x)| a * x as i64).sum::<i64>();
        match self {
            WordElem::Affine { c, inst, guards } => {
                for &(gc, gk, bound) in guards {
                    let v = dot(gc, gk);
                    if v < 0 || v >= bound {
                        return None;
                    }
                }
                Some(dot(*c, inst))
            }
            WordElem::Table { table, w, words } => {
                let e = table[(inst * words + w) as usize];
                (e != IndexMap::NONE).then_some(e as i64)
            }
        }
    }
}

/// The lane batch of instances `i0 .. i0 + cnt` of an application: one row per template input
/// bit, lane `j * batch + b` for instance `i0 + j` and batch instance `b`.
#[allow(clippy::too_many_arguments)]
fn gather(
    prog: &Program,
    template: TemplateId,
    inst_shape: &[u64],
    gathers: &[Gather],
    store: &[Slot],
    i0: u64,
    cnt: u64,
    batch: usize,
) -> Result<Batch, EvalError> {
    let tp = &prog.templates[template.index()];
    let lanes = cnt as usize * batch;
    let wl = words_per_row(lanes);
    let wb = words_per_row(batch);
    let mut words = zeroed_words(tp.circuit.num_inputs as usize * wl, "gathered lane batch")?;
    let mut rest: &mut [u64] = &mut words;
    for (p, g) in gathers.iter().enumerate() {
        let port = tp.ports[p];
        let width = port.width as usize;
        let section;
        (section, rest) = rest.split_at_mut(port.words as usize * width * wl);
        let src = &store[g.tensor.index()];
        let src_len = prog.tensors[g.tensor.index()].len;
        if matches!(src, Slot::Empty) {
            return Err(EvalError::Unsupported(format!(
                "tensor {:?} is read before it is written",
                prog.tensors[g.tensor.index()].name
            )));
        }
        section
            .par_chunks_mut(width * wl)
            .enumerate()
            .try_for_each(|(w, dst)| {
                let we = WordElem::new(&g.map, w as u64, port.words as u64);
                let mut idx = multi_index(i0, inst_shape);
                for j in 0..cnt as usize {
                    let inst = i0 + j as u64;
                    if let Some(e) = we.at(&idx, inst) {
                        if e < 0 || e as u64 >= src_len {
                            return Err(EvalError::Unsupported(format!(
                                "index map reads element {e} of tensor {:?} ({src_len} elements)",
                                prog.tensors[g.tensor.index()].name
                            )));
                        }
                        let e = e as usize;
                        match src {
                            Slot::Sliced(td) if wb == 1 => {
                                // A batch of at most 64: one source word per bit.
                                let at = j * batch;
                                let (wi, sh) = (at / 64, at % 64);
                                let spill = sh + batch > 64;
                                let srcw = &td.words()[e * width..(e + 1) * width];
                                for (k, &x) in srcw.iter().enumerate() {
                                    if x != 0 {
                                        dst[k * wl + wi] |= x << sh;
                                        if spill {
                                            dst[k * wl + wi + 1] |= x >> (64 - sh);
                                        }
                                    }
                                }
                            }
                            Slot::Sliced(td) => {
                                let base = e * width * wb;
                                for k in 0..width {
                                    let row = &td.words()[base + k * wb..base + (k + 1) * wb];
                                    or_bits(&mut dst[k * wl..(k + 1) * wl], j * batch, row, batch);
                                }
                            }
                            Slot::Uniform(v) if wb == 1 => {
                                // The same bits for each of at most 64 batch instances.
                                let mut x = if width < 64 {
                                    v[e] & ((1u64 << width) - 1)
                                } else {
                                    v[e]
                                };
                                let at = j * batch;
                                let (wi, sh) = (at / 64, at % 64);
                                let ones = if batch == 64 {
                                    u64::MAX
                                } else {
                                    (1u64 << batch) - 1
                                };
                                let lo = ones << sh;
                                let hi = if sh + batch > 64 {
                                    ones >> (64 - sh)
                                } else {
                                    0
                                };
                                while x != 0 {
                                    let k = x.trailing_zeros() as usize;
                                    x &= x - 1;
                                    dst[k * wl + wi] |= lo;
                                    if hi != 0 {
                                        dst[k * wl + wi + 1] |= hi;
                                    }
                                }
                            }
                            Slot::Uniform(v) => {
                                let x = v[e];
                                for k in 0..width.min(64) {
                                    if x >> k & 1 == 1 {
                                        set_bits(&mut dst[k * wl..(k + 1) * wl], j * batch, batch);
                                    }
                                }
                            }
                            Slot::Empty => unreachable!("checked above"),
                        }
                    }
                    next_index(&mut idx, inst_shape);
                }
                Ok(())
            })?;
    }
    Ok(Batch::from_words(tp.circuit.num_inputs, lanes, words)?)
}

/// Write the lane outputs of instances `i0 .. i0 + cnt` into the output tensors.
fn scatter(widths: &[u32], out: &Batch, outs: &mut [TensorData], i0: u64, cnt: u64, batch: usize) {
    let wb = words_per_row(batch);
    let mut row0 = 0u32;
    for (k, &w) in widths.iter().enumerate() {
        let w = w as usize;
        let td = &mut outs[k];
        let start = i0 as usize * w * wb;
        let end = (i0 + cnt) as usize * w * wb;
        td.words_mut()[start..end]
            .par_chunks_mut(w * wb)
            .enumerate()
            .for_each(|(j, dst)| {
                let at = j * batch;
                if wb == 1 {
                    // A batch of at most 64: one destination word per bit.
                    let (wi, sh) = (at / 64, at % 64);
                    let mask = if batch == 64 {
                        u64::MAX
                    } else {
                        (1u64 << batch) - 1
                    };
                    for (bit, d) in dst.iter_mut().enumerate() {
                        let src = out.row(row0 + bit as u32);
                        let mut x = src[wi] >> sh;
                        if sh != 0 && sh + batch > 64 {
                            x |= src[wi + 1] << (64 - sh);
                        }
                        *d = x & mask;
                    }
                } else {
                    for bit in 0..w {
                        let src = out.row(row0 + bit as u32);
                        extract_bits(&mut dst[bit * wb..(bit + 1) * wb], src, at, batch);
                    }
                }
            });
        row0 += w as u32;
    }
}

/// The value of a concatenation.
fn concat<'p>(
    d: &TensorDecl,
    parts: &[crate::circuit::program::TensorId],
    store: &[Slot<'p>],
    batch: usize,
) -> Result<Slot<'p>, EvalError> {
    if parts
        .iter()
        .all(|p| matches!(store[p.index()], Slot::Uniform(_)))
    {
        let mut v = Vec::new();
        for p in parts {
            if let Slot::Uniform(x) = &store[p.index()] {
                v.extend_from_slice(x);
            }
        }
        return Ok(Slot::Uniform(Cow::Owned(v)));
    }
    let n = (d.len as u128 * d.width as u128 * words_per_row(batch) as u128) as usize;
    let mut words = Vec::new();
    words
        .try_reserve_exact(n)
        .map_err(|_| EvalError::LimitExceeded {
            what: "concatenated tensor (bytes)".into(),
            needed: n as u64 * 8,
            limit: isize::MAX as u64,
        })?;
    for p in parts {
        match &store[p.index()] {
            Slot::Sliced(td) => words.extend_from_slice(td.words()),
            Slot::Uniform(v) => {
                let td = TensorData::broadcast(d.width, v, batch)?;
                words.extend_from_slice(td.words());
            }
            Slot::Empty => {
                return Err(EvalError::Unsupported(format!(
                    "a part of {:?} is read before it is written",
                    d.name
                )))
            }
        }
    }
    if words.len() != n {
        return Err(EvalError::Unsupported(format!(
            "concatenation {:?}: parts hold {} words, expected {n}",
            d.name,
            words.len()
        )));
    }
    Ok(Slot::Sliced(TensorData::from_raw(
        d.width, d.len, batch, words,
    )))
}
