//! GPU smoke test: request an adapter, run `shaders/smoke.wgsl`, and check
//! its output against the same formula computed on the CPU.
//!
//! Without an adapter the test fails when `TCVAR_REQUIRE_GPU=1` and otherwise prints loudly
//! that it skipped and why.

use tcvar::eval::gpu::{context_for_tests, smoke_compute, GpuOptions};

fn cpu_formula(x: u32, i: u32) -> u32 {
    (x.wrapping_mul(2654435761) ^ (x >> 7))
        .wrapping_add(x.count_ones())
        .wrapping_add(i)
}

#[test]
fn smoke_shader_matches_cpu() {
    let Some(ctx) = context_for_tests("smoke_shader_matches_cpu", &GpuOptions::default())
        .expect("a GPU adapter is required (TCVAR_REQUIRE_GPU=1)")
    else {
        return;
    };
    eprintln!("adapter: {}", ctx.adapter());
    // 1000 is not a multiple of the workgroup size: the bounds check is exercised too.
    let mut s = 0x9e37_79b9u32;
    let input: Vec<u32> = (0..1000u32)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        })
        .chain([0, 1, u32::MAX, 0x8000_0000])
        .collect();
    let out = smoke_compute(&ctx, &input).expect("smoke kernel ran");
    assert_eq!(out.len(), input.len());
    for (i, (&x, &y)) in input.iter().zip(&out).enumerate() {
        assert_eq!(y, cpu_formula(x, i as u32), "element {i}, input {x:#x}");
    }
}
