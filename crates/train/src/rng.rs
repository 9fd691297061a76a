//! A small deterministic random number generator (SplitMix64).
//!
//! Training randomness is derived, never carried: the shuffle of epoch `e` comes from
//! `(seed, e)` and the augmentation of sample `i` in epoch `e` from `(seed, e, i)`. So the
//! result does not depend on how many loader threads run, and a checkpoint only needs the
//! seed and the position (epoch, step) to resume the exact same stream. SplitMix64 is
//! statistically adequate for augmentation and shuffling and has a one-word state.

/// Domain tags that keep the derived streams apart.
pub mod stream {
    /// Per-epoch shuffle of the training set.
    pub const SHUFFLE: u64 = 1;
    /// Per-sample augmentation.
    pub const AUGMENT: u64 = 2;
    /// Weight initialisation.
    pub const INIT: u64 = 3;
}

/// SplitMix64: `state += γ`, then a 64-bit finaliser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for the stream named by `seed` and the path `keys` (e.g.
    /// `[stream::AUGMENT, epoch, index]`); different paths give unrelated streams.
    pub fn derive(seed: u64, keys: &[u64]) -> Self {
        let mut h = mix(seed ^ GAMMA);
        for &k in keys {
            h = mix(h ^ mix(k.wrapping_add(GAMMA)));
        }
        Self { state: h }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `low + (high − low)·u` with `u` in `[0, 1)`: numpy's `uniform(low, high)`, which
    /// also accepts `low > high` (the value then lies in `(high, low]`).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// A fair coin (numpy's `random.randint(2)` used as a condition).
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Uniform integer in `0..n` (`n > 0`), by rejection so it is unbiased.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rng::derive(7, &[2, 3, 4]), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(Rng::derive(7, &[2, 3, 4]), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .scan(Rng::derive(7, &[2, 3, 5]), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn uniform_and_below_stay_in_range() {
        let mut r = Rng::new(1);
        let mut hist = [0usize; 6];
        for _ in 0..6000 {
            let u = r.uniform(2.0, 3.0);
            assert!((2.0..3.0).contains(&u));
            hist[r.below(6)] += 1;
        }
        assert!(hist.iter().all(|&h| (800..1200).contains(&h)), "{hist:?}");
        let mut v: Vec<usize> = (0..10).collect();
        r.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }
}
