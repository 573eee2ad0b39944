//! Which samples of a frame arrived.

/// A borrowed bitset over the samples of one frame: bit `i` set means sample
/// `i` (all channels at that instant) arrived. The playout hands one to
/// concealment with every frame, so lost lanes of a sample-interleaved group,
/// a lost fragment and a wholly lost frame are one case.
#[derive(Debug, Clone, Copy)]
pub struct SampleMask<'a> {
    words: &'a [u64],
    len: usize,
}

impl<'a> SampleMask<'a> {
    /// `words` must hold at least `len` bits; bits past `len` are ignored.
    pub fn new(words: &'a [u64], len: usize) -> Self {
        assert!(words.len() * 64 >= len, "mask shorter than its length");
        Self { words, len }
    }

    /// The underlying words (bits past [`len`](Self::len) are unspecified).
    pub fn words(&self) -> &'a [u64] {
        &self.words[..self.len.div_ceil(64)]
    }

    /// Number of samples the mask covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The mask covers no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether sample `i` arrived.
    pub fn present(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Number of samples that arrived.
    pub fn count_present(&self) -> usize {
        let full = self.len / 64;
        let mut n: usize = self.words[..full]
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum();
        let rem = self.len % 64;
        if rem != 0 {
            n += (self.words[full] & ((1u64 << rem) - 1)).count_ones() as usize;
        }
        n
    }

    /// Every sample arrived.
    pub fn is_full(&self) -> bool {
        self.count_present() == self.len
    }

    /// No sample arrived.
    pub fn is_lost(&self) -> bool {
        self.count_present() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ignore_bits_past_len() {
        let words = [u64::MAX, u64::MAX];
        let m = SampleMask::new(&words, 70);
        assert_eq!(m.count_present(), 70);
        assert!(m.is_full());
        let words = [0b1010u64];
        let m = SampleMask::new(&words, 4);
        assert!(!m.present(0) && m.present(1) && !m.present(2) && m.present(3));
        assert!(!m.present(4));
        assert_eq!(m.count_present(), 2);
    }
}
