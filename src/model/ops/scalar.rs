//! The element-by-element backend: a scalar [`Arith`] run on every instance of every
//! application (the F(p, q) reference, the f32 model, the explicit circuit compiler).

use crate::float::{Float, Format};

use super::super::arith::Arith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::{
    check_ports, concat_shape, Kernel, Kind, Map, PortSpec, TensorArith, Val, WeightProvider,
};

/// A tensor of scalar values of backend `A`, row-major.
///
/// Invariant: `data.len() == product(shape)`, every element of kind `kind`.
pub struct STensor<A: Arith> {
    shape: Vec<usize>,
    kind: Kind,
    data: Vec<Val<A>>,
}

impl<A: Arith> Clone for STensor<A> {
    fn clone(&self) -> Self {
        STensor {
            shape: self.shape.clone(),
            kind: self.kind,
            data: self.data.clone(),
        }
    }
}

impl<A: Arith> STensor<A> {
    /// A tensor from values of one kind (checked: length and kinds).
    pub fn new(shape: Vec<usize>, kind: Kind, data: Vec<Val<A>>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(ModelError::Shape {
                op: "STensor::new",
                detail: format!("shape {shape:?} needs {n} elements, got {}", data.len()),
            });
        }
        let ok = data.iter().all(|v| {
            matches!(
                (v, kind),
                (Val::F(_), Kind::Float)
                    | (Val::B(_), Kind::Bit)
                    | (Val::C(_), Kind::Choice(_))
                    | (Val::A(_), Kind::Acc(_))
            )
        });
        if !ok {
            return Err(ModelError::Shape {
                op: "STensor::new",
                detail: format!("elements of another kind than {kind:?}"),
            });
        }
        Ok(STensor { shape, kind, data })
    }

    /// A float tensor.
    pub fn floats(t: Tensor<A::V>) -> Self {
        let shape = t.shape().to_vec();
        STensor {
            shape,
            kind: Kind::Float,
            data: t.into_data().into_iter().map(Val::F).collect(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The values, row-major.
    pub fn data(&self) -> &[Val<A>] {
        &self.data
    }

    /// The float values as a [`Tensor`] (an error for another kind).
    pub fn to_floats(&self) -> Result<Tensor<A::V>> {
        let d = self
            .data
            .iter()
            .map(|v| v.f().cloned())
            .collect::<Result<Vec<_>>>()?;
        Tensor::new(self.shape.clone(), d)
    }

    /// The choices (an error for another kind).
    pub fn to_choices(&self) -> Result<Vec<A::Choice>> {
        self.data.iter().map(|v| v.c().cloned()).collect()
    }
}

/// A scalar backend `A` lifted to tensors: every application runs the kernel on each instance.
pub struct Scalar<'w, A: Arith> {
    /// The scalar backend.
    pub a: A,
    w: &'w dyn WeightProvider,
}

impl<'w, A: Arith> Scalar<'w, A> {
    /// Lift `a`, with weights from `w`.
    pub fn new(a: A, w: &'w dyn WeightProvider) -> Self {
        Scalar { a, w }
    }

    fn floats_of(&mut self, t: &Tensor<Float>) -> Result<STensor<A>> {
        let data = t
            .data()
            .iter()
            .map(|&c| Ok(Val::F(self.a.constant(c)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(STensor {
            shape: t.shape().to_vec(),
            kind: Kind::Float,
            data,
        })
    }

    fn false_bit(&mut self) -> Result<A::Bit> {
        let z = self.a.constant(self.a.format().zero())?;
        self.a.lt(&z, &z)
    }
}

/// Row-major flat index of `coords` in `shape`, `None` when outside.
fn flat_index(coords: &[i64], shape: &[usize]) -> Option<usize> {
    let mut f = 0usize;
    for (&c, &s) in coords.iter().zip(shape) {
        if c < 0 || c as usize >= s {
            return None;
        }
        f = f * s + c as usize;
    }
    Some(f)
}

fn next(idx: &mut [usize], shape: &[usize]) {
    for ax in (0..shape.len()).rev() {
        idx[ax] += 1;
        if idx[ax] < shape[ax] {
            return;
        }
        idx[ax] = 0;
    }
}

impl<A: Arith> TensorArith for Scalar<'_, A> {
    type T = STensor<A>;

    fn format(&self) -> Format {
        self.a.format()
    }
    fn shape<'a>(&self, t: &'a STensor<A>) -> &'a [usize] {
        &t.shape
    }
    fn kind(&self, t: &STensor<A>) -> Kind {
        t.kind
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<STensor<A>> {
        let w = self.w;
        let t = w.tensor(name, shape)?;
        self.floats_of(&t)
    }
    fn weight_values(&self, name: &str, shape: &[usize]) -> Result<Tensor<Float>> {
        Ok(self.w.tensor(name, shape)?.into_owned())
    }
    fn constant(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        values: &mut dyn FnMut(&dyn WeightProvider) -> Result<Tensor<Float>>,
    ) -> Result<STensor<A>> {
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
        self.floats_of(&t)
    }
    fn constant_bits(&mut self, name: &str, shape: Vec<usize>, b: &[bool]) -> Result<STensor<A>> {
        let f = self.false_bit()?;
        let t = self.a.not(&f);
        let data = b
            .iter()
            .map(|&x| Val::B(if x { t.clone() } else { f.clone() }))
            .collect();
        STensor::new(shape, Kind::Bit, data).map_err(|e| ModelError::Shape {
            op: "constant_bits",
            detail: format!("{name}: {e}"),
        })
    }
    fn constant_choices(
        &mut self,
        name: &str,
        n: u32,
        shape: Vec<usize>,
        idx: &[u32],
    ) -> Result<STensor<A>> {
        let data = idx
            .iter()
            .map(|&i| Ok(Val::C(self.a.choice_const(i as usize, n as usize)?)))
            .collect::<Result<Vec<_>>>()?;
        STensor::new(shape, Kind::Choice(n), data).map_err(|e| ModelError::Shape {
            op: "constant_choices",
            detail: format!("{name}: {e}"),
        })
    }
    fn apply<K: Kernel>(
        &mut self,
        name: &str,
        k: &K,
        inst: &[usize],
        ports: &[PortSpec<'_, STensor<A>>],
    ) -> Result<Vec<STensor<A>>> {
        let n = check_ports(name, inst, ports, |t| t.shape.clone())?;
        let kinds = k.outputs();
        let zero_f = self.a.constant(self.a.format().zero())?;
        let zero_b = self.false_bit()?;
        let zero_a = self.a.acc_sum(&[])?;
        let mut outs: Vec<Vec<Val<A>>> = kinds.iter().map(|_| Vec::with_capacity(n)).collect();
        let mut idx = vec![0usize; inst.len()];
        let mut ins: Vec<Vec<Val<A>>> = ports
            .iter()
            .map(|p| Vec::with_capacity(p.map.num_words()))
            .collect();
        for i in 0..n {
            for (p, port) in ports.iter().enumerate() {
                let src = port.src;
                let words = &mut ins[p];
                words.clear();
                let zero = || -> Result<Val<A>> {
                    match src.kind {
                        Kind::Float => Ok(Val::F(zero_f.clone())),
                        Kind::Bit => Ok(Val::B(zero_b.clone())),
                        Kind::Acc(_) => Ok(Val::A(zero_a.clone())),
                        Kind::Choice(_) => Err(ModelError::Shape {
                            op: "apply",
                            detail: format!("{name}, port {p}: a choice cannot be padded"),
                        }),
                    }
                };
                match &port.map {
                    Map::Affine {
                        words: ws,
                        coords,
                        pad,
                        conds,
                    } => {
                        let nw: usize = ws.iter().product();
                        let mut j = vec![0usize; ws.len()];
                        let mut c = vec![0i64; coords.len()];
                        for _ in 0..nw {
                            let ok = conds.iter().all(|cd| {
                                let v = cd.expr.eval(&idx, &j);
                                v >= 0 && v < cd.bound
                            });
                            let e = if ok {
                                for (a, co) in coords.iter().enumerate() {
                                    c[a] = co.eval(&idx, &j);
                                }
                                flat_index(&c, &src.shape)
                            } else {
                                None
                            };
                            match e {
                                Some(e) => words.push(src.data[e].clone()),
                                None if ok && !*pad => {
                                    return Err(ModelError::Shape {
                                        op: "apply",
                                        detail: format!(
                                            "{name}, port {p}: coordinates {c:?} outside {:?}",
                                            src.shape
                                        ),
                                    })
                                }
                                None => words.push(zero()?),
                            }
                            next(&mut j, ws);
                        }
                    }
                    Map::Table { words: nw, elems } => {
                        for e in &elems[i * nw..(i + 1) * nw] {
                            match e {
                                Some(e) => words.push(src.data[*e].clone()),
                                None => words.push(zero()?),
                            }
                        }
                    }
                }
            }
            let out = k.run(&mut self.a, &ins)?;
            if out.len() != kinds.len() {
                return Err(ModelError::Shape {
                    op: "apply",
                    detail: format!(
                        "{name}: kernel gave {} outputs, declared {}",
                        out.len(),
                        kinds.len()
                    ),
                });
            }
            for (o, v) in out.into_iter().enumerate() {
                outs[o].push(v);
            }
            next(&mut idx, inst);
        }
        outs.into_iter()
            .zip(kinds)
            .map(|(d, kd)| STensor::new(inst.to_vec(), kd, d))
            .collect()
    }
    fn concat(&mut self, name: &str, parts: &[&STensor<A>]) -> Result<STensor<A>> {
        let dims: Vec<(&[usize], Kind)> = parts.iter().map(|p| (&p.shape[..], p.kind)).collect();
        let shape = concat_shape(name, &dims)?;
        let data = parts.iter().flat_map(|p| p.data.iter().cloned()).collect();
        Ok(STensor {
            shape,
            kind: dims[0].1,
            data,
        })
    }
    fn reshape(&mut self, t: &STensor<A>, shape: Vec<usize>) -> Result<STensor<A>> {
        let n: usize = shape.iter().product();
        if n != t.data.len() {
            return Err(ModelError::Shape {
                op: "reshape",
                detail: format!("{:?} to {shape:?}", t.shape),
            });
        }
        Ok(STensor {
            shape,
            kind: t.kind,
            data: t.data.clone(),
        })
    }
    fn push_region(&mut self, name: &str) -> Result<()> {
        self.a.push_region(name)
    }
    fn pop_region(&mut self) -> Result<()> {
        self.a.pop_region()
    }
}
