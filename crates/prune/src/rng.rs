//! A small seeded generator (SplitMix64) so random pruning is reproducible from a seed on
//! every platform, without a dependency whose stream could change between versions.

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, full period, passes BigCrush.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for stream `name` under `seed`: each layer gets its own stream, so one
    /// layer's selection does not depend on which other layers are pruned.
    pub fn for_stream(seed: u64, name: &str) -> Self {
        // FNV-1a of the name, mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut g = Self(seed ^ h);
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-32 for the
    /// sizes used here).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Chooses `k` distinct items of `items` uniformly (partial Fisher–Yates); the chosen
    /// ones end up in `items[..k]`.
    pub fn choose<T>(&mut self, items: &mut [T], k: usize) {
        let k = k.min(items.len());
        for i in 0..k {
            let j = i + self.below(items.len() - i);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_is_reproducible_and_distinct() {
        let mut a: Vec<usize> = (0..100).collect();
        let mut b = a.clone();
        SplitMix64::new(7).choose(&mut a, 30);
        SplitMix64::new(7).choose(&mut b, 30);
        assert_eq!(a[..30], b[..30]);
        let mut c = a[..30].to_vec();
        c.sort_unstable();
        c.dedup();
        assert_eq!(c.len(), 30);
        let mut d: Vec<usize> = (0..100).collect();
        SplitMix64::new(8).choose(&mut d, 30);
        assert_ne!(a[..30], d[..30]);
    }

    #[test]
    fn below_stays_in_range() {
        let mut g = SplitMix64::new(1);
        for n in [1, 2, 3, 1000] {
            for _ in 0..1000 {
                assert!(g.below(n) < n);
            }
        }
    }
}
