//! Shard storage: a run of fixed-size shard buffers, each starting on a
//! 64-byte boundary so the SIMD kernels never straddle cache lines (a
//! 1414-byte stride would misalign most of them and cost ~10 %).

use super::SHARD_CAP;

/// Distance between shard starts.
pub const STRIDE: usize = SHARD_CAP.next_multiple_of(64);

#[derive(Debug, Default)]
pub struct Shards {
    buf: Vec<u8>,
    off: usize,
    count: usize,
}

impl Shards {
    pub fn new(count: usize) -> Self {
        let mut s = Self::default();
        s.ensure(count);
        s
    }

    /// Make room for at least `count` shards (contents of new ones are zero).
    pub fn ensure(&mut self, count: usize) {
        if count <= self.count {
            return;
        }
        let mut buf = vec![0u8; count * STRIDE + 63];
        let off = buf.as_ptr().align_offset(64);
        if self.count > 0 {
            let old = &self.buf[self.off..self.off + self.count * STRIDE];
            buf[off..off + old.len()].copy_from_slice(old);
        }
        (self.buf, self.off, self.count) = (buf, off, count);
    }

    pub fn get(&self, i: usize) -> &[u8] {
        let at = self.off + i * STRIDE;
        &self.buf[at..at + SHARD_CAP]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut [u8] {
        let at = self.off + i * STRIDE;
        &mut self.buf[at..at + SHARD_CAP]
    }

    /// The first `n` shards, each cut to `len` bytes.
    pub fn iter_mut(&mut self, n: usize, len: usize) -> impl Iterator<Item = &mut [u8]> {
        debug_assert!(n <= self.count && len <= SHARD_CAP);
        self.buf[self.off..self.off + n * STRIDE]
            .chunks_mut(STRIDE)
            .map(move |c| &mut c[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_aligned_and_keep_contents_when_grown() {
        let mut s = Shards::new(2);
        s.get_mut(1)[0] = 7;
        s.ensure(5);
        assert_eq!(s.get(1)[0], 7);
        for i in 0..5 {
            assert_eq!(s.get(i).as_ptr() as usize % 64, 0);
        }
        assert_eq!(s.iter_mut(5, 10).count(), 5);
    }
}
