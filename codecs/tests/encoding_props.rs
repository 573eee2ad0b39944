//! Property tests for every wire encoding: lossless ones round-trip exactly,
//! G.711 stays within its quantisation step, and decode(encode(decode(x)))
//! is decode(x) for all of them.

use isochron_codecs::Encoding;
use isochron_codecs::encoding::{decode, decode_native, encode, encode_native, g711, transcode};
use proptest::prelude::*;

const ALL: [Encoding; 12] = [
    Encoding::U8,
    Encoding::L16,
    Encoding::L24,
    Encoding::L32,
    Encoding::F32,
    Encoding::F64,
    Encoding::MuLaw,
    Encoding::ALaw,
    Encoding::Scaled16 { decimals: 0 },
    Encoding::Scaled16 { decimals: 3 },
    Encoding::Scaled32 { decimals: 2 },
    Encoding::Scaled32 { decimals: 9 },
];

const LOSSLESS_INT: [Encoding; 4] = [Encoding::U8, Encoding::L16, Encoding::L24, Encoding::L32];

fn no_nan(enc: Encoding, bytes: &[u8]) -> bool {
    let mut v = vec![0f64; bytes.len() / enc.bytes()];
    decode(enc, bytes, &mut v);
    v.iter().all(|x| !x.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Integer PCM: wire -> i32 (full scale) -> wire, and wire -> native ->
    /// wire, and wire -> f64 -> wire are all exact.
    #[test]
    fn integer_pcm_is_lossless(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for enc in LOSSLESS_INT {
            let w = enc.bytes();
            let bytes = &bytes[..bytes.len() / w * w];
            let n = bytes.len() / w;
            let mut full = vec![0i32; n];
            let mut back = vec![0u8; bytes.len()];
            decode(enc, bytes, &mut full);
            encode(enc, &full, &mut back);
            prop_assert_eq!(&back, bytes, "{:?} via i32", enc);
            let mut native = vec![0i32; n];
            decode_native(enc, bytes, &mut native);
            encode_native(enc, &native, &mut back);
            prop_assert_eq!(&back, bytes, "{:?} via native", enc);
            let mut real = vec![0f64; n];
            decode(enc, bytes, &mut real);
            prop_assert!(real.iter().all(|v| (-1.0..1.0).contains(v)));
            encode(enc, &real, &mut back);
            prop_assert_eq!(&back, bytes, "{:?} via f64", enc);
        }
    }

    /// Floats: every non-NaN bit pattern survives f32/f64 decoding.
    #[test]
    fn floats_are_lossless(bits32 in any::<u32>(), bits64 in any::<u64>()) {
        let b = bits32.to_be_bytes();
        if no_nan(Encoding::F32, &b) {
            let (mut v, mut back) = ([0f32], [0u8; 4]);
            decode(Encoding::F32, &b, &mut v);
            encode(Encoding::F32, &v, &mut back);
            prop_assert_eq!(back, b);
            let mut d = [0f64];
            decode(Encoding::F32, &b, &mut d);
            encode(Encoding::F32, &d, &mut back);
            prop_assert_eq!(back, b);
        }
        let b = bits64.to_be_bytes();
        if no_nan(Encoding::F64, &b) {
            let (mut v, mut back) = ([0f64], [0u8; 8]);
            decode(Encoding::F64, &b, &mut v);
            encode(Encoding::F64, &v, &mut back);
            prop_assert_eq!(back, b);
        }
    }

    /// Scaled integers: every raw value but the reserved minimum comes back.
    #[test]
    fn scaled_is_lossless(raw16 in (i16::MIN + 1)..=i16::MAX, raw32 in (i32::MIN + 1)..=i32::MAX, d in 0u8..=9) {
        let enc = Encoding::Scaled16 { decimals: d.min(4) };
        let b = raw16.to_be_bytes();
        let (mut v, mut back) = ([0f64], [0u8; 2]);
        decode(enc, &b, &mut v);
        prop_assert!((v[0] * 10f64.powi(d.min(4) as i32) - raw16 as f64).abs() < 1e-6);
        encode(enc, &v, &mut back);
        prop_assert_eq!(back, b);
        let enc = Encoding::Scaled32 { decimals: d };
        let b = raw32.to_be_bytes();
        let mut back = [0u8; 4];
        decode(enc, &b, &mut v);
        encode(enc, &v, &mut back);
        prop_assert_eq!(back, b);
    }

    /// G.711 keeps a 16-bit value within its quantisation step (about 1/16
    /// of the level, 16 near zero), clipping at the outermost level.
    #[test]
    fn g711_is_within_its_step(pcm in any::<i16>()) {
        for (enc, dec) in [
            (g711::linear_to_mulaw as fn(i16) -> u8, g711::mulaw_to_linear as fn(u8) -> i16),
            (g711::linear_to_alaw, g711::alaw_to_linear),
        ] {
            let back = dec(enc(pcm)) as i32;
            let err = (back - pcm as i32).abs();
            prop_assert!(err <= (pcm as i32).abs() / 16 + 16, "{} -> {}", pcm, back);
        }
        for enc in [Encoding::MuLaw, Encoding::ALaw] {
            let (mut code, mut back) = ([0u8], [0i16]);
            encode(enc, &[pcm], &mut code);
            decode(enc, &code, &mut back);
            prop_assert!((back[0] as i32 - pcm as i32).abs() <= (pcm as i32).abs() / 16 + 16);
        }
    }

    /// Decoding is stable: decode(encode(decode(x))) == decode(x), for every
    /// encoding, lossy ones included.
    #[test]
    fn decode_encode_decode_is_stable(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        for enc in ALL {
            let w = enc.bytes();
            let bytes = &bytes[..bytes.len() / w * w];
            let n = bytes.len() / w;
            let (mut a, mut b) = (vec![0f64; n], vec![0f64; n]);
            let mut wire = vec![0u8; bytes.len()];
            decode(enc, bytes, &mut a);
            encode(enc, &a, &mut wire);
            decode(enc, &wire, &mut b);
            for (x, y) in a.iter().zip(&b) {
                prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{:?}: {} vs {}", enc, x, y);
            }
        }
    }

    /// Widening and narrowing back through any wider encoding is exact.
    #[test]
    fn widening_then_narrowing_is_exact(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let pairs = [
            (Encoding::U8, Encoding::L16),
            (Encoding::U8, Encoding::F32),
            (Encoding::L16, Encoding::L24),
            (Encoding::L16, Encoding::L32),
            (Encoding::L16, Encoding::F32),
            (Encoding::L24, Encoding::L32),
            (Encoding::L24, Encoding::F32),
            (Encoding::L32, Encoding::F64),
            (Encoding::F32, Encoding::F64),
            (Encoding::MuLaw, Encoding::L16),
            (Encoding::ALaw, Encoding::L16),
        ];
        for (narrow, wide) in pairs {
            let w = narrow.bytes();
            let src = &bytes[..bytes.len() / w * w];
            if !no_nan(narrow, src) {
                continue;
            }
            let n = src.len() / w;
            let mut mid = vec![0u8; n * wide.bytes()];
            let mut back = vec![0u8; src.len()];
            prop_assert_eq!(transcode(narrow, src, wide, &mut mid), n);
            transcode(wide, &mid, narrow, &mut back);
            if matches!(narrow, Encoding::MuLaw | Encoding::ALaw) {
                // Two codes share level 0 in mu-law: compare levels.
                let (mut a, mut b) = (vec![0i16; n], vec![0i16; n]);
                decode(narrow, src, &mut a);
                decode(narrow, &back, &mut b);
                prop_assert_eq!(a, b);
            } else {
                prop_assert_eq!(&back, src, "{:?} via {:?}", narrow, wide);
            }
        }
    }
}
