//! The gadget report: every integer and float gadget built alone for one
//! format and operand count, with its depth and size, and the measured depths the paper names
//! (Lemmas 3.5-3.7): `d_std` (the largest of float add, mul, div and compare), `d_sum` (the
//! iterated sum, the paper's d_⊕), `d_prod` (the iterated product, d_⊗), `d_exp` and `d_sqrt`.
//!
//! Each gadget is built into its own circuit (fresh inputs, its outputs declared) and measured
//! with [`Circuit::stats`]: depth, gates (every threshold of a bank counts), fan-in (sum of
//! fan-ins), distinct forms and their terms, the largest |weight| and the majority-equivalent
//! size (sum of |weights| over gates).
//!
//! Integer gadgets use words of the format's width `p + q + 1` bits. A gadget that cannot be
//! built at these parameters (a construction limit, e.g. the iterated product's operand bound)
//! is listed in [`GadgetReport::skipped`] with its error; the iterated product is built with
//! `min(n, max_product_operands(p))` operands (its row says which n), and when that is below n
//! the n-operand attempt is listed as skipped with the limit it hit (above p = 12 only the
//! monomial construction exists, whose exact product form needs `n p <= 62` bits: at F(24,9)
//! the row has n = 2).
//!
//! JSON (`tcvar gadgets --json`, [`GadgetReport::to_json`]): every row has `gadget`, `n`,
//! `depth`, `gates`, `terms` (total size of the linear forms, each form once: the per-lane
//! evaluation work), `fan_in` (sum of fan-ins), and also `forms`, `max_weight`, `maj_size`.

use std::fmt;

use serde_json::json;

use crate::circuit::builder::{BYTES_PER_NODE, BYTES_PER_TERM};
use crate::circuit::CircuitError;
use crate::circuit::{Builder, Circuit, Lit};
use crate::float::{Float, Format};

use super::error::{GadgetError, Result};
use super::float::FloatWord;
use super::{float as fl, int};

/// One gadget's measurements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GadgetRow {
    /// The gadget ("float.mul", "int.sum", ...).
    pub name: String,
    /// Number of operands it was built with (1 for unary, 2 for binary gadgets).
    pub n: usize,
    /// Depth in threshold gates (largest level of an output).
    pub depth: u32,
    /// Threshold gates.
    pub gates: u64,
    /// Wires: the sum of every gate's fan-in.
    pub fan_in: u64,
    /// Distinct linear forms read by gates.
    pub forms: u64,
    /// Terms: the total size of those linear forms, each form once (a bank's shared form counts
    /// once): the per-lane evaluation work.
    pub terms: u64,
    /// Largest |weight|.
    pub max_weight: u64,
    /// Majority-equivalent size: sum over gates of the sum of |weights|.
    pub maj_size: u128,
}

/// Largest operand count at which the report builds the all-pairs integer max and argmax.
pub const MAX_PAIRWISE_N: usize = 1024;

/// Largest operand count at which the report builds the iterated float product.
pub const MAX_PRODUCT_N: usize = 1024;

/// A gadget that could not be built at the report's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedGadget {
    /// The gadget ("float.product", ...).
    pub name: String,
    /// The operand count it was attempted with.
    pub n: usize,
    /// The construction limit it hit (the gadget's error message).
    pub reason: String,
}

/// The report for one format and operand count.
///
/// Invariant: `d_std` is the largest depth among the rows `float.add`, `float.mul`,
/// `float.div`, `float.lt`; `d_sum`, `d_prod`, `d_exp`, `d_sqrt` are the depths of the rows
/// `float.sum`, `float.product`, `float.exp`, `float.sqrt` (0 when that row is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GadgetReport {
    /// The float format.
    pub format: Format,
    /// The operand count of the n-ary gadgets.
    pub n: usize,
    /// One row per gadget built.
    pub rows: Vec<GadgetRow>,
    /// Gadgets that could not be built (at that n), with the reason.
    pub skipped: Vec<SkippedGadget>,
    /// Largest depth of float add, mul, div and compare (the paper's d_std).
    pub d_std: u32,
    /// Depth of the iterated float sum of n (d_⊕).
    pub d_sum: u32,
    /// Depth of the iterated float product (d_⊗), at `min(n, max_product_operands(p))`.
    pub d_prod: u32,
    /// Depth of exp.
    pub d_exp: u32,
    /// Depth of sqrt.
    pub d_sqrt: u32,
}

impl GadgetReport {
    /// The row called `name`, if built.
    pub fn row(&self, name: &str) -> Option<&GadgetRow> {
        self.rows.iter().find(|r| r.name == name)
    }

    /// The report as JSON: `{"format", "p", "q", "n", "d_std", "d_sum", "d_prod", "d_exp",
    /// "d_sqrt", "rows": [{"gadget", "n", "depth", "gates", "terms", "fan_in", "forms",
    /// "max_weight", "maj_size"}], "skipped": [{"gadget", "n", "reason"}]}` (`maj_size` as a
    /// number when it fits in a u64, else as a decimal string).
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let maj = u64::try_from(r.maj_size)
                    .map_or_else(|_| json!(r.maj_size.to_string()), |v| json!(v));
                json!({"gadget": r.name, "n": r.n, "depth": r.depth, "gates": r.gates,
                    "terms": r.terms, "fan_in": r.fan_in, "forms": r.forms,
                    "max_weight": r.max_weight, "maj_size": maj})
            })
            .collect();
        let skipped: Vec<serde_json::Value> = self
            .skipped
            .iter()
            .map(|sk| json!({"gadget": sk.name, "n": sk.n, "reason": sk.reason}))
            .collect();
        json!({"format": self.format.to_string(), "p": self.format.p(), "q": self.format.q(),
            "n": self.n, "d_std": self.d_std, "d_sum": self.d_sum, "d_prod": self.d_prod,
            "d_exp": self.d_exp, "d_sqrt": self.d_sqrt, "rows": rows, "skipped": skipped})
        .to_string()
    }
}

impl fmt::Display for GadgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "gadget report {} n = {}: d_std = {}, d_sum = {}, d_prod = {}, d_exp = {}, d_sqrt = {}",
            self.format, self.n, self.d_std, self.d_sum, self.d_prod, self.d_exp, self.d_sqrt
        )?;
        writeln!(
            f,
            "{:<18} {:>5} {:>5} {:>10} {:>10} {:>12} {:>8} {:>14} {:>16}",
            "gadget", "n", "depth", "gates", "terms", "fan_in", "forms", "max|w|", "maj size"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<18} {:>5} {:>5} {:>10} {:>10} {:>12} {:>8} {:>14} {:>16}",
                r.name, r.n, r.depth, r.gates, r.terms, r.fan_in, r.forms, r.max_weight, r.maj_size
            )?;
        }
        for sk in &self.skipped {
            writeln!(f, "skipped {} (n = {}): {}", sk.name, sk.n, sk.reason)?;
        }
        Ok(())
    }
}

/// Measure a finished circuit as a row.
pub fn measure(name: &str, n: usize, c: &Circuit) -> GadgetRow {
    let s = c.stats();
    GadgetRow {
        name: name.to_string(),
        n,
        depth: s.depth,
        gates: s.gates,
        fan_in: s.fan_in,
        forms: s.forms,
        terms: s.form_terms,
        max_weight: s.max_abs_weight,
        maj_size: s.majority_size,
    }
}

/// Collects rows and skipped gadgets.
struct Collector {
    rows: Vec<GadgetRow>,
    skipped: Vec<SkippedGadget>,
    /// The byte limit of each gadget's builder.
    limit: u64,
}

impl Collector {
    /// Build one gadget in a fresh builder: `g` creates its inputs and returns the output bits.
    /// Construction-limit errors and gadgets over the byte limit are recorded as skipped; other
    /// builder errors are returned.
    fn add(
        &mut self,
        name: &str,
        n: usize,
        g: impl FnOnce(&mut Builder) -> Result<Vec<Lit>>,
    ) -> Result<()> {
        let mut b = Builder::new();
        b.set_byte_limit(self.limit);
        match g(&mut b) {
            Ok(out) => {
                b.output_word("out", &out)?;
                let c = b.finish();
                self.rows.push(measure(name, n, &c));
                Ok(())
            }
            Err(e @ GadgetError::Unsupported { .. }) => {
                self.skipped.push(SkippedGadget {
                    name: name.to_string(),
                    n,
                    reason: e.to_string(),
                });
                Ok(())
            }
            Err(GadgetError::Circuit(e @ CircuitError::OverBudget { .. })) => {
                self.skipped.push(SkippedGadget {
                    name: name.to_string(),
                    n,
                    reason: format!("over the memory budget: {e}"),
                });
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// How many times the builder's own bytes ([`Builder::bytes`]) a gadget takes at its peak:
/// the builder's hash tables, then the finished circuit and its levelization for the
/// statistics.
pub const PEAK_FACTOR: u64 = 3;

/// The builder byte limit that keeps a gadget's peak within `budget` bytes.
pub fn builder_limit(budget: u64) -> u64 {
    budget / PEAK_FACTOR
}

/// An estimate (a lower bound) of the peak bytes of building the largest float gadget over
/// `operands` operands of `fmt` (the iterated sum, or the dot product of `operands / 2`
/// pairs): the exact sum places every operand on the grid of `p + 2^q - 1` columns
/// ([`fl::fixed::grid_columns`]), at least one counted gate and two form terms per operand and
/// column; a product's grid has `2p + 2^(q+1)` columns. Cheap to compute, so a command refuses
/// what cannot fit before building anything; whatever the estimate misses is stopped by the
/// builder's byte limit ([`builder_limit`]).
pub fn estimate_bytes(fmt: Format, operands: usize) -> u64 {
    let grid = fl::fixed::grid_columns(fmt) as u64;
    let product_grid = 2 * fmt.p() as u64 + (2u64 << fmt.q());
    let per_column = BYTES_PER_NODE + 2 * BYTES_PER_TERM;
    let k = operands as u64;
    let sum = k.saturating_mul(grid);
    let dot = (k / 2).saturating_mul(product_grid);
    sum.max(dot)
        .saturating_mul(per_column)
        .saturating_mul(PEAK_FACTOR)
}

fn float_inputs(b: &mut Builder, fmt: Format, n: usize) -> Result<Vec<FloatWord>> {
    (0..n)
        .map(|i| FloatWord::input(b, &format!("x{i}"), fmt))
        .collect()
}

fn int_inputs(b: &mut Builder, width: u32, n: usize) -> Result<Vec<Vec<Lit>>> {
    (0..n)
        .map(|i| Ok(b.input_word(&format!("w{i}"), width)?))
        .collect()
}

/// A fixed, representative constant of the format for `mul_const`: significand
/// `2^(p-1) + 2^(p-2) + 1` (1.5 plus one unit, so the rounding is not trivial) near 1.
fn sample_constant(fmt: Format) -> Result<Float> {
    let p = fmt.p();
    let sig = (1u64 << (p - 1)) | (1u64 << (p - 2)) | 1;
    let e = (1 - p as i32).clamp(fmt.e_min(), fmt.e_max());
    fmt.from_parts(false, e, sig)
        .map_err(|e| GadgetError::Float(e.to_string()))
}

/// Build every integer and float gadget for format `fmt` with `n` operands for the n-ary ones
/// (integer words of `p + q + 1` bits), and measure each (see the module docs).
///
/// Errors: `TooFewOperands` for `n < 2`; builder errors (circuit size limits). Gadgets that
/// hit a construction limit are listed in `skipped`, not errors.
pub fn gadget_report(fmt: Format, n: usize) -> Result<GadgetReport> {
    gadget_report_within(fmt, n, u64::MAX)
}

/// [`gadget_report`] with each gadget's peak memory held to about `budget` bytes: a gadget whose
/// builder would pass [`builder_limit`]`(budget)` stops there and is listed as skipped with the
/// bytes it needed. A caller refuses up front what [`estimate_bytes`] already puts above the
/// budget.
pub fn gadget_report_within(fmt: Format, n: usize, budget: u64) -> Result<GadgetReport> {
    if n < 2 {
        return Err(GadgetError::TooFewOperands {
            op: "gadget_report",
            min: 2,
            got: n,
        });
    }
    let mut c = Collector {
        rows: Vec::new(),
        skipped: Vec::new(),
        limit: builder_limit(budget),
    };
    int_rows(&mut c, fmt.width(), n)?;
    float_rows(&mut c, fmt, n)?;
    product_rows(&mut c, fmt, n)?;
    Ok(summarise(fmt, n, c))
}

/// The integer gadgets on words of `w` bits.
fn int_rows(c: &mut Collector, w: u32, n: usize) -> Result<()> {
    // Integer words.
    c.add("int.add", 2, |b| {
        let x = int_inputs(b, w, 2)?;
        int::add(b, &x[0], &x[1])
    })?;
    c.add("int.sub", 2, |b| {
        let x = int_inputs(b, w, 2)?;
        Ok(int::sub(b, &x[0], &x[1])?.0)
    })?;
    c.add("int.lt", 2, |b| {
        let x = int_inputs(b, w, 2)?;
        Ok(vec![int::lt(b, &x[0], &x[1])?])
    })?;
    c.add("int.eq", 2, |b| {
        let x = int_inputs(b, w, 2)?;
        Ok(vec![int::eq(b, &x[0], &x[1])?])
    })?;
    c.add("int.mul", 2, |b| {
        let x = int_inputs(b, w, 2)?;
        int::mul(b, &x[0], &x[1])
    })?;
    c.add("int.mul_const", 1, |b| {
        let x = int_inputs(b, w, 1)?;
        int::mul_const(b, &x[0], 0xB5 | (1u64 << (w - 1)))
    })?;
    c.add("int.shl", 2, |b| {
        let x = int_inputs(b, w, 1)?;
        let abits = 32 - (w - 1).leading_zeros();
        let a = b.input_word("amount", abits)?;
        int::shl(b, &x[0], &a, w as usize)
    })?;
    c.add("int.leading_one", 1, |b| {
        let x = int_inputs(b, w, 1)?;
        int::leading_one(b, &x[0])
    })?;
    c.add("int.popcount", 1, |b| {
        let x = int_inputs(b, w, 1)?;
        int::popcount(b, &x[0])
    })?;
    c.add("int.sum", n, |b| {
        let x = int_inputs(b, w, n)?;
        int::sum(b, &x)
    })?;
    // The integer max/argmax compare all pairs: above MAX_PAIRWISE_N operands they are listed
    // as skipped instead of built (n = 16384 would need tens of GB).
    if n <= MAX_PAIRWISE_N {
        c.add("int.max", n, |b| {
            let x = int_inputs(b, w, n)?;
            int::max_n(b, &x)
        })?;
        c.add("int.argmax", n, |b| {
            let x = int_inputs(b, w, n)?;
            int::argmax(b, &x)
        })?;
    } else {
        for name in ["int.max", "int.argmax"] {
            c.skipped.push(SkippedGadget {
                name: name.into(),
                n,
                reason: format!(
                    "all-pairs construction: {} comparators, above the report's bound of \
                     {MAX_PAIRWISE_N} operands (use float.max, which is blocked)",
                    n * (n - 1) / 2
                ),
            });
        }
    }
    Ok(())
}

/// The float gadgets except the iterated product.
fn float_rows(c: &mut Collector, fmt: Format, n: usize) -> Result<()> {
    c.add("float.add", 2, |b| {
        let x = float_inputs(b, fmt, 2)?;
        Ok(fl::add::add(b, &x[0], &x[1])?.bits)
    })?;
    c.add("float.sub", 2, |b| {
        let x = float_inputs(b, fmt, 2)?;
        Ok(fl::add::sub(b, &x[0], &x[1])?.bits)
    })?;
    c.add("float.mul", 2, |b| {
        let x = float_inputs(b, fmt, 2)?;
        Ok(fl::mul::mul(b, &x[0], &x[1])?.bits)
    })?;
    let k = sample_constant(fmt)?;
    c.add("float.mul_const", 1, |b| {
        let x = float_inputs(b, fmt, 1)?;
        Ok(fl::mul_const::mul_const(b, &x[0], k)?.bits)
    })?;
    c.add("float.div", 2, |b| {
        let x = float_inputs(b, fmt, 2)?;
        Ok(fl::div::div(b, &x[0], &x[1])?.bits)
    })?;
    c.add("float.lt", 2, |b| {
        let x = float_inputs(b, fmt, 2)?;
        Ok(vec![fl::cmp::lt(b, &x[0], &x[1])?])
    })?;
    c.add("float.floor", 1, |b| {
        let x = float_inputs(b, fmt, 1)?;
        Ok(fl::round::floor(b, &x[0])?.bits)
    })?;
    c.add("float.max", n, |b| {
        let x = float_inputs(b, fmt, n)?;
        Ok(fl::cmp::max_n(b, &x)?.bits)
    })?;
    c.add("float.argmax", n, |b| {
        let x = float_inputs(b, fmt, n)?;
        fl::cmp::argmax_n(b, &x)
    })?;
    c.add("float.sum", n, |b| {
        let x = float_inputs(b, fmt, n)?;
        Ok(fl::sum::sum(b, &x)?.bits)
    })?;
    c.add("float.dot", n, |b| {
        let x = float_inputs(b, fmt, 2 * n)?;
        Ok(fl::sum::dot(b, &x[..n], &x[n..])?.bits)
    })?;
    Ok(())
}

/// The iterated product, at `n` operands or the construction's bound.
fn product_rows(c: &mut Collector, fmt: Format, n: usize) -> Result<()> {
    // The iterated product at n operands; where that exceeds the construction's operand bound
    // (above p = 12 only the monomial form exists, n p <= 62), the row is built with the largest
    // supported n and the n-operand attempt is listed as skipped with the limit it hit.
    let np = n.min(fl::product::max_product_operands(fmt.p()));
    let np = if np > MAX_PRODUCT_N {
        c.skipped.push(SkippedGadget {
            name: "float.product".into(),
            n: np,
            reason: format!(
                "the report builds the iterated product with at most {MAX_PRODUCT_N} operands \
                 (its size grows faster than the sums'); the row is at n = {MAX_PRODUCT_N}"
            ),
        });
        MAX_PRODUCT_N
    } else {
        np
    };
    if np < n && np < MAX_PRODUCT_N {
        c.add("float.product", n, |b| {
            let x = float_inputs(b, fmt, n)?;
            Ok(fl::product::product(b, &x)?.bits)
        })?;
    }
    c.add("float.product", np, |b| {
        let x = float_inputs(b, fmt, np)?;
        Ok(fl::product::product(b, &x)?.bits)
    })?;
    c.add("float.exp", 1, |b| {
        let x = float_inputs(b, fmt, 1)?;
        Ok(fl::table::exp(b, &x[0])?.bits)
    })?;
    c.add("float.sqrt", 1, |b| {
        let x = float_inputs(b, fmt, 1)?;
        Ok(fl::table::sqrt(b, &x[0])?.bits)
    })?;
    c.add("float.rsqrt", 1, |b| {
        let x = float_inputs(b, fmt, 1)?;
        Ok(fl::table::rsqrt(b, &x[0])?.bits)
    })?;
    Ok(())
}

/// The report from the collected rows: the named depths (type docs).
fn summarise(fmt: Format, n: usize, c: Collector) -> GadgetReport {
    let depth = |name: &str| {
        c.rows
            .iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.depth)
    };
    let d_std = ["float.add", "float.mul", "float.div", "float.lt"]
        .iter()
        .map(|nm| depth(nm))
        .max()
        .unwrap_or(0);
    let (d_sum, d_prod, d_exp, d_sqrt) = (
        depth("float.sum"),
        depth("float.product"),
        depth("float.exp"),
        depth("float.sqrt"),
    );
    GadgetReport {
        format: fmt,
        n,
        rows: c.rows,
        skipped: c.skipped,
        d_std,
        d_sum,
        d_prod,
        d_exp,
        d_sqrt,
    }
}
