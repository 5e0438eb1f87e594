//! The shared normalise-round-pack core of the float gadgets, single-gate conditions, and floor.
//!
//! [`round_pack`] turns an exact fixed-point magnitude (bits given as sums of mutually exclusive
//! literals) plus a sign and a one-hot choice of exponent offsets into an encoded [`FloatWord`],
//! applying docs/float.md's `round()` exactly: round to nearest p-bit significand, ties to even,
//! then saturate above `e_max` and flush below `e_min`. It costs **3 threshold layers** above the
//! deepest input literal (2 for the exponent and sign fields):
//!
//! 1. for every candidate leading-one position `L` one gate each for "leading one at L and
//!    window bit i set", "... round bit set", "... sticky set", and for every exponent case
//!    "leading one at L and the rounding carries out of the window" / "... does not" (leading-one
//!    detection, paper-free folklore, docs/float.md, folded into single gates);
//! 2. the window bits, round and sticky bits are *sums* of the layer-1 gates (exactly one `L`
//!    holds), so the increment carries `c_j = up AND w_0..w_{j-1}` and the XOR halves
//!    `w_j AND NOT c_j`, `c_j AND NOT w_j` are single gates over layer 1; the exponent bits,
//!    saturation and the sign are ORs over layer 1;
//! 3. each significand bit is the OR of its two XOR halves and the saturation flag.
//!
//! [`Cond`] and [`gate_if`] fold "AND these conditions hold" into a single threshold gate; they
//! are the tool used throughout the float gadgets.

use crate::circuit::{Builder, Lit};
use crate::float::Format;

use super::super::error::{GadgetError, Result};
use super::FloatWord;

/// A condition folded into a threshold gate: the linear form `Z = sum w_i l_i + constant`
/// must satisfy `Z <= 0` for every input, and the condition holds exactly when `Z == 0`.
///
/// Examples: a literal `l` holds (`l - 1`), a literal is false (`-l`), a 0/1-valued sum of
/// exclusive literals is 1 (`sum - 1`), a sum of literals is zero (`-sum`), an exponent field
/// equals `k` (the minterm form `sum_{k_b = 1} e_b - sum_{k_b = 0} e_b - popcount(k)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cond {
    /// The terms of `Z`.
    pub terms: Vec<(Lit, i64)>,
    /// The constant of `Z`.
    pub constant: i64,
}

impl Cond {
    /// The literal `l` is true.
    pub fn lit(l: Lit) -> Cond {
        Cond {
            terms: vec![(l, 1)],
            constant: -1,
        }
    }

    /// The literal `l` is false.
    pub fn not(l: Lit) -> Cond {
        Cond {
            terms: vec![(l, -1)],
            constant: 0,
        }
    }

    /// The sum of `lits` (mutually exclusive, so the sum is 0 or 1) is 1.
    pub fn one_of(lits: &[Lit]) -> Cond {
        Cond {
            terms: lits.iter().map(|&l| (l, 1)).collect(),
            constant: -1,
        }
    }

    /// No literal of `lits` is true.
    pub fn none_of(lits: &[Lit]) -> Cond {
        Cond {
            terms: lits.iter().map(|&l| (l, -1)).collect(),
            constant: 0,
        }
    }

    /// The unsigned word `bits` (least significant first) equals `k`.
    pub fn word_eq(bits: &[Lit], k: u64) -> Cond {
        let mut terms = Vec::with_capacity(bits.len());
        let mut pop = 0;
        for (i, &l) in bits.iter().enumerate() {
            if (k >> i) & 1 == 1 {
                terms.push((l, 1));
                pop += 1;
            } else {
                terms.push((l, -1));
            }
        }
        Cond {
            terms,
            constant: -pop,
        }
    }

    /// The conjunction of two conditions (their forms add: both are `<= 0`).
    pub fn and(mut self, other: &Cond) -> Cond {
        self.terms.extend_from_slice(&other.terms);
        self.constant += other.constant;
        self
    }
}

/// Largest value the form `terms` can take if every literal were free (sum of positive weights).
fn max_of(terms: &[(Lit, i64)]) -> i128 {
    terms.iter().map(|&(_, w)| (w as i128).max(0)).sum()
}

/// One threshold gate `[sum terms >= theta] AND (every condition of conds holds)`.
///
/// With `B = max(sum terms) - theta + 1` (at least 1) the gate is
/// `[sum terms + B * sum_c Z_c >= theta + B * 0]`: when every `Z_c = 0` it is the plain
/// threshold; when one `Z_c <= -1` the left side is at most `max - B < theta`.
/// Errors (never panics) when a scaled weight leaves `i64` or the builder's weight bound.
pub fn gate_if(b: &mut Builder, terms: &[(Lit, i64)], theta: i64, conds: &[&Cond]) -> Result<Lit> {
    let big = (max_of(terms) - theta as i128 + 1).max(1);
    let mut all: Vec<(Lit, i64)> = terms.to_vec();
    let mut th = theta as i128;
    for c in conds {
        for &(l, w) in &c.terms {
            let sw = big * w as i128;
            let sw = i64::try_from(sw).map_err(|_| GadgetError::Unsupported {
                op: "gate_if",
                limit: format!("scaled condition weight {sw} exceeds i64"),
            })?;
            all.push((l, sw));
        }
        th -= big * c.constant as i128;
    }
    Ok(b.bank_i128(&all, &[th])?[0])
}

/// `[sum terms >= theta_k] AND (every condition of conds holds)` for every `theta_k`, as one
/// bank: the conditions are folded into the shared form as in [`gate_if`], with the factor
/// `B = max(sum terms) - min(thetas) + 1` that serves every threshold.
/// Errors (never panics) when a scaled weight leaves `i64` or the builder's weight bound.
pub fn bank_if(
    b: &mut Builder,
    terms: &[(Lit, i64)],
    thetas: &[i128],
    conds: &[&Cond],
) -> Result<Vec<Lit>> {
    let Some(&min_theta) = thetas.iter().min() else {
        return Ok(Vec::new());
    };
    let big = (max_of(terms) - min_theta + 1).max(1);
    let mut all: Vec<(Lit, i64)> = terms.to_vec();
    let mut shift = 0i128;
    for c in conds {
        for &(l, w) in &c.terms {
            let sw = big * w as i128;
            let sw = i64::try_from(sw).map_err(|_| GadgetError::Unsupported {
                op: "bank_if",
                limit: format!("scaled condition weight {sw} exceeds i64"),
            })?;
            all.push((l, sw));
        }
        shift -= big * c.constant as i128;
    }
    let th: Vec<i128> = thetas.iter().map(|&t| t + shift).collect();
    Ok(b.bank_i128(&all, &th)?)
}

/// `[sum terms >= theta]` for every theta in `thetas`, sharing one form (a bank).
pub(crate) fn bank(b: &mut Builder, terms: &[(Lit, i64)], thetas: &[i128]) -> Result<Vec<Lit>> {
    Ok(b.bank_i128(terms, thetas)?)
}

/// Terms with unit weight for a list of literals.
pub(crate) fn unit(lits: &[Lit]) -> Vec<(Lit, i64)> {
    lits.iter().map(|&l| (l, 1)).collect()
}

/// Normalise, round (RNE) and pack an exact value into a float word of format `fmt`.
///
/// Inputs:
/// - `mag[t]`: bit `t` of the exact magnitude `X = sum_t 2^t x_t`, given as literals whose sum
///   is `x_t` (they must be mutually exclusive: at most one true). Positions past the end and
///   empty lists are zero.
/// - `sign`: the sign of the exact value (ignored when `X = 0`: zero is never negative).
/// - `cases`: exponent cases `(cond, base)`. When `X != 0` exactly one `cond` is true, and the
///   exact value is then `(-1)^sign * X * 2^(e_min + base)`; i.e. `base` is the biased exponent
///   (`e - e_min`) of the weight of bit 0. For a fixed-point grid whose bit 0 weighs `2^e_min`
///   pass `[(Lit::TRUE, 0)]`. For a product `m_a * m_b * 2^(e_a + e_b)` pass one case per pair
///   of biased exponents `(E_a, E_b)` with `base = E_a + E_b + e_min`.
///
/// Output: `round((-1)^sign * X * 2^(e_min + base))` per docs/float.md (nearest, ties to even;
/// saturation to the largest finite value above `e_max`; zero below `e_min`), encoded.
/// Depth: 3 above the deepest input literal (`mag`, `cases`; `sign` may be one level later).
pub fn round_pack(
    b: &mut Builder,
    fmt: Format,
    mag: &[Vec<Lit>],
    sign: Lit,
    cases: &[(Lit, i64)],
) -> Result<FloatWord> {
    if cases.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "round_pack",
            min: 1,
            got: 0,
        });
    }
    let p = fmt.p() as i64;
    let emax_biased = (1i64 << fmt.q()) - 1;
    let cols = MagBits { mag };
    let nt = cols.len();
    let case_conds: Vec<Cond> = cases.iter().map(|&(l, _)| Cond::lit(l)).collect();
    // Layer 1.
    let mut w = Window::new(fmt);
    for l in 0..nt {
        if cols.at(l).is_empty() {
            continue;
        }
        let above = cols.range(l + 1, nt - 1);
        let none_above = Cond::none_of(&above);
        let lead = Cond::one_of(cols.at(l)).and(&none_above);
        w.add_significand(b, &cols, l, p, &lead)?;
        let ones = cols.range(l - p, l - 1); // must all be one for a carry out (with x_l)
        let can_carry = l - p >= 0;
        let neg_ones: Vec<(Lit, i64)> = ones.iter().map(|&o| (o, -1)).collect();
        let mut all_ones = unit(&ones);
        all_ones.extend(cols.at(l).iter().map(|&o| (o, 1)));
        for (c, cond) in cases.iter().zip(&case_conds) {
            for carry in [false, true] {
                if carry && !can_carry {
                    continue;
                }
                let e = l - p + 1 + c.1 + carry as i64;
                if e < 0 {
                    continue; // flushes to zero: contributes nothing
                }
                let g = if carry {
                    gate_if(b, &all_ones, p + 1, &[&none_above, cond])?
                } else if can_carry {
                    gate_if(b, &neg_ones, -(p - 1), &[&lead, cond])?
                } else {
                    gate_if(b, &[], 0, &[&lead, cond])?
                };
                w.add_exponent(g, e, emax_biased);
            }
        }
    }
    pack_window(b, fmt, sign, w)
}

/// The bit columns of an exact magnitude as layer 1 of a rounding reads them: `at(t)` are the
/// literals whose sum is bit `t` (`mag[t]`), empty outside `0..len`.
pub(crate) struct MagBits<'a> {
    pub mag: &'a [Vec<Lit>],
}

impl MagBits<'_> {
    /// Number of bit positions.
    pub fn len(&self) -> i64 {
        self.mag.len() as i64
    }

    /// The literals of bit `t` (empty outside the magnitude).
    pub fn at(&self, t: i64) -> &[Lit] {
        if t < 0 || t >= self.len() {
            &[]
        } else {
            &self.mag[t as usize]
        }
    }

    /// The literals of bits `lo ..= hi` (clipped to the magnitude), in position order.
    pub fn range(&self, lo: i64, hi: i64) -> Vec<Lit> {
        let mut v = Vec::new();
        for t in lo.max(0)..=hi.min(self.len() - 1) {
            v.extend_from_slice(self.at(t));
        }
        v
    }
}

/// The first-layer gates of a rounding (one set per candidate exponent) that
/// [`pack_window`] turns into the packed float: `win[i]` (window bit i is set when one of its
/// gates is), the round bit `rnd`, the `sticky` bits, the `valid` gates (exactly one fires for a
/// finite nonzero result), the saturation gates `sat`, and per exponent bit the gates whose
/// exponent has that bit set.
pub(crate) struct Window {
    pub win: Vec<Vec<Lit>>,
    pub rnd: Vec<Lit>,
    pub sticky: Vec<Lit>,
    pub valid: Vec<Lit>,
    pub sat: Vec<Lit>,
    pub exp_bits: Vec<Vec<Lit>>,
}

impl Window {
    /// No gates yet: `p` window bit lists and `q` exponent bit lists, all empty.
    pub fn new(fmt: Format) -> Window {
        Window {
            win: vec![Vec::new(); fmt.p() as usize],
            rnd: Vec::new(),
            sticky: Vec::new(),
            valid: Vec::new(),
            sat: Vec::new(),
            exp_bits: vec![Vec::new(); fmt.q() as usize],
        }
    }

    /// The significand gates for a leading one at position `l` (true when `lead` holds): the
    /// `p - 1` bits below it into the window, the next bit as round bit, every lower bit as
    /// sticky.
    pub fn add_significand(
        &mut self,
        b: &mut Builder,
        cols: &MagBits,
        l: i64,
        p: i64,
        lead: &Cond,
    ) -> Result<()> {
        for i in 0..p - 1 {
            let t = l - p + 1 + i;
            if cols.at(t).is_empty() {
                continue;
            }
            let g = gate_if(b, &unit(cols.at(t)), 1, &[lead])?;
            self.win[i as usize].push(g);
        }
        if !cols.at(l - p).is_empty() {
            let g = gate_if(b, &unit(cols.at(l - p)), 1, &[lead])?;
            self.rnd.push(g);
        }
        let low = cols.range(0, l - p - 1);
        if !low.is_empty() {
            let g = gate_if(b, &unit(&low), 1, &[lead])?;
            self.sticky.push(g);
        }
        Ok(())
    }

    /// A gate that fires when the result's biased exponent is `e`: a saturation gate above
    /// `emax_biased`, otherwise a valid gate counted in every exponent bit set in `e`.
    pub fn add_exponent(&mut self, g: Lit, e: i64, emax_biased: i64) {
        if e > emax_biased {
            self.sat.push(g);
            return;
        }
        self.valid.push(g);
        for (bit, eb) in self.exp_bits.iter_mut().enumerate() {
            if (e >> bit) & 1 == 1 {
                eb.push(g);
            }
        }
    }
}

/// Layers 2 and 3 of a rounding (docs/float.md): sign, exponent and the rounded significand
/// (round to nearest, ties to even, with the carry folded into each bit), saturation to the
/// largest magnitude, zero when no gate fires. Shared by [`round_pack`] and the sums.
pub(crate) fn pack_window(b: &mut Builder, fmt: Format, sign: Lit, w: Window) -> Result<FloatWord> {
    let p = fmt.p() as i64;
    let Window {
        win,
        rnd,
        sticky,
        valid,
        sat,
        exp_bits,
    } = w;
    let valid_c = Cond::one_of(&valid);
    let mut vs = valid.clone();
    vs.extend_from_slice(&sat);
    let nonzero = b.or(&vs)?;
    let sign_out = gate_if(b, &unit(&vs), 1, &[&Cond::lit(sign)])?;
    let mut exp_out = Vec::with_capacity(fmt.q() as usize);
    for eb in &exp_bits {
        let mut l = eb.clone();
        l.extend_from_slice(&sat);
        exp_out.push(b.or(&l)?);
    }
    let wt = |i: usize, wgt: i64| -> Vec<(Lit, i64)> { win[i].iter().map(|&g| (g, wgt)).collect() };
    let mut sig_out = Vec::with_capacity(p as usize);
    #[allow(clippy::needless_range_loop)] // j indexes the window and is a bit position
    for j in 0..(p - 1) as usize {
        // carry into bit j of the window on rounding up: c_0 = up = [2r + st + w_0 >= 3],
        // c_j = r AND w_0 .. w_{j-1} (w_0 set makes up = r).
        let (form, theta): (Vec<(Lit, i64)>, i64) = if j == 0 {
            let mut f: Vec<(Lit, i64)> = rnd.iter().map(|&g| (g, 2)).collect();
            f.extend(sticky.iter().map(|&g| (g, 1)));
            f.extend(wt(0, 1));
            (f, 3)
        } else {
            let mut f = unit(&rnd);
            for i in 0..j {
                f.extend(wt(i, 1));
            }
            (f, j as i64 + 1)
        };
        let wj_set = Cond::one_of(&win[j]);
        let wj_clear = Cond::none_of(&win[j]);
        let x1 = gate_if(b, &form, theta, &[&valid_c, &wj_clear])?;
        let neg: Vec<(Lit, i64)> = form.iter().map(|&(l, w)| (l, -w)).collect();
        let x2 = gate_if(b, &neg, 1 - theta, &[&valid_c, &wj_set])?;
        let mut l = vec![x1, x2];
        l.extend_from_slice(&sat);
        sig_out.push(b.or(&l)?);
    }
    sig_out.push(nonzero);
    let mut bits = sig_out;
    bits.extend(exp_out);
    bits.push(sign_out);
    FloatWord::new(fmt, bits)
}

/// `floor(x)`: the largest representable integer-valued value `<= x` (docs/float.md), depth 2.
///
/// Every output bit is an OR of single gates, each "input condition AND exponent case" with the
/// increment carry of negative inputs (`ceil(|x|)`) folded in; see the reference `Float::floor`.
pub fn floor(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    let fmt = x.fmt;
    let p = fmt.p() as i64;
    let q = fmt.q();
    let half = 1i64 << (q - 1); // biased exponent of e = 0
    let m = x.sig().to_vec();
    let e = x.exp().to_vec();
    let s = x.sign();
    let e_form: Vec<(Lit, i64)> = e.iter().enumerate().map(|(i, &l)| (l, 1i64 << i)).collect();
    let neg_e: Vec<(Lit, i64)> = e_form.iter().map(|&(l, w)| (l, -w)).collect();
    let cs = Cond::lit(s);
    let cns = Cond::not(s);
    let mut sig_terms: Vec<Vec<Lit>> = vec![Vec::new(); p as usize];
    let mut exp_terms: Vec<Vec<Lit>> = vec![Vec::new(); q as usize];
    // Positive inputs: bits j >= sh = -e kept (e >= 0 keeps everything), exponent unchanged;
    // zero when sh >= p.
    for j in 0..p {
        let g = gate_if(b, &e_form, half - j, &[&cns, &Cond::lit(m[j as usize])])?;
        sig_terms[j as usize].push(g);
    }
    for (i, et) in exp_terms.iter_mut().enumerate() {
        let g = gate_if(b, &e_form, half - p + 1, &[&cns, &Cond::lit(e[i])])?;
        et.push(g);
    }
    // Negative inputs with e >= 0: unchanged.
    for j in 0..p - 1 {
        let g = gate_if(b, &e_form, half, &[&cs, &Cond::lit(m[j as usize])])?;
        sig_terms[j as usize].push(g);
    }
    for (i, et) in exp_terms.iter_mut().enumerate() {
        let g = gate_if(b, &e_form, half, &[&cs, &Cond::lit(e[i])])?;
        et.push(g);
    }
    // Negative inputs, e < 0, sh = -e < p: M = (m >> sh) + [low bits nonzero], result
    // M << sh with exponent e, or 2^(p-1) with exponent e + 1 when the increment carries out.
    let ebig = (1u64 << q) as i64;
    for k in 0..half {
        let sh = half - k;
        if sh >= p {
            continue;
        }
        let ek = Cond::word_eq(&e, k as u64).and(&cs);
        // carry into bit j (j >= sh): m_sh..m_{j-1} all one and some m_0..m_{sh-1} set.
        let carry_form = |j: i64| -> (Vec<(Lit, i64)>, i64) {
            let big = sh + 1;
            let mut f: Vec<(Lit, i64)> = (0..sh).map(|i| (m[i as usize], 1)).collect();
            f.extend((sh..j).map(|i| (m[i as usize], big)));
            (f, big * (j - sh) + 1)
        };
        for j in sh..p - 1 {
            let (f, th) = carry_form(j);
            let mj = m[j as usize];
            let x1 = gate_if(b, &f, th, &[&ek, &Cond::not(mj)])?;
            let nf: Vec<(Lit, i64)> = f.iter().map(|&(l, w)| (l, -w)).collect();
            let x2 = gate_if(b, &nf, 1 - th, &[&ek, &Cond::lit(mj)])?;
            sig_terms[j as usize].push(x1);
            sig_terms[j as usize].push(x2);
        }
        let (f, th) = carry_form(p);
        let cout = gate_if(b, &f, th, &[&ek])?;
        let nf: Vec<(Lit, i64)> = f.iter().map(|&(l, w)| (l, -w)).collect();
        let nocout = gate_if(b, &nf, 1 - th, &[&ek])?;
        for (i, et) in exp_terms.iter_mut().enumerate() {
            if (k >> i) & 1 == 1 {
                et.push(nocout);
            }
            if ((k + 1) >> i) & 1 == 1 && k + 1 < ebig {
                et.push(cout);
            }
        }
    }
    // Negative inputs with sh >= p: -1 * 2^0 normalised: significand 2^(p-1), exponent 1 - p.
    let k0 = 1 - p + half;
    if k0 >= 0 {
        let g = gate_if(b, &neg_e, -(half - p), &[&cs])?;
        for (i, et) in exp_terms.iter_mut().enumerate() {
            if (k0 >> i) & 1 == 1 {
                et.push(g);
            }
        }
    }
    let mut bits = Vec::with_capacity(fmt.width() as usize);
    for (j, st) in sig_terms.iter().enumerate() {
        if j as i64 == p - 1 {
            let mut l = st.clone();
            l.push(s);
            bits.push(b.or(&l)?);
        } else {
            bits.push(b.or(st)?);
        }
    }
    for et in &exp_terms {
        bits.push(b.or(et)?);
    }
    bits.push(s);
    FloatWord::new(fmt, bits)
}
