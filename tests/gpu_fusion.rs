//! Fused levels on the GPU: groups of consecutive levels evaluated in one dispatch must give
//! the outputs of the serial reference `Circuit::eval_single` and of the CPU evaluator, bit for
//! bit, wherever the group boundaries fall. The plans are also checked without an adapter.

mod common;

use std::sync::Arc;

use tcvar::circuit::random::{random_circuit, RandomCircuitSpec};
use tcvar::circuit::{Circuit, Levelized};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::plan::{Fusion, Plan};
use tcvar::eval::gpu::{FormKernel, GpuContext, GpuEvaluator, GpuOptions};
use tcvar::eval::Evaluator;

use common::eval::{context, random_batch};

fn deep(seed: u64, gates: u32) -> Circuit {
    random_circuit(&RandomCircuitSpec {
        inputs: 24,
        gates,
        outputs: 24,
        depth_bias: 0.9,
        seed,
        ..Default::default()
    })
    .expect("random circuit")
}

fn check(ctx: &Arc<GpuContext>, c: &Circuit, lv: &Levelized, opts: &GpuOptions, what: &str) {
    let mut ev = GpuEvaluator::with_context(ctx.clone(), lv, opts).expect("upload");
    let batch = random_batch(lv.num_inputs, 70, 5);
    let got = ev.evaluate(&batch).expect("evaluate");
    let want = CpuEvaluator::new(lv).unwrap().evaluate(&batch).unwrap();
    assert!(got == want, "{what}: GPU and CPU differ");
    for (i, x) in batch.to_instances().iter().enumerate() {
        assert_eq!(
            got.to_instances()[i],
            c.eval_single(x).unwrap(),
            "{what}: instance {i}"
        );
    }
}

/// Every plan covers each dispatch exactly once, in order, and groups hold whole levels.
fn check_plan(plan: &Plan) {
    let mut next = 0u32;
    for g in &plan.fused {
        assert!(g.first_dispatch >= next);
        let ds = &plan.dispatches[g.first_dispatch as usize..(g.first_dispatch + g.steps) as usize];
        assert_eq!(ds[0].level, g.first_level);
        assert_eq!(ds.last().unwrap().level, g.first_level + g.levels - 1);
        if g.first_dispatch > 0 {
            assert_ne!(
                plan.dispatches[g.first_dispatch as usize - 1].level,
                g.first_level
            );
        }
        if let Some(d) = plan.dispatches.get((g.first_dispatch + g.steps) as usize) {
            assert_ne!(d.level, g.first_level + g.levels - 1);
        }
        next = g.first_dispatch + g.steps;
    }
    let covered: u32 = plan.fused.iter().map(|g| g.steps).sum();
    assert_eq!(
        plan.dispatches_per_batch(),
        plan.dispatches.len() as u32 - covered + plan.fused.len() as u32 + 1
    );
}

#[test]
fn plans_fuse_whole_levels() {
    let c = deep(3, 400);
    let lv = c.levelize();
    let mut plan = Plan::new(&lv, 1 << 20, FormKernel::Auto).unwrap();
    plan.fuse(&Fusion::Auto, 1 << 20);
    check_plan(&plan);
    assert!(!plan.fused.is_empty());
    assert!(plan.dispatches_per_batch() < plan.dispatches.len() as u32);
    for b in 0..lv.depth() {
        plan.fuse(&Fusion::Starts(vec![b]), 1 << 20);
        check_plan(&plan);
        assert!(plan
            .fused
            .iter()
            .all(|g| g.first_level == b || g.first_level + g.levels <= b || g.first_level > b));
    }
    plan.fuse(&Fusion::Off, 1 << 20);
    assert!(plan.fused.is_empty());
    // A tiny binding limit leaves room for few steps per group, never more.
    plan.fuse(&Fusion::Auto, 64);
    check_plan(&plan);
    assert!(plan.steps.iter().all(|s| s.len() * 16 <= 64));
}

#[test]
fn fused_groups_equal_reference_with_a_boundary_everywhere() {
    let Some(ctx) = context("fused_groups_equal_reference_with_a_boundary_everywhere") else {
        return;
    };
    let c = deep(7, 60);
    let lv = c.levelize();
    let depth = lv.depth();
    assert!(depth >= 6, "depth {depth}");
    // Each evaluator builds its pipelines (slow on a software adapter): one kernel choice.
    for kernel in [FormKernel::PerLane] {
        let base = GpuOptions {
            form_kernel: kernel,
            ..Default::default()
        };
        for fusion in [
            Fusion::Off,
            Fusion::Auto,
            Fusion::Starts((0..depth).collect()),
        ] {
            let opts = GpuOptions {
                fusion: fusion.clone(),
                ..base.clone()
            };
            check(&ctx, &c, &lv, &opts, &format!("{kernel:?} {fusion:?}"));
        }
        for b in 1..depth {
            let opts = GpuOptions {
                fusion: Fusion::Starts(vec![b]),
                ..base.clone()
            };
            let ev = GpuEvaluator::with_context(ctx.clone(), &lv, &opts).unwrap();
            assert!(ev.plan_summary().fused_groups >= 1);
            check(
                &ctx,
                &c,
                &lv,
                &opts,
                &format!("{kernel:?} boundary at level {b}"),
            );
        }
    }
}

#[test]
fn fused_deep_circuits_and_small_bindings_equal_reference() {
    let Some(ctx) = context("fused_deep_circuits_and_small_bindings_equal_reference") else {
        return;
    };
    for seed in 0..3 {
        let c = deep(20 + seed, 1500);
        let lv = c.levelize();
        let opts = GpuOptions::default();
        let ev = GpuEvaluator::with_context(ctx.clone(), &lv, &opts).unwrap();
        let p = ev.plan_summary();
        eprintln!("seed {seed}: {p:?}");
        assert!(p.fused_groups > 0 && p.dispatches_per_batch < p.dispatches);
        check(&ctx, &c, &lv, &opts, &format!("seed {seed}"));
        let small = GpuOptions {
            max_binding_bytes: Some(512),
            ..Default::default()
        };
        check(
            &ctx,
            &c,
            &lv,
            &small,
            &format!("seed {seed}, 512-byte bindings"),
        );
    }
}
