//! Errors of the model layer: configurations, weights, reference passes and compilation.

use thiserror::Error;

use crate::circuit::CircuitError;
use crate::float::FloatError;
use crate::gadgets::error::GadgetError;

/// An error from the model layer. Never a panic on user input.
#[derive(Error, Debug, Clone, PartialEq)]
pub enum ModelError {
    /// A configuration field is invalid; `field` names it.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A tensor is missing, has the wrong shape or an unsupported dtype; `name` names it.
    #[error("weights: tensor {name:?}: {reason}")]
    Weights {
        /// The tensor.
        name: String,
        /// Why.
        reason: String,
    },
    /// Shapes of operands do not fit.
    #[error("shape mismatch in {op}: {detail}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What did not fit.
        detail: String,
    },
    /// Reference arithmetic refused (format mismatch, invalid format).
    #[error("float: {0}")]
    Float(#[from] FloatError),
    /// A gadget could not be built.
    #[error("gadget: {0}")]
    Gadget(#[from] GadgetError),
    /// The circuit builder refused.
    #[error("circuit: {0}")]
    Circuit(#[from] CircuitError),
    /// A uniform program could not be recorded or checked.
    #[error("program: {0}")]
    Program(#[from] crate::circuit::program::ProgramError),
    /// An I/O problem (reading weights, writing reports).
    #[error("io: {0}")]
    Io(String),
}

/// Result alias for the model layer.
pub type Result<T> = std::result::Result<T, ModelError>;
