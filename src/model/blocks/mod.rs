//! The paper's building blocks (Definitions 4.2-4.10), each written once, generic over [`Arith`].
//!
//! Run with [`super::RefArith`] a block is the F(p, q) reference; run with
//! [`super::CircuitArith`] the same code compiles it into a threshold circuit, each operation by
//! the gadget that is bit-exact with the reference operation. Weights are constants
//! ([`Float`]s, baked into the circuit); activations are `A::V`.
//!
//! Conventions shared by every block (documented in `docs/blocks.md`):
//! - a constant-weight matrix product is the paper's dot product `round(sum_i round(x_i w_i))`
//!   ([`Arith::dot_const`]); products with a zero weight are dropped (they add an exact 0);
//! - a bias joins that exact sum as one more term, so `W x + b` is rounded *once*
//!   (`round(sum_i round(w_i x_i) + b)`), like a fused `addmm`;
//! - a product of two activation matrices is [`Arith::dot`] per entry;
//! - tensors of feature maps are channel-first `[c, h, w]`; token matrices are `[n, d]`;
//!   weight matrices of [`linear::linear`] are `[d_out, d_in]` (PyTorch), those of the
//!   attention layer are the paper's `W in F^{d x d'}` applied as `X W`.
//!
//! Modules: [`linear`] (Lemma 5.2, Definition 4.6), [`interp`] (Definitions 4.2/4.3),
//! [`attention`] (Definitions 4.4/4.5), [`norm`] (Definition 4.7), [`conv`] (Definition 4.10,
//! Proposition 5.7), [`transformer`] (Definition 4.9), [`sweep`] (the scaling sweep and the
//! lemmas' depth formulas).

pub mod attention;
pub mod conv;
pub mod interp;
pub mod linear;
pub mod norm;
pub mod sweep;
pub mod transformer;

use crate::circuit::Builder;
use crate::float::Float;
use crate::gadgets::float::FloatWord;

use super::arith::{Arith, CircuitArith};
use super::error::Result;
use super::tensor::Tensor;

pub use attention::{attention, attention_matrix, scores, softmax_rows, AttnOptions};
pub use conv::conv2d;
pub use interp::{bicubic_up, bicubic_weights_1d, cubic_kernel, BICUBIC_A};
pub use linear::{linear, matmul, matmul_const, mlp};
pub use norm::layer_norm;
pub use sweep::{sweep, to_csv, GadgetDepths, SweepRow};
pub use transformer::{var_transformer, LayerWeights};

/// A tensor of new circuit inputs of `shape`: element `k` (row-major) is the float input word
/// named `"{name}.{k}"`. Inputs are therefore laid out element after element, each
/// `fmt.width()` bits, in row-major order (the order [`crate::circuit::Batch::pack_fields`] needs).
pub fn circuit_input(
    a: &mut CircuitArith<'_>,
    name: &str,
    shape: Vec<usize>,
) -> Result<Tensor<FloatWord>> {
    let mut k = 0usize;
    Tensor::from_fn(shape, |_| {
        let w = a.input(&format!("{name}.{k}"))?;
        k += 1;
        Ok(w)
    })
}

/// Declare every element of `y` as an output word named `"{name}.{k}"` (row-major).
pub fn circuit_output(b: &mut Builder, name: &str, y: &Tensor<FloatWord>) -> Result<()> {
    for (k, w) in y.data().iter().enumerate() {
        b.output_word(&format!("{name}.{k}"), &w.bits)?;
    }
    Ok(())
}

/// The constants of `t` as values of backend `a` (errors on a format mismatch).
pub fn constants<A: Arith>(a: &mut A, t: &Tensor<Float>) -> Result<Tensor<A::V>> {
    t.try_map(|&c| a.constant(c))
}
