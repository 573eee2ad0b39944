//! Sensor methods: hold the last value, or draw a line to the next one.

use super::{Concealer, Lookahead, Method};
use crate::encoding;
use crate::mask::SampleMask;

impl Concealer {
    /// Channel `c` of sample `i` of wire bytes `bytes`.
    fn value(&self, bytes: &[u8], i: usize, c: usize) -> f64 {
        let w = self.format.encoding.bytes();
        let at = (i * self.channels + c) * w;
        encoding::read_f64(self.format.encoding, &bytes[at..at + w])
    }

    /// Remembers the known (non-NaN) values of present sample `i`.
    pub(super) fn note_known(&mut self, frame: &[u8], i: usize) {
        for c in 0..self.channels {
            let v = self.value(frame, i, c);
            if !v.is_nan() {
                self.last[c] = v;
                self.last_at[c] = self.position + i as i64;
            }
        }
    }

    /// Remembers the last known value of each channel of a complete frame.
    pub(super) fn note_tail(&mut self, frame: &[u8], n: usize) {
        for c in 0..self.channels {
            for i in (0..n).rev() {
                let v = self.value(frame, i, c);
                if !v.is_nan() {
                    self.last[c] = v;
                    self.last_at[c] = self.position + i as i64;
                    break;
                }
            }
        }
    }

    /// The first known value of channel `c` after a gap ending at `e`, in
    /// the frame or its look-ahead, and its absolute index.
    fn next_known(
        &self,
        frame: &[u8],
        mask: SampleMask<'_>,
        next: Option<Lookahead<'_>>,
        e: usize,
        c: usize,
    ) -> Option<(f64, i64)> {
        let n = mask.len();
        let here = (e..n)
            .filter(|&i| mask.present(i))
            .map(|i| (self.value(frame, i, c), self.position + i as i64))
            .find(|(v, _)| !v.is_nan());
        here.or_else(|| {
            let la = next?;
            (0..la.mask.len())
                .filter(|&i| la.mask.present(i))
                .map(|i| (self.value(la.bytes, i, c), self.position + (n + i) as i64))
                .find(|(v, _)| !v.is_nan())
        })
    }

    /// Fills `[s, e)` by holding or by a line between the known neighbours.
    pub(super) fn fill_sensor(
        &mut self,
        frame: &mut [u8],
        mask: SampleMask<'_>,
        next: Option<Lookahead<'_>>,
        s: usize,
        e: usize,
    ) {
        let enc = self.format.encoding;
        let w = enc.bytes();
        let mut interpolated = 0;
        for c in 0..self.channels {
            let left = (!self.last[c].is_nan()).then(|| (self.last[c], self.last_at[c]));
            let right = if self.method == Method::Linear || left.is_none() {
                self.next_known(frame, mask, next, e, c)
            } else {
                None
            };
            for j in s..e {
                let at = self.position + j as i64;
                let v = match (left, right) {
                    (Some((a, ta)), Some((b, tb))) if self.method == Method::Linear => {
                        if c == 0 {
                            interpolated += 1;
                        }
                        a + (b - a) * (at - ta) as f64 / (tb - ta) as f64
                    }
                    (Some((a, _)), _) => a,
                    (None, Some((b, _))) => b,
                    (None, None) => f64::NAN,
                };
                let slot = &mut frame[(j * self.channels + c) * w..][..w];
                if v.is_nan() {
                    if !encoding::write_missing(enc, slot) {
                        encoding::write_f64(enc, 0.0, slot);
                    }
                } else {
                    encoding::write_f64(enc, v, slot);
                }
            }
        }
        self.count(interpolated, 0);
    }
}
