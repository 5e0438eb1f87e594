//! Evaluator tests: random input batches and the GPU context.

use std::sync::Arc;

use tcvar::circuit::random::{layered, LayerGate, LayeredSpec, SplitMix64};
use tcvar::circuit::Circuit;
use tcvar::eval::gpu::{context_for_tests, GpuContext, GpuOptions};
use tcvar::eval::Batch;

/// The GPU context for the test named `test`, or `None` (after the loud skip message of
/// `context_for_tests`) when there is no adapter; panics without one when
/// `TCVAR_REQUIRE_GPU=1`.
pub fn context(test: &str) -> Option<Arc<GpuContext>> {
    context_for_tests(test, &GpuOptions::default())
        .expect("a GPU adapter is required (TCVAR_REQUIRE_GPU=1)")
        .map(Arc::new)
}

/// A batch of `n` random instances of `rows` inputs from `SplitMix64::new(seed)`; instance 0 is
/// all zeros and instance 1 all ones (when they exist).
pub fn random_batch(rows: u32, n: usize, seed: u64) -> Batch {
    let mut rng = SplitMix64::new(seed);
    let mut b = Batch::zeros(rows, n);
    for i in 0..n {
        for r in 0..rows {
            let v = match i {
                0 => false,
                1 => true,
                _ => rng.coin(),
            };
            b.set(r, i, v);
        }
    }
    b
}

/// A deep layered circuit (130 layers of 24 mixed gates, each reading at most 2 layers back,
/// seed 5): more than 100 levels, with only about three layers live at once.
pub fn deep_layered() -> Circuit {
    let c = layered(&LayeredSpec {
        inputs: 16,
        width: 24,
        layers: 130,
        gate: LayerGate::Mixed,
        reach: 2,
        seed: 5,
    })
    .expect("layered");
    assert!(c.levelize().depth() > 100);
    c
}
