//! How a change rolls out: batches (`serial`), the share of failures
//! tolerated (`max_fail`), and their arithmetic.

use super::*;

/// A number of hosts, or a share of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(usize),
    Percent(u32),
}

impl Amount {
    /// The count this amount means out of `total` hosts (a percentage
    /// rounds down, as Ansible's `serial` does).
    pub fn of(self, total: usize) -> usize {
        match self {
            Amount::Count(count) => count,
            Amount::Percent(percent) => total * percent as usize / 100,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(count) => write!(formatter, "{count}"),
            Amount::Percent(percent) => write!(formatter, "{percent}%"),
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Count(count) => serializer.serialize_u64(*count as u64),
            Amount::Percent(_) => serializer.collect_str(self),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// Batch sizes; the last one repeats.
    pub serial: Vec<Amount>,
    /// Failed hosts tolerated before later batches are cancelled.
    pub max_fail: Amount,
}

impl Default for Rollout {
    /// A canary of one host, then all the rest.
    fn default() -> Rollout {
        Rollout {
            serial: vec![Amount::Count(1), Amount::Percent(100)],
            max_fail: Amount::Count(0),
        }
    }
}

impl Rollout {
    /// The sizes of the batches `total` hosts are rolled out in. Every
    /// batch holds at least one host.
    pub fn batches(&self, total: usize) -> Vec<usize> {
        let mut batches = Vec::new();
        let mut remaining = total;
        let mut index = 0;
        while remaining > 0 {
            let amount = self.serial[index.min(self.serial.len() - 1)];
            let size = amount.of(total).clamp(1, remaining);
            batches.push(size);
            remaining -= size;
            index += 1;
        }
        batches
    }
}
