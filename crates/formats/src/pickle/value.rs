//! Values built by the safe pickle VM, and the allow-list of globals.
//!
//! A pickle can only name a global; it never runs one. The few globals a
//! PyTorch state dict needs are mapped to the [`Global`] enum, and the VM
//! interprets `REDUCE` on them by building typed values ([`TensorRef`],
//! ordered dicts). Containers are reference-counted and immutable once shared
//! (copy-on-write), so memo references are cheap and no cycle can be built.

use std::rc::Rc;

/// Element type of a torch storage class (`torch.FloatStorage`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageKind {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageKind {
    /// Maps a `torch.<Name>` storage class name to its element type.
    pub fn from_class_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element on disk. `LongStorage` is always 8 bytes, even in
    /// legacy files whose sys_info says `long: 4` (saved on Windows).
    pub fn elem_size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// A global the VM accepts. Anything else is `FormatError::ForbiddenGlobal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`
    RebuildTensorV2,
    /// `torch._utils._rebuild_tensor`
    RebuildTensor,
    /// `torch._utils._rebuild_parameter` (an `nn.Parameter` wrapping a tensor)
    RebuildParameter,
    /// `torch.<Kind>Storage`
    Storage(StorageKind),
}

/// Resolves `module.name` against the allow-list.
pub fn resolve_global(module: &str, name: &str) -> Option<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_tensor") => Some(Global::RebuildTensor),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("torch", n) => StorageKind::from_class_name(n).map(Global::Storage),
        _ => None,
    }
}

/// A storage named by a persistent id: `('storage', Type, key, location, numel[, view])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    pub kind: StorageKind,
    /// Storage key: zip entry `data/<key>`, or the legacy key list entry.
    pub key: String,
    /// Element count declared in the persistent id.
    pub numel: u64,
    /// Legacy view metadata: `(offset, size)` in elements of the root storage.
    pub view: Option<(u64, u64)>,
}

/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes it.
/// All quantities are in elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

/// Items of a tuple or list, with the nesting depth cached.
#[derive(Clone, Debug, Default)]
pub struct Seq {
    pub items: Vec<Value>,
    pub depth: u32,
    /// Memo slots holding this list, refreshed when it is filled in place.
    pub memo: Vec<u32>,
}

/// Items of a dict in insertion order (duplicates are resolved by consumers).
#[derive(Clone, Debug, Default)]
pub struct Dict {
    pub items: Vec<(Value, Value)>,
    pub depth: u32,
    /// Memo slots holding this dict, refreshed when it is filled in place.
    pub memo: Vec<u32>,
}

/// A pickled value.
#[derive(Clone, Debug)]
pub enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Seq>),
    List(Rc<Seq>),
    Dict(Rc<Dict>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// Container nesting depth (0 for scalars).
    pub fn depth(&self) -> u32 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(d) => d.depth,
            _ => 0,
        }
    }

    /// Memo slots registered on a mutable container (list or dict).
    pub fn memo_keys(&self) -> &[u32] {
        match self {
            Value::List(s) => &s.memo,
            Value::Dict(d) => &d.memo,
            _ => &[],
        }
    }

    /// True if both are the same list or dict object.
    pub fn same_container(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Dict(a), Value::Dict(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Python-ish type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i128::from(*b)),
            _ => None,
        }
    }

    /// Items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(s) | Value::List(s) => Some(&s.items),
            _ => None,
        }
    }
}
