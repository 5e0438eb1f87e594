//! Acceptance tests of the CPU evaluator: random circuits evaluated in
//! bit-sliced batches must equal a naive per-instance interpreter of the netlist, written here
//! independently of the evaluator (it reads `Circuit::nodes` and `Circuit::forms`, not the
//! levelized arrays, and does not call `Circuit::eval_single`).

mod common;

use common::eval::deep_layered;
use tcvar::circuit::random::{
    layered, random_circuit, LayerGate, LayeredSpec, RandomCircuitSpec, SplitMix64,
};
use tcvar::circuit::{Builder, Circuit, Levelized, Lit, Node, Row};
use tcvar::eval::batch::tail_mask;
use tcvar::eval::cpu::{CpuEvaluator, CpuOptions, FormMethod};
use tcvar::eval::gpu::plan::Plan;
use tcvar::eval::gpu::FormKernel;
use tcvar::eval::{Batch, EvalError, Evaluator};

/// The reference: wire by wire in node order, `[sum of weights of true terms >= threshold]`
/// computed in `i128`; outputs are their literal's wire value xor its complement bit.
fn interpret(c: &Circuit, inputs: &[bool]) -> Vec<bool> {
    let mut val = vec![false; c.nodes.len()];
    for w in 0..c.nodes.len() {
        val[w] = match c.nodes[w] {
            Node::False => false,
            Node::Input(i) => inputs[i as usize],
            Node::Gate { form, threshold } => {
                let lo = c.forms.offsets[form.index()] as usize;
                let hi = c.forms.offsets[form.index() + 1] as usize;
                let mut s: i128 = 0;
                for j in lo..hi {
                    if val[c.forms.wires[j].index()] {
                        s += c.forms.weights[j] as i128;
                    }
                }
                s >= threshold as i128
            }
        };
    }
    let mut out = Vec::new();
    for word in &c.outputs {
        for l in &word.bits {
            out.push(val[l.wire().index()] != l.is_complemented());
        }
    }
    out
}

/// Per-instance inputs: instance 0 all zero, instance 1 all one, the rest random.
fn random_inputs(n_inputs: usize, instances: usize, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = SplitMix64::new(seed);
    (0..instances)
        .map(|i| match i {
            0 => vec![false; n_inputs],
            1 => vec![true; n_inputs],
            _ => (0..n_inputs).map(|_| rng.coin()).collect(),
        })
        .collect()
}

fn option_sets() -> Vec<CpuOptions> {
    let d = CpuOptions::default();
    vec![
        d,
        CpuOptions {
            form_method: FormMethod::BitSliced,
            max_block_words: 1,
            ..d
        },
        CpuOptions {
            form_method: FormMethod::PerInstance,
            max_block_words: 32,
            ..d
        },
        CpuOptions {
            form_method: FormMethod::BitSliced,
            max_block_words: 2,
            parallel: false,
            ..d
        },
        CpuOptions {
            // One row per gate, written in place.
            reuse_slots: false,
            ..d
        },
        CpuOptions {
            form_method: FormMethod::Columns,
            max_block_words: 2,
            ..d
        },
        CpuOptions {
            reuse_slots: false,
            max_scratch_bytes: 1,
            max_block_words: 4,
            ..d
        },
        CpuOptions {
            // A tiny budget forces one worker with gate-parallel levels.
            max_scratch_bytes: 1,
            max_block_words: 4,
            ..d
        },
    ]
}

/// Evaluate `c` with every option set at every batch size and compare with the interpreter,
/// including the zero tail of every output row.
fn check_circuit(c: &Circuit, sizes: &[usize], options: &[CpuOptions], seed: u64) {
    let lv = c.levelize();
    let n_in = c.num_inputs();
    let n_out = c.num_outputs();
    let mut evals: Vec<CpuEvaluator> = options
        .iter()
        .map(|&o| CpuEvaluator::with_options(&lv, o).expect("compile"))
        .collect();
    for &n in sizes {
        let inst = random_inputs(n_in, n, seed ^ n as u64);
        let expected: Vec<Vec<bool>> = inst.iter().map(|x| interpret(c, x)).collect();
        let batch = Batch::from_instances(n_in as u32, &inst).unwrap();
        for (e, o) in evals.iter_mut().zip(options) {
            let got = e.evaluate(&batch).expect("evaluate");
            assert_eq!(got.rows() as usize, n_out);
            assert_eq!(got.instances(), n);
            let wpr = got.words_per_row();
            for r in 0..n_out * (wpr > 0) as usize {
                let last = got.words()[r * wpr + wpr - 1];
                assert_eq!(
                    last & !tail_mask(n),
                    0,
                    "tail bits set in output {r}, batch {n}, {o:?}"
                );
            }
            let got = got.to_instances();
            for i in 0..n {
                if got[i] != expected[i] {
                    let bad: Vec<usize> = (0..n_out)
                        .filter(|&k| got[i][k] != expected[i][k])
                        .collect();
                    panic!("batch {n}, instance {i}, options {o:?}: outputs {bad:?} differ");
                }
            }
        }
    }
}

const SIZES: &[usize] = &[1, 63, 64, 65, 1000];

#[test]
fn random_mixed_circuits_match_interpreter() {
    let specs = [
        RandomCircuitSpec::default(),
        // Deep and narrow.
        RandomCircuitSpec {
            depth_bias: 0.95,
            gates: 3000,
            seed: 2,
            ..Default::default()
        },
        // Wide and shallow, many inputs.
        RandomCircuitSpec {
            inputs: 300,
            depth_bias: 0.0,
            gates: 3000,
            outputs: 400,
            seed: 3,
            ..Default::default()
        },
        // Large weights, wide fan-in, big banks.
        RandomCircuitSpec {
            max_weight: 1 << 20,
            max_fan_in: 24,
            bank_prob: 0.3,
            max_bank: 12,
            seed: 4,
            ..Default::default()
        },
        // Unit weights and many constants.
        RandomCircuitSpec {
            max_weight: 1,
            const_prob: 0.2,
            seed: 5,
            ..Default::default()
        },
    ];
    for spec in &specs {
        let c = random_circuit(spec).unwrap();
        let lv = c.levelize();
        assert!(
            lv.num_gates() >= 1000,
            "spec {spec:?} gives only {} gates",
            lv.num_gates()
        );
        check_circuit(&c, SIZES, &option_sets(), spec.seed);
    }
}

#[test]
fn random_circuits_exercise_every_gate_kind() {
    let c = random_circuit(&RandomCircuitSpec::default()).unwrap();
    let k = CpuEvaluator::new(&c.levelize()).unwrap().kind_counts();
    assert!(k.and2 > 0 && k.or2 > 0 && k.logic_wide > 0, "{k:?}");
    assert!(k.bitsliced_forms > 0, "{k:?}");
    let c = random_circuit(&RandomCircuitSpec {
        max_weight: 1 << 20,
        ..Default::default()
    })
    .unwrap();
    let lv = c.levelize();
    let k = CpuEvaluator::new(&lv).unwrap().kind_counts();
    assert!(
        k.bitsliced_thresholds + k.per_instance_thresholds
            > k.bitsliced_forms + k.per_instance_forms
    );
    let opts = CpuOptions {
        form_method: FormMethod::PerInstance,
        ..Default::default()
    };
    let k2 = CpuEvaluator::with_options(&lv, opts).unwrap().kind_counts();
    assert_eq!(k2.bitsliced_forms, 0);
    assert_eq!(
        k2.per_instance_forms,
        k.per_instance_forms + k.bitsliced_forms
    );
}

#[test]
fn wide_layered_circuits_match_interpreter() {
    // Wide enough levels that gate-parallel chunking is used at small batches.
    let shapes = [
        (LayerGate::AndOr2, 12_000, 3, 1),
        (LayerGate::Majority { fan_in: 16 }, 3_000, 2, 1),
        (
            LayerGate::Weighted {
                fan_in: 32,
                max_weight: 1 << 20,
            },
            1_000,
            2,
            1,
        ),
        (LayerGate::Mixed, 4_000, 5, u32::MAX),
    ];
    for (i, &(gate, width, layers, reach)) in shapes.iter().enumerate() {
        let c = layered(&LayeredSpec {
            inputs: 256,
            width,
            layers,
            gate,
            reach,
            seed: 10 + i as u64,
        })
        .unwrap();
        let d = CpuOptions::default();
        let opts = [
            d,
            CpuOptions {
                form_method: FormMethod::BitSliced,
                ..d
            },
            CpuOptions {
                form_method: FormMethod::PerInstance,
                ..d
            },
        ];
        check_circuit(&c, &[64, 65, 600], &opts, 99);
    }
}

#[test]
fn constant_and_input_outputs_are_masked() {
    let mut b = Builder::new();
    let x = b.input_word("x", 3).unwrap();
    let g = b.and2(x[0], !x[1]).unwrap();
    b.output_word("y", &[Lit::TRUE, Lit::FALSE, !x[2], x[2], !g, g])
        .unwrap();
    let c = b.finish();
    check_circuit(&c, &[0, 1, 5, 63, 64, 65, 130], &option_sets(), 7);
}

#[test]
fn wrong_input_width_is_an_error() {
    let c = random_circuit(&RandomCircuitSpec::default()).unwrap();
    let mut e = CpuEvaluator::new(&c.levelize()).unwrap();
    let bad = Batch::zeros(c.num_inputs() as u32 + 1, 10);
    assert_eq!(
        e.evaluate(&bad),
        Err(EvalError::InputWidth {
            expected: c.num_inputs(),
            got: c.num_inputs() + 1
        })
    );
    let good = Batch::zeros(c.num_inputs() as u32, 10);
    let mut out = Batch::zeros(c.num_outputs() as u32, 11);
    assert!(matches!(
        e.evaluate_into(&good, &mut out),
        Err(EvalError::BatchShape(_))
    ));
    let mut out = Batch::zeros(c.num_outputs() as u32 + 1, 10);
    assert!(matches!(
        e.evaluate_into(&good, &mut out),
        Err(EvalError::BatchShape(_))
    ));
}

#[test]
fn zero_instances_work() {
    let c = random_circuit(&RandomCircuitSpec::default()).unwrap();
    let mut e = CpuEvaluator::new(&c.levelize()).unwrap();
    let out = e.evaluate(&Batch::zeros(c.num_inputs() as u32, 0)).unwrap();
    assert_eq!(out.rows() as usize, c.num_outputs());
    assert_eq!(out.instances(), 0);
    assert!(out.words().is_empty());
}

#[test]
fn evaluator_is_reusable_across_batch_sizes() {
    let c = random_circuit(&RandomCircuitSpec {
        seed: 21,
        ..Default::default()
    })
    .unwrap();
    let lv = c.levelize();
    let mut e = CpuEvaluator::new(&lv).unwrap();
    for (k, &n) in [1000usize, 65, 3, 1000, 0, 64].iter().enumerate() {
        let inst = random_inputs(c.num_inputs(), n, k as u64);
        let got = e
            .evaluate(&Batch::from_instances(c.num_inputs() as u32, &inst).unwrap())
            .unwrap()
            .to_instances();
        for i in 0..n {
            assert_eq!(
                got[i],
                interpret(&c, &inst[i]),
                "call {k}, batch {n}, instance {i}"
            );
        }
    }
    assert!(e.bytes() > 0);
    assert_eq!(e.num_inputs() as usize, c.num_inputs());
    assert_eq!(e.num_outputs() as usize, c.num_outputs());
}

#[test]
fn malformed_levelized_is_an_error_not_a_panic() {
    let c = random_circuit(&RandomCircuitSpec::default()).unwrap();
    let lv = c.levelize();
    let mut cases: Vec<Levelized> = Vec::new();
    let mut x = lv.clone();
    x.outputs[0] = Row(x.num_rows).lit(false);
    cases.push(x);
    let mut x = lv.clone();
    // A gate reading a row of its own level.
    let l = x.levels[2];
    x.gate_lits[x.gate_offsets[l.and_start as usize] as usize] = Row(l.row_start + 1).lit(false);
    if l.and_start < l.or_end {
        cases.push(x);
    }
    let mut x = lv.clone();
    x.num_rows += 1;
    cases.push(x);
    let mut x = lv.clone();
    x.gate_offsets.pop();
    cases.push(x);
    let mut x = lv.clone();
    x.bank_offsets[1] = u32::MAX;
    cases.push(x);
    let mut x = lv.clone();
    x.levels[1].row_start += 1;
    cases.push(x);
    let mut x = lv.clone();
    if let Some(mut ws) = x.form_weights(0).map(|w| w.collect::<Vec<i64>>()) {
        ws[0] = i64::MAX;
        assert!(x.set_form_weights(0, &ws));
    }
    cases.push(x);
    let mut x = lv.clone();
    // Weight bytes that are not a whole number of bytes per term.
    if let Some(o) = x.form_weight_offsets.get_mut(1) {
        *o += 1;
    }
    cases.push(x);
    let mut x = lv.clone();
    // A bank whose thresholds are not ascending.
    if let Some(f) =
        (0..x.num_forms() as usize).find(|&f| x.bank_offsets[f + 1] - x.bank_offsets[f] > 1)
    {
        let t = x.bank_offsets[f] as usize;
        x.thresholds.swap(t, t + 1);
        if x.thresholds[t] != x.thresholds[t + 1] {
            cases.push(x);
        }
    }
    let mut x = lv.clone();
    // Named output words that do not cover the outputs.
    x.output_words.push(("extra".into(), 1));
    cases.push(x);
    // One check, one verdict: Levelized::check, the CPU evaluator and the GPU plan agree.
    assert!(lv.check().is_ok());
    assert!(Plan::new(&lv, 1 << 20, FormKernel::Auto).is_ok());
    for (i, m) in cases.iter().enumerate() {
        assert!(m.check().is_err(), "case {i} passed the check");
        assert!(
            matches!(CpuEvaluator::new(m), Err(EvalError::Unsupported(_))),
            "case {i} was accepted by the CPU evaluator"
        );
        assert!(
            matches!(
                Plan::new(m, 1 << 20, FormKernel::Auto),
                Err(EvalError::Unsupported(_))
            ),
            "case {i} was accepted by the GPU plan"
        );
    }
}

/// The wire-value array holds the slots (rows reused once their last reader has run) plus one
/// level's staging block, not every row: on a deep circuit of reach 2 it is a fraction of the
/// rows, and the outputs still equal the interpreter's.
#[test]
fn deep_circuit_values_live_in_reused_slots() {
    let c = deep_layered();
    let lv = c.levelize();
    assert!(lv.depth() > 100, "depth {}", lv.depth());
    let opts = CpuOptions {
        parallel: false,
        max_block_words: 1,
        ..CpuOptions::default()
    };
    let mut e = CpuEvaluator::with_options(&lv, opts).unwrap();
    let program = e.bytes();
    let n = 100;
    let inst = random_inputs(c.num_inputs(), n, 3);
    let got = e
        .evaluate(&Batch::from_instances(c.num_inputs() as u32, &inst).unwrap())
        .unwrap()
        .to_instances();
    for (i, x) in inst.iter().enumerate() {
        assert_eq!(got[i], interpret(&c, x), "instance {i}");
    }
    // Column blocks of one word (max_block_words), one worker: 8 bytes per value row.
    let value_rows = (e.bytes() - program) / 8;
    assert!(
        value_rows * 4 < lv.num_rows as u64,
        "{value_rows} value rows for {} rows",
        lv.num_rows
    );
}

/// Gate rows that no level reads and no output names (a hand-made circuit whose last outputs
/// were cut) get slots of their own, freed after their level: both value layouts evaluate it,
/// the kept outputs are unchanged, and the GPU plan accepts it.
#[test]
fn unread_gate_rows_get_slots_of_their_own() {
    let c = layered(&LayeredSpec {
        inputs: 16,
        width: 24,
        layers: 30,
        gate: LayerGate::Mixed,
        reach: 2,
        seed: 9,
    })
    .expect("layered");
    let lv = c.levelize();
    let mut cut = lv.clone();
    let keep = cut.outputs.len() / 2;
    cut.outputs.truncate(keep);
    cut.output_words.clear();
    assert!(cut.check().is_ok());
    let n = 130;
    let inputs =
        Batch::from_instances(c.num_inputs() as u32, &random_inputs(c.num_inputs(), n, 4)).unwrap();
    let full = CpuEvaluator::new(&lv)
        .unwrap()
        .evaluate(&inputs)
        .unwrap()
        .to_instances();
    for reuse_slots in [true, false] {
        let opts = CpuOptions {
            reuse_slots,
            ..CpuOptions::default()
        };
        let got = CpuEvaluator::with_options(&cut, opts)
            .unwrap()
            .evaluate(&inputs)
            .unwrap()
            .to_instances();
        for i in 0..n {
            assert_eq!(
                got[i][..],
                full[i][..keep],
                "instance {i}, reuse {reuse_slots}"
            );
        }
    }
    assert!(Plan::new(&cut, 1 << 20, FormKernel::Auto).is_ok());
}

/// One random corruption of `x`: a field, level bound, offset, literal, row, threshold or weight
/// byte set to a value near its range or anywhere.
fn corrupt(x: &mut Levelized, rng: &mut SplitMix64) {
    let near = |rng: &mut SplitMix64, v: u32| match rng.below(4) {
        0 => v.wrapping_add(1),
        1 => v.wrapping_sub(1),
        2 => rng.next_u64() as u32,
        _ => v.wrapping_add(rng.below(8) as u32),
    };
    let pick = |rng: &mut SplitMix64, n: usize| rng.below(n.max(1) as u64) as usize;
    match rng.below(11) {
        0 => x.num_rows = near(rng, x.num_rows),
        1 => x.num_inputs = near(rng, x.num_inputs),
        2 if !x.levels.is_empty() => {
            let i = pick(rng, x.levels.len());
            let l = &mut x.levels[i];
            let f = match rng.below(8) {
                0 => &mut l.row_start,
                1 => &mut l.and_start,
                2 => &mut l.or_start,
                3 => &mut l.or_end,
                4 => &mut l.form_start,
                5 => &mut l.form_end,
                6 => &mut l.threshold_start,
                _ => &mut l.threshold_end,
            };
            *f = near(rng, *f);
        }
        3 if !x.gate_lits.is_empty() => {
            let i = pick(rng, x.gate_lits.len());
            x.gate_lits[i].0 = near(rng, x.gate_lits[i].0);
        }
        4 if !x.form_rows.is_empty() => {
            let i = pick(rng, x.form_rows.len());
            x.form_rows[i].0 = near(rng, x.form_rows[i].0);
        }
        5 if !x.outputs.is_empty() => {
            let i = pick(rng, x.outputs.len());
            x.outputs[i].0 = near(rng, x.outputs[i].0);
        }
        6 => {
            let arr = match rng.below(5) {
                0 => &mut x.gate_offsets,
                1 => &mut x.form_offsets,
                2 => &mut x.bank_offsets,
                3 => &mut x.form_weight_offsets,
                _ => &mut x.form_run_offsets,
            };
            if !arr.is_empty() {
                let i = pick(rng, arr.len());
                arr[i] = near(rng, arr[i]);
            }
        }
        7 if !x.thresholds.is_empty() => {
            let i = pick(rng, x.thresholds.len());
            x.thresholds[i] = rng.next_u64() as i64 >> rng.below(64);
        }
        8 if !x.form_weight_bytes.is_empty() => {
            let i = pick(rng, x.form_weight_bytes.len());
            x.form_weight_bytes[i] = rng.next_u64() as u8;
        }
        9 if !x.word_runs.is_empty() => {
            let i = pick(rng, x.word_runs.len());
            x.word_runs[i].start = near(rng, x.word_runs[i].start);
            x.word_runs[i].len = near(rng, x.word_runs[i].len);
        }
        _ => {
            x.levels.truncate(pick(rng, x.levels.len() + 1));
        }
    }
}

/// `Levelized::check` is the only guard of the evaluators: on thousands of random corruptions
/// it never panics, and whatever it accepts the CPU evaluator (both value layouts) evaluates
/// and the GPU plan plans without panicking.
#[test]
fn whatever_the_check_accepts_evaluates_without_panic() {
    let c = random_circuit(&RandomCircuitSpec {
        seed: 17,
        ..RandomCircuitSpec::default()
    })
    .unwrap();
    let lv = c.levelize();
    let mut rng = SplitMix64::new(99);
    let inputs =
        Batch::from_instances(lv.num_inputs, &random_inputs(lv.num_inputs as usize, 70, 5))
            .unwrap();
    let (mut accepted, cases) = (0, 3000);
    for _ in 0..cases {
        let mut x = lv.clone();
        for _ in 0..1 + rng.below(3) {
            corrupt(&mut x, &mut rng);
        }
        if x.check().is_err() {
            continue;
        }
        accepted += 1;
        for reuse_slots in [true, false] {
            let opts = CpuOptions {
                reuse_slots,
                ..CpuOptions::default()
            };
            let mut e = CpuEvaluator::with_options(&x, opts).expect("checked circuit compiles");
            if x.num_inputs == lv.num_inputs {
                e.evaluate(&inputs).expect("evaluates");
            }
        }
        Plan::new(&x, 1 << 20, FormKernel::Auto).expect("checked circuit plans");
    }
    eprintln!("{accepted} of {cases} corrupted circuits passed the check");
}
