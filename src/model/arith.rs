//! One arithmetic interface, three backends: every model block is written once, generically.
//!
//! A block (attention, layer norm, convolution, the VAR pass) is a function generic over
//! [`Arith`]. Run with [`RefArith`] it is the F(p, q) reference (the oracle); run with
//! [`CircuitArith`] it *compiles* the very same sequence of operations into a threshold circuit,
//! each operation by the gadget that is bit-exact with the reference operation; run with
//! [`F32Arith`] it is the f32 model used to measure the format's error. Bit-exactness of a whole
//! block therefore follows from the bit-exactness of each gadget, and the tests check it end to
//! end.

use num_bigint::{BigInt, Sign};
use num_traits::Zero;

use crate::circuit::{Builder, Lit};
use crate::float::{Float, FloatError, Format};
use crate::gadgets::float as fg;
use crate::gadgets::float::FloatWord;

use super::error::{ModelError, Result};

/// Unary functions every backend provides.
///
/// In F(p, q): `Exp`, `Sqrt`, `Rsqrt` are the correctly rounded operations of [`crate::float`];
/// the others are `round(f(x))` where `f` is evaluated in f64 by the formula below (a
/// deterministic function of x, not always correctly rounded); the circuit builds its lookup
/// table from this very function, so reference and circuit agree bit for bit.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Unary {
    /// e^x.
    Exp,
    /// sqrt(x) (0 for x < 0).
    Sqrt,
    /// 1 / sqrt(x) (largest finite value for x <= 0).
    Rsqrt,
    /// SiLU: x * sigmoid(x) = x / (1 + e^-x).
    Silu,
    /// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    GeluTanh,
    /// 1 / x (largest finite value with the sign of x for x = 0, as the division rule).
    Recip,
}

impl Unary {
    /// The function in f64 (the f32 model evaluates it in f64 and rounds to f32).
    pub fn f64(self, x: f64) -> f64 {
        match self {
            Unary::Exp => x.exp(),
            Unary::Sqrt => {
                if x < 0.0 {
                    0.0
                } else {
                    x.sqrt()
                }
            }
            Unary::Rsqrt => 1.0 / x.sqrt(),
            Unary::Silu => x / (1.0 + (-x).exp()),
            Unary::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            Unary::Recip => 1.0 / x,
        }
    }

    /// The F(p, q) semantics of the function (see the type's docs). SiLU and GELU tend to 0 as
    /// x tends to minus infinity, and that limit is their value where `x` lies beyond the f64
    /// range (the f64 formula gives NaN there); any other failure is an error, never a
    /// substitute value.
    pub fn reference(self, x: Float) -> std::result::Result<Float, FloatError> {
        let fmt = x.format();
        match self {
            Unary::Exp => Ok(x.exp_fn()),
            Unary::Sqrt => Ok(x.sqrt()),
            Unary::Rsqrt => Ok(x.rsqrt()),
            // round(1) / x exactly as the division rule says (round(1) is 1 when representable).
            Unary::Recip => fmt.from_f64(1.0)?.div(x),
            Unary::Silu | Unary::GeluTanh => {
                let xf = x.to_f64();
                if xf == f64::NEG_INFINITY {
                    return Ok(fmt.zero());
                }
                fmt.from_f64(self.f64(xf))
            }
        }
    }
}

/// The arithmetic a model block may use. Every method has the F(p, q) semantics of
/// [`crate::float`] (docs/float.md) in [`RefArith`] and [`CircuitArith`].
pub trait Arith {
    /// A scalar value.
    type V: Clone;
    /// A one-hot choice among n alternatives (an index for the references, literals in circuits).
    type Choice: Clone;
    /// A truth value (a `bool` for the references, a literal in circuits).
    type Bit: Clone;
    /// An exact, unrounded partial sum ([`Arith::acc_sum`]): the grid integer of
    /// [`crate::gadgets::float::fixed`] for the F(p, q) backends.
    type Acc: Clone;

    /// The float format.
    fn format(&self) -> Format;
    /// A constant.
    fn constant(&mut self, c: Float) -> Result<Self::V>;
    /// `round(a + b)`.
    fn add(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::V>;
    /// `round(a - b)`.
    fn sub(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::V>;
    /// `round(a * b)`.
    fn mul(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::V>;
    /// `round(a * c)` for a constant c (same value as `mul` with a constant operand).
    fn mul_const(&mut self, a: &Self::V, c: Float) -> Result<Self::V>;
    /// `round(a / b)` (x/0: largest finite with the sign of x; 0/0 = 0).
    fn div(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::V>;
    /// `-a` (exact).
    fn neg(&mut self, a: &Self::V) -> Result<Self::V>;
    /// The exact sum rounded once (zero for no operands).
    fn sum(&mut self, xs: &[Self::V]) -> Result<Self::V>;
    /// The paper's dot product `round(sum_i round(a_i * b_i))` (zero for empty vectors).
    fn dot(&mut self, a: &[Self::V], b: &[Self::V]) -> Result<Self::V>;
    /// The dot product with constants: `round(sum_i round(a_i * c_i))`.
    fn dot_const(&mut self, a: &[Self::V], c: &[Float]) -> Result<Self::V>;
    /// The exact sum of `xs`, not rounded (zero for no operands).
    fn acc_sum(&mut self, xs: &[Self::V]) -> Result<Self::Acc>;
    /// The exact sum of the partial sums `parts`, rounded once: `acc_round([acc_sum(a),
    /// acc_sum(b)]) = sum(a ++ b)` (docs/float.md's iterated sum, computed in two stages).
    fn acc_round(&mut self, parts: &[Self::Acc]) -> Result<Self::V>;
    /// The largest of `xs` (at least one operand).
    fn max_n(&mut self, xs: &[Self::V]) -> Result<Self::V>;
    /// The position of the largest of `xs`, ties to the lowest index.
    fn argmax(&mut self, xs: &[Self::V]) -> Result<Self::Choice>;
    /// Row `choice` of a constant table (all rows of equal length).
    fn select_const(&mut self, choice: &Self::Choice, table: &[Vec<Float>])
        -> Result<Vec<Self::V>>;
    /// A unary function.
    fn unary(&mut self, f: Unary, x: &Self::V) -> Result<Self::V>;

    /// `[a < b]` in the total order of the values.
    fn lt(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::Bit>;
    /// Logical NOT.
    fn not(&mut self, x: &Self::Bit) -> Self::Bit;
    /// Logical AND of all bits (true for none).
    fn and(&mut self, xs: &[Self::Bit]) -> Result<Self::Bit>;
    /// `[number of true bits <= k]`.
    fn at_most(&mut self, xs: &[Self::Bit], k: usize) -> Result<Self::Bit>;
    /// `if c { a } else { b }`.
    fn select(&mut self, c: &Self::Bit, a: &Self::V, b: &Self::V) -> Result<Self::V>;
    /// A choice from one-hot bits. The caller guarantees that exactly one bit is true; the
    /// references return an error otherwise, a circuit then selects nothing (all-zero rows).
    fn choice_from_bits(&mut self, onehot: &[Self::Bit]) -> Result<Self::Choice>;

    /// Open a named region (a phase, a block) nested in the current one. Only the circuit
    /// backend records regions (for [`crate::circuit::Circuit::region_stats`]); the references
    /// ignore them. Every `push_region` must be matched by a [`Arith::pop_region`].
    fn push_region(&mut self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Close the region opened last by [`Arith::push_region`].
    fn pop_region(&mut self) -> Result<()> {
        Ok(())
    }

    /// The constant choice of alternative `index` among `n` (e.g. a forced token). Built from
    /// constant bits (`lt(0, 0)` is false in every backend), so a circuit folds it to constants.
    fn choice_const(&mut self, index: usize, n: usize) -> Result<Self::Choice> {
        if index >= n {
            return Err(ModelError::Shape {
                op: "choice_const",
                detail: format!("index {index} of {n} alternatives"),
            });
        }
        let zero = self.constant(self.format().zero())?;
        let f = self.lt(&zero, &zero)?;
        let t = self.not(&f);
        let bits: Vec<Self::Bit> = (0..n)
            .map(|i| if i == index { t.clone() } else { f.clone() })
            .collect();
        self.choice_from_bits(&bits)
    }

    /// The smaller of two values (exact: `-max(-a, -b)`).
    fn min2(&mut self, a: &Self::V, b: &Self::V) -> Result<Self::V> {
        let na = self.neg(a)?;
        let nb = self.neg(b)?;
        let m = self.max_n(&[na, nb])?;
        self.neg(&m)
    }
}

fn check_lengths(op: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(ModelError::Shape {
            op,
            detail: format!("lengths {a} and {b}"),
        });
    }
    Ok(())
}

/// The boolean operations shared by the two reference backends (`Bit = bool`,
/// `Choice = usize`), whose values `$v` are `Copy`.
macro_rules! bool_bits {
    ($v:ty) => {
        fn not(&mut self, x: &bool) -> bool {
            !x
        }
        fn and(&mut self, xs: &[bool]) -> Result<bool> {
            Ok(xs.iter().all(|&x| x))
        }
        fn at_most(&mut self, xs: &[bool], k: usize) -> Result<bool> {
            Ok(xs.iter().filter(|&&x| x).count() <= k)
        }
        fn select(&mut self, c: &bool, a: &$v, b: &$v) -> Result<$v> {
            Ok(if *c { *a } else { *b })
        }
        fn choice_from_bits(&mut self, onehot: &[bool]) -> Result<usize> {
            one_hot_index(onehot)
        }
    };
}

fn one_hot_index(onehot: &[bool]) -> Result<usize> {
    let mut set = onehot
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(i, _)| i);
    match (set.next(), set.next()) {
        (Some(i), None) => Ok(i),
        _ => Err(ModelError::Shape {
            op: "choice_from_bits",
            detail: format!(
                "{} of {} bits set, exactly one expected",
                onehot.iter().filter(|&&b| b).count(),
                onehot.len()
            ),
        }),
    }
}

fn check_table(table: &[Vec<Float>]) -> Result<usize> {
    let w = table.first().map(|r| r.len()).ok_or(ModelError::Shape {
        op: "select_const",
        detail: "empty table".into(),
    })?;
    if table.iter().any(|r| r.len() != w) {
        return Err(ModelError::Shape {
            op: "select_const",
            detail: "rows of different lengths".into(),
        });
    }
    Ok(w)
}

/// The F(p, q) reference: values are [`Float`]s, every operation is the `float` module's.
#[derive(Copy, Clone, Debug)]
pub struct RefArith {
    fmt: Format,
}

impl RefArith {
    /// The reference in format `fmt`.
    pub fn new(fmt: Format) -> Self {
        RefArith { fmt }
    }
}

impl Arith for RefArith {
    type V = Float;
    type Choice = usize;
    type Bit = bool;
    type Acc = BigInt;

    fn format(&self) -> Format {
        self.fmt
    }
    fn constant(&mut self, c: Float) -> Result<Float> {
        if c.format() != self.fmt {
            return Err(crate::float::FloatError::FormatMismatch {
                left: self.fmt,
                right: c.format(),
            }
            .into());
        }
        Ok(c)
    }
    fn add(&mut self, a: &Float, b: &Float) -> Result<Float> {
        Ok(a.add(*b)?)
    }
    fn sub(&mut self, a: &Float, b: &Float) -> Result<Float> {
        Ok(a.sub(*b)?)
    }
    fn mul(&mut self, a: &Float, b: &Float) -> Result<Float> {
        Ok(a.mul(*b)?)
    }
    fn mul_const(&mut self, a: &Float, c: Float) -> Result<Float> {
        Ok(a.mul(c)?)
    }
    fn div(&mut self, a: &Float, b: &Float) -> Result<Float> {
        Ok(a.div(*b)?)
    }
    fn neg(&mut self, a: &Float) -> Result<Float> {
        Ok(a.neg())
    }
    fn sum(&mut self, xs: &[Float]) -> Result<Float> {
        Ok(self.fmt.sum(xs)?)
    }
    fn dot(&mut self, a: &[Float], b: &[Float]) -> Result<Float> {
        check_lengths("dot", a.len(), b.len())?;
        Ok(self.fmt.dot(a, b)?)
    }
    fn dot_const(&mut self, a: &[Float], c: &[Float]) -> Result<Float> {
        check_lengths("dot_const", a.len(), c.len())?;
        Ok(self.fmt.dot(a, c)?)
    }
    fn acc_sum(&mut self, xs: &[Float]) -> Result<BigInt> {
        let e_min = self.fmt.e_min() as i64;
        let mut acc = BigInt::zero();
        for x in xs {
            if x.format() != self.fmt {
                return Err(crate::float::FloatError::FormatMismatch {
                    left: self.fmt,
                    right: x.format(),
                }
                .into());
            }
            if x.is_zero() {
                continue;
            }
            let v = BigInt::from(x.sig()) << (x.exp() as i64 - e_min) as usize;
            if x.is_negative() {
                acc -= v;
            } else {
                acc += v;
            }
        }
        Ok(acc)
    }
    fn acc_round(&mut self, parts: &[BigInt]) -> Result<Float> {
        let total: BigInt = parts.iter().sum();
        let (sign, mag) = total.into_parts();
        Ok(self
            .fmt
            .round_exact(sign == Sign::Minus, &mag, self.fmt.e_min() as i64))
    }
    fn max_n(&mut self, xs: &[Float]) -> Result<Float> {
        let (first, rest) = xs.split_first().ok_or(ModelError::Shape {
            op: "max_n",
            detail: "no operands".into(),
        })?;
        rest.iter().try_fold(*first, |m, x| Ok(m.max(*x)?))
    }
    fn argmax(&mut self, xs: &[Float]) -> Result<usize> {
        if xs.is_empty() {
            return Err(ModelError::Shape {
                op: "argmax",
                detail: "no operands".into(),
            });
        }
        let mut best = 0;
        for i in 1..xs.len() {
            if xs[i].cmp_value(xs[best])? == std::cmp::Ordering::Greater {
                best = i;
            }
        }
        Ok(best)
    }
    fn select_const(&mut self, choice: &usize, table: &[Vec<Float>]) -> Result<Vec<Float>> {
        check_table(table)?;
        table.get(*choice).cloned().ok_or(ModelError::Shape {
            op: "select_const",
            detail: format!("choice {choice} of {} rows", table.len()),
        })
    }
    fn unary(&mut self, f: Unary, x: &Float) -> Result<Float> {
        Ok(f.reference(*x)?)
    }

    fn lt(&mut self, a: &Float, b: &Float) -> Result<bool> {
        Ok(a.cmp_value(*b)? == std::cmp::Ordering::Less)
    }
    bool_bits!(Float);
}

/// The f32 model (to measure the error of F(p, q)): plain f32 arithmetic, sums in order.
#[derive(Copy, Clone, Debug)]
pub struct F32Arith {
    fmt: Format,
}

impl F32Arith {
    /// The f32 model; `fmt` is only used to convert constants.
    pub fn new(fmt: Format) -> Self {
        F32Arith { fmt }
    }
}

impl Arith for F32Arith {
    type V = f32;
    type Choice = usize;
    type Bit = bool;
    type Acc = f64;

    fn format(&self) -> Format {
        self.fmt
    }
    fn constant(&mut self, c: Float) -> Result<f32> {
        Ok(c.to_f32())
    }
    fn add(&mut self, a: &f32, b: &f32) -> Result<f32> {
        Ok(a + b)
    }
    fn sub(&mut self, a: &f32, b: &f32) -> Result<f32> {
        Ok(a - b)
    }
    fn mul(&mut self, a: &f32, b: &f32) -> Result<f32> {
        Ok(a * b)
    }
    fn mul_const(&mut self, a: &f32, c: Float) -> Result<f32> {
        Ok(a * c.to_f32())
    }
    fn div(&mut self, a: &f32, b: &f32) -> Result<f32> {
        Ok(a / b)
    }
    fn neg(&mut self, a: &f32) -> Result<f32> {
        Ok(-a)
    }
    fn sum(&mut self, xs: &[f32]) -> Result<f32> {
        Ok(xs.iter().sum())
    }
    fn dot(&mut self, a: &[f32], b: &[f32]) -> Result<f32> {
        check_lengths("dot", a.len(), b.len())?;
        Ok(a.iter().zip(b).map(|(x, y)| x * y).sum())
    }
    fn dot_const(&mut self, a: &[f32], c: &[Float]) -> Result<f32> {
        check_lengths("dot_const", a.len(), c.len())?;
        Ok(a.iter().zip(c).map(|(x, y)| x * y.to_f32()).sum())
    }
    fn acc_sum(&mut self, xs: &[f32]) -> Result<f64> {
        Ok(xs.iter().map(|&x| x as f64).sum())
    }
    fn acc_round(&mut self, parts: &[f64]) -> Result<f32> {
        Ok(parts.iter().sum::<f64>() as f32)
    }
    fn max_n(&mut self, xs: &[f32]) -> Result<f32> {
        if xs.is_empty() {
            return Err(ModelError::Shape {
                op: "max_n",
                detail: "no operands".into(),
            });
        }
        Ok(xs.iter().copied().fold(f32::NEG_INFINITY, f32::max))
    }
    fn argmax(&mut self, xs: &[f32]) -> Result<usize> {
        if xs.is_empty() {
            return Err(ModelError::Shape {
                op: "argmax",
                detail: "no operands".into(),
            });
        }
        let mut best = 0;
        for i in 1..xs.len() {
            if xs[i] > xs[best] {
                best = i;
            }
        }
        Ok(best)
    }
    fn select_const(&mut self, choice: &usize, table: &[Vec<Float>]) -> Result<Vec<f32>> {
        check_table(table)?;
        let row = table.get(*choice).ok_or(ModelError::Shape {
            op: "select_const",
            detail: format!("choice {choice} of {} rows", table.len()),
        })?;
        Ok(row.iter().map(|c| c.to_f32()).collect())
    }
    fn unary(&mut self, f: Unary, x: &f32) -> Result<f32> {
        Ok(f.f64(*x as f64) as f32)
    }

    fn lt(&mut self, a: &f32, b: &f32) -> Result<bool> {
        Ok(a < b)
    }
    bool_bits!(f32);
}

/// The compiler backend: every operation appends its gadget to a circuit [`Builder`].
#[derive(Debug)]
pub struct CircuitArith<'a> {
    /// The builder the gadgets are appended to.
    pub b: &'a mut Builder,
    fmt: Format,
}

impl<'a> CircuitArith<'a> {
    /// Compile into `b` in format `fmt`.
    pub fn new(b: &'a mut Builder, fmt: Format) -> Self {
        CircuitArith { b, fmt }
    }

    /// A new float input word.
    pub fn input(&mut self, name: &str) -> Result<FloatWord> {
        Ok(FloatWord::input(self.b, name, self.fmt)?)
    }

    fn zero(&self) -> FloatWord {
        FloatWord::constant(self.fmt, 0)
    }
}

impl Arith for CircuitArith<'_> {
    type V = FloatWord;
    type Choice = Vec<Lit>;
    type Bit = Lit;
    type Acc = Vec<Lit>;

    fn format(&self) -> Format {
        self.fmt
    }
    fn constant(&mut self, c: Float) -> Result<FloatWord> {
        if c.format() != self.fmt {
            return Err(crate::float::FloatError::FormatMismatch {
                left: self.fmt,
                right: c.format(),
            }
            .into());
        }
        Ok(FloatWord::constant(self.fmt, c.to_bits()))
    }
    fn add(&mut self, a: &FloatWord, b: &FloatWord) -> Result<FloatWord> {
        Ok(fg::add::add(self.b, a, b)?)
    }
    fn sub(&mut self, a: &FloatWord, b: &FloatWord) -> Result<FloatWord> {
        Ok(fg::add::sub(self.b, a, b)?)
    }
    fn mul(&mut self, a: &FloatWord, b: &FloatWord) -> Result<FloatWord> {
        Ok(fg::mul::mul(self.b, a, b)?)
    }
    fn mul_const(&mut self, a: &FloatWord, c: Float) -> Result<FloatWord> {
        Ok(fg::mul_const::mul_const(self.b, a, c)?)
    }
    fn div(&mut self, a: &FloatWord, b: &FloatWord) -> Result<FloatWord> {
        Ok(fg::div::div(self.b, a, b)?)
    }
    fn neg(&mut self, a: &FloatWord) -> Result<FloatWord> {
        // Flip the sign bit unless the value is zero (one zero, never -0): the sign of zero is
        // 0, so sign' = nonzero AND NOT sign (depth 1).
        let mut bits = a.bits.clone();
        let s = self.b.and2(a.nonzero(), !a.sign())?;
        let n = bits.len() - 1;
        bits[n] = s;
        Ok(FloatWord::new(self.fmt, bits)?)
    }
    fn sum(&mut self, xs: &[FloatWord]) -> Result<FloatWord> {
        match xs.len() {
            0 => Ok(self.zero()),
            1 => Ok(xs[0].clone()),
            _ => Ok(fg::sum::sum(self.b, xs)?),
        }
    }
    fn dot(&mut self, a: &[FloatWord], b: &[FloatWord]) -> Result<FloatWord> {
        check_lengths("dot", a.len(), b.len())?;
        let prods = a
            .iter()
            .zip(b)
            .map(|(x, y)| self.mul(x, y))
            .collect::<Result<Vec<_>>>()?;
        self.sum(&prods)
    }
    fn dot_const(&mut self, a: &[FloatWord], c: &[Float]) -> Result<FloatWord> {
        check_lengths("dot_const", a.len(), c.len())?;
        let mut prods = Vec::with_capacity(a.len());
        for (x, &k) in a.iter().zip(c) {
            if k.is_zero() {
                continue; // round(x * 0) = 0 contributes nothing to the exact sum
            }
            prods.push(self.mul_const(x, k)?);
        }
        self.sum(&prods)
    }
    fn acc_sum(&mut self, xs: &[FloatWord]) -> Result<Vec<Lit>> {
        if xs.is_empty() {
            return Ok(vec![Lit::FALSE]);
        }
        Ok(fg::fixed::exact_sum(self.b, xs)?)
    }
    fn acc_round(&mut self, parts: &[Vec<Lit>]) -> Result<FloatWord> {
        if parts.is_empty() {
            return Ok(self.zero());
        }
        Ok(fg::fixed::round_sum(self.b, self.fmt, parts)?)
    }
    fn max_n(&mut self, xs: &[FloatWord]) -> Result<FloatWord> {
        if xs.len() == 1 {
            return Ok(xs[0].clone());
        }
        Ok(fg::cmp::max_n(self.b, xs)?)
    }
    fn argmax(&mut self, xs: &[FloatWord]) -> Result<Vec<Lit>> {
        if xs.len() == 1 {
            return Ok(vec![Lit::TRUE]);
        }
        Ok(fg::cmp::argmax_n(self.b, xs)?)
    }
    fn select_const(&mut self, choice: &Vec<Lit>, table: &[Vec<Float>]) -> Result<Vec<FloatWord>> {
        let w = check_table(table)?;
        check_lengths("select_const", choice.len(), table.len())?;
        // Bit k of element j is the OR of the choices whose row has that bit set (depth 1).
        let width = self.fmt.width() as usize;
        let mut out = Vec::with_capacity(w);
        for j in 0..w {
            let mut bits = Vec::with_capacity(width);
            for k in 0..width {
                let on: Vec<Lit> = table
                    .iter()
                    .zip(choice)
                    .filter(|(row, _)| (row[j].to_bits() >> k) & 1 == 1)
                    .map(|(_, &c)| c)
                    .collect();
                bits.push(self.b.or(&on)?);
            }
            out.push(FloatWord::new(self.fmt, bits)?);
        }
        Ok(out)
    }
    fn unary(&mut self, f: Unary, x: &FloatWord) -> Result<FloatWord> {
        // exp, sqrt and rsqrt have dedicated (smaller) tables; every other function is the
        // generic depth-2 staircase on the input's rank, built from `f.reference` itself.
        Ok(match f {
            Unary::Exp => fg::table::exp(self.b, x)?,
            Unary::Sqrt => fg::table::sqrt(self.b, x)?,
            Unary::Rsqrt => fg::table::rsqrt(self.b, x)?,
            _ => {
                // The table enumerates every value; the first one the reference rejects
                // (none does for a valid format) is reported instead of building the table.
                let failed = std::cell::Cell::new(None);
                let w = fg::table::unary_table(self.b, "unary", x, |v| {
                    f.reference(v).unwrap_or_else(|e| {
                        failed.set(Some(e));
                        v
                    })
                })?;
                if let Some(e) = failed.take() {
                    return Err(e.into());
                }
                w
            }
        })
    }
    fn lt(&mut self, a: &FloatWord, b: &FloatWord) -> Result<Lit> {
        Ok(fg::cmp::lt(self.b, a, b)?)
    }
    fn not(&mut self, x: &Lit) -> Lit {
        !*x
    }
    fn and(&mut self, xs: &[Lit]) -> Result<Lit> {
        Ok(self.b.and(xs)?)
    }
    fn at_most(&mut self, xs: &[Lit], k: usize) -> Result<Lit> {
        // [sum x <= k]  ==  [-sum x >= -k]
        let terms: Vec<(Lit, i64)> = xs.iter().map(|&l| (l, -1)).collect();
        Ok(self.b.threshold(&terms, -(k as i64))?)
    }
    fn select(&mut self, c: &Lit, a: &FloatWord, b: &FloatWord) -> Result<FloatWord> {
        a.check_same("select", b)?;
        let bits = crate::gadgets::int::mux_word(self.b, *c, &a.bits, &b.bits)?;
        Ok(FloatWord::new(self.fmt, bits)?)
    }
    fn choice_from_bits(&mut self, onehot: &[Lit]) -> Result<Vec<Lit>> {
        Ok(onehot.to_vec())
    }
    fn push_region(&mut self, name: &str) -> Result<()> {
        Ok(self.b.push_region(name)?)
    }
    fn pop_region(&mut self) -> Result<()> {
        Ok(self.b.pop_region()?)
    }
}
