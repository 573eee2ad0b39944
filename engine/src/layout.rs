//! Packet geometry shared by the packetizer and the jitter buffer.
//!
//! A *unit* is what the packetizer cuts into packets: one frame, several
//! small frames aggregated, or one lane of a sample-interleaved group. Both
//! ends compute a packet's byte range from the catalog and the header alone,
//! so a payload of the wrong length is detected, not trusted.

use crate::catalog::SubstreamDesc;

/// Samples of fragment `i` of `count` in a run of `total` samples:
/// `[i * total / count, (i + 1) * total / count)`.
pub fn fragment_range(total: usize, i: usize, count: usize) -> (usize, usize) {
    let a = i * total / count;
    let b = (i + 1) * total / count;
    (a, b - a)
}

/// Number of samples lane `lane` of a group of `g` lanes takes from a run of
/// `n` samples (samples `lane, lane + g, ...`).
pub fn lane_len(n: usize, lane: usize, g: usize) -> usize {
    if lane >= n { 0 } else { (n - lane).div_ceil(g) }
}

/// Samples in frames `first..first + frames` of a substream.
pub fn unit_samples(desc: &SubstreamDesc, first: u64, frames: u64) -> usize {
    (desc.frame_start(first + frames) - desc.frame_start(first)) as usize
}

/// How many fragments a run of `samples` needs so each fits `max_payload`.
pub fn fragments_for(samples: usize, stride: usize, max_payload: usize) -> usize {
    let per = (max_payload / stride).max(1);
    samples.div_ceil(per).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_tile_the_run() {
        for total in [0usize, 1, 7, 480, 1000] {
            for count in 1..9 {
                let mut next = 0;
                for i in 0..count {
                    let (a, n) = fragment_range(total, i, count);
                    assert_eq!(a, next);
                    next = a + n;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn lanes_tile_the_run() {
        for n in 0..40 {
            for g in 1..9 {
                let sum: usize = (0..g).map(|l| lane_len(n, l, g)).sum();
                assert_eq!(sum, n, "n={n} g={g}");
            }
        }
    }
}
