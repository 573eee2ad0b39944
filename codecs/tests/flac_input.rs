//! FLAC files in: the wire samples are the FLAC's samples, bit for bit, in
//! the container that holds their bits; the MD5 and the declared length are
//! checked; damaged files give a clear error, never a panic.

mod common;

use std::path::PathBuf;

use common::flac::{flac_bytes, flac_signal};
use isochron_codecs::compressed::{CompressedReader, is_compressed};
use isochron_codecs::{Encoding, Error};
use proptest::prelude::*;
use symphonia::core::checksum::Md5;
use symphonia::core::io::Monitor;

/// The MD5 FLAC keeps: of the samples, little-endian, in whole bytes.
fn md5(samples: &[i32], bps: u32) -> [u8; 16] {
    let mut m = Md5::default();
    let bytes = bps.div_ceil(8) as usize;
    for s in samples {
        m.process_buf_bytes(&s.to_le_bytes()[..bytes]);
    }
    m.md5()
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Everything the reader gives, read `chunk` samples at a time.
fn read_all(r: &mut CompressedReader, chunk: usize) -> Result<Vec<u8>, Error> {
    let stride = r.format().stride();
    let mut buf = vec![0u8; chunk * stride];
    let mut out = Vec::new();
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n * stride]);
    }
}

/// The wire bytes a lossless reader must give for `samples` of `bps` bits:
/// the value at the top of the smallest of L16/L24/L32 that holds it.
fn expected_wire(samples: &[i32], bps: u32) -> (Encoding, Vec<u8>) {
    let (enc, width) = match bps {
        ..=16 => (Encoding::L16, 16),
        17..=24 => (Encoding::L24, 24),
        _ => (Encoding::L32, 32),
    };
    let bytes = width / 8;
    let wire = samples
        .iter()
        .flat_map(|&s| {
            let top = ((s as i64) << (32 - bps)) as i32;
            top.to_be_bytes()[..bytes].to_vec()
        })
        .collect();
    (enc, wire)
}

#[test]
fn flac_samples_are_the_files_samples() {
    let dir = tempfile::tempdir().unwrap();
    for (channels, rate, bps, block) in [
        (2, 44_100, 16, 4096),
        (1, 96_000, 24, 1152),
        (6, 48_000, 20, 512),
        (2, 8_000, 12, 300),
        (3, 22_050, 8, 1000),
    ] {
        let frames = 10_007;
        let samples = flac_signal(frames, channels, bps, bps as u64);
        let bytes = flac_bytes(&samples, channels, rate, bps, block, md5(&samples, bps));
        let path = write(&dir, &format!("t{bps}.flac"), &bytes);
        assert!(is_compressed(&path));
        let mut r = CompressedReader::open(&path).unwrap();
        let f = r.format();
        let (enc, want) = expected_wire(&samples, bps);
        assert_eq!(
            (f.encoding, f.channels, f.rate),
            (
                enc,
                channels as u16,
                isochron_codecs::Rate::hz(rate).unwrap()
            ),
            "{bps}-bit"
        );
        assert_eq!(r.length(), Some(frames as u64));
        assert!(r.is_lossless());
        let got = read_all(&mut r, 333).unwrap();
        assert!(got == want, "{bps}-bit {channels} channels: samples differ");
        assert_eq!(r.samples_read(), frames as u64);
    }
}

#[test]
fn a_flac_transcodes_to_the_chosen_wire_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let samples = flac_signal(2000, 2, 16, 3);
    let path = write(
        &dir,
        "m.flac",
        &flac_bytes(&samples, 2, 8000, 16, 512, [0; 16]),
    );
    let mut r = CompressedReader::open_as(&path, Encoding::MuLaw).unwrap();
    assert_eq!(r.format().encoding, Encoding::MuLaw);
    let got = read_all(&mut r, 4096).unwrap();
    let (_, l16) = expected_wire(&samples, 16);
    let mut want = vec![0u8; samples.len()];
    isochron_codecs::encoding::transcode(Encoding::L16, &l16, Encoding::MuLaw, &mut want);
    assert_eq!(got, want);
}

#[test]
fn a_wrong_md5_is_an_error_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let samples = flac_signal(3000, 2, 16, 1);
    let mut sum = md5(&samples, 16);
    sum[0] ^= 1;
    let path = write(
        &dir,
        "bad.flac",
        &flac_bytes(&samples, 2, 44_100, 16, 1024, sum),
    );
    let mut r = CompressedReader::open(&path).unwrap();
    let e = read_all(&mut r, 1024).unwrap_err();
    assert!(e.to_string().contains("MD5"), "{e}");
}

#[test]
fn damaged_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let samples = flac_signal(5000, 2, 16, 2);
    let good = flac_bytes(&samples, 2, 44_100, 16, 1024, md5(&samples, 16));
    // Cut inside the third frame: the samples before it come, then an error.
    let cut = write(&dir, "cut.flac", &good[..good.len() * 2 / 3]);
    let mut r = CompressedReader::open(&cut).unwrap();
    let e = read_all(&mut r, 4096).unwrap_err();
    assert!(e.to_string().contains("cut.flac"), "{e}");
    // Not audio at all.
    let junk = write(&dir, "junk.flac", b"fLaC this is not a FLAC stream at all");
    let e = CompressedReader::open(&junk).unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    let e = CompressedReader::open(dir.path().join("absent.flac")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    // A flipped bit in a frame: the CRC catches it.
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x10;
    let bad = write(&dir, "flip.flac", &flipped);
    let r = CompressedReader::open(&bad).and_then(|mut r| read_all(&mut r, 4096));
    assert!(
        r.is_err(),
        "a damaged lossless frame must not pass silently"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_flac_layout_decodes_bit_exact(
        channels in 1u32..=8,
        bps in prop::sample::select(vec![4u32, 8, 12, 16, 17, 20, 24]),
        block in 16usize..2000,
        frames in 1usize..3000,
        seed in any::<u64>(),
        chunk in 1usize..700,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let samples = flac_signal(frames, channels, bps, seed);
        let bytes = flac_bytes(&samples, channels, 48_000, bps, block, md5(&samples, bps));
        let path = write(&dir, "p.flac", &bytes);
        let mut r = CompressedReader::open(&path).unwrap();
        let got = read_all(&mut r, chunk).unwrap();
        let (enc, want) = expected_wire(&samples, bps);
        prop_assert_eq!(r.format().encoding, enc);
        prop_assert!(got == want);
    }
}
