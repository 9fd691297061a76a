//! The torch-specific part of the VM: the global allow-list check, `REDUCE`
//! on allowed globals (OrderedDict, tensor rebuild functions) and
//! `BINPERSID` storage references. Nothing is called; typed values are built.

use std::rc::Rc;

use super::Vm;
use super::value::{Global, StorageRef, TensorRef, Value, resolve_global};
use crate::error::{FormatError, Result};

impl Vm<'_> {
    pub(super) fn global(&self, module: &str, name: &str) -> Result<Value> {
        resolve_global(module, name)
            .map(Value::Global)
            .ok_or_else(|| FormatError::ForbiddenGlobal {
                path: self.path.to_path_buf(),
                module: module.to_string(),
                name: name.to_string(),
            })
    }

    pub(super) fn reduce(&self, func: Value, args: Value, op: usize) -> Result<Value> {
        let Value::Global(g) = func else {
            return Err(self.malformed(
                op,
                format!("REDUCE on a {}, not a global", func.type_name()),
            ));
        };
        let Value::Tuple(args) = args else {
            return Err(self.malformed(op, "REDUCE arguments are not a tuple"));
        };
        let a = &args.items;
        match g {
            Global::OrderedDict => match a.as_slice() {
                [] => Ok(Value::Dict(Rc::default())),
                [pairs] => {
                    let pairs = pairs
                        .as_seq()
                        .ok_or_else(|| self.malformed(op, "OrderedDict(arg): not a list"))?;
                    let mut flat = Vec::with_capacity(pairs.len() * 2);
                    for p in pairs {
                        match p.as_seq() {
                            Some([k, v]) => flat.extend([k.clone(), v.clone()]),
                            _ => return Err(self.malformed(op, "OrderedDict item is not a pair")),
                        }
                    }
                    self.dict(flat, op)
                }
                _ => Err(self.malformed(op, "OrderedDict takes at most one argument")),
            },
            Global::RebuildParameter => match a.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => Err(self.malformed(op, "_rebuild_parameter without a tensor")),
            },
            Global::RebuildTensorV2 | Global::RebuildTensor => {
                let [storage, offset, size, stride, ..] = a.as_slice() else {
                    return Err(self.malformed(op, "_rebuild_tensor needs at least 4 arguments"));
                };
                let Value::Storage(storage) = storage else {
                    return Err(
                        self.malformed(op, "_rebuild_tensor: first argument is not a storage")
                    );
                };
                let offset = self.uint(offset, "storage_offset", op)?;
                let size = self.uints(size, "size", op)?;
                let stride = self.uints(stride, "stride", op)?;
                if size.len() != stride.len() {
                    return Err(
                        self.malformed(op, "_rebuild_tensor: size and stride lengths differ")
                    );
                }
                let storage = Rc::clone(storage);
                Ok(Value::Tensor(Rc::new(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                })))
            }
            Global::Storage(_) => {
                Err(self.malformed(op, "calling a storage class is not supported"))
            }
        }
    }

    pub(super) fn uint(&self, v: &Value, what: &str, op: usize) -> Result<u64> {
        v.as_int()
            .and_then(|i| u64::try_from(i).ok())
            .ok_or_else(|| self.malformed(op, format!("{what} is not a non-negative integer")))
    }

    pub(super) fn uints(&self, v: &Value, what: &str, op: usize) -> Result<Vec<u64>> {
        let items = v
            .as_seq()
            .ok_or_else(|| self.malformed(op, format!("{what} is not a tuple")))?;
        items.iter().map(|i| self.uint(i, what, op)).collect()
    }

    /// `('storage', StorageType, key, location, numel[, view_metadata])`
    pub(super) fn persistent_load(&mut self, pid: &Value, op: usize) -> Result<Value> {
        let bad = |r: &str| self.malformed(op, format!("persistent id: {r}"));
        let items = pid.as_seq().ok_or_else(|| bad("not a tuple"))?;
        let [tag, ty, key, _location, numel, rest @ ..] = items else {
            return Err(bad("expected ('storage', type, key, location, numel)"));
        };
        if tag.as_str() != Some("storage") {
            return Err(bad("first item is not 'storage'"));
        }
        let Value::Global(Global::Storage(kind)) = ty else {
            return Err(bad("second item is not a torch storage type"));
        };
        let key = match key {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => return Err(bad("storage key is not a string")),
        };
        let numel = self.uint(numel, "storage numel", op)?;
        let view = match rest {
            [] | [Value::None] => None,
            [meta] => match meta.as_seq() {
                Some([_view_key, off, size]) => Some((
                    self.uint(off, "view offset", op)?,
                    self.uint(size, "view size", op)?,
                )),
                _ => return Err(bad("view metadata is not (key, offset, size)")),
            },
            _ => return Err(bad("too many items")),
        };
        let storage = Rc::new(StorageRef {
            kind: *kind,
            key,
            numel,
            view,
        });
        self.storages.push(Rc::clone(&storage));
        Ok(Value::Storage(storage))
    }
}
