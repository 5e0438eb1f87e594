//! Float addition and subtraction: the two-operand case of the exact sum of
//! [`super::sum`] (exact result, one rounding; DESIGN §2).
//!
//! `sub(x, y)` is `x + (-y)`: the negation only complements `y`'s sign literal inside the
//! alignment gates (a zero operand contributes no gate whatever its sign), so it costs nothing.

use crate::circuit::Builder;

use super::super::error::Result;
use super::sum::sum_signed;
use super::FloatWord;

/// `round(x + y)` (DESIGN §2; `Float::add`). Same depth as [`super::sum::sum`].
/// Errors when the operands have different formats.
pub fn add(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    x.check_same("float add", y)?;
    sum_signed(b, "float add", &[(x, false), (y, false)])
}

/// `round(x - y)` (DESIGN §2; `Float::sub`). Same depth as [`add`].
/// Errors when the operands have different formats.
pub fn sub(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    x.check_same("float sub", y)?;
    sum_signed(b, "float sub", &[(x, false), (y, true)])
}
