//! Every bad WAV gets an error that names the problem, never a panic.

mod common;

use common::{Fmt, Rng, chunk, wav_bytes};
use isochron_codecs::Error;
use isochron_codecs::wav::WavReader;

fn open_bytes(bytes: &[u8]) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.wav");
    std::fs::write(&p, bytes).unwrap();
    let e = WavReader::open(&p).expect_err("bad file accepted");
    assert!(e.to_string().contains("bad.wav"), "names the file: {e}");
    e
}

fn message(bytes: &[u8]) -> String {
    open_bytes(bytes).to_string()
}

#[test]
fn not_a_wav() {
    let e = message(b"ID3\x04\x00\x00\x00\x00\x00\x00 this is an mp3");
    assert!(e.contains("not a WAV file") && e.contains("MP3"), "{e}");
    let e = message(b"RIFF\x10\x00\x00\x00AVI LIST\x00\x00\x00\x00");
    assert!(e.contains("not a WAV file") && e.contains("'AVI '"), "{e}");
    let e = message(b"RIFF");
    assert!(e.contains("not a WAV file") && e.contains("shorter"), "{e}");
    let e = message(b"hello, world, this is text");
    assert!(matches!(
        open_bytes(b"just text here"),
        Error::NotWav { .. }
    ));
    assert!(e.contains("'hell'"), "{e}");
}

#[test]
fn empty_file() {
    let e = open_bytes(b"");
    assert!(matches!(e, Error::Empty { .. }), "{e}");
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn truncated_data_is_caught_up_front() {
    let fmt = Fmt::pcm(2, 44_100, 16, false);
    let mut bytes = wav_bytes(&fmt, &Rng(1).bytes(4000), &[], &[]);
    bytes.truncate(bytes.len() - 1000);
    let e = open_bytes(&bytes);
    assert!(
        matches!(
            e,
            Error::Truncated {
                declared: 4000,
                available: 3000,
                ..
            }
        ),
        "{e}"
    );
    let e = e.to_string();
    assert!(
        e.contains("truncated") && e.contains("4000") && e.contains("3000"),
        "{e}"
    );
    // Cut inside the header: no data chunk at all.
    let e = message(&bytes[..30]);
    assert!(e.contains("fmt") || e.contains("truncated"), "{e}");
    let e = message(&bytes[..40]);
    assert!(e.contains("no data chunk"), "{e}");
}

#[test]
fn unsupported_encodings_are_named() {
    let cases: [(Fmt, &str); 6] = [
        (
            Fmt {
                tag: 2,
                ..Fmt::pcm(1, 8000, 4, false)
            },
            "ADPCM (format tag 2)",
        ),
        (
            Fmt {
                tag: 0x11,
                ..Fmt::pcm(1, 8000, 4, false)
            },
            "IMA ADPCM (format tag 17)",
        ),
        (
            Fmt {
                tag: 0x55,
                ..Fmt::pcm(2, 44100, 0, false)
            },
            "MPEG Layer 3",
        ),
        (Fmt::pcm(1, 8000, 40, false), "40-bit PCM"),
        (Fmt::pcm(2, 48000, 16, true), "16-bit float"),
        (
            Fmt {
                tag: 7,
                ..Fmt::pcm(1, 8000, 16, false)
            },
            "16-bit mu-law",
        ),
    ];
    for (fmt, what) in cases {
        let e = open_bytes(&wav_bytes(&fmt, &[0u8; 64], &[], &[]));
        assert!(matches!(e, Error::UnsupportedWav { .. }), "{e}");
        let e = e.to_string();
        assert!(
            e.contains("unsupported WAV encoding") && e.contains(what),
            "{e}"
        );
    }
    // More valid bits than the container holds.
    let mut fmt = Fmt::pcm(2, 48000, 24, false);
    fmt.extensible = Some((3, 1));
    fmt.valid = Some(28);
    let e = message(&wav_bytes(&fmt, &[0u8; 60], &[], &[]));
    assert!(
        e.contains("28 valid bits do not fit 24-bit containers"),
        "{e}"
    );
    let no_ds64 = [
        b"RF64".as_slice(),
        &u32::MAX.to_le_bytes(),
        b"WAVE",
        &chunk(b"fmt ", &Fmt::pcm(2, 48000, 16, false).bytes()),
    ]
    .concat();
    let e = message(&no_ds64);
    assert!(e.contains("RF64") && e.contains("ds64"), "{e}");
    let e = message(&[b"RIFX".as_slice(), &[0; 40]].concat());
    assert!(e.contains("RIFX"), "{e}");
}

#[test]
fn inconsistent_headers_are_malformed() {
    let fmt = Fmt::pcm(2, 8000, 16, false);
    let good = wav_bytes(&fmt, &[0u8; 40], &[], &[]);
    // Data before fmt.
    let mut body = b"WAVE".to_vec();
    body.extend_from_slice(&chunk(b"data", &[0; 8]));
    body.extend_from_slice(&chunk(b"fmt ", &fmt.bytes()));
    let bytes = [
        b"RIFF".as_slice(),
        &(body.len() as u32).to_le_bytes(),
        &body,
    ]
    .concat();
    let e = message(&bytes);
    assert!(e.contains("data chunk comes before any fmt chunk"), "{e}");
    // Zero channels.
    let mut bad = good.clone();
    bad[22] = 0;
    let e = message(&bad);
    assert!(e.contains("zero channels"), "{e}");
    // Block align that disagrees with channels and bits.
    let mut bad = good.clone();
    bad[32] = 3;
    let e = message(&bad);
    assert!(e.contains("block align"), "{e}");
    // Data that is not a whole number of samples.
    let bytes = wav_bytes(&fmt, &[0u8; 41], &[], &[]);
    let e = message(&bytes);
    assert!(e.contains("not a whole number of 4-byte samples"), "{e}");
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(42);
    let fmt = Fmt::pcm(2, 44_100, 16, false);
    let good = wav_bytes(&fmt, &rng.bytes(400), &common::list_info(), &[]);
    for i in 0..300 {
        let mut bytes = good.clone();
        // Flip a few bytes in the header area, or cut the file short.
        for _ in 0..1 + i % 4 {
            let at = (rng.next_u64() as usize) % 120.min(bytes.len());
            bytes[at] = rng.next_u64() as u8;
        }
        if i % 5 == 0 {
            bytes.truncate((rng.next_u64() as usize) % bytes.len());
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fuzz.wav");
        std::fs::write(&p, &bytes).unwrap();
        if let Ok(mut r) = WavReader::open(&p) {
            let mut buf = vec![0u8; 1024 * r.format().stride()];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}
