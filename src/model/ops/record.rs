//! The recording backend: every tensor operation becomes one application of a template in a
//! [`Program`] (docs/program.md).
//!
//! A template is the kernel run once on [`CircuitArith`] over fresh input words (one word per
//! port word; a choice port is a binary index decoded to a one-hot inside the template, a
//! choice output is encoded back to a binary index), built and levelized once per key: the
//! kernel's key, the format, and each port's kind and word count. Maps in logical coordinates
//! become flat affine maps over the row-major source, with a guard per axis that may leave the
//! source (zero padding).
//!
//! Templates are *declared* while recording (their ports and output widths follow from the
//! kernel) and built when recording finishes, all at once and in parallel (rayon): recording
//! itself costs one step per tensor operation, and the distinct templates, which dominate the
//! time, are built side by side.
//!
//! Weights become [`TensorKind::Weight`] tensors named by their state_dict name: the program
//! holds only their shape, and an evaluator asks the weight provider for the values
//! ([`Recorder::weight_values`]). Constants derived from weights (small by contract) are stored
//! in the program.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::Arc;

use indicatif::ProgressBar;

use rayon::prelude::*;

use crate::circuit::program::{
    Affine, Gather, Guard, IndexMap, Port, Program, ProgramBuilder, Template, TemplateId,
    TensorDecl, TensorId, TensorKind,
};
use crate::circuit::{Builder, Lit};
use crate::float::{Float, Format};
use crate::gadgets::float::FloatWord;

use super::super::arith::CircuitArith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::{
    check_ports, choice_bits, concat_shape, coord_range, Coord, Kernel, Kind, Map, PortSpec,
    TensorArith, Val, WeightProvider,
};

/// A recorded tensor: a program tensor with its logical shape and kind (always contiguous,
/// row-major).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RTensor {
    /// The program tensor.
    pub id: TensorId,
    /// The logical shape.
    pub shape: Vec<usize>,
    /// The element kind.
    pub kind: Kind,
}

/// The literals of a kernel operand or result inside a template.
enum OutBits {
    F(Vec<Lit>),
    B(Lit),
    C(Vec<Lit>),
    A(Vec<Lit>),
}

/// Run kernel `k` on circuit words (`ins` per port) and return its results as literals.
fn run_on_circuit<K: Kernel>(
    b: &mut Builder,
    fmt: Format,
    k: &K,
    ins: Vec<Vec<OutBits>>,
) -> Result<Vec<OutBits>> {
    let vals = ins
        .into_iter()
        .map(|port| {
            port.into_iter()
                .map(|v| {
                    Ok(match v {
                        OutBits::F(bits) => Val::F(FloatWord::new(fmt, bits)?),
                        OutBits::B(l) => Val::B(l),
                        OutBits::C(l) => Val::C(l),
                        OutBits::A(l) => Val::A(l),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut a = CircuitArith::new(b, fmt);
    let outs = k.run(&mut a, &vals)?;
    Ok(outs
        .into_iter()
        .map(|v| match v {
            Val::F(x) => OutBits::F(x.bits),
            Val::B(l) => OutBits::B(l),
            Val::C(l) => OutBits::C(l),
            Val::A(l) => OutBits::A(l),
        })
        .collect())
}

/// A template declared while recording, built at [`Recorder::finish`].
struct Pending {
    id: TemplateId,
    key: String,
    build: Box<dyn FnOnce() -> Result<Template> + Send>,
}

/// The template of kernel `k` with ports `ports` (kind and word count each), built and
/// levelized.
fn build_template<K: Kernel>(
    fmt: Format,
    key: &str,
    k: &K,
    ports: &[(Kind, usize)],
) -> Result<Template> {
    let mut b = Builder::new();
    let mut ins: Vec<Vec<OutBits>> = Vec::with_capacity(ports.len());
    for (p, &(kind, n)) in ports.iter().enumerate() {
        let mut words = Vec::with_capacity(n);
        for w in 0..n {
            let name = format!("p{p}.{w}");
            words.push(match kind {
                Kind::Float => OutBits::F(b.input_word(&name, fmt.width())?),
                Kind::Bit => OutBits::B(b.input(&name)?),
                Kind::Acc(w) => OutBits::A(b.input_word(&name, w)?),
                Kind::Choice(m) => {
                    let bits = b.input_word(&name, choice_bits(m))?;
                    let mut onehot = Vec::with_capacity(m as usize);
                    for c in 0..m as usize {
                        let lits: Vec<Lit> = bits
                            .iter()
                            .enumerate()
                            .map(|(i, &l)| if (c >> i) & 1 == 1 { l } else { !l })
                            .collect();
                        onehot.push(b.and(&lits)?);
                    }
                    OutBits::C(onehot)
                }
            });
        }
        ins.push(words);
    }
    let kinds = k.outputs();
    let outs = run_on_circuit(&mut b, fmt, k, ins)?;
    if outs.len() != kinds.len() {
        return Err(ModelError::Shape {
            op: "template",
            detail: format!("{key}: {} outputs, declared {}", outs.len(), kinds.len()),
        });
    }
    let mut widths = Vec::with_capacity(outs.len());
    for (o, (v, kd)) in outs.iter().zip(&kinds).enumerate() {
        let bits: Vec<Lit> = match (v, kd) {
            (OutBits::F(x), Kind::Float) => x.clone(),
            (OutBits::B(x), Kind::Bit) => vec![*x],
            (OutBits::A(x), Kind::Acc(w)) => {
                let w = *w as usize;
                if x.len() > w {
                    return Err(ModelError::Shape {
                        op: "template",
                        detail: format!("{key}: a partial sum of {} bits for {w}", x.len()),
                    });
                }
                // Sign-extend to the declared width.
                let mut v = x.clone();
                let top = *x.last().unwrap_or(&Lit::FALSE);
                v.resize(w, top);
                v
            }
            (OutBits::C(onehot), Kind::Choice(m)) => {
                if onehot.len() != *m as usize {
                    return Err(ModelError::Shape {
                        op: "template",
                        detail: format!("{key}: a choice of {} for {m}", onehot.len()),
                    });
                }
                (0..choice_bits(*m))
                    .map(|bit| {
                        let on: Vec<Lit> = onehot
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| (j >> bit) & 1 == 1)
                            .map(|(_, &l)| l)
                            .collect();
                        b.or(&on)
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            _ => {
                return Err(ModelError::Shape {
                    op: "template",
                    detail: format!("{key}: output {o} is not of kind {kd:?}"),
                })
            }
        };
        widths.push(bits.len() as u32);
        b.output_word(&format!("o{o}"), &bits)?;
    }
    let tports = ports
        .iter()
        .map(|&(kind, n)| Port {
            words: n as u32,
            width: width_of(fmt, kind),
        })
        .collect();
    Ok(Template::new(key, &b.finish(), tports, widths)?)
}

/// Records tensor operations into a [`Program`].
pub struct Recorder<'w> {
    pending: Vec<Pending>,
    pb: ProgramBuilder,
    fmt: Format,
    w: &'w dyn WeightProvider,
    progress: Option<ProgressBar>,
    template_seconds: f64,
    template_log: Vec<TemplateBuild>,
    weights: HashMap<String, RTensor>,
    cache: Option<TemplateCache>,
}

/// Templates shared between recordings (e.g. the points of a size sweep): a template is built
/// once per key whatever program uses it.
pub type TemplateCache = Rc<RefCell<HashMap<String, Arc<Template>>>>;

/// How long one template took to build, with its size.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateBuild {
    /// The template's key.
    pub key: String,
    /// Seconds to build and levelize it.
    pub seconds: f64,
    /// Its gates.
    pub gates: u64,
    /// Its terms.
    pub terms: u64,
}

fn width_of(fmt: Format, k: Kind) -> u32 {
    match k {
        Kind::Float => fmt.width(),
        Kind::Bit => 1,
        Kind::Choice(n) => choice_bits(n),
        Kind::Acc(w) => w,
    }
}

impl<'w> Recorder<'w> {
    /// A recorder in format `fmt` with weights from `w` (only their shapes are read while
    /// recording).
    pub fn new(fmt: Format, w: &'w dyn WeightProvider) -> Self {
        Recorder {
            pending: Vec::new(),
            pb: ProgramBuilder::new(),
            fmt,
            w,
            progress: None,
            template_seconds: 0.0,
            template_log: Vec::new(),
            weights: HashMap::new(),
            cache: None,
        }
    }

    /// Show a spinner with the template being built (only when stderr is a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        if on && std::io::stderr().is_terminal() {
            let pb = ProgressBar::new_spinner();
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            self.progress = Some(pb);
        }
        self
    }

    /// Look templates up in `cache` before building them, and add the ones built.
    pub fn with_cache(mut self, cache: TemplateCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// A new program input tensor.
    pub fn input(&mut self, name: &str, kind: Kind, shape: Vec<usize>) -> Result<RTensor> {
        let n: usize = shape.iter().product();
        let id = self.pb.input(name, width_of(self.fmt, kind), n as u64)?;
        Ok(RTensor { id, shape, kind })
    }

    /// Declare a named program output.
    pub fn output(&mut self, name: &str, t: &RTensor) -> Result<()> {
        Ok(self.pb.output(name, t.id)?)
    }

    /// Finish recording: build every declared template (in parallel), then validate.
    pub fn finish(self) -> Result<Program> {
        Ok(self.finish_logged()?.0)
    }

    /// [`Recorder::finish`], also returning the seconds spent building templates (summed over
    /// templates, so above the wall time when they are built in parallel) and the build log.
    pub fn finish_logged(mut self) -> Result<(Program, f64, Vec<TemplateBuild>)> {
        let pending = std::mem::take(&mut self.pending);
        if let Some(p) = &self.progress {
            p.set_message(format!("building {} templates", pending.len()));
        }
        let built: Vec<(TemplateId, String, Result<Template>, f64)> = pending
            .into_par_iter()
            .map(|p| {
                let t0 = std::time::Instant::now();
                let r = (p.build)();
                (p.id, p.key, r, t0.elapsed().as_secs_f64())
            })
            .collect();
        for (id, key, r, secs) in built {
            let tp = Arc::new(r?);
            self.template_seconds += secs;
            self.template_log.push(TemplateBuild {
                key: key.clone(),
                seconds: secs,
                gates: tp.cost.gates,
                terms: tp.cost.terms,
            });
            if let Some(c) = &self.cache {
                c.borrow_mut().insert(key, tp.clone());
            }
            self.pb.define_template(id, tp)?;
        }
        if let Some(p) = &self.progress {
            p.finish_and_clear();
        }
        Ok((self.pb.finish()?, self.template_seconds, self.template_log))
    }

    /// The program recorded so far (templates declared but not yet built have no circuit).
    pub fn program(&self) -> &Program {
        self.pb.program()
    }

    /// The values of a [`TensorKind::Weight`] tensor of a program recorded with weights `w`
    /// (`decl.name` is the state_dict name), as encodings.
    pub fn weight_encodings(w: &dyn WeightProvider, decl: &TensorDecl) -> Result<Vec<u64>> {
        let TensorKind::Weight(shape) = &decl.kind else {
            return Err(ModelError::Shape {
                op: "weight_values",
                detail: format!("tensor {:?} is not a weight", decl.name),
            });
        };
        let shape: Vec<usize> = shape.iter().map(|&x| x as usize).collect();
        let t = w.tensor(&decl.name, &shape)?;
        Ok(t.data().iter().map(|v| v.to_bits()).collect())
    }

    fn gather(&self, t: &RTensor, map: &Map, inst: &[usize]) -> Result<IndexMap> {
        let rank = t.shape.len();
        let mut strides = vec![1i64; rank];
        for a in (0..rank.saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * t.shape[a + 1] as i64;
        }
        let to_affine = |c: &Coord| Affine {
            base: c.base,
            inst: c.inst.clone(),
            word: c.word.clone(),
        };
        match map {
            Map::Affine {
                words,
                coords,
                pad,
                conds,
            } => {
                let mut elem = Affine {
                    base: 0,
                    inst: vec![0; inst.len()],
                    word: vec![0; words.len()],
                };
                let mut guards = Vec::new();
                for (a, c) in coords.iter().enumerate() {
                    let s = strides[a];
                    elem.base += s * c.base;
                    for (e, &x) in elem.inst.iter_mut().zip(&c.inst) {
                        *e += s * x;
                    }
                    for (e, &x) in elem.word.iter_mut().zip(&c.word) {
                        *e += s * x;
                    }
                    if *pad {
                        let (lo, hi) = coord_range(c, inst, words);
                        if lo < 0 || hi >= t.shape[a] as i64 {
                            guards.push(Guard {
                                expr: to_affine(c),
                                bound: t.shape[a] as i64,
                            });
                        }
                    }
                }
                for c in conds {
                    guards.push(Guard {
                        expr: to_affine(&c.expr),
                        bound: c.bound,
                    });
                }
                Ok(IndexMap::Affine {
                    elem,
                    word_shape: words.iter().map(|&w| w as u32).collect(),
                    guards,
                })
            }
            Map::Table { elems, .. } => Ok(IndexMap::Table(
                elems
                    .iter()
                    .map(|e| match e {
                        None => Ok(IndexMap::NONE),
                        Some(e) => u32::try_from(*e)
                            .ok()
                            .filter(|&x| x != IndexMap::NONE)
                            .ok_or_else(|| ModelError::Shape {
                                op: "table map",
                                detail: format!("element {e} beyond 2^32 - 2"),
                            }),
                    })
                    .collect::<Result<_>>()?,
            )),
        }
    }
}

impl TensorArith for Recorder<'_> {
    type T = RTensor;

    fn format(&self) -> Format {
        self.fmt
    }
    fn shape<'a>(&self, t: &'a RTensor) -> &'a [usize] {
        &t.shape
    }
    fn kind(&self, t: &RTensor) -> Kind {
        t.kind
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<RTensor> {
        if let Some(t) = self.weights.get(name) {
            if t.shape != shape {
                return Err(ModelError::Weights {
                    name: name.to_string(),
                    reason: format!("read with shapes {:?} and {shape:?}", t.shape),
                });
            }
            return Ok(t.clone());
        }
        self.w.check(name, shape)?;
        let id = self.pb.weight(
            name,
            self.fmt.width(),
            shape.iter().map(|&x| x as u64).collect(),
        )?;
        let t = RTensor {
            id,
            shape: shape.to_vec(),
            kind: Kind::Float,
        };
        self.weights.insert(name.to_string(), t.clone());
        Ok(t)
    }
    fn weight_values(&self, name: &str, shape: &[usize]) -> Result<Tensor<Float>> {
        Ok(self.w.tensor(name, shape)?.into_owned())
    }
    fn constant(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        values: &mut dyn FnMut(&dyn WeightProvider) -> Result<Tensor<Float>>,
    ) -> Result<RTensor> {
        let t = values(self.w)?;
        if t.shape() != shape.as_slice() {
            return Err(ModelError::Shape {
                op: "constant",
                detail: format!(
                    "{name}: values of shape {:?}, declared {shape:?}",
                    t.shape()
                ),
            });
        }
        let id = self.pb.constant(name, self.fmt.width(), t.to_bits())?;
        Ok(RTensor {
            id,
            shape,
            kind: Kind::Float,
        })
    }
    fn constant_bits(&mut self, name: &str, shape: Vec<usize>, b: &[bool]) -> Result<RTensor> {
        let n: usize = shape.iter().product();
        if n != b.len() {
            return Err(ModelError::Shape {
                op: "constant_bits",
                detail: format!("{name}: {} bits for shape {shape:?}", b.len()),
            });
        }
        let id = self
            .pb
            .constant(name, 1, b.iter().map(|&x| x as u64).collect())?;
        Ok(RTensor {
            id,
            shape,
            kind: Kind::Bit,
        })
    }
    fn constant_choices(
        &mut self,
        name: &str,
        n: u32,
        shape: Vec<usize>,
        idx: &[u32],
    ) -> Result<RTensor> {
        let len: usize = shape.iter().product();
        if len != idx.len() || idx.iter().any(|&i| i >= n) {
            return Err(ModelError::Shape {
                op: "constant_choices",
                detail: format!("{name}: {} indices < {n} for shape {shape:?}", idx.len()),
            });
        }
        let id = self.pb.constant(
            name,
            choice_bits(n),
            idx.iter().map(|&i| i as u64).collect(),
        )?;
        Ok(RTensor {
            id,
            shape,
            kind: Kind::Choice(n),
        })
    }
    fn apply<K: Kernel>(
        &mut self,
        name: &str,
        k: &K,
        inst: &[usize],
        ports: &[PortSpec<'_, RTensor>],
    ) -> Result<Vec<RTensor>> {
        check_ports(name, inst, ports, |t| t.shape.clone())?;
        let desc: Vec<(Kind, usize)> = ports
            .iter()
            .map(|p| (p.src.kind, p.map.num_words()))
            .collect();
        let key = format!(
            "{}|{}|{}",
            k.key(),
            self.fmt,
            desc.iter()
                .map(|(kd, n)| format!("{}{n}", kd.tag()))
                .collect::<Vec<_>>()
                .join(",")
        );
        let tid = match self.pb.find_template(&key) {
            Some(t) => t,
            None => {
                let cached = self
                    .cache
                    .as_ref()
                    .and_then(|c| c.borrow().get(&key).cloned());
                match cached {
                    Some(tp) => self.pb.add_template(tp)?,
                    None => {
                        let fmt = self.fmt;
                        let tports = desc
                            .iter()
                            .map(|&(kind, n)| Port {
                                words: n as u32,
                                width: width_of(fmt, kind),
                            })
                            .collect();
                        let widths = k.outputs().iter().map(|&kd| width_of(fmt, kd)).collect();
                        let id = self.pb.declare_template(&key, tports, widths)?;
                        let (kc, dc, kk) = (k.clone(), desc.clone(), key.clone());
                        self.pending.push(Pending {
                            id,
                            key: key.clone(),
                            build: Box::new(move || build_template(fmt, &kk, &kc, &dc)),
                        });
                        id
                    }
                }
            }
        };
        let gathers = ports
            .iter()
            .map(|p| {
                Ok(Gather {
                    tensor: p.src.id,
                    map: self.gather(p.src, &p.map, inst)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ids = self
            .pb
            .apply(name, tid, inst.iter().map(|&x| x as u64).collect(), gathers)?;
        Ok(ids
            .into_iter()
            .zip(k.outputs())
            .map(|(id, kind)| RTensor {
                id,
                shape: inst.to_vec(),
                kind,
            })
            .collect())
    }
    fn concat(&mut self, name: &str, parts: &[&RTensor]) -> Result<RTensor> {
        let dims: Vec<(&[usize], Kind)> = parts.iter().map(|p| (&p.shape[..], p.kind)).collect();
        let shape = concat_shape(name, &dims)?;
        let id = self.pb.concat(name, parts.iter().map(|p| p.id).collect())?;
        Ok(RTensor {
            id,
            shape,
            kind: dims[0].1,
        })
    }
    fn reshape(&mut self, t: &RTensor, shape: Vec<usize>) -> Result<RTensor> {
        let n: usize = shape.iter().product();
        let m: usize = t.shape.iter().product();
        if n != m {
            return Err(ModelError::Shape {
                op: "reshape",
                detail: format!("{:?} to {shape:?}", t.shape),
            });
        }
        Ok(RTensor {
            id: t.id,
            shape,
            kind: t.kind,
        })
    }
    fn push_region(&mut self, name: &str) -> Result<()> {
        Ok(self.pb.push_region(name)?)
    }
    fn pop_region(&mut self) -> Result<()> {
        Ok(self.pb.pop_region()?)
    }
}
