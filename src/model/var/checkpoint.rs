//! Weight files: PyTorch checkpoints and safetensors, read into [`RawTensors`], and the
//! configuration they determine ([`infer_config`]). See docs/var.md, "Checkpoints".
//!
//! - A PyTorch checkpoint (`torch.save`, PyTorch >= 1.6: a zip archive) holds
//!   `PREFIX/data.pkl`, a pickle of the saved object whose tensors are
//!   `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls on persistent
//!   ids `('storage', torch.XStorage, key, location, numel)`, and one entry `PREFIX/data/KEY` of
//!   raw little-endian bytes per storage. The pickle is read by the bounded interpreter of
//!   `pickle.rs` (nothing is executed), the zip archive by the `zip` crate (entries must be
//!   stored uncompressed, as `torch.save` writes them).
//! - A safetensors file is read with the `safetensors` crate.
//!
//! Accepted element types: float32, float16 and bfloat16 (converted to f32 exactly); int64 and
//! int32 are read as integers (buffers such as VAR's `lvl_1L`); tensors of other types are
//! listed with their shape and type but hold no values (an error if the pass needs them).
//!
//! Reading is bounded: a path must be a regular file (or a directory of such files), every
//! length taken from a header is checked against the file's size before anything is allocated,
//! and a tensor may not have more elements than its storage. Errors name the file and what is
//! wrong ([`ModelError::Io`]) or the tensor ([`ModelError::Weights`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};

use super::super::error::{ModelError, Result};
use super::pickle::{self, Val};

pub use super::infer::{
    check_tensors, infer_config, infer_config_with_notes, restrict, schedule_from_lvl,
    unused_by_design, RELEASED_PATCH_NUMS,
};

/// Element type of a stored tensor.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DType {
    /// float32.
    F32,
    /// float16.
    F16,
    /// bfloat16.
    BF16,
    /// int64.
    I64,
    /// int32.
    I32,
    /// Any other type (its values are not read).
    Other,
}

impl DType {
    fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I64 => 8,
            DType::Other => 0,
        }
    }
}

/// The values of a stored tensor (row-major).
#[derive(Clone, PartialEq, Debug)]
pub enum RawData {
    /// Float values (every f16 / bf16 / f32 value exactly).
    Float(Vec<f32>),
    /// Integer values.
    Int(Vec<i64>),
    /// Not read: the element type is not supported (named here).
    Unsupported(String),
}

/// One tensor of a weight file.
#[derive(Clone, PartialEq, Debug)]
pub struct RawTensor {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type in the file.
    pub dtype: DType,
    /// Its values.
    pub data: RawData,
    /// The file it was read from.
    pub file: Arc<PathBuf>,
}

/// Every tensor of one or more weight files, by name.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct RawTensors {
    map: BTreeMap<String, RawTensor>,
}

impl RawTensors {
    /// The tensor `name`, if present.
    pub fn get(&self, name: &str) -> Option<&RawTensor> {
        self.map.get(name)
    }

    /// The shape of tensor `name`, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.map.get(name).map(|t| t.shape.as_slice())
    }

    /// All tensors in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &RawTensor)> {
        self.map.iter()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// No tensors.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Add `t` as `name`; a name already present is an error naming it and both files.
    pub fn insert(&mut self, name: String, t: RawTensor) -> Result<()> {
        if let Some(old) = self.map.get(&name) {
            return Err(ModelError::Weights {
                name,
                reason: format!(
                    "present in both {} and {}",
                    old.file.display(),
                    t.file.display()
                ),
            });
        }
        self.map.insert(name, t);
        Ok(())
    }

    /// Remove and return the tensor `name`.
    pub fn remove(&mut self, name: &str) -> Option<RawTensor> {
        self.map.remove(name)
    }

    /// Add every tensor of `other` ([`RawTensors::insert`]).
    pub fn merge(&mut self, other: RawTensors) -> Result<()> {
        for (k, v) in other.map {
            self.insert(k, v)?;
        }
        Ok(())
    }
}

fn io_err(path: &Path, what: impl std::fmt::Display) -> ModelError {
    ModelError::Io(format!("{}: {what}", path.display()))
}

/// The weight files a path stands for: the path itself if it is a regular file; for a
/// directory, its `*.pth`, `*.pt`, `*.bin` and `*.safetensors` files in name order (none is an
/// error). Anything else (a device, a pipe, a missing path) is an error naming it.
pub fn weight_files(path: &Path) -> Result<Vec<PathBuf>> {
    let md = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if md.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !md.is_dir() {
        return Err(io_err(path, "not a regular file or a directory"));
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(path).map_err(|e| io_err(path, e))? {
        let p = e.map_err(|e| io_err(path, e))?.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if matches!(ext, "pth" | "pt" | "bin" | "safetensors") && p.is_file() {
            v.push(p);
        }
    }
    v.sort();
    if v.is_empty() {
        return Err(io_err(
            path,
            "directory holds no *.pth, *.pt, *.bin or *.safetensors file",
        ));
    }
    Ok(v)
}

/// Read every tensor of the weight files `paths` (each a file or a directory, see
/// [`weight_files`]); a tensor name present in two files is an error naming it.
pub fn read_tensor_files(paths: &[PathBuf]) -> Result<RawTensors> {
    if paths.is_empty() {
        return Err(ModelError::Io("no weight file given".into()));
    }
    let mut all = RawTensors::default();
    for p in paths {
        for f in weight_files(p)? {
            all.merge(read_tensor_file(&f)?)?;
        }
    }
    Ok(all)
}

/// Read one weight file: a zip archive (PyTorch checkpoint) or a safetensors file, told apart
/// by its first bytes. The legacy (pre-1.6, not zip) `torch.save` format is refused.
pub fn read_tensor_file(path: &Path) -> Result<RawTensors> {
    let md = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if !md.is_file() {
        return Err(io_err(path, "not a regular file"));
    }
    let len = md.len();
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| io_err(path, e))?;
    let origin = Arc::new(path.to_path_buf());
    if n >= 4 && &head[..4] == b"PK\x03\x04" {
        f.rewind().map_err(|e| io_err(path, e))?;
        return read_pth(BufReader::new(f), len, origin);
    }
    if n >= 2 && head[0] == 0x80 && head[1] <= 5 {
        return Err(io_err(
            path,
            "a PyTorch checkpoint in the legacy (pre-1.6, not zip) format: load and save it \
             again with torch.save (PyTorch >= 1.6)",
        ));
    }
    if n < 8 {
        return Err(io_err(
            path,
            format!("{len} bytes: neither a zip archive nor a safetensors file"),
        ));
    }
    let header = u64::from_le_bytes(head);
    if header > len - 8 {
        return Err(io_err(
            path,
            format!(
                "not a zip archive, and as a safetensors file its header length {header} \
                 exceeds the file ({len} bytes)"
            ),
        ));
    }
    let size = usize::try_from(len).map_err(|_| io_err(path, "too large for this machine"))?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(size)
        .map_err(|_| io_err(path, format!("cannot allocate {len} bytes")))?;
    f.rewind().map_err(|e| io_err(path, e))?;
    f.take(len)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    parse_safetensors(&bytes, origin)
}

/// The tensors of a safetensors file held in `bytes` (`origin` names it in errors).
pub fn parse_safetensors(bytes: &[u8], origin: Arc<PathBuf>) -> Result<RawTensors> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| io_err(&origin, format!("not a valid safetensors file: {e}")))?;
    let mut out = RawTensors::default();
    for (name, view) in st.tensors() {
        let d = view.data();
        let (dtype, data) = match view.dtype() {
            Dtype::F32 => (DType::F32, RawData::Float(decode_f(DType::F32, d))),
            Dtype::F16 => (DType::F16, RawData::Float(decode_f(DType::F16, d))),
            Dtype::BF16 => (DType::BF16, RawData::Float(decode_f(DType::BF16, d))),
            Dtype::I64 => (DType::I64, RawData::Int(decode_i(DType::I64, d))),
            Dtype::I32 => (DType::I32, RawData::Int(decode_i(DType::I32, d))),
            t => (DType::Other, RawData::Unsupported(format!("{t:?}"))),
        };
        let t = RawTensor {
            shape: view.shape().to_vec(),
            dtype,
            data,
            file: origin.clone(),
        };
        out.insert(name, t)?;
    }
    Ok(out)
}

fn decode_f(dt: DType, b: &[u8]) -> Vec<f32> {
    match dt {
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_i(dt: DType, b: &[u8]) -> Vec<i64> {
    match dt {
        DType::I64 => b
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            })
            .collect(),
        DType::I32 => b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        _ => Vec::new(),
    }
}

/// A tensor of the pickle: a view of a storage.
#[derive(Clone, Debug)]
struct TensorRef {
    key: String,
    dtype: DType,
    dtype_name: String,
    storage_numel: u64,
    offset: u64,
    shape: Vec<usize>,
    stride: Vec<u64>,
}

fn storage_dtype(class: &str) -> DType {
    match class {
        "FloatStorage" => DType::F32,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "IntStorage" => DType::I32,
        _ => DType::Other,
    }
}

fn non_negative(v: &Val, what: &str) -> std::result::Result<u64, String> {
    match v.as_int() {
        Some(i) if i >= 0 => Ok(i as u64),
        _ => Err(format!(
            "{what} is {}, not an integer >= 0",
            pickle::kind(v)
        )),
    }
}

/// Most dimensions of a tensor read from a checkpoint.
const MAX_DIMS: usize = 32;

/// The tensor a pickle value stands for, `None` when it is not a tensor.
fn tensor_ref(v: &Val) -> std::result::Result<Option<TensorRef>, String> {
    tensor_ref_in(v, 0)
}

fn tensor_ref_in(v: &Val, nest: usize) -> std::result::Result<Option<TensorRef>, String> {
    let Val::Call(func, args) = v else {
        return Ok(None);
    };
    if nest > 4 {
        return Err("parameters nested more than 4 deep".into());
    }
    let args = args.items().unwrap_or_default();
    match func.as_global() {
        Some(("torch._utils", "_rebuild_parameter"))
        | Some(("torch._utils", "_rebuild_parameter_with_state")) => match args.first() {
            Some(inner) => tensor_ref_in(inner, nest + 1),
            None => Err("_rebuild_parameter without arguments".into()),
        },
        Some(("torch._utils", "_rebuild_tensor_v2"))
        | Some(("torch._utils", "_rebuild_tensor")) => {
            if args.len() < 4 {
                return Err(format!("_rebuild_tensor_v2 with {} arguments", args.len()));
            }
            let Val::Persistent(pid) = &args[0] else {
                return Err(format!("tensor storage is a {}", pickle::kind(&args[0])));
            };
            let pid = pid.items().unwrap_or_default();
            let ok = pid.len() == 5 && pid[0].as_str() == Some("storage");
            let (Some((_, class)), Some(key)) = (
                pid.get(1).and_then(|c| c.as_global()),
                pid.get(2).and_then(|k| k.as_str()),
            ) else {
                return Err("persistent id is not ('storage', class, key, location, numel)".into());
            };
            if !ok {
                return Err("persistent id is not ('storage', class, key, location, numel)".into());
            }
            let dims = |v: &Val, what: &str| -> std::result::Result<Vec<u64>, String> {
                v.items()
                    .ok_or_else(|| format!("tensor {what} is a {}", pickle::kind(v)))?
                    .iter()
                    .map(|x| non_negative(x, what))
                    .collect()
            };
            let shape = dims(&args[2], "size")?;
            if shape.len() > MAX_DIMS {
                return Err(format!("{} dimensions (at most {MAX_DIMS})", shape.len()));
            }
            let stride = dims(&args[3], "stride")?;
            if shape.len() != stride.len() {
                return Err(format!(
                    "size {shape:?} and stride {stride:?} of different lengths"
                ));
            }
            let shape = shape
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} too large")))
                .collect::<std::result::Result<Vec<usize>, String>>()?;
            Ok(Some(TensorRef {
                key: key.to_string(),
                dtype: storage_dtype(class),
                dtype_name: class.to_string(),
                storage_numel: non_negative(&pid[4], "storage size")?,
                offset: non_negative(&args[1], "storage offset")?,
                shape,
                stride,
            }))
        }
        _ => Ok(None),
    }
}

/// Key names under which a checkpoint nests its state dict (tried in this order when the
/// top-level dict holds no tensor). `trainer` is the reference code's training checkpoint
/// (`{'epoch', 'iter', 'trainer': {...}, 'args'}`), whose trainer dict holds
/// [`TRAINER_KEYS`].
pub const NESTED_KEYS: [&str; 5] = ["state_dict", "model", "module", "net", "trainer"];

/// The state dicts of the reference code's trainer (`VARTrainer.state_dict`): the transformer
/// and the VQ-VAE, read together as one set of tensors (the optimiser state `var_opt` and the
/// `config` are not read).
pub const TRAINER_KEYS: [&str; 2] = ["var_wo_ddp", "vae_local"];

fn dict_entries(v: &Val) -> Option<Vec<(Val, Val)>> {
    match v {
        Val::Dict(d) => Some(d.borrow().clone()),
        _ => None,
    }
}

/// The tensors of a trainer's state dicts `parts`, together; a name in two of them is an
/// error.
fn trainer_state(
    parts: &[(&str, &Val)],
    depth: usize,
) -> std::result::Result<Vec<(String, TensorRef)>, String> {
    let mut all: Vec<(String, TensorRef)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &(key, part) in parts {
        for (name, t) in state_dict_at(part, depth).map_err(|e| format!("trainer {key}: {e}"))? {
            if !seen.insert(name.clone()) {
                return Err(format!("trainer {key}: tensor {name:?} appears twice"));
            }
            all.push((name, t));
        }
    }
    Ok(all)
}

/// The state dict of the pickled object: `(name, tensor)` pairs.
fn state_dict(root: &Val) -> std::result::Result<Vec<(String, TensorRef)>, String> {
    state_dict_at(root, 0)
}

/// [`state_dict`] of an object found `depth` dicts below the saved one (at most
/// `MAX_NESTING` in all, so that a pickle whose dicts contain themselves ends).
fn state_dict_at(
    root: &Val,
    depth: usize,
) -> std::result::Result<Vec<(String, TensorRef)>, String> {
    const MAX_NESTING: usize = 4;
    let mut cur = root.clone();
    for depth in depth..MAX_NESTING {
        let entries = dict_entries(&cur).ok_or_else(|| {
            format!(
                "the saved object is a {}, not a dict of tensors",
                pickle::kind(&cur)
            )
        })?;
        let mut tensors = Vec::new();
        let mut other = Vec::new();
        for (k, v) in &entries {
            let name = k
                .as_str()
                .ok_or_else(|| format!("dict key is a {}, not a string", pickle::kind(k)))?;
            match tensor_ref(v).map_err(|e| format!("{name}: {e}"))? {
                Some(t) => tensors.push((name.to_string(), t)),
                None => other.push((name.to_string(), v.clone())),
            }
        }
        if !tensors.is_empty() {
            if let Some((n, v)) = other.first() {
                return Err(format!(
                    "entry {n:?} of the state dict is a {}, not a tensor",
                    pickle::kind(v)
                ));
            }
            return Ok(tensors);
        }
        let parts: Vec<(&str, &Val)> = TRAINER_KEYS
            .iter()
            .filter_map(|&key| other.iter().find(|(n, _)| n == key).map(|(_, v)| (key, v)))
            .collect();
        if !parts.is_empty() {
            return trainer_state(&parts, depth + 1);
        }
        let next = NESTED_KEYS
            .iter()
            .find_map(|key| other.iter().find(|(n, _)| n == key))
            .map(|(_, v)| v.clone());
        match next {
            Some(v) => cur = v,
            None => {
                let keys: Vec<&str> = other.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "no tensors at the top level and none of the keys {NESTED_KEYS:?} \
                     (keys: {keys:?})"
                ));
            }
        }
    }
    Err("state dict nested too deeply".into())
}

/// The tensors of a PyTorch checkpoint (zip archive) read from `r` of `len` bytes.
pub fn read_pth<R: Read + Seek>(r: R, len: u64, origin: Arc<PathBuf>) -> Result<RawTensors> {
    let path = origin.as_path();
    let mut zip = zip::ZipArchive::new(r)
        .map_err(|e| io_err(path, format!("not a valid zip archive: {e}")))?;
    let pkl: Vec<String> = zip
        .file_names()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(String::from)
        .collect();
    let [pkl] = pkl.as_slice() else {
        return Err(io_err(
            path,
            format!(
                "a zip archive with {} PREFIX/data.pkl entries: not a PyTorch checkpoint",
                pkl.len()
            ),
        ));
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    if let Ok(bo) = read_entry(&mut zip, &format!("{prefix}byteorder"), 16, len, path) {
        if bo != b"little" {
            return Err(io_err(
                path,
                "big-endian checkpoint (byteorder is not little)",
            ));
        }
    }
    let data = read_entry(&mut zip, pkl, len, len, path)?;
    let root = pickle::load(&data).map_err(|e| io_err(path, format!("{pkl}: {e}")))?;
    drop(data);
    let sd = state_dict(&root).map_err(|e| io_err(path, format!("{pkl}: {e}")))?;
    drop(root);
    // One storage read at a time, for every tensor that views it.
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, t)) in sd.iter().enumerate() {
        by_key.entry(t.key.clone()).or_default().push(i);
    }
    let mut out = RawTensors::default();
    for (key, idx) in by_key {
        let t0 = &sd[idx[0]].1;
        let bytes = if t0.dtype == DType::Other {
            Vec::new()
        } else {
            let need = t0
                .storage_numel
                .checked_mul(t0.dtype.size() as u64)
                .filter(|&n| n <= len)
                .ok_or_else(|| {
                    io_err(
                        path,
                        format!(
                            "storage {key}: {} elements of {} exceed the file ({len} bytes)",
                            t0.storage_numel, t0.dtype_name
                        ),
                    )
                })?;
            let b = read_entry(&mut zip, &format!("{prefix}data/{key}"), need, len, path)?;
            if (b.len() as u64) < need {
                return Err(io_err(
                    path,
                    format!(
                        "storage {key}: {} bytes for {} elements of {}",
                        b.len(),
                        t0.storage_numel,
                        t0.dtype_name
                    ),
                ));
            }
            b
        };
        for i in idx {
            let (name, t) = &sd[i];
            let raw =
                gather(t, &bytes, t0, origin.clone()).map_err(|reason| ModelError::Weights {
                    name: name.clone(),
                    reason: format!("{reason} (in {})", path.display()),
                })?;
            out.insert(name.clone(), raw)?;
        }
    }
    Ok(out)
}

/// Read the zip entry `name` (at most `cap` bytes; its header's size is checked against the
/// archive's length `len` first). Compressed entries are refused.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    cap: u64,
    len: u64,
    path: &Path,
) -> Result<Vec<u8>> {
    let mut e = zip
        .by_name(name)
        .map_err(|e| io_err(path, format!("entry {name}: {e}")))?;
    if e.compression() != zip::CompressionMethod::Stored {
        return Err(io_err(
            path,
            format!(
                "entry {name} is compressed ({:?}); torch.save stores entries uncompressed",
                e.compression()
            ),
        ));
    }
    let size = e.size();
    if size > len || size > cap {
        return Err(io_err(
            path,
            format!("entry {name} claims {size} bytes (file {len} bytes, at most {cap} expected)"),
        ));
    }
    let mut v = Vec::new();
    v.try_reserve_exact(size as usize)
        .map_err(|_| io_err(path, format!("cannot allocate {size} bytes")))?;
    (&mut e)
        .take(size)
        .read_to_end(&mut v)
        .map_err(|err| io_err(path, format!("entry {name}: {err}")))?;
    if (v.len() as u64) != size {
        return Err(io_err(
            path,
            format!("entry {name}: {} of {size} bytes (truncated)", v.len()),
        ));
    }
    Ok(v)
}

/// The values of the view `t` of a storage held in `bytes`.
fn gather(
    t: &TensorRef,
    bytes: &[u8],
    first: &TensorRef,
    file: Arc<PathBuf>,
) -> std::result::Result<RawTensor, String> {
    if t.dtype != first.dtype || t.storage_numel != first.storage_numel {
        return Err(format!(
            "storage {} is viewed as {} and as {}",
            t.key, first.dtype_name, t.dtype_name
        ));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .ok_or("element count overflows")?;
    if numel > 0 {
        let last = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |a, (&d, &s)| {
                (d as u64 - 1).checked_mul(s).and_then(|x| x.checked_add(a))
            })
            .ok_or("view extent overflows")?;
        if last >= t.storage_numel || numel > t.storage_numel {
            return Err(format!(
                "view (offset {}, size {:?}, stride {:?}) exceeds its storage of {} elements",
                t.offset, t.shape, t.stride, t.storage_numel
            ));
        }
    }
    let shape = t.shape.clone();
    let data = if t.dtype == DType::Other {
        RawData::Unsupported(t.dtype_name.clone())
    } else {
        let es = t.dtype.size();
        let mut idx = Vec::with_capacity(numel as usize);
        strided(&t.shape, &t.stride, t.offset, &mut idx);
        let mut raw = Vec::with_capacity(idx.len() * es);
        for &i in &idx {
            let at = i as usize * es;
            raw.extend_from_slice(&bytes[at..at + es]);
        }
        match t.dtype {
            DType::I64 | DType::I32 => RawData::Int(decode_i(t.dtype, &raw)),
            dt => RawData::Float(decode_f(dt, &raw)),
        }
    };
    Ok(RawTensor {
        shape,
        dtype: t.dtype,
        data,
        file,
    })
}

/// The storage index of every element of a strided view, row-major.
fn strided(shape: &[usize], stride: &[u64], offset: u64, out: &mut Vec<u64>) {
    match shape.split_first() {
        None => out.push(offset),
        Some((&d, rest)) => {
            for i in 0..d as u64 {
                strided(rest, &stride[1..], offset + i * stride[0], out);
            }
        }
    }
}
