//! GPU evaluator cross-checks: the GPU output must equal, bit for bit, the netlist
//! reference `Circuit::eval_single` (an independent, per-instance interpreter of the
//! unlevelized netlist) and the CPU evaluator's output.
//!
//! Without an adapter every test fails when `TCVAR_REQUIRE_GPU=1` and otherwise prints loudly
//! that it skipped and why (the shared rule of `context_for_tests`).

mod common;

use std::sync::Arc;

use tcvar::circuit::random::{
    layered, random_circuit, LayerGate, LayeredSpec, RandomCircuitSpec, SplitMix64,
};
use tcvar::circuit::{Builder, Circuit, Lit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{FormKernel, GpuContext, GpuEvaluator, GpuOptions};
use tcvar::eval::{Batch, EvalError, Evaluator};

use common::eval::{context, deep_layered, random_batch};

/// Check `got` against `eval_single` on every instance of `inputs`.
fn check_against_reference(c: &Circuit, inputs: &Batch, got: &Batch, what: &str) {
    assert_eq!(got.rows() as usize, c.num_outputs(), "{what}: output rows");
    assert_eq!(got.instances(), inputs.instances(), "{what}: instances");
    let ins = inputs.to_instances();
    let outs = got.to_instances();
    for (i, (x, y)) in ins.iter().zip(&outs).enumerate() {
        let want = c.eval_single(x).expect("input width");
        assert_eq!(y, &want, "{what}: instance {i} differs from the reference");
    }
    // Tail bits past the instances must be zero (Batch invariant).
    let m = tcvar::eval::batch::tail_mask(got.instances());
    if got.words_per_row() > 0 {
        for r in 0..got.rows() {
            assert_eq!(
                got.row(r)[got.words_per_row() - 1] & !m,
                0,
                "{what}: tail bits"
            );
        }
    }
}

fn check_batches(
    ctx: &Arc<GpuContext>,
    c: &Circuit,
    opts: &GpuOptions,
    sizes: &[usize],
    what: &str,
) -> GpuEvaluator {
    let lv = c.levelize();
    let mut ev = GpuEvaluator::with_context(ctx.clone(), &lv, opts).expect("upload");
    let mut cpu = CpuEvaluator::new(&lv).expect("cpu evaluator");
    for (k, &n) in sizes.iter().enumerate() {
        let inputs = random_batch(lv.num_inputs, n, 1000 + k as u64);
        let got = ev.evaluate(&inputs).expect("evaluate");
        check_against_reference(c, &inputs, &got, &format!("{what}, batch {n}"));
        let want = cpu.evaluate(&inputs).expect("cpu evaluate");
        assert!(
            got == want,
            "{what}, batch {n}: GPU and CPU evaluators differ"
        );
    }
    ev
}

const SIZES: [usize; 6] = [1, 31, 32, 33, 1000, 4096];

#[test]
fn random_circuits_match_reference_at_all_batch_sizes() {
    let Some(ctx) = context("random_circuits_match_reference_at_all_batch_sizes") else {
        return;
    };
    for (seed, depth_bias) in [(1u64, 0.3), (2, 0.8), (3, 0.05)] {
        let spec = RandomCircuitSpec {
            inputs: 48,
            gates: 600,
            outputs: 64,
            depth_bias,
            seed,
            ..Default::default()
        };
        let c = random_circuit(&spec).expect("random circuit");
        let ev = check_batches(
            &ctx,
            &c,
            &GpuOptions::default(),
            &SIZES,
            &format!("seed {seed}"),
        );
        let p = ev.plan_summary();
        assert!(p.slots <= p.rows);
        eprintln!(
            "seed {seed}: depth {}, {p:?}, {:.1} bytes/gate",
            c.depth(),
            ev.bytes_per_gate()
        );
    }
}

#[test]
fn all_zero_and_all_one_batches() {
    let Some(ctx) = context("all_zero_and_all_one_batches") else {
        return;
    };
    let c = random_circuit(&RandomCircuitSpec {
        inputs: 40,
        gates: 400,
        seed: 11,
        ..Default::default()
    })
    .expect("random circuit");
    let lv = c.levelize();
    let mut ev = GpuEvaluator::with_context(ctx, &lv, &GpuOptions::default()).expect("upload");
    for n in [1usize, 33, 4096] {
        for ones in [false, true] {
            let mut b = Batch::zeros(lv.num_inputs, n);
            if ones {
                for r in 0..lv.num_inputs {
                    for i in 0..n {
                        b.set(r, i, true);
                    }
                }
            }
            let got = ev.evaluate(&b).expect("evaluate");
            check_against_reference(&c, &b, &got, &format!("all-{} batch {n}", ones as u8));
        }
    }
}

#[test]
fn deep_circuit_over_100_levels_reuses_slots() {
    let Some(ctx) = context("deep_circuit_over_100_levels_reuses_slots") else {
        return;
    };
    let c = deep_layered();
    let lv = c.levelize();
    assert!(lv.depth() > 100, "depth {}", lv.depth());
    let ev = check_batches(&ctx, &c, &GpuOptions::default(), &[33, 1000], "deep");
    let p = ev.plan_summary();
    // Reach 2: at most about three layers are live at once.
    assert!(
        p.slots * 4 < p.rows,
        "slot reuse: {} slots for {} rows",
        p.slots,
        p.rows
    );
    eprintln!("deep: depth {}, {p:?}", lv.depth());
}

#[test]
fn small_binding_limit_forces_every_split() {
    let Some(ctx) = context("small_binding_limit_forces_every_split") else {
        return;
    };
    let c = random_circuit(&RandomCircuitSpec {
        inputs: 32,
        gates: 500,
        outputs: 48,
        max_fan_in: 6,
        max_bank: 4,
        depth_bias: 0.2,
        seed: 21,
        ..Default::default()
    })
    .expect("random circuit");
    let opts = GpuOptions {
        max_binding_bytes: Some(512),
        ..Default::default()
    };
    let ev = check_batches(&ctx, &c, &opts, &[1, 33, 1000], "small limit");
    let p = ev.plan_summary();
    let l = ev.value_layout(1000).expect("layout");
    eprintln!("small limit: {p:?}, {l:?}");
    assert_eq!(p.binding_limit, 512);
    assert!(p.segments > 1, "circuit arrays split into segments");
    assert!(l.chunks > 1, "batch processed in column chunks");
    assert!(l.value_buffers > 1, "slots spread over several bindings");
}

/// A circuit of forms whose sums exceed 2^31 (weights about 2^40, and sums just around 2^31),
/// checked against the reference on random inputs.
fn wide_circuit(seed: u64) -> Circuit {
    let mut rng = SplitMix64::new(seed);
    let mut b = Builder::new();
    let x = b.input_word("x", 24).expect("inputs");
    let mut outs: Vec<Lit> = Vec::new();
    for k in 0..12 {
        let n = 3 + (k % 6);
        let terms: Vec<(Lit, i64)> = (0..n)
            .map(|j| {
                let base: i64 = if k % 2 == 0 { 1 << 40 } else { 1 << 30 };
                let w = base + rng.range_i64(-1000, 1000);
                let w = if rng.coin() { w } else { -w };
                (x[(k * 5 + j * 7) % 24], w)
            })
            .collect();
        let max: i64 = terms.iter().map(|t| t.1.max(0)).sum();
        let min: i64 = terms.iter().map(|t| t.1.min(0)).sum();
        let thetas: Vec<i64> = (0..4)
            .map(|_| rng.range_i64(min, max))
            .chain([max, min + 1])
            .collect();
        outs.extend(b.bank(&terms, &thetas).expect("bank"));
    }
    // A second level reading the first, with 2^40 weights again.
    let terms: Vec<(Lit, i64)> = outs
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, (1i64 << 40) + i as i64))
        .collect();
    let total: i64 = terms.iter().map(|t| t.1).sum();
    let top = b
        .bank(&terms, &[total / 3, total / 2, total - 5])
        .expect("bank");
    outs.extend(top);
    b.output_word("y", &outs).expect("outputs");
    b.finish()
}

#[test]
fn weighted_sums_beyond_2_pow_31_are_exact() {
    let Some(ctx) = context("weighted_sums_beyond_2_pow_31_are_exact") else {
        return;
    };
    for form_kernel in [FormKernel::Auto, FormKernel::PerLane, FormKernel::Sliced] {
        let opts = GpuOptions {
            form_kernel,
            ..Default::default()
        };
        for seed in [1u64, 2] {
            let c = wide_circuit(seed);
            let what = format!("wide {form_kernel:?}");
            let ev = check_batches(&ctx, &c, &opts, &[33, 1000], &what);
            let p = ev.plan_summary();
            match form_kernel {
                FormKernel::PerLane => {
                    assert!(
                        p.wide_forms > 0 && p.sliced_forms + p.count_forms == 0,
                        "{p:?}"
                    )
                }
                FormKernel::Sliced => assert!(p.sliced_forms > 0 && p.wide_forms == 0, "{p:?}"),
                FormKernel::Auto => {}
            }
        }
        // The bench shape: weighted fan-in 32 with weights up to 2^40.
        let c = layered(&LayeredSpec {
            inputs: 32,
            width: 64,
            layers: 3,
            gate: LayerGate::Weighted {
                fan_in: 32,
                max_weight: 1 << 40,
            },
            reach: 1,
            seed: 9,
        })
        .expect("layered");
        check_batches(
            &ctx,
            &c,
            &opts,
            &[31, 64],
            &format!("layered 2^40 {form_kernel:?}"),
        );
    }
}

#[test]
fn every_form_kernel_matches_reference() {
    let Some(ctx) = context("every_form_kernel_matches_reference") else {
        return;
    };
    for form_kernel in [FormKernel::PerLane, FormKernel::Sliced, FormKernel::Auto] {
        let opts = GpuOptions {
            form_kernel,
            ..Default::default()
        };
        for (seed, max_weight) in [(41u64, 9i64), (42, 1 << 20), (43, 1)] {
            let c = random_circuit(&RandomCircuitSpec {
                inputs: 40,
                gates: 500,
                max_weight,
                max_fan_in: 12,
                seed,
                ..Default::default()
            })
            .expect("random circuit");
            let what = format!("{form_kernel:?} seed {seed}");
            let ev = check_batches(&ctx, &c, &opts, &[1, 33, 1000], &what);
            let p = ev.plan_summary();
            match form_kernel {
                FormKernel::PerLane => assert_eq!(p.sliced_forms + p.count_forms, 0),
                FormKernel::Sliced => assert_eq!(p.narrow_forms + p.wide_forms + p.count_forms, 0),
                FormKernel::Auto if max_weight == 1 => assert!(p.count_forms > 0, "{p:?}"),
                FormKernel::Auto => {}
            }
        }
    }
    // Unit-weight majority (the counting case) on the sliced kernel.
    let c = layered(&LayeredSpec {
        inputs: 64,
        width: 128,
        layers: 3,
        gate: LayerGate::Majority { fan_in: 16 },
        reach: 1,
        seed: 8,
    })
    .expect("layered");
    let ev = check_batches(&ctx, &c, &GpuOptions::default(), &[1000], "majority16 auto");
    assert!(ev.plan_summary().count_forms > 0);
}

#[test]
fn split_upload_run_download_equals_evaluate() {
    let Some(ctx) = context("split_upload_run_download_equals_evaluate") else {
        return;
    };
    let c = random_circuit(&RandomCircuitSpec {
        seed: 33,
        gates: 300,
        ..Default::default()
    })
    .expect("random circuit");
    let lv = c.levelize();
    let mut ev = GpuEvaluator::with_context(ctx, &lv, &GpuOptions::default()).expect("upload");
    assert!(matches!(ev.run(), Err(EvalError::BatchShape(_))));
    let inputs = random_batch(lv.num_inputs, 777, 4);
    let want = ev.evaluate(&inputs).expect("evaluate");
    ev.upload(&inputs).expect("upload");
    ev.run().expect("run");
    ev.run().expect("run again");
    let got = ev.download().expect("download");
    assert!(got == want, "split API result differs from evaluate");
    check_against_reference(&c, &inputs, &got, "split api");
    assert!(ev.bytes_per_gate() > 0.0);
}

#[test]
fn errors_not_panics() {
    let Some(ctx) = context("errors_not_panics") else {
        return;
    };
    let c = random_circuit(&RandomCircuitSpec {
        inputs: 10,
        gates: 50,
        max_fan_in: 8,
        seed: 3,
        ..Default::default()
    })
    .expect("random circuit");
    let lv = c.levelize();
    let mut ev =
        GpuEvaluator::with_context(ctx.clone(), &lv, &GpuOptions::default()).expect("upload");
    // Batch shape mismatch.
    let wrong = Batch::zeros(lv.num_inputs + 1, 5);
    assert!(matches!(
        ev.evaluate(&wrong),
        Err(EvalError::InputWidth { .. })
    ));
    // Empty batch: an empty result.
    let empty = ev
        .evaluate(&Batch::zeros(lv.num_inputs, 0))
        .expect("empty batch");
    assert_eq!(empty.instances(), 0);
    // A limit too small for a single form's terms cannot be split.
    let mut b = Builder::new();
    let x = b.input_word("x", 40).expect("inputs");
    let terms: Vec<(Lit, i64)> = x
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, 1 + i as i64))
        .collect();
    let g = b.threshold(&terms, 300).expect("gate");
    b.output_word("y", &[g]).expect("outputs");
    let big = b.finish().levelize();
    let opts = GpuOptions {
        max_binding_bytes: Some(64),
        ..Default::default()
    };
    match GpuEvaluator::with_context(ctx, &big, &opts) {
        Err(EvalError::LimitExceeded { what, .. }) => assert!(what.contains("form"), "{what}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a 40-term form cannot fit in 64-byte bindings"),
    }
}
