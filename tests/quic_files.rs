//! Files through the whole engine over QUIC: WAVs of several layouts and a
//! sensor CSV, sent as one complex stream, come out bit-exact in the same
//! format, rate and channel layout.

mod common;
#[path = "../codecs/tests/common/flac.rs"]
mod flac;

use std::path::{Path, PathBuf};
use std::time::Duration;

use isochron::codecs::csv::CsvWriter;
use isochron::codecs::signal::{Music, Sensor};
use isochron::codecs::wav::{WavReader, WavWriter};
use isochron::codecs::{
    CsvLayout, Encoding, Origin, Rate, RiffKind, StreamFormat, TimeColumn, WavCoding, WavLayout,
};
use isochron::engine::files::{InputOptions, open_input};
use isochron::engine::net::{Identity, ReceiverEvent, Sender};

fn write_wav(
    dir: &Path,
    name: &str,
    enc: Encoding,
    channels: u16,
    rate: u32,
    layout: WavLayout,
    secs: f64,
) -> PathBuf {
    let path = dir.join(name);
    let format = StreamFormat::new(enc, channels, Rate::hz(rate).unwrap()).unwrap();
    let samples = (rate as f64 * secs) as usize;
    let mut w =
        WavWriter::create_sized(&path, format, &Origin::Wav(layout), Some(samples as u64)).unwrap();
    let mut music = Music::new(rate as u64, format.rate);
    let mut stereo = vec![0.0; samples * 2];
    music.fill(&mut stereo);
    // Spread the stereo music over the channels.
    let values: Vec<f64> = (0..samples * channels as usize)
        .map(|i| stereo[(i / channels as usize) * 2 + (i % 2)] * 0.9)
        .collect();
    let mut wire = vec![0u8; values.len() * enc.bytes()];
    isochron::codecs::encoding::encode::<f64>(enc, &values, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}

fn write_csv(dir: &Path, secs: f64) -> PathBuf {
    let path = dir.join("imu.csv");
    let rate = Rate::hz(200).unwrap();
    let format = StreamFormat::new(Encoding::F64, 3, rate).unwrap();
    let origin = Origin::Csv(CsvLayout {
        columns: vec!["ax".into(), "ay".into(), "az".into()],
        time: Some(TimeColumn::seconds("time", 0, 0.0, 3)),
        decimals: vec![Some(5); 3],
        ..CsvLayout::new(Vec::new())
    });
    let mut w = CsvWriter::create(&path, format, &origin).unwrap();
    let mut s = Sensor::new(3, rate);
    let n = (200.0 * secs) as usize;
    let mut v = vec![0.0; n * 3];
    s.fill(&mut v);
    for x in &mut v {
        *x = (*x * 1e5).round() / 1e5; // values as the file holds them
    }
    let mut wire = vec![0u8; v.len() * 8];
    isochron::codecs::encoding::encode::<f64>(Encoding::F64, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}

fn read_all(path: &Path) -> (StreamFormat, Origin, Vec<u8>) {
    let mut r = WavReader::open(path).unwrap();
    let mut buf = vec![0u8; r.total_samples() as usize * r.format().stride()];
    let n = r.read(&mut buf).unwrap();
    buf.truncate(n * r.format().stride());
    (r.format(), r.origin(), buf)
}

#[test]
fn wav_and_csv_files_arrive_bit_exact() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let plain = |bits, float| {
        if float {
            WavLayout::float(bits)
        } else {
            WavLayout::pcm(bits)
        }
    };
    let files = [
        write_wav(
            src.path(),
            "stereo16.wav",
            Encoding::L16,
            2,
            44_100,
            plain(16, false),
            2.0,
        ),
        write_wav(
            src.path(),
            "surround24.wav",
            Encoding::L24,
            6,
            48_000,
            WavLayout::pcm(24).with_channel_mask(0x3F),
            1.5,
        ),
        write_wav(
            src.path(),
            "mono_float.wav",
            Encoding::F32,
            1,
            96_000,
            plain(32, true),
            1.0,
        ),
        write_wav(
            src.path(),
            "u8.wav",
            Encoding::U8,
            1,
            8_000,
            plain(8, false),
            1.0,
        ),
        write_csv(src.path(), 2.0),
    ];
    let end = send_files(&files, out.path());
    for (input, (output, _)) in files.iter().zip(&end.files) {
        assert!(output.starts_with(out.path()));
        assert_eq!(
            output.file_name(),
            input.file_name(),
            "named after the sender's file"
        );
        if input.extension().unwrap() == "csv" {
            let a = std::fs::read_to_string(input).unwrap();
            let b = std::fs::read_to_string(output).unwrap();
            assert_eq!(a, b, "CSV reproduced: same header, times and values");
        } else {
            let (fa, oa, da) = read_all(input);
            let (fb, ob, db) = read_all(output);
            assert_eq!(
                (fa, oa),
                (fb, ob),
                "{}: same format and layout",
                input.display()
            );
            assert!(da == db, "{}: samples bit-exact", input.display());
            assert_eq!(
                std::fs::read(input).unwrap(),
                std::fs::read(output).unwrap(),
                "same bytes"
            );
        }
    }
}

/// Sends `files` as one stream to a fresh receiver writing into `out`;
/// returns how the session ended there, checked complete.
fn send_files(files: &[PathBuf], out: &Path) -> isochron::engine::net::SessionEnd {
    let identity = Identity::ephemeral().unwrap();
    let dir = out.to_path_buf();
    let rx = common::file_receiver(common::receiver_options(), &identity, &dir);
    let inputs: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, p)| open_input(p, i as u16, &InputOptions::default()).unwrap())
        .collect();
    let catalog = inputs.iter().map(|f| f.desc.clone()).collect();
    let opts = common::sender_options(rx.local_addr(), &rx);
    let mut tx = Sender::connect(opts, catalog).unwrap();
    for (i, f) in inputs.into_iter().enumerate() {
        tx.feed_from(i, f.reader).unwrap();
    }
    assert!(tx.wait().unwrap().completed);
    let end = loop {
        match rx.events().recv_timeout(Duration::from_secs(30)).unwrap() {
            ReceiverEvent::Ended { end, .. } => break *end,
            ReceiverEvent::Refused { reason, .. } => panic!("{reason}"),
            _ => {}
        }
    };
    assert!(!end.truncated && end.errors.is_empty(), "{:?}", end.errors);
    assert_eq!(end.files.len(), files.len());
    end
}

#[test]
fn every_wav_variant_arrives_as_it_was() {
    // G.711, 24-bit in 32-bit containers (plain and EXTENSIBLE), valid bits
    // below the container, 64-bit float, RF64 and BW64, a fact chunk with a
    // tail: the catalog carries each layout, the receiver writes it back.
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let variants = [
        ("alaw.wav", 1, 8_000, WavLayout::g711(WavCoding::ALaw)),
        ("mulaw.wav", 2, 8_000, WavLayout::g711(WavCoding::MuLaw)),
        (
            "in32.wav",
            2,
            48_000,
            WavLayout {
                bits: 24,
                valid_bits: 24,
                ..WavLayout::pcm(32)
            },
        ),
        (
            "ext24in32.wav",
            2,
            96_000,
            WavLayout {
                valid_bits: 24,
                ..WavLayout::pcm(32).with_channel_mask(0x3)
            },
        ),
        (
            "ext20in24.wav",
            6,
            48_000,
            WavLayout {
                valid_bits: 20,
                ..WavLayout::pcm(24).with_channel_mask(0x3f)
            },
        ),
        ("f64.wav", 1, 44_100, WavLayout::float(64)),
        (
            "rf64.wav",
            1,
            8_000,
            WavLayout {
                riff: RiffKind::Rf64,
                ..WavLayout::g711(WavCoding::MuLaw)
            },
        ),
        (
            "bw64.wav",
            2,
            48_000,
            WavLayout {
                riff: RiffKind::Bw64,
                ..WavLayout::pcm(24)
            },
        ),
        (
            "fact.wav",
            2,
            44_100,
            WavLayout {
                fact: Some(vec![1, 2, 3]),
                ..WavLayout::pcm(16)
            },
        ),
    ];
    let files: Vec<PathBuf> = variants
        .iter()
        .map(|(name, ch, rate, layout)| {
            let enc = layout.lossless_encoding().unwrap();
            write_wav(src.path(), name, enc, *ch, *rate, layout.clone(), 0.4)
        })
        .collect();
    let end = send_files(&files, out.path());
    for (input, (output, _)) in files.iter().zip(&end.files) {
        let (fa, oa, da) = read_all(input);
        let (fb, ob, db) = read_all(output);
        assert_eq!((fa, oa), (fb, ob), "{}: format and layout", input.display());
        assert!(da == db, "{}: samples bit-exact", input.display());
        assert!(
            std::fs::read(input).unwrap() == std::fs::read(output).unwrap(),
            "{}: same bytes",
            input.display()
        );
    }
}

#[test]
fn a_logger_csv_arrives_as_it_was() {
    // ISO 8601 times jittering +-30 % around 50 Hz, NaN and empty cells,
    // a number style per column, CR LF: the text comes out unchanged.
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut text = String::from("Timestamp (UTC);temp_C;pressure;accel\r\n");
    let mut x = 1u64;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..150 {
        let ms = (i as f64 * 20.0 + (next() * 0.6 - 0.3) * 20.0).round() as i64 + 500;
        let t = format!("2024-05-01T08:00:{:02}.{:03}Z", ms / 1000, ms % 1000);
        let temp = match i % 13 {
            2 => "NaN".to_owned(),
            7 => String::new(),
            _ => format!("{:.2}", 20.0 + next()),
        };
        let p = format!("{:.3E}", 101_000.0 + next() * 100.0);
        let a = format!("{}", ((next() - 0.5) * 200.0).round() / 100.0);
        text += &format!("{t};{temp};{p};{a}\r\n");
    }
    let input = src.path().join("logger.csv");
    std::fs::write(&input, &text).unwrap();
    let end = send_files(std::slice::from_ref(&input), out.path());
    let got = std::fs::read_to_string(&end.files[0].0).unwrap();
    for (i, (a, b)) in text.lines().zip(got.lines()).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert!(got == text, "the logger CSV changed on the way");
}

#[test]
fn a_flac_arrives_as_its_decoded_samples() {
    // 24-bit stereo and 16-bit 5-channel FLACs: the receiver writes WAVs
    // holding exactly the samples the FLACs decode to (and that went in).
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for (name, channels, rate, bps) in [("a.flac", 2, 44_100, 24), ("b.flac", 5, 48_000, 16)] {
        let samples = flac::flac_signal(rate as usize / 2, channels, bps, 7);
        let path = src.path().join(name);
        std::fs::write(
            &path,
            flac::flac_bytes(&samples, channels, rate, bps, 4096, [0; 16]),
        )
        .unwrap();
        inputs.push(path);
    }
    let end = send_files(&inputs, out.path());
    for input in &inputs {
        let mut flac = isochron::codecs::compressed::CompressedReader::open(input).unwrap();
        let stride = flac.format().stride();
        let mut want = vec![0u8; flac.length().unwrap() as usize * stride];
        assert_eq!(flac.read(&mut want).unwrap() * stride, want.len());
        let wav = input.with_extension("wav");
        let got = end
            .files
            .iter()
            .find(|(p, _)| p.file_name() == wav.file_name())
            .unwrap_or_else(|| panic!("no {} among {:?}", wav.display(), end.files));
        let mut r = WavReader::open(&got.0).unwrap();
        assert_eq!(r.format(), flac.format(), "{}", input.display());
        let mut have = vec![0u8; want.len() + stride];
        let n = r.read(&mut have).unwrap();
        assert_eq!(n * stride, want.len(), "{}: sample count", input.display());
        assert!(
            have[..want.len()] == want[..],
            "{}: samples differ",
            input.display()
        );
    }
}
