//! Tensor operations of the model, each one or a few applications of [`super::kernels`] with
//! their index maps: written once for every [`TensorArith`] backend.
//!
//! Shapes are row-major; feature maps are channel-first `[c, h, w]`, token matrices `[n, d]`,
//! weight matrices `[d_out, d_in]` (PyTorch). The F(p, q) semantics of each operation are those
//! of its kernels (see `docs/var.md` for the VAR pass): a linear map or a convolution is one
//! exact sum of rounded products plus the bias, rounded once; a padding tap or a zero
//! coefficient adds an exact zero, so they need not be skipped.

use crate::float::Float;

use super::super::arith::Unary;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use crate::gadgets::float::fixed::exact_width;

use super::kernels::{
    AccFinish, AccSum, BinOp, Binary, Dot, Finish, Identity, MulAdd, NormScale, Reduce, ReduceK,
    SelectConst, SumMul, TopKWeight, UnaryK,
};
use super::{Coord, Kernel, Kind, Map, PortSpec, TensorArith};

/// A coordinate `base + inst . i + word . j`.
pub fn co(base: i64, inst: &[i64], word: &[i64]) -> Coord {
    Coord {
        base,
        inst: inst.to_vec(),
        word: word.to_vec(),
    }
}

/// The unit vector `e_k` of length `n` (as coefficients).
pub fn e(n: usize, k: usize) -> Vec<i64> {
    let mut v = vec![0; n];
    v[k] = 1;
    v
}

fn shape_err(op: &'static str, detail: String) -> ModelError {
    ModelError::Shape { op, detail }
}

fn one<B: TensorArith>(
    b: &mut B,
    name: &str,
    k: &impl Kernel,
    inst: &[usize],
    ports: &[PortSpec<'_, B::T>],
) -> Result<B::T> {
    let mut v = b.apply(name, k, inst, ports)?;
    if v.len() != 1 {
        return Err(shape_err(
            "apply",
            format!("{name}: {} outputs, expected one", v.len()),
        ));
    }
    Ok(v.remove(0))
}

/// `k` applied elementwise over the broadcast of `xs` (equal ranks; every axis of an operand
/// has the output's length or 1), one word per operand.
pub fn elementwise<B: TensorArith>(
    b: &mut B,
    name: &str,
    k: &impl Kernel,
    xs: &[&B::T],
) -> Result<B::T> {
    let rank = b.shape(xs[0]).len();
    let mut out = vec![1usize; rank];
    for x in xs {
        let s = b.shape(x);
        if s.len() != rank {
            return Err(shape_err("elementwise", format!("{name}: ranks differ")));
        }
        for (o, &d) in out.iter_mut().zip(s) {
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(shape_err(
                    "elementwise",
                    format!("{name}: axes {d} and {o} do not broadcast"),
                ));
            }
        }
    }
    let ports: Vec<PortSpec<'_, B::T>> = xs
        .iter()
        .map(|x| {
            let s = b.shape(x);
            let coords = (0..rank)
                .map(|a| {
                    let c = if s[a] == out[a] {
                        e(rank, a)
                    } else {
                        vec![0; rank]
                    };
                    co(0, &c, &[0])
                })
                .collect();
            PortSpec {
                src: *x,
                map: Map::affine(vec![1], coords),
            }
        })
        .collect();
    one(b, name, k, &out, &ports)
}

/// `op(x, y)` elementwise with broadcasting.
pub fn binary<B: TensorArith>(
    b: &mut B,
    name: &str,
    op: BinOp,
    x: &B::T,
    y: &B::T,
) -> Result<B::T> {
    elementwise(b, name, &Binary(op), &[x, y])
}

/// A unary function elementwise.
pub fn unary<B: TensorArith>(b: &mut B, name: &str, f: Unary, x: &B::T) -> Result<B::T> {
    elementwise(b, name, &UnaryK(f), &[x])
}

/// `k` over the rows of `x` (its last axis, one port of `d` words): the result has the leading
/// axes of `x` (rank >= 2).
pub fn rows<B: TensorArith>(b: &mut B, name: &str, k: &impl Kernel, x: &B::T) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() < 2 {
        return Err(shape_err("rows", format!("{name}: rank {} < 2", s.len())));
    }
    let r = s.len() - 1;
    let mut coords: Vec<Coord> = (0..r).map(|a| co(0, &e(r, a), &[0])).collect();
    coords.push(co(0, &vec![0; r], &[1]));
    one(
        b,
        name,
        k,
        &s[..r],
        &[PortSpec {
            src: x,
            map: Map::affine(vec![s[r]], coords),
        }],
    )
}

/// Rows longer than this are summed in two stages ([`sum_rows`]).
pub const SPLIT_ROWS_ABOVE: usize = 4096;

/// Chunk length of the first stage of a split row sum.
pub const SUM_CHUNK: usize = 256;

/// The exact sum of each row of `x` (of its rounded squares with `square`) rounded once, then
/// `finish`ed: the leading axes of `x`. Rows of at most [`SPLIT_ROWS_ABOVE`] values are one
/// application ([`ReduceK`] or [`NormScale`]); longer rows take two (exact partial sums of
/// [`SUM_CHUNK`] values, [`AccSum`], then their exact sum rounded once, [`AccFinish`]), with
/// the same value: the iterated sum is the exact sum rounded once either way.
pub fn sum_rows<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    square: bool,
    finish: Finish,
) -> Result<B::T> {
    sum_rows_split(b, name, x, square, finish, SPLIT_ROWS_ABOVE, SUM_CHUNK)
}

/// [`sum_rows`] with the split threshold and the chunk length given (`chunk >= 1`).
pub fn sum_rows_split<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    square: bool,
    finish: Finish,
    split_above: usize,
    chunk: usize,
) -> Result<B::T> {
    if chunk == 0 {
        return Err(shape_err("sum_rows", format!("{name}: chunk of length 0")));
    }
    let s = b.shape(x).to_vec();
    if s.len() < 2 {
        return Err(shape_err(
            "sum_rows",
            format!("{name}: rank {} < 2", s.len()),
        ));
    }
    let r = s.len() - 1;
    let d = s[r];
    if d <= split_above {
        return match (square, finish) {
            (false, Finish::Div(c)) => rows(
                b,
                name,
                &ReduceK {
                    op: Reduce::Sum,
                    div: Some(c),
                },
                x,
            ),
            (true, Finish::Norm { n, eps, root }) => rows(b, name, &NormScale { n, eps, root }, x),
            _ => Err(shape_err(
                "sum_rows",
                format!("{name}: unsupported combination"),
            )),
        };
    }
    let k = chunk;
    let nch = d.div_ceil(k);
    let width = exact_width(b.format(), k) as u32;
    // Stage one over [rows..., chunk]: words k of the chunk, zero past the row's end.
    let mut inst = s[..r].to_vec();
    inst.push(nch);
    let ri = r + 1;
    let mut coords: Vec<Coord> = (0..r).map(|a| co(0, &e(ri, a), &[0])).collect();
    let mut last = vec![0i64; ri];
    last[r] = k as i64;
    coords.push(co(0, &last, &[1]));
    let part = one(
        b,
        &format!("{name}.partial"),
        &AccSum { width, square },
        &inst,
        &[PortSpec {
            src: x,
            map: Map::Affine {
                words: vec![k],
                coords,
                pad: true,
                conds: Vec::new(),
            },
        }],
    )?;
    rows(b, &format!("{name}.total"), &AccFinish(finish), &part)
}

/// The same tensor with a trailing axis of length 1 (for broadcasting a row statistic).
pub fn unsqueeze_last<B: TensorArith>(b: &mut B, x: &B::T) -> Result<B::T> {
    let mut s = b.shape(x).to_vec();
    s.push(1);
    b.reshape(x, s)
}

/// `Y = X W^T + b`: `x: [n, d_in]` (or `[d_in, n]` with `x_transposed`), `w: [d_out, d_in]`,
/// `bias: [d_out]`; each output one [`Dot`] of `d_in` pairs plus the bias.
pub fn linear<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    x_transposed: bool,
    w: &B::T,
    bias: Option<&B::T>,
) -> Result<B::T> {
    let xs = b.shape(x).to_vec();
    let ws = b.shape(w).to_vec();
    if xs.len() != 2 || ws.len() != 2 {
        return Err(shape_err("linear", format!("{name}: x {xs:?}, w {ws:?}")));
    }
    let (n, din) = if x_transposed {
        (xs[1], xs[0])
    } else {
        (xs[0], xs[1])
    };
    let dout = ws[0];
    if ws[1] != din {
        return Err(shape_err(
            "linear",
            format!("{name}: x {xs:?} and w {ws:?}"),
        ));
    }
    if let Some(bb) = bias {
        if b.shape(bb) != [dout] {
            return Err(shape_err(
                "linear",
                format!("{name}: bias {:?} for {dout} outputs", b.shape(bb)),
            ));
        }
    }
    let xc = if x_transposed {
        vec![co(0, &[0, 0], &[1]), co(0, &[1, 0], &[0])]
    } else {
        vec![co(0, &[1, 0], &[0]), co(0, &[0, 0], &[1])]
    };
    let mut ports = vec![
        PortSpec {
            src: x,
            map: Map::affine(vec![din], xc),
        },
        PortSpec {
            src: w,
            map: Map::affine(vec![din], vec![co(0, &[0, 1], &[0]), co(0, &[0, 0], &[1])]),
        },
    ];
    if let Some(bb) = bias {
        ports.push(PortSpec {
            src: bb,
            map: Map::affine(vec![1], vec![co(0, &[0, 1], &[0])]),
        });
    }
    let k = Dot {
        groups: 1,
        bias: bias.is_some(),
        scale: None,
    };
    one(b, name, &k, &[n, dout], &ports)
}

/// Layer normalisation over the last axis (no affine): `mu = round(round(sum x) / d)`,
/// `c = round(x - mu)`, `s = sqrt(round(round(round(c . c) / d) [+ eps]))`, `y = round(c / s)`
/// (the paper's Definition 4.7 with the eps of VAR's LayerNorm).
pub fn layer_norm<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    eps: Option<Float>,
) -> Result<B::T> {
    let d = *b
        .shape(x)
        .last()
        .ok_or_else(|| shape_err("layer_norm", "scalar".into()))?;
    let dn = b.format().from_i64(d as i64);
    let mu = sum_rows(b, &format!("{name}.mean"), x, false, Finish::Div(dn))?;
    let mu = unsqueeze_last(b, &mu)?;
    let c = binary(b, &format!("{name}.centre"), BinOp::Sub, x, &mu)?;
    let norm = Finish::Norm {
        n: dn,
        eps,
        root: Unary::Sqrt,
    };
    let sd = sum_rows(b, &format!("{name}.std"), &c, true, norm)?;
    let sd = unsqueeze_last(b, &sd)?;
    binary(b, &format!("{name}.scale"), BinOp::Div, &c, &sd)
}

/// GroupNorm of `x: [c, h, w]` with `groups` groups, affine `gamma`, `beta` (`[c]`): per group
/// of `n = (c / groups) h w` values `mu`, `c = round(x - mu)`, `r = rsqrt(round(round(round(c .
/// c) / n) [+ eps]))`, per channel `s = round(r gamma)`, `y = round(round(c s) + beta)`.
pub fn group_norm<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    groups: usize,
    gamma: &B::T,
    beta: &B::T,
    eps: Option<Float>,
) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() != 3 || groups == 0 || s[0] % groups != 0 {
        return Err(shape_err(
            "group_norm",
            format!("{name}: {groups} groups for {s:?}"),
        ));
    }
    let (c, hw) = (s[0], s[1] * s[2]);
    let cg = c / groups;
    if b.shape(gamma) != [c] || b.shape(beta) != [c] {
        return Err(shape_err(
            "group_norm",
            format!("{name}: affine parameters for {c} channels"),
        ));
    }
    let nf = b.format().from_i64((cg * hw) as i64);
    let xg = b.reshape(x, vec![groups, cg * hw])?;
    let mu = sum_rows(b, &format!("{name}.mean"), &xg, false, Finish::Div(nf))?;
    let mu = unsqueeze_last(b, &mu)?;
    let cen = binary(b, &format!("{name}.centre"), BinOp::Sub, &xg, &mu)?;
    let norm = Finish::Norm {
        n: nf,
        eps,
        root: Unary::Rsqrt,
    };
    let r = sum_rows(b, &format!("{name}.rstd"), &cen, true, norm)?;
    let r = unsqueeze_last(b, &r)?;
    let g2 = b.reshape(gamma, vec![groups, cg])?;
    let sc = binary(b, &format!("{name}.gain"), BinOp::Mul, &r, &g2)?;
    let sc = b.reshape(&sc, vec![groups, cg, 1])?;
    let beta3 = b.reshape(beta, vec![groups, cg, 1])?;
    let cen3 = b.reshape(&cen, vec![groups, cg, hw])?;
    let y = elementwise(b, &format!("{name}.affine"), &MulAdd, &[&cen3, &sc, &beta3])?;
    b.reshape(&y, s)
}

/// 2-D convolution, stride 1, `pad` zeros on every side: `x: [ci, h, w]`, `w: [co, ci, kh,
/// kw]`, `bias: [co]`; each output one [`Dot`] over the `ci kh kw` taps (padding taps read zero).
pub fn conv2d<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    w: &B::T,
    bias: &B::T,
    pad: usize,
) -> Result<B::T> {
    let xs = b.shape(x).to_vec();
    let ws = b.shape(w).to_vec();
    if xs.len() != 3 || ws.len() != 4 || ws[1] != xs[0] || b.shape(bias) != [ws[0]] {
        return Err(shape_err(
            "conv2d",
            format!("{name}: x {xs:?}, kernel {ws:?}"),
        ));
    }
    let (ci, h, wd) = (xs[0], xs[1], xs[2]);
    let (cout, kh, kw) = (ws[0], ws[2], ws[3]);
    let (hp, wp) = (h + 2 * pad, wd + 2 * pad);
    if kh == 0 || kw == 0 || kh > hp || kw > wp {
        return Err(shape_err(
            "conv2d",
            format!("{name}: kernel {kh}x{kw} on a padded {hp}x{wp} map"),
        ));
    }
    let (oh, ow) = (hp - kh + 1, wp - kw + 1);
    let p = pad as i64;
    let ports = [
        PortSpec {
            src: x,
            map: Map::Affine {
                words: vec![ci, kh, kw],
                coords: vec![
                    co(0, &[0, 0, 0], &[1, 0, 0]),
                    co(-p, &[0, 1, 0], &[0, 1, 0]),
                    co(-p, &[0, 0, 1], &[0, 0, 1]),
                ],
                pad: pad > 0,
                conds: Vec::new(),
            },
        },
        PortSpec {
            src: w,
            map: Map::affine(
                vec![ci, kh, kw],
                vec![
                    co(0, &[1, 0, 0], &[0, 0, 0]),
                    co(0, &[0, 0, 0], &[1, 0, 0]),
                    co(0, &[0, 0, 0], &[0, 1, 0]),
                    co(0, &[0, 0, 0], &[0, 0, 1]),
                ],
            ),
        },
        PortSpec {
            src: bias,
            map: Map::affine(vec![1], vec![co(0, &[1, 0, 0], &[0])]),
        },
    ];
    one(
        b,
        name,
        &Dot {
            groups: 1,
            bias: true,
            scale: None,
        },
        &[cout, oh, ow],
        &ports,
    )
}

/// Row-wise softmax of `s` over its last axis with the row maximum subtracted:
/// `P = round(e / round(sum e))`, `e = exp(round(s - max))`.
pub fn softmax_rows<B: TensorArith>(b: &mut B, name: &str, s: &B::T) -> Result<B::T> {
    let m = rows(
        b,
        &format!("{name}.max"),
        &ReduceK {
            op: Reduce::Max,
            div: None,
        },
        s,
    )?;
    let m = unsqueeze_last(b, &m)?;
    let ex = elementwise(
        b,
        &format!("{name}.exp"),
        &TopKWeight { masked: false },
        &[s, &m],
    )?;
    let r = rows(
        b,
        &format!("{name}.sum"),
        &ReduceK {
            op: Reduce::Sum,
            div: None,
        },
        &ex,
    )?;
    let r = unsqueeze_last(b, &r)?;
    binary(b, &format!("{name}.norm"), BinOp::Div, &ex, &r)
}

/// A copy of `x` gathered through `map` over `inst` (no gates): slices, transposes, nearest
/// upsampling.
pub fn gather<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    inst: &[usize],
    map: Map,
) -> Result<B::T> {
    let kind = b.kind(x);
    one(b, name, &Identity(kind), inst, &[PortSpec { src: x, map }])
}

/// Columns `start..start + len` of a rank-2 tensor.
pub fn slice_cols<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    start: usize,
    len: usize,
) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() != 2 || start + len > s[1] {
        return Err(shape_err(
            "slice_cols",
            format!("{name}: columns {start}+{len} of {s:?}"),
        ));
    }
    gather(
        b,
        name,
        x,
        &[s[0], len],
        Map::affine(
            vec![1],
            vec![co(0, &[1, 0], &[0]), co(start as i64, &[0, 1], &[0])],
        ),
    )
}

/// Nearest-neighbour x2 upsampling of `x: [c, h, w]` to `[c, 2h, 2w]` (copies): the instance
/// space `[c, h, 2, w, 2]` is the output's row-major layout.
pub fn upsample_nearest2<B: TensorArith>(b: &mut B, name: &str, x: &B::T) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() != 3 {
        return Err(shape_err("upsample_nearest2", format!("{name}: {s:?}")));
    }
    let m = Map::affine(
        vec![1],
        vec![
            co(0, &e(5, 0), &[0]),
            co(0, &e(5, 1), &[0]),
            co(0, &e(5, 3), &[0]),
        ],
    );
    let y = gather(b, name, x, &[s[0], s[1], 2, s[2], 2], m)?;
    b.reshape(&y, vec![s[0], 2 * s[1], 2 * s[2]])
}

/// Row `choice` of a constant table for every choice of `choices: [n]`: `[cols, n]`
/// (column-major, as a channel-first map wants it); the table is folded into the template.
pub fn select_table<B: TensorArith>(
    b: &mut B,
    name: &str,
    table: Vec<Vec<Float>>,
    choices: &B::T,
) -> Result<B::T> {
    let n: usize = b.shape(choices).iter().product();
    let ch = b.reshape(choices, vec![n])?;
    let k = SelectConst::new(name, table);
    let cols = b.apply(
        name,
        &k,
        &[n],
        &[PortSpec {
            src: &ch,
            map: Map::affine(vec![1], vec![co(0, &[1], &[0])]),
        }],
    )?;
    let parts = cols
        .iter()
        .map(|c| b.reshape(c, vec![1, n]))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&B::T> = parts.iter().collect();
    b.concat(name, &refs)
}

/// The bicubic coefficient tables of [`bicubic_up`]: per output position `(oy, ox)` up to 16
/// `(source y, source x, coefficient)` taps, coefficients rounded once (those rounding to zero
/// dropped, as `blocks::interp::bicubic_up` does).
fn bicubic_taps(
    fmt: crate::float::Format,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Result<Vec<Vec<(usize, usize, Float)>>> {
    use super::super::blocks::interp::bicubic_weights_1d;
    let wy = bicubic_weights_1d(h, oh)?;
    let wx = bicubic_weights_1d(w, ow)?;
    let mut out = Vec::with_capacity(oh * ow);
    for ry in &wy {
        for rx in &wx {
            let mut taps = Vec::with_capacity(16);
            for &(iy, cy) in ry {
                for &(ix, cx) in rx {
                    let k = fmt.from_f64(cy * cx)?;
                    if !k.is_zero() {
                        taps.push((iy, ix, k));
                    }
                }
            }
            out.push(taps);
        }
    }
    Ok(out)
}

/// Bicubic resampling of `x: [c, h, w]` to `[c, oh, ow]` (PyTorch convention, `A = -0.75`,
/// `align_corners = false`, border taps merged, each coefficient rounded once; see
/// `blocks::interp`): each output one [`Dot`] over at most 16 taps.
pub fn bicubic_up<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    oh: usize,
    ow: usize,
) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() != 3 {
        return Err(shape_err("bicubic_up", format!("{name}: {s:?}")));
    }
    let (c, h, w) = (s[0], s[1], s[2]);
    let fmt = b.format();
    let taps = bicubic_taps(fmt, h, w, oh, ow)?;
    let k = taps.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
    let coef = b.constant(&format!("{name}.coef"), vec![oh * ow, k], &mut |_| {
        let mut v = Vec::with_capacity(oh * ow * k);
        for t in &taps {
            for j in 0..k {
                v.push(t.get(j).map_or(fmt.zero(), |x| x.2));
            }
        }
        Tensor::new(vec![oh * ow, k], v)
    })?;
    let mut elems = Vec::with_capacity(c * oh * ow * k);
    for ch in 0..c {
        for t in &taps {
            for j in 0..k {
                elems.push(t.get(j).map(|&(iy, ix, _)| (ch * h + iy) * w + ix));
            }
        }
    }
    let ports = [
        PortSpec {
            src: x,
            map: Map::Table { words: k, elems },
        },
        PortSpec {
            src: &coef,
            map: Map::affine(
                vec![k],
                vec![co(0, &[0, ow as i64, 1], &[0]), co(0, &[0, 0, 0], &[1])],
            ),
        },
    ];
    one(
        b,
        name,
        &Dot {
            groups: 1,
            bias: false,
            scale: None,
        },
        &[c, oh, ow],
        &ports,
    )
}

/// Area downsampling (`adaptive_avg_pool2d`) of `x: [c, h, w]` to `[c, oh, ow]`: the exact
/// window sum rounded once times the constant `round(1 / count)` ([`SumMul`]; a window of one
/// element is a copy since `x * 1 = x`).
pub fn area_down<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    oh: usize,
    ow: usize,
) -> Result<B::T> {
    use super::super::var::recon::area_windows;
    let s = b.shape(x).to_vec();
    if s.len() != 3 {
        return Err(shape_err("area_down", format!("{name}: {s:?}")));
    }
    let (c, h, w) = (s[0], s[1], s[2]);
    let wy = area_windows(h, oh)?;
    let wx = area_windows(w, ow)?;
    let fmt = b.format();
    let k = wy.iter().map(|&(a, z)| z - a).max().unwrap_or(1)
        * wx.iter().map(|&(a, z)| z - a).max().unwrap_or(1);
    let inv = b.constant(&format!("{name}.inv"), vec![oh, ow], &mut |_| {
        let mut v = Vec::with_capacity(oh * ow);
        for &(y0, y1) in &wy {
            for &(x0, x1) in &wx {
                v.push(fmt.from_f64(1.0 / ((y1 - y0) * (x1 - x0)) as f64)?);
            }
        }
        Tensor::new(vec![oh, ow], v)
    })?;
    let mut elems = Vec::with_capacity(c * oh * ow * k);
    for ch in 0..c {
        for &(y0, y1) in &wy {
            for &(x0, x1) in &wx {
                let mut n = 0;
                for y in y0..y1 {
                    for xx in x0..x1 {
                        elems.push(Some((ch * h + y) * w + xx));
                        n += 1;
                    }
                }
                elems.extend(std::iter::repeat_n(None, k - n));
            }
        }
    }
    let ports = [
        PortSpec {
            src: x,
            map: Map::Table { words: k, elems },
        },
        PortSpec {
            src: &inv,
            map: Map::affine(
                vec![1],
                vec![co(0, &[0, 1, 0], &[0]), co(0, &[0, 0, 1], &[0])],
            ),
        },
    ];
    one(b, name, &SumMul, &[c, oh, ow], &ports)
}

/// The float kind check of a tensor.
pub fn expect_float<B: TensorArith>(b: &B, op: &'static str, t: &B::T) -> Result<()> {
    if b.kind(t) != Kind::Float {
        return Err(shape_err(
            op,
            format!("a tensor of {:?}, floats expected", b.kind(t)),
        ));
    }
    Ok(())
}
