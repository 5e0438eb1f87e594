//! Errors of the F(p, q) reference arithmetic.

use super::Format;

/// Every way an operation of [`crate::float`] can refuse its input.
///
/// Invariant: library code never panics on any input; everything that is not a well-defined
/// operation on values of one valid format is reported as one of these variants.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FloatError {
    /// `Format::new(p, q)` was given a precision or exponent width outside the supported bounds
    /// `2 <= p <= 32`, `2 <= q <= 16`; `reason` names the violated bound.
    #[error("invalid float format F({p},{q}): {reason}")]
    InvalidFormat {
        /// The requested significand width.
        p: u32,
        /// The requested exponent width.
        q: u32,
        /// Which bound was violated.
        reason: String,
    },
    /// An operation was given values of two different formats (no silent conversion happens).
    #[error("format mismatch: {left} vs {right}")]
    FormatMismatch {
        /// Format of the first (left) operand.
        left: Format,
        /// Format of the offending operand.
        right: Format,
    },
    /// A NaN was given to a conversion; F(p, q) has no NaN.
    #[error("cannot convert NaN to {format}: the format has no NaN")]
    NotANumber {
        /// The target format.
        format: Format,
    },
    /// `Format::from_parts` was given a significand or exponent outside the format.
    #[error("invalid parts for {format}: negative={negative}, exp={exp}, sig={sig} ({reason})")]
    InvalidParts {
        /// The format.
        format: Format,
        /// The requested sign.
        negative: bool,
        /// The requested exponent.
        exp: i32,
        /// The requested integer significand.
        sig: u64,
        /// Which constraint was violated.
        reason: &'static str,
    },
    /// `Format::from_bits` was given a word that is not the canonical encoding of a value.
    #[error("non-canonical encoding {bits:#x} for {format}: {reason}")]
    InvalidBits {
        /// The format.
        format: Format,
        /// The rejected word.
        bits: u64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// `Format::dot` was given vectors of different lengths.
    #[error("length mismatch: {left} vs {right}")]
    LengthMismatch {
        /// Length of the first vector.
        left: usize,
        /// Length of the second vector.
        right: usize,
    },
    /// A required constant (such as the empty product, 1) is not exactly representable.
    #[error("{what} is not representable in {format}")]
    NotRepresentable {
        /// The format.
        format: Format,
        /// What was asked for.
        what: &'static str,
    },
}
