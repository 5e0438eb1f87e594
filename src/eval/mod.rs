//! Batch evaluators (docs/gpu.md): compile a levelized circuit once, evaluate many batches.
//!
//! Both evaluators take and return [`Batch`]es in the same bit-sliced layout and must produce
//! identical outputs for every circuit.

/// The batch layout lives with the circuit (`crate::circuit::batch`); re-exported here.
pub use crate::circuit::batch;

pub use batch::Batch;

use thiserror::Error;

/// An error from an evaluator. Evaluation never panics on user input.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// The batch has the wrong number of input rows.
    #[error("input width mismatch: the circuit has {expected} inputs, the batch has {got} rows")]
    InputWidth {
        /// The circuit's input count.
        expected: usize,
        /// The batch's row count.
        got: usize,
    },
    /// A batch whose shape is inconsistent.
    #[error("bad batch shape: {0}")]
    BatchShape(String),
    /// No GPU adapter could be found.
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The GPU device was lost or failed.
    #[error("GPU device error: {0}")]
    Device(String),
    /// The GPU ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// The circuit or batch exceeds a limit that cannot be split around.
    #[error("limit exceeded: {what} needs {needed}, the limit is {limit}")]
    LimitExceeded {
        /// Which limit.
        what: String,
        /// What was needed.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// The circuit cannot be evaluated exactly by this evaluator.
    #[error("unsupported circuit: {0}")]
    Unsupported(String),
}

impl From<crate::circuit::BatchError> for EvalError {
    fn from(e: crate::circuit::BatchError) -> Self {
        match e {
            crate::circuit::BatchError::InputWidth { expected, got } => {
                EvalError::InputWidth { expected, got }
            }
            crate::circuit::BatchError::Shape(s) => EvalError::BatchShape(s),
        }
    }
}

/// An evaluator of one levelized circuit over bit-sliced batches.
///
/// Compile once (the constructor), then call [`Evaluator::evaluate`] for many batches. The
/// input batch has one row per circuit input; the result has one row per output bit, in
/// output-word order, with the same number of instances.
pub trait Evaluator {
    /// A short name for reports ("cpu", "gpu: <adapter>").
    fn name(&self) -> String;
    /// Number of circuit inputs (rows of an input batch).
    fn num_inputs(&self) -> u32;
    /// Number of circuit outputs (rows of a result batch).
    fn num_outputs(&self) -> u32;
    /// Evaluate one batch.
    fn evaluate(&mut self, inputs: &Batch) -> Result<Batch, EvalError>;
}

pub mod cpu;
#[cfg(feature = "mpi")]
pub mod distributed;
pub mod gpu;
pub mod program;
