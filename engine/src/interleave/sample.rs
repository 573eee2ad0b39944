//! Sample interleaving: gather a lane at the sender, scatter it back into
//! frames at the receiver.

/// Copy samples `lane, lane + g, lane + 2g, ...` of `run` (whole samples of
/// `stride` bytes) into `out`, replacing its contents.
pub fn gather_lane(run: &[u8], stride: usize, lane: usize, g: usize, out: &mut Vec<u8>) {
    out.clear();
    let samples = run.len() / stride;
    let mut j = lane;
    while j < samples {
        out.extend_from_slice(&run[j * stride..(j + 1) * stride]);
        j += g;
    }
}

/// Where group sample `j` lives: frame `k` of the group holds group samples
/// `[starts[k], starts[k + 1])`.
pub fn locate(starts: &[usize], j: usize) -> (usize, usize) {
    let k = starts.partition_point(|&s| s <= j) - 1;
    (k, j - starts[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_takes_every_gth_sample() {
        let run: Vec<u8> = (0..20).collect(); // 10 samples of 2 bytes
        let mut out = Vec::new();
        gather_lane(&run, 2, 1, 3, &mut out);
        assert_eq!(out, vec![2, 3, 8, 9, 14, 15]);
    }

    #[test]
    fn locate_maps_group_samples_to_frames() {
        let starts = [0, 3, 3, 7]; // frames of 3, 0 and 4 samples
        assert_eq!(locate(&starts, 0), (0, 0));
        assert_eq!(locate(&starts, 2), (0, 2));
        assert_eq!(locate(&starts, 3), (2, 0), "the empty frame is skipped");
        assert_eq!(locate(&starts, 6), (2, 3));
    }
}
