//! A tiny FLAC encoder for the tests (no FLAC tool or encoder crate is
//! needed): fixed-blocksize frames alternating a FIXED order-2 predictor
//! with Rice-coded residuals and VERBATIM subframes, independent channels,
//! CRC-8/CRC-16 as the format requires. Small files only. Self-contained,
//! so the umbrella crate's tests include it too.

#![allow(dead_code)]

/// MSB-first bit writer.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, v: u64, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((v >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn signed(&mut self, v: i64, bits: u32) {
        self.put((v as u64) & ((1u64 << bits) - 1), bits);
    }

    fn align(&mut self) {
        while self.n != 0 {
            self.put(0, 1);
        }
    }
}

fn crc8(data: &[u8]) -> u8 {
    let mut c = 0u8;
    for &b in data {
        c ^= b;
        for _ in 0..8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
        }
    }
    c
}

fn crc16(data: &[u8]) -> u16 {
    let mut c = 0u16;
    for &b in data {
        c ^= (b as u16) << 8;
        for _ in 0..8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x8005
            } else {
                c << 1
            };
        }
    }
    c
}

/// FLAC's UTF-8-like coding of the frame number (up to 2^21 frames).
fn utf8(n: u32, b: &mut Bits) {
    match n {
        0..0x80 => b.put(n as u64, 8),
        0x80..0x800 => {
            b.put(0xC0 | (n >> 6) as u64, 8);
            b.put(0x80 | (n & 0x3F) as u64, 8);
        }
        0x800..0x10000 => {
            b.put(0xE0 | (n >> 12) as u64, 8);
            b.put(0x80 | ((n >> 6) & 0x3F) as u64, 8);
            b.put(0x80 | (n & 0x3F) as u64, 8);
        }
        _ => {
            b.put(0xF0 | (n >> 18) as u64, 8);
            b.put(0x80 | ((n >> 12) & 0x3F) as u64, 8);
            b.put(0x80 | ((n >> 6) & 0x3F) as u64, 8);
            b.put(0x80 | (n & 0x3F) as u64, 8);
        }
    }
}

fn fixed2(x: &[i64], bps: u32, b: &mut Bits) {
    b.put(0b001010 << 1, 8); // FIXED, order 2, no wasted bits
    for &w in &x[..2] {
        b.signed(w, bps);
    }
    let res: Vec<i64> = (2..x.len())
        .map(|i| x[i] - 2 * x[i - 1] + x[i - 2])
        .collect();
    let mean = res.iter().map(|r| r.unsigned_abs()).sum::<u64>() / res.len().max(1) as u64;
    let k = (64 - mean.leading_zeros()).min(14);
    b.put(0, 2); // Rice, 4-bit parameters
    b.put(0, 4); // partition order 0
    b.put(k as u64, 4);
    for r in res {
        let z = ((r << 1) ^ (r >> 63)) as u64;
        for _ in 0..(z >> k) {
            b.put(0, 1);
        }
        b.put(1, 1);
        b.put(z & ((1 << k) - 1), k);
    }
}

/// A FLAC file of `samples` (interleaved, `channels` per frame, values in
/// `bps` bits) with the given MD5 of the samples (zeros: unknown).
pub fn flac_bytes(
    samples: &[i32],
    channels: u32,
    rate: u32,
    bps: u32,
    block: usize,
    md5: [u8; 16],
) -> Vec<u8> {
    let frames = samples.len() / channels as usize;
    let mut b = Bits::default();
    b.out.extend_from_slice(b"fLaC");
    b.put(1, 1); // last metadata block
    b.put(0, 7); // STREAMINFO
    b.put(34, 24);
    b.put(block as u64, 16);
    b.put(block as u64, 16);
    b.put(0, 24);
    b.put(0, 24);
    b.put(rate as u64, 20);
    b.put(channels as u64 - 1, 3);
    b.put(bps as u64 - 1, 5);
    b.put(frames as u64, 36);
    b.out.extend_from_slice(&md5);
    for (num, start) in (0..frames).step_by(block).enumerate() {
        let len = block.min(frames - start);
        let mut f = Bits::default();
        f.put(0b11_1111_1111_1110, 14);
        f.put(0, 2); // reserved, fixed blocksize
        f.put(0b0111, 4); // blocksize - 1 in 16 bits at the end
        f.put(0, 4); // rate from STREAMINFO
        f.put(channels as u64 - 1, 4); // independent channels
        f.put(0, 3); // bits from STREAMINFO
        f.put(0, 1);
        utf8(num as u32, &mut f);
        f.put(len as u64 - 1, 16);
        let c = crc8(&f.out);
        f.put(c as u64, 8);
        for ch in 0..channels as usize {
            let x: Vec<i64> = (start..start + len)
                .map(|i| samples[i * channels as usize + ch] as i64)
                .collect();
            if num % 2 == 0 && len > 2 {
                fixed2(&x, bps, &mut f);
            } else {
                f.put(0b000001 << 1, 8); // VERBATIM, no wasted bits
                for v in x {
                    f.signed(v, bps);
                }
            }
        }
        f.align();
        let c = crc16(&f.out);
        f.put(c as u64, 16);
        b.out.extend_from_slice(&f.out);
    }
    b.out
}

/// Deterministic music-like samples in `bps` bits: two tones and noise.
pub fn flac_signal(frames: usize, channels: u32, bps: u32, seed: u64) -> Vec<i32> {
    let full = ((1i64 << (bps - 1)) - 1) as f64;
    let mut x = seed;
    (0..frames * channels as usize)
        .map(|i| {
            let t = (i / channels as usize) as f64 / 44_100.0;
            let c = (i % channels as usize) as f64;
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let v = 0.5 * (2.0 * std::f64::consts::PI * (220.0 + 110.0 * c) * t).sin()
                + 0.3 * (2.0 * std::f64::consts::PI * 3_300.0 * t).sin()
                + 0.05 * noise;
            (v * full).round() as i32
        })
        .collect()
}
