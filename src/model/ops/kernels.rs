//! The scalar kernels of the model's tensor operations (see [`super::Kernel`]).
//!
//! Each kernel is the arithmetic of one instance of an operation, written once over [`Arith`]:
//! the reference runs it on F(p, q) values, the explicit compiler and every template build run
//! it on circuit words. Constants that a kernel folds (a divisor, an epsilon, a lookup table)
//! are part of its key, so one template exists per distinct constant; per-element constants
//! (weights) are operands instead, so one template serves every weight.

use std::sync::Arc;

use crate::float::{Float, Format};

use super::super::arith::{Arith, Unary};
use super::super::error::{ModelError, Result};
use super::{bits, floats, Kernel, Kind, Val};

fn key_of(c: Float) -> String {
    format!("{:x}", c.to_bits())
}

fn want_ports<A: Arith>(op: &'static str, ins: &[Vec<Val<A>>], n: usize) -> Result<()> {
    if ins.len() != n {
        return Err(ModelError::Shape {
            op,
            detail: format!("{} ports, expected {n}", ins.len()),
        });
    }
    Ok(())
}

/// `round(sum_g sum_k round(x_gk * c_gk) [+ b])`: the paper's dot product over `groups` pairs
/// of ports `(x_g, c_g)` (equal word counts within a pair), with an optional bias port of one
/// word joining the single exact sum. Linear layers, convolutions, interpolation, Phi, attention
/// scores and `P V` are all this kernel.
#[derive(Clone, Debug)]
pub struct Dot {
    /// Number of `(x, c)` port pairs.
    pub groups: usize,
    /// A bias port follows the pairs.
    pub bias: bool,
    /// Multiply the rounded dot product by this constant (`round(dot * s)`), skipped when it
    /// is exactly 1.
    pub scale: Option<Float>,
}

impl Kernel for Dot {
    fn key(&self) -> String {
        format!(
            "dot/g{}{}{}",
            self.groups,
            if self.bias { "/b" } else { "" },
            self.scale
                .map_or(String::new(), |s| format!("/s{}", key_of(s)))
        )
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("dot", ins, 2 * self.groups + self.bias as usize)?;
        let mut y = if self.groups == 1 && !self.bias {
            let x = floats(&ins[0])?;
            let c = floats(&ins[1])?;
            a.dot(&x, &c)?
        } else {
            let mut terms = Vec::new();
            for g in 0..self.groups {
                let x = floats(&ins[2 * g])?;
                let c = floats(&ins[2 * g + 1])?;
                if x.len() != c.len() {
                    return Err(ModelError::Shape {
                        op: "dot",
                        detail: format!("group {g}: {} and {} words", x.len(), c.len()),
                    });
                }
                for (u, v) in x.iter().zip(&c) {
                    terms.push(a.mul(u, v)?);
                }
            }
            if self.bias {
                terms.push(ins[2 * self.groups][0].f()?.clone());
            }
            a.sum(&terms)?
        };
        if let Some(s) = self.scale {
            if s.to_f64() != 1.0 {
                y = a.mul_const(&y, s)?;
            }
        }
        Ok(vec![Val::F(y)])
    }
}

/// A binary operation on two floats.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum BinOp {
    /// `round(x + y)`.
    Add,
    /// `round(x - y)`.
    Sub,
    /// `round(x * y)`.
    Mul,
    /// `round(x / y)`.
    Div,
}

/// `op(x, y)` on ports `[x, y]` of one word each.
#[derive(Copy, Clone, Debug)]
pub struct Binary(pub BinOp);

impl Kernel for Binary {
    fn key(&self) -> String {
        format!("bin/{:?}", self.0)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("binary", ins, 2)?;
        let (x, y) = (ins[0][0].f()?, ins[1][0].f()?);
        let r = match self.0 {
            BinOp::Add => a.add(x, y)?,
            BinOp::Sub => a.sub(x, y)?,
            BinOp::Mul => a.mul(x, y)?,
            BinOp::Div => a.div(x, y)?,
        };
        Ok(vec![Val::F(r)])
    }
}

/// `round(round(x * y) + z)` on ports `[x, y, z]` (GroupNorm's scale and shift, AdaLN's
/// modulation, the gated residual with the operands ordered accordingly).
#[derive(Copy, Clone, Debug)]
pub struct MulAdd;

impl Kernel for MulAdd {
    fn key(&self) -> String {
        "muladd".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("muladd", ins, 3)?;
        let m = a.mul(ins[0][0].f()?, ins[1][0].f()?)?;
        Ok(vec![Val::F(a.add(&m, ins[2][0].f()?)?)])
    }
}

/// An operation with a folded scalar constant `c` on one float port.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ConstOp {
    /// `round(x * c)`.
    Mul,
    /// `round(c + x)`.
    Add,
    /// `max(x, c)`.
    Max,
    /// `round(x / c)`.
    Div,
}

/// `op(x, c)` with the constant `c` folded into the template.
#[derive(Copy, Clone, Debug)]
pub struct WithConst(pub ConstOp, pub Float);

impl Kernel for WithConst {
    fn key(&self) -> String {
        format!("const/{:?}/{}", self.0, key_of(self.1))
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("const op", ins, 1)?;
        let x = ins[0][0].f()?;
        let r = match self.0 {
            ConstOp::Mul => a.mul_const(x, self.1)?,
            ConstOp::Add => {
                let c = a.constant(self.1)?;
                a.add(&c, x)?
            }
            ConstOp::Max => {
                let c = a.constant(self.1)?;
                a.max_n(&[x.clone(), c])?
            }
            ConstOp::Div => {
                let c = a.constant(self.1)?;
                a.div(x, &c)?
            }
        };
        Ok(vec![Val::F(r)])
    }
}

/// A unary function on one float port.
#[derive(Copy, Clone, Debug)]
pub struct UnaryK(pub Unary);

impl Kernel for UnaryK {
    fn key(&self) -> String {
        format!("unary/{:?}", self.0)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("unary", ins, 1)?;
        Ok(vec![Val::F(a.unary(self.0, ins[0][0].f()?)?)])
    }
}

/// A reduction of one port's words.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Reduce {
    /// The exact sum rounded once.
    Sum,
    /// The largest value.
    Max,
}

/// `reduce(xs)`, then optionally divided by the folded constant `div` (`round(r / div)`, the
/// mean of a row).
#[derive(Copy, Clone, Debug)]
pub struct ReduceK {
    /// The reduction.
    pub op: Reduce,
    /// An optional constant divisor.
    pub div: Option<Float>,
}

impl Kernel for ReduceK {
    fn key(&self) -> String {
        format!(
            "reduce/{:?}{}",
            self.op,
            self.div
                .map_or(String::new(), |d| format!("/d{}", key_of(d)))
        )
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("reduce", ins, 1)?;
        let xs = floats(&ins[0])?;
        let mut r = match self.op {
            Reduce::Sum => a.sum(&xs)?,
            Reduce::Max => a.max_n(&xs)?,
        };
        if let Some(d) = self.div {
            let dc = a.constant(d)?;
            r = a.div(&r, &dc)?;
        }
        Ok(vec![Val::F(r)])
    }
}

/// The variance step of a normalisation on a centred row `c`: `v = round(round(c . c) / n)`,
/// `v' = round(v + eps)` when `eps` is given, then `sqrt(v')` or `rsqrt(v')` (`root`).
#[derive(Copy, Clone, Debug)]
pub struct NormScale {
    /// The row length as a float.
    pub n: Float,
    /// The epsilon, when it does not round to zero.
    pub eps: Option<Float>,
    /// [`Unary::Sqrt`] (divide later) or [`Unary::Rsqrt`] (multiply later).
    pub root: Unary,
}

impl Kernel for NormScale {
    fn key(&self) -> String {
        format!(
            "normscale/{}/{}/{:?}",
            key_of(self.n),
            self.eps.map_or("-".into(), key_of),
            self.root
        )
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("normscale", ins, 1)?;
        let c = floats(&ins[0])?;
        let ss = a.dot(&c, &c)?;
        let nc = a.constant(self.n)?;
        let mut v = a.div(&ss, &nc)?;
        if let Some(e) = self.eps {
            let ec = a.constant(e)?;
            v = a.add(&v, &ec)?;
        }
        Ok(vec![Val::F(a.unary(self.root, &v)?)])
    }
}

/// The position of the largest word (ties to the lowest index) as a choice.
#[derive(Copy, Clone, Debug)]
pub struct Argmax(pub u32);

impl Kernel for Argmax {
    fn key(&self) -> String {
        "argmax".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Choice(self.0)]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("argmax", ins, 1)?;
        let xs = floats(&ins[0])?;
        if xs.len() != self.0 as usize {
            return Err(ModelError::Shape {
                op: "argmax",
                detail: format!("{} words for {} alternatives", xs.len(), self.0),
            });
        }
        Ok(vec![Val::C(a.argmax(&xs)?)])
    }
}

/// Row `choice` of a constant table folded into the template: one output word per column.
/// The key carries a hash of the table's encodings.
#[derive(Clone, Debug)]
pub struct SelectConst {
    /// The rows (all of one length).
    pub table: Arc<Vec<Vec<Float>>>,
    /// A name and content hash of the table.
    pub id: String,
}

impl SelectConst {
    /// The kernel for `table`, identified by `name` and a hash of its contents.
    pub fn new(name: &str, table: Vec<Vec<Float>>) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for row in &table {
            for v in row {
                h ^= v.to_bits();
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h = h.rotate_left(7);
        }
        let cols = table.first().map_or(0, |r| r.len());
        SelectConst {
            id: format!("{name}/{}x{cols}/{h:016x}", table.len()),
            table: Arc::new(table),
        }
    }
}

impl Kernel for SelectConst {
    fn key(&self) -> String {
        format!("select_const/{}", self.id)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float; self.table.first().map_or(0, |r| r.len())]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("select_const", ins, 1)?;
        let row = a.select_const(ins[0][0].c()?, &self.table)?;
        Ok(row.into_iter().map(Val::F).collect())
    }
}

/// The clamp to `[-1, 1]`: `x < -1 ? -1 : (1 < x ? 1 : x)` (exact).
#[derive(Copy, Clone, Debug)]
pub struct ClampUnit(pub Format);

impl Kernel for ClampUnit {
    fn key(&self) -> String {
        "clamp_unit".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("clamp", ins, 1)?;
        let v = ins[0][0].f()?;
        let one_f = self.0.one()?;
        let one = a.constant(one_f)?;
        let m_one = a.constant(one_f.neg())?;
        let lo = a.lt(v, &m_one)?;
        let hi = a.lt(&one, v)?;
        let inner = a.select(&hi, &one, v)?;
        Ok(vec![Val::F(a.select(&lo, &m_one, &inner)?)])
    }
}

/// `[x < y]` on ports `[x, y]`.
#[derive(Copy, Clone, Debug)]
pub struct Less;

impl Kernel for Less {
    fn key(&self) -> String {
        "lt".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Bit]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("lt", ins, 2)?;
        Ok(vec![Val::B(a.lt(ins[0][0].f()?, ins[1][0].f()?)?)])
    }
}

fn or2<A: Arith>(a: &mut A, x: &A::Bit, y: &A::Bit) -> Result<A::Bit> {
    let nx = a.not(x);
    let ny = a.not(y);
    let both = a.and(&[nx, ny])?;
    Ok(a.not(&both))
}

/// Top-k membership of logit `i` (ports `[l_i, l_0..l_{V-1}, before_0..before_{V-1}]`, the
/// last a bit per `j`, set exactly when `j < i`): `j` is ranked before `i` when `l_j >= l_i`
/// for `j < i` and `l_j > l_i` for `j > i` (ties to the lowest index; `j = i` is never before
/// itself), and `i` is kept when at most `k - 1` logits are ranked before it.
#[derive(Copy, Clone, Debug)]
pub struct TopKKept(pub usize);

impl Kernel for TopKKept {
    fn key(&self) -> String {
        format!("topk_kept/{}", self.0)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Bit]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("topk_kept", ins, 3)?;
        let before = ranked_before(a, ins[0][0].f()?, &floats(&ins[1])?, &bits(&ins[2])?)?;
        Ok(vec![Val::B(a.at_most(&before, self.0.saturating_sub(1))?)])
    }
}

/// For logit `l_i`, the bits "`j` is ranked before `i`" over the row `ls` (`flags_j` set exactly
/// when `j < i`): `l_j >= l_i` for `j < i`, `l_j > l_i` for `j > i` (ties to the lowest index;
/// `j = i` is never before itself). The rank of `i` is the number of bits set.
fn ranked_before<A: Arith>(
    a: &mut A,
    li: &A::V,
    ls: &[A::V],
    flags: &[A::Bit],
) -> Result<Vec<A::Bit>> {
    if ls.len() != flags.len() {
        return Err(ModelError::Shape {
            op: "ranked_before",
            detail: format!("{} logits, {} order bits", ls.len(), flags.len()),
        });
    }
    let mut before = Vec::with_capacity(ls.len());
    for (lj, f) in ls.iter().zip(flags) {
        // j < i: l_j >= l_i, i.e. !(l_j < l_i); j >= i: l_i < l_j (false for j = i).
        let lt_ji = a.lt(lj, li)?;
        let ge = a.not(&lt_ji);
        let gt = a.lt(li, lj)?;
        let nf = a.not(f);
        let x = a.and(&[f.clone(), ge])?;
        let y = a.and(&[nf, gt])?;
        before.push(or2(a, &x, &y)?);
    }
    Ok(before)
}

/// Top-p membership of logit `i` (ports `[l_i, l_0..l_{V-1}, before_0..before_{V-1},
/// p_0..p_{V-1}, target]`, `before_j` set exactly when `j < i`, `p_j = exp(round(l_j - max))`):
/// `i` is kept when the exact sum of the `p_j` ranked before it (see [`TopKKept`]), rounded
/// once, is below the target, or when nothing is ranked before it (rank 0 is always kept).
/// Since that rounded mass grows with the rank, the kept logits are the smallest prefix in rank
/// order whose rounded mass reaches the target.
#[derive(Copy, Clone, Debug)]
pub struct TopPKept;

impl Kernel for TopPKept {
    fn key(&self) -> String {
        "topp_kept".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Bit]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("topp_kept", ins, 5)?;
        let before = ranked_before(a, ins[0][0].f()?, &floats(&ins[1])?, &bits(&ins[2])?)?;
        let ps = floats(&ins[3])?;
        if ps.len() != before.len() {
            return Err(ModelError::Shape {
                op: "topp_kept",
                detail: format!("{} weights for {} logits", ps.len(), before.len()),
            });
        }
        let zero = a.constant(a.format().zero())?;
        let mut masked = Vec::with_capacity(ps.len());
        for (b, p) in before.iter().zip(&ps) {
            masked.push(a.select(b, p, &zero)?);
        }
        let mass = a.sum(&masked)?;
        let below = a.lt(&mass, ins[4][0].f()?)?;
        let first = a.at_most(&before, 0)?;
        Ok(vec![Val::B(or2(a, &below, &first)?)])
    }
}

/// `kept ? x : 0` on ports `[x, kept]` (the top-p weights).
#[derive(Copy, Clone, Debug)]
pub struct KeepIf;

impl Kernel for KeepIf {
    fn key(&self) -> String {
        "keep_if".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("keep_if", ins, 2)?;
        let zero = a.constant(a.format().zero())?;
        Ok(vec![Val::F(a.select(
            ins[1][0].b()?,
            ins[0][0].f()?,
            &zero,
        )?)])
    }
}

/// The unnormalised top-k weight `p = kept ? exp(round(l - m)) : 0` (ports `[l, m, kept]`, or
/// `[l, m]` when every logit is kept).
#[derive(Copy, Clone, Debug)]
pub struct TopKWeight {
    /// A `kept` port is present.
    pub masked: bool,
}

impl Kernel for TopKWeight {
    fn key(&self) -> String {
        format!("topk_weight/{}", self.masked)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("topk_weight", ins, 2 + self.masked as usize)?;
        let d = a.sub(ins[0][0].f()?, ins[1][0].f()?)?;
        let e = a.unary(Unary::Exp, &d)?;
        if self.masked {
            let zero = a.constant(a.format().zero())?;
            Ok(vec![Val::F(a.select(ins[2][0].b()?, &e, &zero)?)])
        } else {
            Ok(vec![Val::F(e)])
        }
    }
}

/// The sampled token from `gt_j = [threshold < c_j]` and the kept bits (ports `[gt, kept]`,
/// or `[gt]` when every logit is kept): the first `j` with `gt_j`, or, when there is none, the
/// last kept index. Exactly one alternative is chosen because the `c_j` are non-decreasing.
#[derive(Copy, Clone, Debug)]
pub struct TopKChoose {
    /// Number of logits.
    pub v: u32,
    /// A `kept` port is present.
    pub masked: bool,
}

impl Kernel for TopKChoose {
    fn key(&self) -> String {
        format!("topk_choose/{}", self.masked)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Choice(self.v)]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("topk_choose", ins, 1 + self.masked as usize)?;
        let gt = bits(&ins[0])?;
        let v = gt.len();
        if v != self.v as usize || v == 0 {
            return Err(ModelError::Shape {
                op: "topk_choose",
                detail: format!("{v} bits for {} logits", self.v),
            });
        }
        let kept = if self.masked {
            Some(bits(&ins[1])?)
        } else {
            None
        };
        let none = a.not(&gt[v - 1]);
        let zero = a.constant(a.format().zero())?;
        let mut out = Vec::with_capacity(v);
        for j in 0..v {
            let first = if j == 0 {
                gt[0].clone()
            } else {
                let prev = a.not(&gt[j - 1]);
                a.and(&[gt[j].clone(), prev])?
            };
            let last_kept = match &kept {
                None => {
                    if j == v - 1 {
                        none.clone()
                    } else {
                        a.lt(&zero, &zero)?
                    }
                }
                Some(kp) => {
                    let mut terms = vec![none.clone(), kp[j].clone()];
                    for kk in kp.iter().skip(j + 1) {
                        terms.push(a.not(kk));
                    }
                    a.and(&terms)?
                }
            };
            out.push(or2(a, &first, &last_kept)?);
        }
        Ok(vec![Val::C(a.choice_from_bits(&out)?)])
    }
}

/// `round(round(sum xs) * s)` on ports `[xs, s]` (area downsampling: the window sum times the
/// reciprocal of its size; a window of one element times 1 is a copy).
#[derive(Copy, Clone, Debug)]
pub struct SumMul;

impl Kernel for SumMul {
    fn key(&self) -> String {
        "summul".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("summul", ins, 2)?;
        let s = a.sum(&floats(&ins[0])?)?;
        Ok(vec![Val::F(a.mul(&s, ins[1][0].f()?)?)])
    }
}

/// `round(round(x * y) * z)` on ports `[x, y, z]` (an L2-normalised query times its head's
/// scale).
#[derive(Copy, Clone, Debug)]
pub struct MulMul;

impl Kernel for MulMul {
    fn key(&self) -> String {
        "mulmul".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("mulmul", ins, 3)?;
        let m = a.mul(ins[0][0].f()?, ins[1][0].f()?)?;
        Ok(vec![Val::F(a.mul(&m, ins[2][0].f()?)?)])
    }
}

/// Classifier-free guidance `round(round(c * s) - round(u * t))` on ports `[c, u]` with the
/// constants `s = round(1 + t)` and `t` folded.
#[derive(Copy, Clone, Debug)]
pub struct Guide {
    /// `round(1 + t)`.
    pub s: Float,
    /// `round(t)`.
    pub t: Float,
}

impl Kernel for Guide {
    fn key(&self) -> String {
        format!("guide/{}/{}", key_of(self.s), key_of(self.t))
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("guide", ins, 2)?;
        let x = a.mul_const(ins[0][0].f()?, self.s)?;
        let y = a.mul_const(ins[1][0].f()?, self.t)?;
        Ok(vec![Val::F(a.sub(&x, &y)?)])
    }
}

/// The identity on one word (a gather: slicing, upsampling by copies). No gates.
#[derive(Copy, Clone, Debug)]
pub struct Identity(pub Kind);

impl Kernel for Identity {
    fn key(&self) -> String {
        "copy".into()
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![self.0]
    }
    fn run<A: Arith>(&self, _a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("copy", ins, 1)?;
        Ok(vec![ins[0][0].clone()])
    }
}

/// The reciprocal norm of an attention row: `rsqrt(max(round(x . x), eps2))` on one port (the
/// max dropped when `eps2` rounds to zero).
#[derive(Copy, Clone, Debug)]
pub struct L2Scale {
    /// `round(1e-24)` when nonzero.
    pub eps2: Option<Float>,
}

impl Kernel for L2Scale {
    fn key(&self) -> String {
        format!("l2scale/{}", self.eps2.map_or("-".into(), key_of))
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("l2scale", ins, 1)?;
        let x = floats(&ins[0])?;
        let mut ss = a.dot(&x, &x)?;
        if let Some(e) = self.eps2 {
            let ec = a.constant(e)?;
            ss = a.max_n(&[ss, ec])?;
        }
        Ok(vec![Val::F(a.unary(Unary::Rsqrt, &ss)?)])
    }
}

/// What follows a row's exact sum: a division by a folded constant (a mean), or the
/// normalisation step of [`NormScale`] (`round(s / n)`, `+ eps`, then the root).
#[derive(Copy, Clone, Debug)]
pub enum Finish {
    /// `round(s / c)`.
    Div(Float),
    /// `root(round(round(s / n) + eps))`.
    Norm {
        /// The row length as a float.
        n: Float,
        /// The epsilon, when it does not round to zero.
        eps: Option<Float>,
        /// [`Unary::Sqrt`] or [`Unary::Rsqrt`].
        root: Unary,
    },
}

impl Finish {
    fn key(&self) -> String {
        match self {
            Finish::Div(d) => format!("div{}", key_of(*d)),
            Finish::Norm { n, eps, root } => {
                format!(
                    "norm{}/{}/{root:?}",
                    key_of(*n),
                    eps.map_or("-".into(), key_of)
                )
            }
        }
    }

    /// Apply to the rounded sum `s`.
    pub fn apply<A: Arith>(&self, a: &mut A, s: &A::V) -> Result<A::V> {
        match *self {
            Finish::Div(d) => {
                let dc = a.constant(d)?;
                a.div(s, &dc)
            }
            Finish::Norm { n, eps, root } => {
                let nc = a.constant(n)?;
                let mut v = a.div(s, &nc)?;
                if let Some(e) = eps {
                    let ec = a.constant(e)?;
                    v = a.add(&v, &ec)?;
                }
                a.unary(root, &v)
            }
        }
    }
}

/// Stage one of a split row sum: the exact, unrounded sum of one chunk of a row (of the
/// squares `round(x * x)` with `square`), a partial sum of `width` bits.
#[derive(Copy, Clone, Debug)]
pub struct AccSum {
    /// Bits of the partial sum ([`crate::gadgets::float::fixed::exact_width`] of the chunk).
    pub width: u32,
    /// Sum the rounded squares instead of the values.
    pub square: bool,
}

impl Kernel for AccSum {
    fn key(&self) -> String {
        format!("accsum/{}/{}", self.width, self.square)
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Acc(self.width)]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("accsum", ins, 1)?;
        let mut xs = floats(&ins[0])?;
        if self.square {
            xs = xs.iter().map(|x| a.mul(x, x)).collect::<Result<_>>()?;
        }
        Ok(vec![Val::A(a.acc_sum(&xs)?)])
    }
}

/// Stage two of a split row sum: the partial sums of a row added exactly and rounded once,
/// then [`Finish`]ed.
#[derive(Copy, Clone, Debug)]
pub struct AccFinish(pub Finish);

impl Kernel for AccFinish {
    fn key(&self) -> String {
        format!("accfinish/{}", self.0.key())
    }
    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::Float]
    }
    fn run<A: Arith>(&self, a: &mut A, ins: &[Vec<Val<A>>]) -> Result<Vec<Val<A>>> {
        want_ports("accfinish", ins, 1)?;
        let parts = super::accs(&ins[0])?;
        let s = a.acc_round(&parts)?;
        Ok(vec![Val::F(self.0.apply(a, &s)?)])
    }
}
