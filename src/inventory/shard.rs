//! `--shard K/N`: the K-th of N parts of the selected hosts, for a run
//! split across several jump hosts.
//!
//! A host's part depends only on its inventory name — or, for a member of a
//! `mid_cluster`, on the cluster's name, so that a cluster stays whole in
//! one part (each part runs its own rollout, and members must never
//! restart together): the first 8 bytes of SHA-256(key), as a big-endian
//! number, mod N. So every jump host
//! computes the same split from the same inventory without talking to the
//! others, every host is in exactly one part, and adding or removing a
//! host never moves another between parts. Parts are equal in expectation
//! (a binomial spread: ±1 % of 10,000 hosts over 10 parts).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One part of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether host `name` belongs to this part.
    pub fn holds(&self, name: &str) -> bool {
        let digest = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// A `--shard` value that is not K/N with 1 ≤ K ≤ N ≤ 65536.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: expected K/N with 1 ≤ K ≤ N ≤ 65536, e.g. 2/5")]
pub struct ShardError {
    pub text: String,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let usage = || ShardError {
            text: text.to_string(),
        };
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if index == 0 || count == 0 || index > count || count > 65536 {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|index| format!("mid-{index:05}")).collect()
    }

    #[test]
    fn every_host_is_in_exactly_one_part_and_parts_are_even() {
        let hosts = names(10_000);
        let count = 10;
        let mut sizes = vec![0usize; count];
        for host in &hosts {
            let parts: Vec<u32> = (1..=count as u32)
                .filter(|index| {
                    Shard {
                        index: *index,
                        count: count as u32,
                    }
                    .holds(host)
                })
                .collect();
            assert_eq!(parts.len(), 1, "{host}: {parts:?}");
            sizes[parts[0] as usize - 1] += 1;
        }
        for size in sizes {
            assert!((900..=1100).contains(&size), "{size}");
        }
    }

    #[test]
    fn a_host_stays_in_its_part_whatever_else_the_inventory_holds() {
        let shard: Shard = "3/7".parse().unwrap();
        let few: Vec<String> = names(50)
            .into_iter()
            .filter(|name| shard.holds(name))
            .collect();
        let many: Vec<String> = names(5_000)
            .into_iter()
            .filter(|name| shard.holds(name))
            .collect();
        assert!(few.iter().all(|name| many.contains(name)));
        // Fixed values (computed independently with Python's hashlib): the
        // split must not change between releases, or jump hosts running
        // different versions would overlap.
        assert!(Shard { index: 1, count: 1 }.holds("anything"));
        let of = |name: &str| {
            (1..=4).find(|index| {
                Shard {
                    index: *index,
                    count: 4,
                }
                .holds(name)
            })
        };
        assert_eq!(
            ["mid-emea-01", "mid-emea-02", "mid-amer-01", "mid-apac-07"].map(of),
            [Some(2), Some(2), Some(4), Some(3)]
        );
    }

    #[test]
    fn bad_shards_are_refused_with_the_form() {
        for text in ["0/3", "4/3", "1/0", "x/3", "3", "1/70000", "-1/3"] {
            let error = text.parse::<Shard>().unwrap_err();
            assert!(error.to_string().contains("K/N"), "{text}: {error}");
        }
        assert_eq!(
            "2/5".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 5 }
        );
        assert_eq!(
            " 2 / 5 ".trim().parse::<Shard>().unwrap().to_string(),
            "2/5"
        );
    }
}
