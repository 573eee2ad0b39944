//! WAV read -> wire bytes -> write is bit-exact, over every bit depth,
//! channel count and rate the issue names, plain and EXTENSIBLE, with extra
//! chunks before and after the data.

mod common;

use common::{Fmt, Rng, fmt_and_data, id3, list_info, wav_bytes};
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat};

const FORMATS: [(u16, bool); 5] = [
    (8, false),
    (16, false),
    (24, false),
    (32, false),
    (32, true),
];
const CHANNELS: [u16; 5] = [1, 2, 6, 8, 10];
const RATES: [u32; 7] = [8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 192_000];

/// Reads `file` in uneven chunks, writes it back, and checks the result.
fn round_trip(name: &str, fmt: Fmt, before: &[u8], after: &[u8], samples: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let data = Rng(seed).bytes(samples * fmt.block_align() as usize);
    let input = dir.path().join(format!("{name}.wav"));
    std::fs::write(&input, wav_bytes(&fmt, &data, before, after)).unwrap();

    let mut r = WavReader::open(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
    let f = r.format();
    assert_eq!(f.channels, fmt.channels, "{name}");
    assert_eq!(f.rate, Rate::hz(fmt.rate).unwrap(), "{name}");
    assert_eq!(r.total_samples(), samples as u64, "{name}");
    let origin = r.origin();

    let output = dir.path().join(format!("{name}.out.wav"));
    let mut w = WavWriter::create(&output, f, &origin).unwrap();
    // Odd read sizes exercise partial chunks; 0-length reads are harmless.
    let mut buf = vec![0u8; 37 * f.stride()];
    let mut wire = Vec::new();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        wire.extend_from_slice(&buf[..n * f.stride()]);
        w.write(&buf[..n * f.stride()]).unwrap();
    }
    assert_eq!(w.finish().unwrap(), samples as u64);
    assert_eq!(wire.len(), data.len(), "{name}: wire bytes");

    let out = std::fs::read(&output).unwrap();
    let (out_fmt, out_data) = fmt_and_data(&out);
    assert!(out_data == data, "{name}: samples differ");
    let mut expected_fmt = fmt;
    expected_fmt.cb_size = matches!(fmt.tag, 3 | 6 | 7) && fmt.extensible.is_none();
    assert_eq!(out_fmt, expected_fmt.bytes(), "{name}: fmt chunk");

    // Our reader sees the same format and origin again, and so does hound.
    let again = WavReader::open(&output).unwrap();
    assert_eq!(again.format(), f);
    assert_eq!(again.origin(), origin);
    let h = hound::WavReader::open(&output).unwrap();
    assert_eq!(h.spec().channels, fmt.channels);
    assert_eq!(h.spec().sample_rate, fmt.rate);
    assert_eq!(h.duration() as usize, samples);
}

#[test]
fn every_format_and_channel_count_round_trips() {
    let mut i = 0;
    for (bits, float) in FORMATS {
        for ch in CHANNELS {
            let rate = RATES[i % RATES.len()];
            let fmt = Fmt::pcm(ch, rate, bits, float);
            let name = format!("b{bits}{}_c{ch}_r{rate}", if float { "f" } else { "" });
            round_trip(&name, fmt, &[], &[], 301 + i, i as u64);
            i += 1;
        }
    }
}

#[test]
fn every_rate_round_trips() {
    for (i, rate) in RATES.into_iter().enumerate() {
        let (bits, float) = FORMATS[i % FORMATS.len()];
        let fmt = Fmt::pcm(2, rate, bits, float);
        // A tenth of a second at each rate.
        round_trip(
            &format!("rate{rate}"),
            fmt,
            &[],
            &[],
            rate as usize / 10,
            100 + i as u64,
        );
    }
}

#[test]
fn extensible_files_keep_their_channel_mask() {
    // Including masks hound would never write: 5.1 side, stereo as
    // EXTENSIBLE, 16-bit mono, and "no positions" for 10 channels.
    let cases = [
        (2, 16, false, 0x3),
        (1, 16, false, 0x4),
        (6, 24, false, 0x60f),
        (8, 32, true, 0x63f),
        (10, 32, false, 0),
        (4, 8, false, 0x33),
    ];
    for (i, (ch, bits, float, mask)) in cases.into_iter().enumerate() {
        let mut fmt = Fmt::pcm(ch, RATES[i % RATES.len()], bits, float);
        fmt.extensible = Some((mask, if float { 3 } else { 1 }));
        round_trip(&format!("ext{i}"), fmt, &[], &[], 257, 200 + i as u64);
    }
}

#[test]
fn plain_headers_stay_plain_beyond_stereo_and_16_bits() {
    // Many tools write 24-bit or 6-channel files without EXTENSIBLE; the
    // output must not gain a channel mask the input never had.
    for (i, (ch, bits)) in [(6u16, 16u16), (2, 24), (8, 32)].into_iter().enumerate() {
        let fmt = Fmt::pcm(ch, 48_000, bits, false);
        round_trip(&format!("plain{i}"), fmt, &[], &[], 99, 300 + i as u64);
    }
}

#[test]
fn extra_chunks_before_and_after_the_data_are_skipped() {
    let junk = common::chunk(b"JUNK", &[0u8; 27]);
    let mut before = list_info();
    before.extend_from_slice(&junk);
    let after = [list_info(), id3()].concat();
    for (i, (bits, float)) in FORMATS.into_iter().enumerate() {
        let mut fmt = Fmt::pcm(2, 44_100, bits, float);
        if i % 2 == 1 {
            fmt.extensible = Some((0x3, if float { 3 } else { 1 }));
        }
        round_trip(
            &format!("chunks{i}"),
            fmt,
            &before,
            &after,
            513,
            400 + i as u64,
        );
        // Metadata between fmt and data too (bext/LIST often sit there).
        round_trip(&format!("mid{i}"), fmt, &id3(), &[], 64, 500 + i as u64);
    }
}

#[test]
fn odd_sized_8_bit_data_reads_back() {
    // 8-bit mono with an odd sample count: the data chunk gets a pad byte.
    round_trip("odd", Fmt::pcm(1, 8_000, 8, false), &[], &id3(), 1001, 7);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("odd.wav");
    let f = StreamFormat::new(Encoding::U8, 1, Rate::hz(8_000).unwrap()).unwrap();
    let mut w = WavWriter::create_sized(&p, f, &Origin::Raw, Some(3)).unwrap();
    w.write(&[1, 2, 3]).unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 44 + 3 + 1, "pad byte after odd data");
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff + 8, bytes.len(), "RIFF size counts the pad byte");
    assert_eq!(WavReader::open(&p).unwrap().total_samples(), 3);
}

#[test]
fn converted_streams_are_written_back_in_the_origin_layout() {
    // A 16-bit file sent as G.711, 24-bit or float comes back as the 16-bit
    // file it was (the conversion happened on the wire only).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wav");
    let mut rng = Rng(9);
    let samples: Vec<i16> = (0..4800).map(|_| (rng.next_u64() as i16) / 4).collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut fmt = Fmt::pcm(2, 48_000, 16, false);
    fmt.extensible = Some((0x3, 1));
    std::fs::write(&input, wav_bytes(&fmt, &data, &[], &[])).unwrap();

    for enc in [
        Encoding::MuLaw,
        Encoding::ALaw,
        Encoding::L24,
        Encoding::F32,
    ] {
        let mut r = WavReader::open_as(&input, enc).unwrap();
        assert_eq!(r.format().encoding, enc);
        assert_eq!(r.format().stride(), 2 * enc.bytes());
        let mut wire = vec![0u8; r.total_samples() as usize * r.format().stride()];
        assert_eq!(r.read(&mut wire).unwrap(), 2400);
        let out = dir.path().join(format!("{enc:?}.wav"));
        let mut w = WavWriter::create(&out, r.format(), &r.origin()).unwrap();
        w.write(&wire).unwrap();
        w.finish().unwrap();
        let back = WavReader::open(&out).unwrap();
        assert_eq!(back.layout(), r.layout(), "{enc:?}");
        assert_eq!(
            back.layout().channel_mask,
            Some(0x3),
            "{enc:?} keeps the mask"
        );
        // Widening to L24 or F32 and back is exact; G.711 is within its step.
        let h: Vec<i32> = hound::WavReader::open(&out)
            .unwrap()
            .into_samples::<i32>()
            .map(|s| s.unwrap_or(0))
            .collect();
        assert_eq!(h.len(), samples.len());
        if matches!(enc, Encoding::L24 | Encoding::F32) {
            let expect: Vec<i32> = samples.iter().map(|&s| s as i32).collect();
            assert_eq!(h, expect, "{enc:?}");
        } else {
            for (a, b) in h.iter().zip(&samples) {
                assert!((a - *b as i32).abs() <= 1024, "{enc:?}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn raw_streams_get_a_standard_layout() {
    let dir = tempfile::tempdir().unwrap();
    for (ch, enc, ext) in [
        (2, Encoding::L16, false),
        (6, Encoding::L16, true),
        (1, Encoding::L24, true),
        (2, Encoding::F32, false),
        (1, Encoding::MuLaw, false),
        (2, Encoding::F64, false),
    ] {
        let f = StreamFormat::new(enc, ch, Rate::hz(16_000).unwrap()).unwrap();
        let p = dir.path().join(format!("raw{ch}{enc:?}.wav"));
        let mut w = WavWriter::create(&p, f, &Origin::Raw).unwrap();
        w.write(&vec![0u8; 160 * f.stride()]).unwrap();
        drop(w); // finalised on drop
        let r = WavReader::open(&p).unwrap();
        assert_eq!(r.total_samples(), 160);
        assert_eq!(r.layout().channel_mask.is_some(), ext, "{ch} {enc:?}");
        if ch == 6 {
            assert_eq!(r.layout().channel_mask, Some(0x3f), "5.1");
        }
        assert_eq!(r.format().encoding, enc, "written losslessly");
    }
    let f = StreamFormat::new(Encoding::L16, 1, Rate::new(30_000, 1_001).unwrap()).unwrap();
    let e = WavWriter::create(dir.path().join("x.wav"), f, &Origin::Raw).unwrap_err();
    assert!(e.to_string().contains("whole number of hertz"), "{e}");
}

#[test]
fn a_crash_mid_stream_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("crash.wav");
    let f = StreamFormat::new(Encoding::L16, 2, Rate::hz(8_000).unwrap()).unwrap();
    let mut w = WavWriter::create(&p, f, &Origin::Raw).unwrap();
    // Freshly created: already a valid, empty WAV.
    assert_eq!(WavReader::open(&p).unwrap().total_samples(), 0);
    let second = vec![1u8; 8_000 * f.stride()];
    w.write(&second).unwrap(); // one second: the header is brought up to date
    w.write(&second[..4_000 * f.stride()]).unwrap();
    // A crash: no finalize, no drop, buffers never flushed.
    std::mem::forget(w);
    let r = WavReader::open(&p).unwrap();
    assert!(r.total_samples() >= 8_000, "{}", r.total_samples());
    assert!(r.total_samples() <= 12_000);
}
