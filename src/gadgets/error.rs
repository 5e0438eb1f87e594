//! Errors of gadget construction.

use thiserror::Error;

use crate::circuit::CircuitError;

/// An error from building a gadget: bad operands, or a construction limit. Never a panic.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum GadgetError {
    /// The underlying circuit builder refused (weight bound, circuit size, ...).
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// Operands that must have equal widths do not.
    #[error("{op}: operand widths differ ({left} vs {right})")]
    WidthMismatch {
        /// The gadget.
        op: &'static str,
        /// Width of the first operand.
        left: usize,
        /// Width of the offending operand.
        right: usize,
    },
    /// Floats of two different formats were combined.
    #[error("{op}: operands have different formats ({left} vs {right})")]
    FormatMismatch {
        /// The gadget.
        op: &'static str,
        /// Format of the first operand.
        left: String,
        /// Format of the offending operand.
        right: String,
    },
    /// A gadget over n operands was given none (or too few).
    #[error("{op}: needs at least {min} operands, got {got}")]
    TooFewOperands {
        /// The gadget.
        op: &'static str,
        /// The minimum.
        min: usize,
        /// The number given.
        got: usize,
    },
    /// A width, format or operand count this construction cannot build; `limit` says which.
    #[error("{op}: cannot build: {limit}")]
    Unsupported {
        /// The gadget.
        op: &'static str,
        /// The limit that was hit, in words (e.g. "weight bound 2^62 exceeded by n * 2^w").
        limit: String,
    },
    /// A float reference error (format construction) surfaced while building.
    #[error("float format: {0}")]
    Float(String),
}

/// Result alias for gadgets.
pub type Result<T> = std::result::Result<T, GadgetError>;
