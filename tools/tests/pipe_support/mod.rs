//! What the pipe and device tests share: seeded bytes to stand for samples,
//! the WAV stream a pipe writer (sox, arecord, ffmpeg) starts with, and the
//! rows a sensor logger writes.
#![allow(dead_code)]

/// `n` seeded pseudo-random bytes (xorshift): every bit pattern a sample
/// can have, reproducible.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The header of a WAV stream of 16-bit PCM at 48 kHz: RIFF and data sizes
/// 0xFFFFFFFF ("until the end"), as a pipe writer that cannot seek back
/// writes it.
pub fn streaming_wav_header(channels: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF\xff\xff\xff\xffWAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&(48_000 * 2 * channels as u32).to_le_bytes());
    h.extend_from_slice(&(2 * channels).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data\xff\xff\xff\xff");
    h
}

/// `n` rows of a 200 Hz logger (`time,x,y`, times in seconds), and the
/// same text one line a piece, as the logger writes them.
pub fn logger_rows(n: usize) -> (String, Vec<Vec<u8>>) {
    let mut csv = String::from("time,x,y\n");
    for i in 0..n {
        csv += &format!("{:.3},{:.2},{}\n", i as f64 * 0.005, i as f64 * 0.25, i % 7);
    }
    let lines = csv
        .split_inclusive('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect();
    (csv, lines)
}
