//! Stack, memo and container primitives of the pickle VM: bounded reads,
//! MARK handling, depth-capped container construction, and in-place filling
//! of memoized lists and dicts with Python's aliasing semantics (the memo
//! holds the object, not a snapshot) under a copy-on-write work budget.

use std::rc::Rc;

use super::value::{Dict, Seq, Value};
use super::{MAX_ALIASES, MAX_DEPTH, Vm};
use crate::error::{FormatError, Result};

impl<'a> Vm<'a> {
    pub(super) fn malformed(&self, offset: usize, reason: impl Into<String>) -> FormatError {
        FormatError::MalformedPickle {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end.and_then(|e| self.data.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(FormatError::Truncated {
                path: self.path.to_path_buf(),
                what: format!("pickle {what}"),
                offset: self.pos as u64,
            }),
        }
    }

    pub(super) fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn line(&mut self, what: &str, op: usize) -> Result<&'a str> {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(FormatError::Truncated {
                path: self.path.to_path_buf(),
                what: format!("pickle {what} (no newline)"),
                offset: self.pos as u64,
            });
        };
        let text = self.take(n, what)?;
        self.take(1, what)?;
        std::str::from_utf8(text).map_err(|_| self.malformed(op, format!("{what} is not UTF-8")))
    }

    pub(super) fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    pub(super) fn pop(&mut self, op: usize) -> Result<Value> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed(op, "stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed(op, "stack underflow"))
    }

    pub(super) fn top(&mut self, op: usize) -> Result<&mut Value> {
        if self.stack.len() <= self.floor() {
            return Err(self.malformed(op, "stack underflow"));
        }
        let path = self.path;
        self.stack
            .last_mut()
            .ok_or_else(|| FormatError::MalformedPickle {
                path: path.to_path_buf(),
                offset: op as u64,
                reason: "stack underflow".into(),
            })
    }

    pub(super) fn pop_mark(&mut self, op: usize) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed(op, "no MARK on the stack"))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    pub(super) fn check_depth(&self, depth: u32, op: usize) -> Result<u32> {
        if depth > MAX_DEPTH {
            return Err(self.malformed(op, format!("containers nested deeper than {MAX_DEPTH}")));
        }
        Ok(depth)
    }

    pub(super) fn seq(&self, items: Vec<Value>, op: usize) -> Result<Rc<Seq>> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        let depth = self.check_depth(depth, op)?;
        Ok(Rc::new(Seq {
            items,
            depth,
            memo: Vec::new(),
        }))
    }

    pub(super) fn dict(&self, flat: Vec<Value>, op: usize) -> Result<Value> {
        if !flat.len().is_multiple_of(2) {
            return Err(self.malformed(op, "odd number of items for a dict"));
        }
        let mut d = Dict::default();
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.depth = d.depth.max(1 + k.depth().max(v.depth()));
            d.items.push((k, v));
        }
        self.check_depth(d.depth, op)?;
        Ok(Value::Dict(Rc::new(d)))
    }

    /// Charges the cost of un-sharing a container of `len` items.
    pub(super) fn charge(&mut self, len: usize, op: usize) -> Result<()> {
        self.work = self.work.saturating_add(len as u64);
        if self.work > self.work_limit {
            return Err(self.malformed(op, "too much copy-on-write work (hostile pickle?)"));
        }
        Ok(())
    }

    /// Prepares the list or dict on top of the stack for in-place mutation:
    /// memo slots aliasing it are detached (so they do not force a copy) and
    /// returned for [`Self::end_mutation`]; a copy still forced by another
    /// holder is charged to the work budget.
    pub(super) fn begin_mutation(&mut self, op: usize) -> Result<Vec<u32>> {
        let top = self.top(op)?.clone();
        let detached: Vec<u32> = (top.memo_keys().iter().copied())
            .filter(|k| self.memo.get(k).is_some_and(|m| m.same_container(&top)))
            .collect();
        drop(top);
        for k in &detached {
            self.memo.remove(k);
        }
        let cost = match self.top(op)? {
            Value::List(rc) if Rc::strong_count(rc) > 1 => rc.items.len(),
            Value::Dict(rc) if Rc::strong_count(rc) > 1 => rc.items.len(),
            _ => 0,
        };
        self.charge(cost, op)?;
        Ok(detached)
    }

    /// Points the detached memo slots at the mutated container (Python's
    /// memo holds the object, not a snapshot).
    pub(super) fn end_mutation(&mut self, detached: Vec<u32>, op: usize) -> Result<()> {
        let v = self.top(op)?.clone();
        for k in detached {
            self.memo.insert(k, v.clone());
        }
        Ok(())
    }

    pub(super) fn expect_top(
        &mut self,
        op: usize,
        opname: &str,
        want: &str,
        ok: fn(&Value) -> bool,
    ) -> Result<()> {
        let top = self.top(op)?;
        if ok(top) {
            return Ok(());
        }
        let t = top.type_name();
        Err(self.malformed(op, format!("{opname} on a {t}, not a {want}")))
    }

    /// Appends `items` to the list on top of the stack.
    pub(super) fn extend_list(&mut self, items: Vec<Value>, op: usize) -> Result<()> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        self.check_depth(depth, op)?;
        self.expect_top(op, "APPEND(S)", "list", |v| matches!(v, Value::List(_)))?;
        let detached = self.begin_mutation(op)?;
        if let Value::List(rc) = self.top(op)? {
            let s = Rc::make_mut(rc);
            s.depth = s.depth.max(depth);
            s.items.extend(items);
        }
        self.end_mutation(detached, op)
    }

    /// Adds flat key/value `items` to the dict on top of the stack.
    pub(super) fn extend_dict(&mut self, items: Vec<Value>, op: usize) -> Result<()> {
        let Value::Dict(new) = self.dict(items, op)? else {
            return Err(self.malformed(op, "internal: dict expected"));
        };
        let new = Rc::try_unwrap(new).unwrap_or_else(|rc| (*rc).clone());
        self.expect_top(op, "SETITEM(S)", "dict", |v| matches!(v, Value::Dict(_)))?;
        let detached = self.begin_mutation(op)?;
        if let Value::Dict(rc) = self.top(op)? {
            let d = Rc::make_mut(rc);
            d.depth = d.depth.max(new.depth);
            d.items.extend(new.items);
        }
        self.end_mutation(detached, op)
    }

    pub(super) fn str_value(&self, bytes: &[u8], op: usize) -> Result<Value> {
        let s =
            std::str::from_utf8(bytes).map_err(|_| self.malformed(op, "string is not UTF-8"))?;
        Ok(Value::Str(Rc::from(s)))
    }

    pub(super) fn push_memo(&mut self, idx: u32, op: usize) -> Result<()> {
        if matches!(self.top(op)?, Value::List(_) | Value::Dict(_)) {
            // Register the slot on the container so in-place fills refresh it.
            let detached = self.begin_mutation(op)?;
            let keys = match self.top(op)? {
                Value::List(rc) => Some(&mut Rc::make_mut(rc).memo),
                Value::Dict(rc) => Some(&mut Rc::make_mut(rc).memo),
                _ => None,
            };
            if let Some(keys) = keys.filter(|k| k.len() < MAX_ALIASES && !k.contains(&idx)) {
                keys.push(idx);
            }
            self.end_mutation(detached, op)?;
        }
        let v = self.top(op)?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }

    pub(super) fn get_memo(&mut self, idx: u32, op: usize) -> Result<()> {
        let v = self.memo.get(&idx).cloned();
        let v = v.ok_or_else(|| self.malformed(op, format!("memo entry {idx} is not set")))?;
        self.stack.push(v);
        Ok(())
    }
}
