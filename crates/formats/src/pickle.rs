//! A safe subset of Python's pickle: a stack machine that builds values and
//! never executes anything.
//!
//! PyTorch's `.pth` files are pickles. Python's own unpickler calls whatever
//! global the file names, so a malicious file can run `os.system`. This VM
//! understands the binary opcodes of protocols 2-5 that `torch.save` emits,
//! resolves `GLOBAL`/`STACK_GLOBAL` only against [`value::resolve_global`]'s
//! allow-list, and turns `REDUCE` on an allowed global into a typed value.
//!
//! Hostile input is bounded: every length is checked against the bytes left,
//! container nesting is capped at [`MAX_DEPTH`], memo indices live in a map
//! (no allocation by index), and copy-on-write work is capped relative to the
//! input size. Offsets in errors are absolute positions in the given buffer.

mod machine;
mod torch;
pub mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use crate::error::{FormatError, Result};
use value::{StorageRef, Value};

/// Maximum container nesting; real state dicts nest 3-4 levels.
pub const MAX_DEPTH: u32 = 200;
/// Memo slots tracked per container; pickles memoize each object once.
const MAX_ALIASES: usize = 4;

/// The outcome of running one pickle.
#[derive(Debug)]
pub struct Unpickled {
    /// The object `STOP` returned.
    pub value: Value,
    /// Offset just past the `STOP` opcode (where a following pickle starts).
    pub end: usize,
    /// Every storage a persistent id named, in order, including those of
    /// tensors the caller will not use (e.g. optimizer state in a checkpoint).
    pub storages: Vec<Rc<StorageRef>>,
}

/// Runs the pickle starting at `data[start]` until `STOP`; `path` names the
/// file in errors.
pub fn unpickle(data: &[u8], start: usize, path: &Path) -> Result<Unpickled> {
    let work_limit = (data.len() as u64)
        .saturating_mul(16)
        .saturating_add(1 << 20);
    let mut vm = Vm {
        data,
        pos: start,
        path,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        work: 0,
        work_limit,
        storages: Vec::new(),
    };
    let (value, end) = vm.run()?;
    Ok(Unpickled {
        value,
        end,
        storages: vm.storages,
    })
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    path: &'a Path,
    stack: Vec<Value>,
    /// Stack heights at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Elements copied by copy-on-write so far, and the cap.
    work: u64,
    work_limit: u64,
    storages: Vec<Rc<StorageRef>>,
}

impl<'a> Vm<'a> {
    fn run(&mut self) -> Result<(Value, usize)> {
        loop {
            let op = self.pos;
            let [code] = self.arr::<1>("opcode")?;
            match code {
                0x80 => {
                    let [v] = self.arr::<1>("PROTO")?;
                    if !(2..=5).contains(&v) {
                        return Err(FormatError::UnsupportedProtocol {
                            path: self.path.to_path_buf(),
                            what: "pickle protocol",
                            version: i128::from(v),
                        });
                    }
                }
                0x95 => {
                    self.arr::<8>("FRAME length")?; // framing is advisory
                }
                b'.' => {
                    let v = self.pop(op)?;
                    return Ok((v, self.pos));
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() == self.floor() && !self.marks.is_empty() {
                        self.marks.pop();
                    } else {
                        self.pop(op)?;
                    }
                }
                b'1' => drop(self.pop_mark(op)?),
                b'2' => {
                    let v = self.top(op)?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.arr("BININT")?);
                    self.stack.push(Value::Int(i128::from(v)));
                }
                b'K' => {
                    let [v] = self.arr::<1>("BININT1")?;
                    self.stack.push(Value::Int(i128::from(v)));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.arr("BININT2")?);
                    self.stack.push(Value::Int(i128::from(v)));
                }
                0x8a | 0x8b => {
                    let n = if code == 0x8a {
                        usize::from(self.arr::<1>("LONG1 length")?[0])
                    } else {
                        let n = i32::from_le_bytes(self.arr("LONG4 length")?);
                        usize::try_from(n)
                            .map_err(|_| self.malformed(op, "negative LONG4 length"))?
                    };
                    if n > 16 {
                        return Err(
                            self.malformed(op, format!("integer of {n} bytes is too large"))
                        );
                    }
                    let bytes = self.take(n, "LONG bytes")?;
                    let mut buf = [0u8; 16];
                    if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                        buf = [0xff; 16];
                    }
                    buf[..n].copy_from_slice(bytes);
                    self.stack.push(Value::Int(i128::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.arr("BINFLOAT")?);
                    self.stack.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' | b'B' | b'C' | 0x8e => {
                    let n = match code {
                        0x8c | b'U' | b'C' => u64::from(self.arr::<1>("string length")?[0]),
                        0x8d | 0x8e => u64::from_le_bytes(self.arr("string length")?),
                        _ => u64::from(u32::from_le_bytes(self.arr("string length")?)),
                    };
                    let n = usize::try_from(n).unwrap_or(usize::MAX);
                    let bytes = self.take(n, "string data")?;
                    let v = match code {
                        b'B' | b'C' | 0x8e => Value::Bytes(Rc::from(bytes)),
                        _ => self.str_value(bytes, op)?,
                    };
                    self.stack.push(v);
                }
                b'}' => self.stack.push(Value::Dict(Rc::default())),
                b'd' => {
                    let items = self.pop_mark(op)?;
                    let v = self.dict(items, op)?;
                    self.stack.push(v);
                }
                b's' => {
                    let v = self.pop(op)?;
                    let k = self.pop(op)?;
                    self.extend_dict(vec![k, v], op)?;
                }
                b'u' => {
                    let items = self.pop_mark(op)?;
                    self.extend_dict(items, op)?;
                }
                b']' => self.stack.push(Value::List(Rc::default())),
                b'l' => {
                    let items = self.pop_mark(op)?;
                    let v = Value::List(self.seq(items, op)?);
                    self.stack.push(v);
                }
                b'a' => {
                    let v = self.pop(op)?;
                    self.extend_list(vec![v], op)?;
                }
                b'e' => {
                    let items = self.pop_mark(op)?;
                    self.extend_list(items, op)?;
                }
                b')' => self.stack.push(Value::Tuple(Rc::default())),
                b't' | 0x85..=0x87 => {
                    let items = if code == b't' {
                        self.pop_mark(op)?
                    } else {
                        let n = usize::from(code - 0x84);
                        let mut items = (0..n).map(|_| self.pop(op)).collect::<Result<Vec<_>>>()?;
                        items.reverse();
                        items
                    };
                    let v = Value::Tuple(self.seq(items, op)?);
                    self.stack.push(v);
                }
                b'q' => {
                    let [i] = self.arr::<1>("BINPUT index")?;
                    self.push_memo(u32::from(i), op)?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.arr("LONG_BINPUT index")?);
                    self.push_memo(i, op)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed(op, "memo full"))?;
                    self.push_memo(i, op)?;
                }
                b'h' => {
                    let [i] = self.arr::<1>("BINGET index")?;
                    self.get_memo(u32::from(i), op)?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.arr("LONG_BINGET index")?);
                    self.get_memo(i, op)?;
                }
                b'c' => {
                    let module = self.line("GLOBAL module", op)?;
                    let name = self.line("GLOBAL name", op)?;
                    let v = self.global(module, name)?;
                    self.stack.push(v);
                }
                0x93 => {
                    let name = self.pop(op)?;
                    let module = self.pop(op)?;
                    let (Some(m), Some(n)) = (module.as_str(), name.as_str()) else {
                        return Err(self.malformed(op, "STACK_GLOBAL needs two strings"));
                    };
                    let v = self.global(m, n)?;
                    self.stack.push(v);
                }
                b'R' => {
                    let args = self.pop(op)?;
                    let func = self.pop(op)?;
                    let v = self.reduce(func, args, op)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let _state = self.pop(op)?;
                    match self.top(op)? {
                        // OrderedDict `_metadata`, tensor hooks: attributes we do not need.
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => {
                            let t = other.type_name();
                            return Err(self.malformed(op, format!("BUILD on a {t}")));
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop(op)?;
                    let v = self.persistent_load(&pid, op)?;
                    self.stack.push(v);
                }
                other => {
                    return Err(self.malformed(op, format!("unsupported opcode 0x{other:02x}")));
                }
            }
        }
    }
}
