//! A free list of f32 buffers that training passes reuse.
//!
//! A training step allocates the same large buffers every time (activations of the tape,
//! gradients, im2col columns: tens of MB each at batch 8). Freed, they go back to the
//! operating system, and the next step pays a page fault and a page clear for every 4 KiB
//! again, which measured about a fifth of a step. The pool keeps them instead: a request
//! takes the smallest free buffer whose capacity fits (and wastes at most half of it), so a
//! steady sequence of steps finds each of its buffers again.

use std::sync::Mutex;

/// Buffers smaller than this are left to the allocator.
const MIN_POOLED: usize = 1 << 12;
/// At most this many free buffers are kept.
const MAX_FREE: usize = 1024;

/// The free buffers.
#[derive(Default)]
pub(crate) struct Pool {
    free: Mutex<Vec<Vec<f32>>>,
}

impl Pool {
    /// A buffer of `len` zeros.
    pub fn zeroed(&self, len: usize) -> Vec<f32> {
        let mut v = self.take(len);
        v.clear();
        v.resize(len, 0.0);
        v
    }

    /// A copy of `src`.
    pub fn copy_of(&self, src: &[f32]) -> Vec<f32> {
        let mut v = self.take(src.len());
        v.clear();
        v.extend_from_slice(src);
        v
    }

    fn take(&self, len: usize) -> Vec<f32> {
        if len >= MIN_POOLED {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len && b.capacity() <= 2 * len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                return free.swap_remove(i);
            }
        }
        Vec::with_capacity(len)
    }

    /// Returns `v` to the pool (or frees it when it is small or the pool is full).
    pub fn give(&self, v: Vec<f32>) {
        if v.capacity() >= MIN_POOLED {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if free.len() < MAX_FREE {
                free.push(v);
            }
        }
    }

    /// Frees every pooled buffer.
    pub fn clear(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Bytes held by free buffers.
    pub fn bytes(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.iter().map(|b| b.capacity() * 4).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_zeroed_and_best_fitting() {
        let p = Pool::default();
        let mut a = p.zeroed(10_000);
        a.fill(3.0);
        let ptr = a.as_ptr();
        p.give(a);
        p.give(vec![1.0; 30_000]);
        let b = p.zeroed(9_000);
        assert_eq!(b.as_ptr(), ptr, "the 10k buffer fits best");
        assert!(b.iter().all(|v| *v == 0.0) && b.len() == 9_000);
        // 30k is more than twice 5k: not handed out for it.
        let c = p.zeroed(5_000);
        assert!(c.capacity() < 30_000);
        assert_eq!(p.bytes(), 30_000 * 4);
        p.clear();
        assert_eq!(p.bytes(), 0);
    }
}
