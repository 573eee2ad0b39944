//! Properties of the WAV reader and writer over arbitrary layouts, data,
//! extra chunks and read sizes.

mod common;

use common::{Fmt, Rng, Trickle, chunk, fact, parts, wav_full};
use isochron_codecs::wav::{WavReader, WavWriter};
use proptest::prelude::*;

/// (tag, wBitsPerSample, container bits, valid bits, extensible).
fn layout() -> impl Strategy<Value = (u16, u16, u16, u16, bool)> {
    prop_oneof![
        (
            Just(1u16),
            prop_oneof![Just(8u16), Just(16), Just(24), Just(32)]
        )
            .prop_map(|(t, b)| (t, b, b, b, false)),
        (Just(3u16), prop_oneof![Just(32u16), Just(64)]).prop_map(|(t, b)| (t, b, b, b, false)),
        prop_oneof![Just(6u16), Just(7)].prop_map(|t| (t, 8, 8, 8, false)),
        // 24 in 32, plain.
        Just((1u16, 24u16, 32u16, 24u16, false)),
        // Extensible with valid bits at or below the container.
        (prop_oneof![Just(16u16), Just(24), Just(32)], 1u16..=32).prop_map(|(c, v)| {
            let v = v.min(c);
            (1, c, c, v, true)
        }),
        prop_oneof![Just(3u16), Just(6), Just(7)].prop_map(|t| {
            let b = if t == 3 { 32 } else { 8 };
            (t, b, b, b, true)
        }),
    ]
}

fn fmt_of(
    (tag, bits, container, valid, ext): (u16, u16, u16, u16, bool),
    ch: u16,
    rate: u32,
) -> Fmt {
    let mut f = Fmt::pcm(ch, rate, bits, tag == 3);
    f.tag = tag;
    f.cb_size = tag != 1;
    f.container = (container != bits).then_some(container);
    if ext {
        f.extensible = Some((0, tag));
        f.valid = Some(valid);
        f.cb_size = false;
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// File and pipe readers agree sample for sample, whatever the read
    /// sizes, and writing back reproduces the data and the fmt chunk.
    #[test]
    fn file_and_pipe_agree_and_write_back_exactly(
        l in layout(),
        ch in 1u16..=8,
        rate in prop_oneof![Just(8_000u32), Just(44_100), Just(48_000), Just(96_000)],
        samples in 0usize..600,
        seed in any::<u64>(),
        junk in 0usize..9,
        with_fact in any::<bool>(),
        per in 1usize..300,
        trickle in 1usize..40,
    ) {
        let fmt = fmt_of(l, ch, rate);
        let data = Rng(seed).bytes(samples * fmt.block_align() as usize);
        // An odd-sized chunk before the data: the pad byte must be skipped.
        let mut between = chunk(b"LIST", &vec![b'x'; junk]);
        if with_fact {
            between.extend_from_slice(&fact(samples as u32, b""));
        }
        let bytes = wav_full(&fmt, &[], &between, &data, &chunk(b"id3 ", b"tag"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        std::fs::write(&path, &bytes).unwrap();

        let mut file = WavReader::open(&path).unwrap();
        let pipe = Trickle { inner: std::io::Cursor::new(bytes.clone()), rng: Rng(seed ^ 1), max: trickle };
        let mut stream = WavReader::from_reader(pipe, "-", None).unwrap();
        prop_assert_eq!(file.format(), stream.format());
        prop_assert_eq!(file.origin(), stream.origin());
        let stride = file.format().stride();
        let mut a = vec![0u8; per * stride];
        let mut wire_file = Vec::new();
        let mut wire_pipe = Vec::new();
        loop {
            let n = file.read(&mut a).unwrap();
            if n == 0 { break; }
            wire_file.extend_from_slice(&a[..n * stride]);
        }
        loop {
            let n = stream.read(&mut a).unwrap();
            if n == 0 { break; }
            wire_pipe.extend_from_slice(&a[..n * stride]);
        }
        prop_assert!(wire_file == wire_pipe);
        prop_assert_eq!(wire_file.len(), samples * stride);

        let out = dir.path().join("o.wav");
        let mut w = WavWriter::create(&out, file.format(), &file.origin()).unwrap();
        for c in wire_file.chunks((per * stride).max(stride)) {
            w.write(c).unwrap();
        }
        w.finish().unwrap();
        let got = parts(&std::fs::read(&out).unwrap());
        let want = parts(&bytes);
        prop_assert!(got.data == want.data);
        prop_assert_eq!(got.fmt, want.fmt);
        prop_assert_eq!(got.fact, want.fact);
    }

    /// Bytes off a pipe never panic the reader, and it never reads more
    /// samples than bytes arrived.
    #[test]
    fn garbage_on_a_pipe_is_an_error_or_samples(
        prefix in 0usize..80,
        seed in any::<u64>(),
        len in 0usize..400,
    ) {
        let good = wav_full(&Fmt::pcm(2, 8_000, 16, false), &[], &[], &Rng(seed).bytes(200), &[]);
        let mut bytes = good[..prefix.min(good.len())].to_vec();
        bytes.extend(Rng(seed ^ 7).bytes(len));
        let total = bytes.len();
        if let Ok(mut r) = WavReader::from_reader(std::io::Cursor::new(bytes), "-", None) {
            let mut buf = vec![0u8; 4 * r.format().stride()];
            let mut got = 0;
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 { break; }
                got += n * r.format().stride();
            }
            prop_assert!(got <= total);
        }
    }
}
