//! The GPU batch evaluator on wgpu (docs/gpu.md): levelized threshold circuits as WGSL compute
//! kernels over bit-sliced batches, bit-exact with the CPU evaluator.
//!
//! - [`context`]: adapter and device selection with the adapter's real limits, error capture.
//! - [`evaluator`]: [`GpuEvaluator`], the [`crate::eval::Evaluator`] on the GPU.
//!
//! See `docs/gpu.md` for the design: kernels, exact sums beyond 32 bits, buffer splitting and
//! wire-slot reuse, environment variables.

pub mod context;
pub mod evaluator;
pub mod plan;

pub use context::{
    context_for_tests, probe_adapter, smoke_compute, AdapterSummary, GpuBackend, GpuContext,
    GpuOptions, ENV_ADAPTER, ENV_BACKEND, ENV_REQUIRE_GPU,
};
pub use evaluator::{GpuEvaluator, GpuMemory, PlanSummary, ValueLayout};
pub use plan::{FormKernel, Fusion};
