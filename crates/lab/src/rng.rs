//! A small seeded generator (xorshift64*): the chaos run's fault draws
//! ([`crate::chaos`]) and the link's jitter and loss draws
//! ([`crate::link`]). Not for secrets.

/// A small seeded generator (xorshift64*), seeded through splitmix64 so
/// that near seeds draw unrelated sequences.
pub struct Rng(u64);

impl Rng {
    /// The generator whose state is `state` as it is (made odd: xorshift
    /// never leaves 0).
    pub fn from_state(state: u64) -> Rng {
        Rng(state | 1)
    }

    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        // Never 0: xorshift would stay there.
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The generator of one round of a run: the same for the same seed
    /// and round, whatever ran before it.
    pub fn for_round(seed: u64, round: usize) -> Rng {
        Rng::new(seed ^ (round as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }
}
