//! WAV stores samples little-endian, the wire big-endian: the lossless
//! conversion is a byte reversal of each container-wide sample.

/// Reverses the bytes of each `width`-byte sample of `buf` in place.
pub(crate) fn swap_in_place(width: usize, buf: &mut [u8]) {
    match width {
        1 => {}
        2 => buf.chunks_exact_mut(2).for_each(|s| s.swap(0, 1)),
        3 => buf.chunks_exact_mut(3).for_each(|s| s.swap(0, 2)),
        4 => buf.chunks_exact_mut(4).for_each(|s| {
            let v = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            s.copy_from_slice(&v.to_be_bytes());
        }),
        _ => buf.chunks_exact_mut(width).for_each(|s| s.reverse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_reverses_and_twice_is_identity() {
        for w in [1usize, 2, 3, 4, 8] {
            let orig: Vec<u8> = (0..w as u8 * 5).collect();
            let mut b = orig.clone();
            swap_in_place(w, &mut b);
            for (s, o) in b.chunks(w).zip(orig.chunks(w)) {
                assert!(s.iter().eq(o.iter().rev()), "width {w}");
            }
            swap_in_place(w, &mut b);
            assert_eq!(b, orig);
        }
    }
}
