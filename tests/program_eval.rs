//! Program evaluation (docs/program.md): the recorded VAR pass evaluated template by template on the
//! CPU and GPU program evaluators equals the flattened circuit and the F(p, q) reference, bit
//! for bit; memory limits, bad inputs and bad weights are refused with clear errors.

mod common;

use std::sync::{Arc, OnceLock};

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{context_for_tests, GpuOptions};
use tcvar::eval::program::{
    tensor_peak_bytes, CpuProgramEvaluator, GpuProgramEvaluator, ProgramOptions, TensorData,
};
use tcvar::eval::{Batch, EvalError, Evaluator};
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::{
    record_with, var_reference_until, CompileOptions, RecordedVar, Until, VarInput, VarOutput,
};
use tcvar::model::var::weights::VarWeights;

use common::var::inputs;

/// A recorded pass, its weights, inputs and reference outputs.
struct Fixture {
    cfg: VarConfig,
    w: VarWeights,
    rec: RecordedVar,
    inputs: Vec<VarInput>,
    refs: Vec<VarOutput>,
}

fn fixture(cfg: VarConfig, until: Until, n: usize) -> Fixture {
    let w = VarWeights::seeded(&cfg, 3).unwrap();
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until,
        },
    )
    .unwrap();
    let inputs = inputs(&cfg, n, 17);
    let refs: Vec<VarOutput> = inputs
        .iter()
        .map(|i| var_reference_until(&cfg, &w, i, until).unwrap())
        .collect();
    Fixture {
        cfg,
        w,
        rec,
        inputs,
        refs,
    }
}

fn micro() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(VarConfig::preset("micro").unwrap(), Until::Image, 64))
}

/// `tiny` restricted to its first two scales and one block, token maps only: the CI-sized
/// prefix of the tiny pass.
fn tiny_prefix() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut cfg = VarConfig::preset("tiny").unwrap();
        cfg.patch_nums = vec![1, 2];
        cfg.depth = 1;
        fixture(cfg, Until::Tokens, 8)
    })
}

fn run_on<B: tcvar::eval::program::TemplateBackend>(
    ev: &mut tcvar::eval::program::ProgramEvaluator<B>,
    f: &Fixture,
) -> Vec<VarOutput> {
    let vals = f.rec.input_values(&f.inputs).unwrap();
    let (out, st) = ev
        .run(&f.rec.program, &vals, &mut |d| {
            RecordedVar::weight_encodings(&f.w, d).map_err(|e| e.to_string())
        })
        .unwrap();
    let c = f.rec.program.counts();
    assert_eq!(st.gate_evals, c.gates * f.inputs.len() as u128);
    assert_eq!(st.term_evals, c.terms * f.inputs.len() as u128);
    eprintln!(
        "{}: {} gate-evals in {:.2}s ({:.3e}/s), peak tensors {} B, peak chunk {} B",
        ev.name(),
        st.gate_evals,
        st.seconds,
        st.gate_evals as f64 / st.seconds,
        st.peak_tensor_bytes,
        st.peak_chunk_bytes
    );
    assert!(st.peak_tensor_bytes as u128 <= tensor_peak_bytes(&f.rec.program, f.inputs.len()));
    f.rec.outputs(&out).unwrap()
}

fn check(what: &str, f: &Fixture, got: &[VarOutput]) {
    assert_eq!(got.len(), f.refs.len());
    for (i, (g, r)) in got.iter().zip(&f.refs).enumerate() {
        assert_eq!(g, r, "{what}: instance {i}");
    }
    let distinct: std::collections::HashSet<_> = f.refs.iter().map(|r| &r.tokens).collect();
    assert!(
        distinct.len() >= 2,
        "{what}: the inputs give one token map only"
    );
}

/// Small chunks so that every application is split across several template evaluations.
fn small_chunks() -> ProgramOptions {
    ProgramOptions {
        max_chunk_lanes: 200,
        ..Default::default()
    }
}

#[test]
fn micro_program_cpu_equals_flattened_and_reference() {
    let f = micro();
    let mut ev = CpuProgramEvaluator::new(small_chunks());
    let got = run_on(&mut ev, f);
    check("cpu program", f, &got);
    // The flattened circuit on the same inputs.
    let flat = f
        .rec
        .program
        .flatten(100_000_000, &mut |d| {
            RecordedVar::weight_encodings(&f.w, d).map_err(|e| e.to_string())
        })
        .unwrap();
    let vals = f.rec.input_values(&f.inputs).unwrap();
    let mut widths = Vec::new();
    for &t in &f.rec.program.inputs {
        let d = &f.rec.program.tensors[t.index()];
        widths.extend(std::iter::repeat_n(d.width, d.len as usize));
    }
    let rows: Vec<Vec<u64>> = (0..f.inputs.len())
        .map(|i| vals.iter().flat_map(|v| v[i].iter().copied()).collect())
        .collect();
    let batch = Batch::pack_fields(&widths, &rows).unwrap();
    let out = CpuEvaluator::new(&flat.levelize())
        .unwrap()
        .evaluate(&batch)
        .unwrap();
    let mut ow = Vec::new();
    for (_, t) in &f.rec.program.outputs {
        let d = &f.rec.program.tensors[t.index()];
        ow.extend(std::iter::repeat_n(d.width, d.len as usize));
    }
    let flat_rows = out.unpack_fields(&ow).unwrap();
    for (i, g) in got.iter().enumerate() {
        let want: Vec<u64> = g
            .tokens
            .iter()
            .flatten()
            .map(|&t| t as u64)
            .chain(g.image.iter().copied())
            .collect();
        assert_eq!(flat_rows[i], want, "flattened vs program, instance {i}");
    }
}

#[test]
fn micro_program_gpu_equals_reference() {
    let f = micro();
    let opts = GpuOptions::default();
    let Some(ctx) = context_for_tests("micro_program_gpu_equals_reference", &opts).unwrap() else {
        return;
    };
    let mut ev = GpuProgramEvaluator::with_context(Arc::new(ctx), &opts, small_chunks());
    let got = run_on(&mut ev, f);
    check("gpu program", f, &got);
}

#[test]
fn tiny_prefix_cpu_and_gpu_equal_reference() {
    let f = tiny_prefix();
    let c = f.rec.program.counts();
    eprintln!(
        "tiny prefix {:?}, {} block: {} gates, {} terms, depth {}",
        f.cfg.patch_nums,
        f.cfg.depth,
        c.gates,
        c.terms,
        f.rec.program.depth()
    );
    let mut ev = CpuProgramEvaluator::new(ProgramOptions::default());
    check("cpu tiny prefix", f, &run_on(&mut ev, f));
    let opts = GpuOptions::default();
    if let Some(ctx) = context_for_tests("tiny_prefix_cpu_and_gpu_equal_reference", &opts).unwrap()
    {
        let mut ev = GpuProgramEvaluator::with_context(Arc::new(ctx), &opts, Default::default());
        check("gpu tiny prefix", f, &run_on(&mut ev, f));
    }
}

#[test]
fn a_batch_too_large_for_the_budget_is_refused_up_front() {
    let f = micro();
    let vals = f.rec.input_values(&f.inputs).unwrap();
    let need = tensor_peak_bytes(&f.rec.program, f.inputs.len());
    let mut ev = CpuProgramEvaluator::new(ProgramOptions {
        memory_budget_bytes: (need / 2) as u64,
        ..Default::default()
    });
    let mut fetched = 0;
    let err = ev
        .run(&f.rec.program, &vals, &mut |d| {
            fetched += 1;
            RecordedVar::weight_encodings(&f.w, d).map_err(|e| e.to_string())
        })
        .unwrap_err();
    match &err {
        EvalError::LimitExceeded { needed, limit, .. } => {
            assert!(*needed as u128 >= need, "{err}");
            assert_eq!(*limit as u128, need / 2);
        }
        e => panic!("unexpected error {e}"),
    }
    assert_eq!(fetched, 0, "weights were fetched before the refusal");
}

#[test]
fn bad_inputs_and_weights_are_refused() {
    let f = micro();
    let prog = &f.rec.program;
    let vals = f.rec.input_values(&f.inputs[..2]).unwrap();
    let mut ev = CpuProgramEvaluator::new(Default::default());
    let mut ok = |d: &tcvar::circuit::program::TensorDecl| {
        RecordedVar::weight_encodings(&f.w, d).map_err(|e| e.to_string())
    };
    // Wrong number of input tensors.
    let e = ev.run(prog, &vals[..vals.len() - 1], &mut ok).unwrap_err();
    assert!(e.to_string().contains("input tensors"), "{e}");
    // An empty batch.
    let empty: Vec<Vec<Vec<u64>>> = vals.iter().map(|_| Vec::new()).collect();
    let e = ev.run(prog, &empty, &mut ok).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    // A class index wider than its field.
    let mut bad = vals.clone();
    bad[0][1][0] = u64::MAX;
    let e = ev.run(prog, &bad, &mut ok).unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
    // A ragged batch.
    let mut bad = vals.clone();
    bad[0][1].push(0);
    let e = ev.run(prog, &bad, &mut ok).unwrap_err();
    assert!(e.to_string().contains("elements"), "{e}");
    // A weight callback that fails, one that returns the wrong length, and one with wide values.
    let e = ev
        .run(prog, &vals, &mut |_| Err("disk on fire".into()))
        .unwrap_err();
    assert!(e.to_string().contains("disk on fire"), "{e}");
    let e = ev.run(prog, &vals, &mut |_| Ok(vec![0; 3])).unwrap_err();
    assert!(e.to_string().contains("values given"), "{e}");
    let e = ev
        .run(prog, &vals, &mut |d| Ok(vec![u64::MAX; d.len as usize]))
        .unwrap_err();
    assert!(e.to_string().contains("does not fit"), "{e}");
}

#[test]
fn tensor_data_round_trips() {
    let vals: Vec<Vec<u64>> = (0..130u64)
        .map(|b| (0..5).map(|e| (b * 7 + e * 3) % 1024).collect())
        .collect();
    let t = TensorData::from_values(10, 5, &vals).unwrap();
    assert_eq!(t.to_values(), vals);
    assert_eq!(t.value(3, 129), vals[129][3]);
}

/// Batches that do not divide a 64-bit word (lanes of one instance straddle words) and batches
/// above 64 (several words per row) take other gather/scatter paths than 64: both equal the
/// reference.
#[test]
fn odd_and_wide_batches_equal_reference() {
    let f = micro();
    for n in [7usize, 100] {
        let ins = inputs(&f.cfg, n, 1000 + n as u64);
        let vals = f.rec.input_values(&ins).unwrap();
        let mut ev = CpuProgramEvaluator::new(small_chunks());
        let (out, _) = ev
            .run(&f.rec.program, &vals, &mut |d| {
                RecordedVar::weight_encodings(&f.w, d).map_err(|e| e.to_string())
            })
            .unwrap();
        let got = f.rec.outputs(&out).unwrap();
        for (i, (g, inp)) in got.iter().zip(&ins).enumerate() {
            let r = var_reference_until(&f.cfg, &f.w, inp, Until::Image).unwrap();
            assert_eq!(g, &r, "batch {n}, instance {i}");
        }
    }
}
