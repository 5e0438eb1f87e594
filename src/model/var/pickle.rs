//! A bounded interpreter for the subset of Python's pickle format that `torch.save` writes
//! (protocols 2 to 5, binary opcodes only): the `data.pkl` of a PyTorch checkpoint.
//!
//! Nothing is executed: `GLOBAL` pushes the name of a callable, `REDUCE` / `NEWOBJ` build an
//! opaque [`Val::Call`] of it, `BINPERSID` a [`Val::Persistent`] of the id. The only callable
//! given meaning here is `collections.OrderedDict` (called without arguments it is an empty
//! dict, so that `SETITEMS` can fill it); `torch` reads the rest (`checkpoint.rs`).
//!
//! Bounds: every opcode consumes at least one byte and creates at most one value (containers
//! are shared by reference, as in Python, so `BINGET` copies nothing), lengths are checked
//! against the bytes left before anything is allocated, and memo indices are keys of a map.
//! Memory is therefore linear in the length of the pickle. Errors name the opcode and its
//! byte offset; nothing panics on malformed input.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A value of the pickle machine.
#[derive(Clone, Debug)]
pub enum Val {
    /// `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer that fits an `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Rc<str>),
    /// A byte string.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<Vec<Val>>),
    /// A list (shared, mutable).
    List(Rc<RefCell<Vec<Val>>>),
    /// A dict (shared, mutable) in insertion order.
    Dict(Rc<RefCell<Vec<(Val, Val)>>>),
    /// A global name `module.name`.
    Global(Rc<str>, Rc<str>),
    /// A persistent reference with its id.
    Persistent(Rc<Val>),
    /// The callable `func` applied to the tuple `args` (REDUCE or NEWOBJ), not evaluated.
    Call(Rc<Val>, Rc<Val>),
    /// The stack mark (never part of a result).
    Mark,
}

impl Val {
    /// The string, if this is a text string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items, if this is a tuple or a list.
    pub fn items(&self) -> Option<Vec<Val>> {
        match self {
            Val::Tuple(t) => Some(t.as_ref().clone()),
            Val::List(l) => Some(l.borrow().clone()),
            _ => None,
        }
    }

    /// `(module, name)` if this is a global.
    pub fn as_global(&self) -> Option<(&str, &str)> {
        match self {
            Val::Global(m, n) => Some((m, n)),
            _ => None,
        }
    }
}

/// Values are dropped without recursion (a pickle can nest millions of tuples in a few
/// megabytes): the children of a container held only here are moved to an explicit stack.
impl Drop for Val {
    fn drop(&mut self) {
        let mut stack = Vec::new();
        take_children(self, &mut stack);
        while let Some(mut v) = stack.pop() {
            take_children(&mut v, &mut stack);
        }
    }
}

fn take_children(v: &mut Val, out: &mut Vec<Val>) {
    let one = |rc: &mut Rc<Val>, out: &mut Vec<Val>| {
        if let Some(inner) = Rc::get_mut(rc) {
            out.push(std::mem::replace(inner, Val::None));
        }
    };
    match v {
        Val::Tuple(rc) => {
            if let Some(items) = Rc::get_mut(rc) {
                out.append(items);
            }
        }
        Val::List(rc) => {
            if let Some(cell) = Rc::get_mut(rc) {
                out.append(cell.get_mut());
            }
        }
        Val::Dict(rc) => {
            if let Some(cell) = Rc::get_mut(rc) {
                for (k, x) in cell.get_mut().drain(..) {
                    out.push(k);
                    out.push(x);
                }
            }
        }
        Val::Persistent(rc) => one(rc, out),
        Val::Call(f, a) => {
            one(f, out);
            one(a, out);
        }
        _ => {}
    }
}

/// A short description of a value's kind, for error messages.
pub fn kind(v: &Val) -> String {
    match v {
        Val::None => "None".into(),
        Val::Bool(_) => "bool".into(),
        Val::Int(_) => "int".into(),
        Val::Float(_) => "float".into(),
        Val::Str(_) => "str".into(),
        Val::Bytes(_) => "bytes".into(),
        Val::Tuple(_) => "tuple".into(),
        Val::List(_) => "list".into(),
        Val::Dict(_) => "dict".into(),
        Val::Global(m, n) => format!("global {m}.{n}"),
        Val::Persistent(_) => "persistent id".into(),
        Val::Call(f, _) => match f.as_global() {
            Some((m, n)) => format!("object {m}.{n}(...)"),
            None => "object".into(),
        },
        Val::Mark => "mark".into(),
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u32, Val>,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Machine<'a> {
    fn err<T>(&self, what: impl std::fmt::Display) -> R<T> {
        Err(format!("pickle byte {}: {what}", self.op_at))
    }

    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return self.err(format!("needs {n} bytes, {left} left (truncated)"));
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> R<u64> {
        let b = self.take(n as u64)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    fn line(&mut self) -> R<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated line (truncated)");
        };
        let s = std::str::from_utf8(&rest[..n]).or_else(|_| self.err("line is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: u64) -> R<Val> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Val::Str(s.into())),
            Err(_) => self.err("string is not UTF-8"),
        }
    }

    fn bytes(&mut self, n: u64) -> R<Val> {
        Ok(Val::Bytes(self.take(n)?.into()))
    }

    fn pop(&mut self) -> R<Val> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        Ok(self.stack.pop().unwrap_or(Val::None))
    }

    fn top(&self) -> R<&Val> {
        match self.stack.last() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> R<Vec<Val>> {
        let Some(m) = self.marks.pop() else {
            return self.err("no mark on the stack");
        };
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, k: u32) -> R<()> {
        let v = self.top()?.clone();
        self.memo.insert(k, v);
        Ok(())
    }

    fn memo_get(&mut self, k: u32) -> R<()> {
        match self.memo.get(&k) {
            Some(v) => {
                let v = v.clone();
                self.stack.push(v);
                Ok(())
            }
            None => self.err(format!("memo key {k} was never stored")),
        }
    }

    fn tuple(&mut self, n: usize) -> R<()> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.pop()?);
        }
        v.reverse();
        self.stack.push(Val::Tuple(Rc::new(v)));
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Val>) -> R<()> {
        if items.len() % 2 != 0 {
            return self.err("odd number of items for a dict");
        }
        let d = match self.top()? {
            Val::Dict(d) => d.clone(),
            v => return self.err(format!("setting items on a {}", kind(v))),
        };
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn append(&mut self, items: Vec<Val>) -> R<()> {
        let l = match self.top()? {
            Val::List(l) => l.clone(),
            v => return self.err(format!("appending to a {}", kind(v))),
        };
        l.borrow_mut().extend(items);
        Ok(())
    }

    fn call(&mut self, func: Val, args: Val) -> R<()> {
        let is_odict = matches!(func.as_global(), Some(("collections", "OrderedDict")));
        let no_args = matches!(&args, Val::Tuple(t) if t.is_empty());
        self.stack.push(if is_odict && no_args {
            Val::Dict(Rc::new(RefCell::new(Vec::new())))
        } else {
            Val::Call(Rc::new(func), Rc::new(args))
        });
        Ok(())
    }

    fn long1(&mut self) -> R<Val> {
        let n = self.u8()? as usize;
        if n > 8 {
            return self.err(format!("integer of {n} bytes does not fit 64 bits"));
        }
        let b = self.take(n as u64)?;
        let mut v: i64 = 0;
        for (i, &x) in b.iter().enumerate() {
            v |= (x as i64) << (8 * i);
        }
        if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
            v -= 1i64 << (8 * n);
        }
        Ok(Val::Int(v))
    }

    /// One opcode; `Ok(true)` at STOP.
    fn step(&mut self) -> R<bool> {
        self.op_at = self.pos;
        let op = self.u8()?;
        match op {
            0x80 => {
                let p = self.u8()?;
                if p > 5 {
                    return self.err(format!("pickle protocol {p} (at most 5 is known)"));
                }
            }
            0x95 => {
                self.le(8)?;
            }
            b'.' => return Ok(true),
            b'}' => self
                .stack
                .push(Val::Dict(Rc::new(RefCell::new(Vec::new())))),
            b']' => self
                .stack
                .push(Val::List(Rc::new(RefCell::new(Vec::new())))),
            b')' => self.stack.push(Val::Tuple(Rc::new(Vec::new()))),
            b'(' => self.marks.push(self.stack.len()),
            b'1' => {
                self.pop_mark()?;
            }
            b'0' => {
                self.pop()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.stack.push(v);
            }
            b'q' => {
                let k = self.u8()? as u32;
                self.memo_put(k)?
            }
            b'r' => {
                let k = self.le(4)? as u32;
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()? as u32;
                self.memo_get(k)?
            }
            b'j' => {
                let k = self.le(4)? as u32;
                self.memo_get(k)?
            }
            b'c' => {
                let m = self.line()?;
                let n = self.line()?;
                self.stack.push(Val::Global(m.into(), n.into()));
            }
            0x93 => {
                let n = self.pop()?;
                let m = self.pop()?;
                match (m.as_str(), n.as_str()) {
                    (Some(m), Some(n)) => self.stack.push(Val::Global(m.into(), n.into())),
                    _ => return self.err("STACK_GLOBAL needs two strings"),
                }
            }
            _ => return self.step_data(op),
        }
        Ok(false)
    }

    /// The opcodes that push data or build containers and objects.
    fn step_data(&mut self, op: u8) -> R<bool> {
        let v = match op {
            b'X' => {
                let n = self.le(4)?;
                self.text(n)?
            }
            0x8c => {
                let n = self.le(1)?;
                self.text(n)?
            }
            0x8d => {
                let n = self.le(8)?;
                self.text(n)?
            }
            b'U' | b'C' => {
                let n = self.le(1)?;
                self.bytes(n)?
            }
            b'T' | b'B' => {
                let n = self.le(4)?;
                self.bytes(n)?
            }
            0x8e => {
                let n = self.le(8)?;
                self.bytes(n)?
            }
            b'J' => Val::Int(self.le(4)? as u32 as i32 as i64),
            b'K' => Val::Int(self.le(1)? as i64),
            b'M' => Val::Int(self.le(2)? as i64),
            0x8a => self.long1()?,
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Val::Float(f64::from_be_bytes(a))
            }
            b'N' => Val::None,
            0x88 => Val::Bool(true),
            0x89 => Val::Bool(false),
            b't' => Val::Tuple(Rc::new(self.pop_mark()?)),
            0x85..=0x87 => {
                self.tuple((op - 0x84) as usize)?;
                return Ok(false);
            }
            b'l' => Val::List(Rc::new(RefCell::new(self.pop_mark()?))),
            b'd' => {
                let items = self.pop_mark()?;
                self.stack
                    .push(Val::Dict(Rc::new(RefCell::new(Vec::new()))));
                self.set_items(items)?;
                return Ok(false);
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?;
                return Ok(false);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
                return Ok(false);
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
                return Ok(false);
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
                return Ok(false);
            }
            b'Q' => Val::Persistent(Rc::new(self.pop()?)),
            b'R' | 0x81 => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.call(func, args)?;
                return Ok(false);
            }
            b'b' => {
                // BUILD: the state (e.g. an OrderedDict's `_metadata`) is not needed.
                self.pop()?;
                self.top()?;
                return Ok(false);
            }
            _ => return self.err(format!("unsupported pickle opcode 0x{op:02x}")),
        };
        self.stack.push(v);
        Ok(false)
    }
}

/// Run the pickle `data` to its STOP opcode: the value left on the stack.
pub fn load(data: &[u8]) -> std::result::Result<Val, String> {
    let mut m = Machine {
        data,
        pos: 0,
        op_at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        if m.pos >= data.len() {
            return Err(format!(
                "pickle ends after {} bytes without a STOP opcode (truncated)",
                data.len()
            ));
        }
        if m.step()? {
            break;
        }
    }
    match (m.stack.pop(), m.stack.is_empty()) {
        (Some(v), true) if !matches!(v, Val::Mark) => Ok(v),
        _ => Err("pickle does not leave exactly one value at STOP".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pickles() {
        // pickle.dumps({"a": (1, -2, 300)}, protocol=2)
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01J\xfe\xff\xff\xffM,\x01\x87q\x02s.";
        let v = load(p).unwrap();
        let Val::Dict(d) = &v else { panic!() };
        let d = d.borrow();
        assert_eq!(d[0].0.as_str(), Some("a"));
        let t: Vec<i64> = d[0]
            .1
            .items()
            .unwrap()
            .iter()
            .map(|x| x.as_int().unwrap())
            .collect();
        assert_eq!(t, vec![1, -2, 300]);
        // LONG1 of -1 and of 2^40.
        assert_eq!(load(b"\x8a\x01\xff.").unwrap().as_int(), Some(-1));
        assert_eq!(
            load(b"\x8a\x06\x00\x00\x00\x00\x00\x01.").unwrap().as_int(),
            Some(1 << 40)
        );
        // A million nested tuples are built and dropped without recursion.
        let mut deep = vec![b'N'];
        deep.extend(std::iter::repeat_n(0x85u8, 1 << 20));
        deep.push(b'.');
        assert!(matches!(load(&deep).unwrap(), Val::Tuple(_)));
        // Errors, not panics.
        for bad in [
            &b""[..],
            b"\x80\x02",
            b"X\xff\xff\xff\xffab.",
            b"h\x05.",
            b"0.",
            b"t.",
            b"\x01.",
            b"K\x01K\x02.",
            b"u.",
            b"(u.",
            b"K\x01(K\x02K\x03u.",
        ] {
            assert!(load(bad).is_err(), "{bad:?}");
        }
    }
}
