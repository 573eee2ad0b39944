//! The WAV round-trip matrix (issue 12, must-show 2): every variant people
//! have (PCM, float, A-law, mu-law, 24-bit in 32-bit containers, valid bits
//! below the container, RF64 and BW64, the fact chunk, streams with sizes 0
//! or 0xFFFFFFFF) read from a file and from a pipe, written back, and
//! compared: the same samples bit for bit, the same format.

mod common;

use std::sync::{Arc, Mutex};

use common::{
    Fmt, Rng, Trickle, fact, list_info, parts, rf64_bytes, streamed_bytes, wav_bytes, wav_full,
};
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{Encoding, Origin, RiffKind, WavCoding};

/// How a variant's input file is laid out.
#[derive(Clone, Copy, Debug)]
enum Container {
    Riff,
    Rf64,
    Bw64,
    /// A streaming writer's sizes (0 or 0xFFFFFFFF): data runs to the end.
    Streamed(u32),
}

struct Variant {
    name: &'static str,
    fmt: Fmt,
    /// Wire encoding the reader must pick (the lossless one).
    wire: Encoding,
    coding: WavCoding,
    container: Container,
    /// Extra bytes of a fact chunk, when the file has one.
    fact: Option<&'static [u8]>,
}

fn ext(mut f: Fmt, mask: u32, sub: u16) -> Fmt {
    f.extensible = Some((mask, sub));
    f.cb_size = false;
    f
}

fn variants() -> Vec<Variant> {
    use Container::*;
    let v = |name, fmt, wire, coding, container, fact| Variant {
        name,
        fmt,
        wire,
        coding,
        container,
        fact,
    };
    let pcm = |ch, rate, bits| Fmt::pcm(ch, rate, bits, false);
    let float = |ch, rate, bits| Fmt::pcm(ch, rate, bits, true);
    let in32 = Fmt {
        container: Some(32),
        ..pcm(2, 48_000, 24)
    };
    let ext24in32 = Fmt {
        valid: Some(24),
        ..ext(pcm(2, 96_000, 32), 0x3, 1)
    };
    let ext20in24 = Fmt {
        valid: Some(20),
        ..ext(pcm(6, 48_000, 24), 0x3f, 1)
    };
    let p = WavCoding::Pcm;
    vec![
        v("u8", pcm(1, 8_000, 8), Encoding::U8, p, Riff, None),
        v("l16", pcm(2, 44_100, 16), Encoding::L16, p, Riff, None),
        v("l24", pcm(2, 48_000, 24), Encoding::L24, p, Riff, None),
        v("l32", pcm(1, 192_000, 32), Encoding::L32, p, Riff, None),
        v(
            "f32",
            float(2, 48_000, 32),
            Encoding::F32,
            WavCoding::Float,
            Riff,
            Some(b""),
        ),
        v(
            "f64",
            float(1, 44_100, 64),
            Encoding::F64,
            WavCoding::Float,
            Riff,
            None,
        ),
        v(
            "alaw",
            Fmt::g711(6, 1, 8_000),
            Encoding::ALaw,
            WavCoding::ALaw,
            Riff,
            Some(b""),
        ),
        v(
            "mulaw",
            Fmt::g711(7, 2, 8_000),
            Encoding::MuLaw,
            WavCoding::MuLaw,
            Riff,
            Some(b""),
        ),
        v(
            "alaw_ext",
            ext(Fmt::g711(6, 1, 16_000), 0x4, 6),
            Encoding::ALaw,
            WavCoding::ALaw,
            Riff,
            Some(b""),
        ),
        v("24in32_plain", in32, Encoding::L32, p, Riff, None),
        v("24in32_ext", ext24in32, Encoding::L32, p, Riff, None),
        v("20in24_ext", ext20in24, Encoding::L24, p, Riff, None),
        v("12in16", pcm(1, 22_050, 12), Encoding::L16, p, Riff, None),
        v(
            "fact_extra",
            pcm(2, 44_100, 16),
            Encoding::L16,
            p,
            Riff,
            Some(b"\x01\x02\x03"),
        ),
        v("rf64_l16", pcm(2, 48_000, 16), Encoding::L16, p, Rf64, None),
        v(
            "bw64_ext24",
            ext(pcm(6, 48_000, 24), 0x3f, 1),
            Encoding::L24,
            p,
            Bw64,
            None,
        ),
        v(
            "rf64_mulaw",
            Fmt::g711(7, 1, 8_000),
            Encoding::MuLaw,
            WavCoding::MuLaw,
            Rf64,
            Some(b""),
        ),
        v(
            "streamed0",
            pcm(2, 48_000, 16),
            Encoding::L16,
            p,
            Streamed(0),
            None,
        ),
        v(
            "streamed_ff",
            ext24in32,
            Encoding::L32,
            p,
            Streamed(u32::MAX),
            None,
        ),
    ]
}

fn input_bytes(v: &Variant, data: &[u8], samples: u32) -> Vec<u8> {
    let fact_chunk = v.fact.map(|extra| fact(samples, extra)).unwrap_or_default();
    match v.container {
        Container::Riff => wav_full(&v.fmt, &list_info(), &fact_chunk, data, &[]),
        Container::Rf64 => rf64_bytes(b"RF64", &v.fmt, data, &fact_chunk),
        Container::Bw64 => rf64_bytes(b"BW64", &v.fmt, data, &fact_chunk),
        Container::Streamed(size) => streamed_bytes(&v.fmt, data, size),
    }
}

/// Reads everything, `per` samples a call.
fn read_all(r: &mut WavReader, per: usize) -> Vec<u8> {
    let stride = r.format().stride();
    let mut buf = vec![0u8; per * stride];
    let mut wire = Vec::new();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return wire;
        }
        wire.extend_from_slice(&buf[..n * stride]);
    }
}

#[test]
fn every_variant_round_trips_bit_exact_in_samples_and_format() {
    let dir = tempfile::tempdir().unwrap();
    for (i, v) in variants().into_iter().enumerate() {
        let name = v.name;
        let samples = 1001 + 37 * i;
        let data = Rng(i as u64).bytes(samples * v.fmt.block_align() as usize);
        let bytes = input_bytes(&v, &data, samples as u32);
        let input = dir.path().join(format!("{name}.wav"));
        std::fs::write(&input, &bytes).unwrap();

        // From the file.
        let mut r = WavReader::open(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.format().encoding, v.wire, "{name}");
        assert_eq!(r.format().channels, v.fmt.channels, "{name}");
        assert_eq!(r.length(), Some(samples as u64), "{name}");
        assert_eq!(r.layout().coding, v.coding, "{name}");
        assert_eq!(r.layout().fact.as_deref(), v.fact, "{name}: fact");
        let wire = read_all(&mut r, 97);
        assert_eq!(wire.len(), samples * r.format().stride(), "{name}");

        // From a pipe: same bytes, whatever the read sizes.
        let pipe = Trickle {
            inner: std::io::Cursor::new(bytes.clone()),
            rng: Rng(100 + i as u64),
            max: 61,
        };
        let mut s = WavReader::from_reader(pipe, "-", None).unwrap();
        assert_eq!(s.format(), r.format(), "{name}");
        assert_eq!(s.origin(), r.origin(), "{name}");
        let streamed = matches!(v.container, Container::Streamed(_));
        assert_eq!(s.length(), (!streamed).then_some(samples as u64), "{name}");
        assert!(
            read_all(&mut s, 50) == wire,
            "{name}: pipe reads other samples"
        );
        assert_eq!(s.total_samples(), samples as u64, "{name}");

        // Written back: same samples, same fmt chunk, same fact, same RIFF kind.
        let output = dir.path().join(format!("{name}.out.wav"));
        let mut w = WavWriter::create(&output, r.format(), &r.origin()).unwrap();
        for part in wire.chunks(333 * r.format().stride()) {
            w.write(part).unwrap();
        }
        assert_eq!(w.finish().unwrap(), samples as u64);
        let out = parts(&std::fs::read(&output).unwrap());
        let inp = parts(&bytes_with_real_sizes(&v, &bytes, &data));
        assert!(out.data == data, "{name}: samples differ");
        assert_eq!(out.fmt, inp.fmt, "{name}: fmt chunk");
        assert_eq!(out.fact, inp.fact, "{name}: fact chunk");
        assert_eq!(out.riff, inp.riff, "{name}: RIFF kind");
        let again = WavReader::open(&output).unwrap();
        assert_eq!(again.origin(), r.origin(), "{name}");
    }
}

/// What the input looks like with its sizes filled in (a streamed file is
/// written back as the plain RIFF it describes).
fn bytes_with_real_sizes(v: &Variant, bytes: &[u8], data: &[u8]) -> Vec<u8> {
    match v.container {
        Container::Streamed(_) => wav_bytes(&v.fmt, data, &[], &[]),
        _ => bytes.to_vec(),
    }
}

#[test]
fn a_plain_file_comes_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (i, fmt) in [
        Fmt::pcm(2, 44_100, 16, false),
        Fmt::pcm(1, 8_000, 8, false),
        ext(Fmt::pcm(6, 48_000, 24, false), 0x3f, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let data = Rng(7 + i as u64).bytes(999 * fmt.block_align() as usize);
        let bytes = wav_bytes(&fmt, &data, &[], &[]);
        let input = dir.path().join(format!("plain{i}.wav"));
        std::fs::write(&input, &bytes).unwrap();
        let mut r = WavReader::open(&input).unwrap();
        let wire = read_all(&mut r, 1000);
        let output = dir.path().join(format!("plain{i}.out.wav"));
        let mut w = WavWriter::create_sized(&output, r.format(), &r.origin(), r.length()).unwrap();
        w.write(&wire).unwrap();
        w.finish().unwrap();
        assert!(std::fs::read(&output).unwrap() == bytes, "file {i} differs");
    }
}

#[test]
fn files_beyond_the_riff_limit_become_rf64() {
    // The 4 GiB limit lowered to 64 KiB: the same switch, without gigabytes.
    let dir = tempfile::tempdir().unwrap();
    let fmt = Fmt::g711(7, 2, 8_000);
    let data = Rng(3).bytes(100_000);
    let input = dir.path().join("big.wav");
    std::fs::write(&input, wav_full(&fmt, &[], &fact(50_000, b""), &data, &[])).unwrap();
    let mut r = WavReader::open(&input).unwrap();
    let wire = read_all(&mut r, 4096);
    let output = dir.path().join("big.out.wav");
    let mut w = WavWriter::create(&output, r.format(), &r.origin()).unwrap();
    w.set_riff_limit_for_tests(64 * 1024);
    w.write(&wire[..60_000]).unwrap();
    w.flush().unwrap();
    assert_eq!(w.riff_kind(), RiffKind::Riff, "still fits");
    // Readable as RIFF mid-stream.
    assert_eq!(WavReader::open(&output).unwrap().length(), Some(30_000));
    w.write(&wire[60_000..]).unwrap();
    assert_eq!(w.riff_kind(), RiffKind::Rf64);
    w.finish().unwrap();
    let file = std::fs::read(&output).unwrap();
    let out = parts(&file);
    assert_eq!(&out.riff, b"RF64");
    assert!(out.data == data);
    assert_eq!(out.fact.as_deref(), Some(&50_000u32.to_le_bytes()[..]));
    let mut back = WavReader::open(&output).unwrap();
    assert_eq!(back.length(), Some(50_000));
    assert!(read_all(&mut back, 777) == wire);
    // A writer told the file fits keeps a plain header, and refuses to
    // write past the limit rather than corrupt the file.
    let small = dir.path().join("small.wav");
    let mut w = WavWriter::create_sized(&small, r.format(), &r.origin(), Some(10)).unwrap();
    w.set_riff_limit_for_tests(64 * 1024);
    let e = w.write(&wire).unwrap_err().to_string();
    assert!(e.contains("4 GiB"), "{e}");
    w.finish().unwrap();
    assert!(WavReader::open(&small).unwrap().length().unwrap() < 33_000);
}

/// A `Write` into shared memory, to read back what a stream writer wrote.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stream_writer_output_reads_back_from_a_pipe() {
    for (i, enc) in [Encoding::L16, Encoding::U8, Encoding::MuLaw, Encoding::F64]
        .into_iter()
        .enumerate()
    {
        let f =
            isochron_codecs::StreamFormat::new(enc, 1, isochron_codecs::Rate::hz(8_000).unwrap())
                .unwrap();
        let data = Rng(i as u64).bytes(1001 * f.stride());
        let sink = Shared::default();
        let mut w = WavWriter::to_stream(sink.clone(), "-", f, &Origin::Raw).unwrap();
        w.write(&data).unwrap();
        w.finish().unwrap();
        let bytes = sink.0.lock().unwrap().clone();
        assert_eq!(
            &bytes[4..8],
            &u32::MAX.to_le_bytes(),
            "RIFF size: until the end"
        );
        let mut r = WavReader::from_reader(std::io::Cursor::new(bytes), "-", None).unwrap();
        assert_eq!(r.format(), f);
        assert_eq!(r.length(), None);
        assert!(read_all(&mut r, 100) == data, "{enc:?}");
        assert_eq!(r.partial_tail(), 0, "no pad byte in a stream");
    }
}

#[test]
fn a_stream_cut_mid_sample_keeps_every_whole_sample() {
    let fmt = Fmt::pcm(2, 48_000, 24, false);
    let data = Rng(5).bytes(100 * 6 + 4);
    let bytes = streamed_bytes(&fmt, &data, u32::MAX);
    let mut r = WavReader::from_reader(std::io::Cursor::new(bytes.clone()), "-", None).unwrap();
    assert_eq!(read_all(&mut r, 7).len(), 600);
    assert_eq!(r.partial_tail(), 4);
    // A declared size the stream never reaches: what came is read, no error.
    let full = wav_bytes(&fmt, &data[..600], &[], &[]);
    let cut = &full[..full.len() - 60];
    let mut r = WavReader::from_reader(std::io::Cursor::new(cut.to_vec()), "-", None).unwrap();
    assert_eq!(r.length(), Some(100));
    assert_eq!(read_all(&mut r, 64).len(), 540);
    assert!(r.ended_early());
    assert_eq!(r.total_samples(), 90);
    // The same cut in a file is an error up front.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.wav");
    std::fs::write(&p, cut).unwrap();
    let e = WavReader::open(&p).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
}
