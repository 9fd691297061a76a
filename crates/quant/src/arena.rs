//! Buffer reuse for the integer engine: every buffer gets a slot of the arena by
//! liveness, so the working set stays small and hot in cache. Slots are only shared
//! between buffers of equal length (MobileNet's repeated blocks make that common).
//!
//! A slot is handed to a step's output and returned to the free list after the last
//! step that reads it; a step's output never shares a slot with its own inputs (they
//! are released only after the output is assigned). Pinned buffers (the network input
//! and the outputs) keep slots of their own.

/// Assigns `sizes.len()` buffers to slots. `steps[i]` lists the buffers step `i` reads
/// and writes. Returns each buffer's slot and each slot's size.
pub(crate) fn assign(
    sizes: &[usize],
    steps: &[(Vec<usize>, Vec<usize>)],
    pinned: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let n = sizes.len();
    let mut last: Vec<Option<usize>> = vec![None; n];
    for (i, (srcs, _)) in steps.iter().enumerate() {
        for &b in srcs {
            last[b] = Some(i);
        }
    }
    let mut slot = vec![usize::MAX; n];
    let mut slot_sizes: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let new_slot = |need: usize, slot_sizes: &mut Vec<usize>| {
        slot_sizes.push(need);
        slot_sizes.len() - 1
    };
    for &p in pinned {
        slot[p] = new_slot(sizes[p], &mut slot_sizes);
    }
    for (i, (srcs, dsts)) in steps.iter().enumerate() {
        for &d in dsts {
            if slot[d] != usize::MAX {
                continue;
            }
            // A free slot of exactly this size (the kernels take a buffer's length as the
            // value's size), else a new slot.
            slot[d] = match free.iter().position(|&s| slot_sizes[s] == sizes[d]) {
                Some(k) => free.swap_remove(k),
                None => new_slot(sizes[d], &mut slot_sizes),
            };
        }
        let mut released: Vec<usize> = srcs
            .iter()
            .copied()
            .filter(|&b| last[b] == Some(i) && !pinned.contains(&b))
            .collect();
        released.extend(
            dsts.iter()
                .copied()
                .filter(|&b| last[b].is_none() && !pinned.contains(&b)),
        );
        released.sort_unstable();
        released.dedup();
        free.extend(released.into_iter().map(|b| slot[b]));
    }
    for (b, s) in slot.iter_mut().enumerate() {
        if *s == usize::MAX {
            *s = new_slot(sizes[b], &mut slot_sizes);
        }
    }
    (slot, slot_sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_dead_buffers_and_never_aliases_a_step() {
        // 0 -> 1 -> 2 -> 3, with 0 pinned (the input).
        let sizes = [10, 8, 8, 8];
        let steps = vec![(vec![0], vec![1]), (vec![1], vec![2]), (vec![2], vec![3])];
        let (slot, slot_sizes) = assign(&sizes, &steps, &[0]);
        assert_ne!(slot[1], slot[2]);
        assert_ne!(slot[2], slot[3]);
        assert_eq!(slot[3], slot[1], "buffer 1 is dead when 3 is written");
        assert_ne!(slot[0], slot[1]);
        for (b, &s) in slot.iter().enumerate() {
            assert_eq!(slot_sizes[s], sizes[b]);
        }
    }
}
