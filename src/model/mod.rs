//! VAR configuration, weights, reference forward pass and compiler (docs/var.md).
//!
//! Every block is written once, generic over [`arith::Arith`]: the same code is the F(p, q)
//! reference, the circuit compiler and the f32 model.

pub mod arith;
pub mod error;

pub use arith::{Arith, CircuitArith, F32Arith, RefArith, Unary};
pub use error::ModelError;
pub mod blocks;
pub mod ops;
pub mod tensor;
pub mod var;
