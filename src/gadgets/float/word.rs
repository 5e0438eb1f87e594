//! The float word: a format plus the literals of its encoding.

use crate::circuit::{Builder, Lit};
use crate::float::Format;

use super::super::error::{GadgetError, Result};

/// A float of format `fmt` as circuit literals in the encoding of `Float::to_bits`.
///
/// Invariant: `bits.len() == fmt.width() as usize` (= p + q + 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloatWord {
    /// The format.
    pub fmt: Format,
    /// The encoding's bits, least significant first.
    pub bits: Vec<Lit>,
}

impl FloatWord {
    /// Wrap literals as a float word, checking the width.
    pub fn new(fmt: Format, bits: Vec<Lit>) -> Result<FloatWord> {
        if bits.len() != fmt.width() as usize {
            return Err(GadgetError::WidthMismatch {
                op: "FloatWord::new",
                left: fmt.width() as usize,
                right: bits.len(),
            });
        }
        Ok(FloatWord { fmt, bits })
    }

    /// A new input word named `name` of format `fmt`.
    pub fn input(b: &mut Builder, name: &str, fmt: Format) -> Result<FloatWord> {
        let bits = b.input_word(name, fmt.width())?;
        Ok(FloatWord { fmt, bits })
    }

    /// A constant float word holding `bits` (an encoding from `Float::to_bits`).
    pub fn constant(fmt: Format, bits: u64) -> FloatWord {
        FloatWord {
            fmt,
            bits: (0..fmt.width())
                .map(|i| Lit::constant((bits >> i) & 1 == 1))
                .collect(),
        }
    }

    /// The significand bits m (p literals, bit p-1 is the leading one, set iff nonzero).
    pub fn sig(&self) -> &[Lit] {
        &self.bits[..self.fmt.p() as usize]
    }

    /// The biased exponent bits (q literals): the value e - e_min.
    pub fn exp(&self) -> &[Lit] {
        let p = self.fmt.p() as usize;
        &self.bits[p..p + self.fmt.q() as usize]
    }

    /// The sign literal.
    pub fn sign(&self) -> Lit {
        self.bits[(self.fmt.p() + self.fmt.q()) as usize]
    }

    /// The nonzero flag (the significand's leading bit).
    pub fn nonzero(&self) -> Lit {
        self.bits[self.fmt.p() as usize - 1]
    }

    /// Check that `other` has the same format, for gadget `op`.
    pub fn check_same(&self, op: &'static str, other: &FloatWord) -> Result<()> {
        if self.fmt != other.fmt {
            return Err(GadgetError::FormatMismatch {
                op,
                left: self.fmt.to_string(),
                right: other.fmt.to_string(),
            });
        }
        Ok(())
    }
}
