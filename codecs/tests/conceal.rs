//! Each concealment method fills exactly what the mask says is missing,
//! leaves complete frames and present samples bit-exact, and counts.

use isochron_codecs::conceal::{Concealed, Concealer, Lookahead, Method};
use isochron_codecs::encoding::{self, is_missing};
use isochron_codecs::signal::{Music, Sensor};
use isochron_codecs::{Encoding, Rate, SampleMask, StreamFormat};

const FRAME: usize = 480;

fn audio(enc: Encoding) -> StreamFormat {
    StreamFormat::new(enc, 2, Rate::hz(48_000).unwrap()).unwrap()
}

fn sensor(enc: Encoding) -> StreamFormat {
    StreamFormat::new(enc, 3, Rate::hz(100).unwrap()).unwrap()
}

/// `frames` frames of a generated signal as wire bytes.
fn signal(format: StreamFormat, frames: usize, frame: usize) -> Vec<u8> {
    let mut wire = vec![0u8; frames * frame * format.stride()];
    if format.channels == 2 {
        Music::new(3, format.rate).fill_wire(format.encoding, &mut wire);
    } else {
        Sensor::new(3, format.rate).fill_wire(format.encoding, &mut wire);
    }
    wire
}

fn mask_words(len: usize, missing: impl Fn(usize) -> bool) -> Vec<u64> {
    let mut w = vec![0u64; len.div_ceil(64)];
    for i in (0..len).filter(|&i| !missing(i)) {
        w[i / 64] |= 1 << (i % 64);
    }
    w
}

/// Runs every frame through a concealer; frame `lost_frame` loses the
/// samples `missing` says. Returns the output and per-frame reports.
fn run(
    method: Method,
    format: StreamFormat,
    frame: usize,
    wire: &[u8],
    lost_frame: usize,
    missing: &dyn Fn(usize) -> bool,
) -> (Vec<u8>, Vec<Concealed>) {
    let stride = format.stride();
    let mut c = Concealer::new(method, format, frame).unwrap();
    let mut out = wire.to_vec();
    let full = mask_words(frame, |_| false);
    let lossy = mask_words(frame, missing);
    let mut reports = Vec::new();
    for (f, chunk) in out.chunks_mut(frame * stride).enumerate() {
        let words = if f == lost_frame { &lossy } else { &full };
        if f == lost_frame {
            for i in (0..frame).filter(|&i| missing(i)) {
                chunk[i * stride..(i + 1) * stride].fill(0xA5); // garbage
            }
        }
        reports.push(c.conceal(chunk, SampleMask::new(words, frame)).unwrap());
    }
    (out, reports)
}

#[test]
fn complete_frames_pass_untouched() {
    for method in Method::ALL {
        for enc in [Encoding::L16, Encoding::F32, Encoding::U8, Encoding::F64] {
            let f = if matches!(method, Method::Hold | Method::Linear | Method::Empty) {
                sensor(enc)
            } else {
                audio(enc)
            };
            let frame = if f.channels == 3 { 10 } else { FRAME };
            let wire = signal(f, 20, frame);
            let (out, reports) = run(method, f, frame, &wire, usize::MAX, &|_| false);
            assert!(out == wire, "{method} {enc:?} changed a complete frame");
            assert!(reports.iter().all(|r| *r == Concealed::default()));
        }
    }
}

/// Only missing samples change, every one of them is filled.
fn check_fills(
    method: Method,
    format: StreamFormat,
    frame: usize,
    missing: &dyn Fn(usize) -> bool,
) {
    let wire = signal(format, 12, frame);
    let lost = 8;
    let (out, reports) = run(method, format, frame, &wire, lost, missing);
    let stride = format.stride();
    let w = format.encoding.bytes();
    for (f, (a, b)) in out
        .chunks(frame * stride)
        .zip(wire.chunks(frame * stride))
        .enumerate()
    {
        for i in 0..frame {
            let (x, y) = (
                &a[i * stride..(i + 1) * stride],
                &b[i * stride..(i + 1) * stride],
            );
            if f == lost && missing(i) {
                assert!(
                    x.iter().all(|&v| v != 0xA5) || x != [0xA5].repeat(stride).as_slice(),
                    "{method}: sample {i} left as garbage"
                );
                if method == Method::Empty {
                    assert!(
                        x.chunks(w).all(|c| is_missing(format.encoding, c)),
                        "{method}: {i}"
                    );
                }
            } else {
                assert_eq!(x, y, "{method}: present sample {i} of frame {f} changed");
            }
        }
    }
    let n = (0..frame).filter(|&i| missing(i)).count();
    assert_eq!(reports[lost].samples, n, "{method}");
    assert!(reports[lost].events >= 1);
}

#[test]
fn every_method_fills_exactly_the_missing_samples() {
    let every_fourth = |i: usize| i % 4 == 1;
    let fragment = |i: usize| (100..300).contains(&i);
    let whole = |_: usize| true;
    for method in [Method::Waveform, Method::Silence] {
        for enc in [
            Encoding::L16,
            Encoding::L24,
            Encoding::MuLaw,
            Encoding::F32,
            Encoding::U8,
        ] {
            check_fills(method, audio(enc), FRAME, &every_fourth);
            check_fills(method, audio(enc), FRAME, &fragment);
            check_fills(method, audio(enc), FRAME, &whole);
        }
    }
    for method in [Method::Hold, Method::Linear, Method::Empty] {
        for enc in [
            Encoding::F64,
            Encoding::F32,
            Encoding::Scaled32 { decimals: 4 },
        ] {
            check_fills(method, sensor(enc), 10, &|i| i % 3 == 2);
            check_fills(method, sensor(enc), 10, &|i| (3..7).contains(&i));
            check_fills(method, sensor(enc), 10, &whole);
        }
    }
}

#[test]
fn silence_is_zero_and_interpolation_is_close() {
    let f = audio(Encoding::F32);
    let wire = signal(f, 12, FRAME);
    let (out, _) = run(Method::Silence, f, FRAME, &wire, 8, &|i| i == 10);
    let mut v = [1f32; 2];
    encoding::decode(Encoding::F32, &out[(8 * FRAME + 10) * 8..][..8], &mut v);
    assert_eq!(v, [0.0, 0.0]);
    // One missing sample of a 48 kHz music signal: cubic interpolation
    // lands within a small fraction of full scale.
    let (out, r) = run(Method::Waveform, f, FRAME, &wire, 8, &|i| i == 10);
    assert_eq!(
        r[8],
        Concealed {
            samples: 1,
            events: 1
        }
    );
    let mut want = [0f32; 2];
    encoding::decode(Encoding::F32, &wire[(8 * FRAME + 10) * 8..][..8], &mut want);
    encoding::decode(Encoding::F32, &out[(8 * FRAME + 10) * 8..][..8], &mut v);
    assert!(
        (v[0] - want[0]).abs() < 0.01 && (v[1] - want[1]).abs() < 0.01,
        "{v:?} vs {want:?}"
    );
}

#[test]
fn sensor_methods_hold_and_draw_lines() {
    let f = StreamFormat::new(Encoding::F64, 1, Rate::hz(10).unwrap()).unwrap();
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut wire = vec![0u8; 48];
    encoding::encode(Encoding::F64, &values, &mut wire);
    let words = [0b100001u64]; // only the first and last arrived
    for (method, want) in [
        (Method::Hold, [1.0, 1.0, 1.0, 1.0, 1.0, 6.0]),
        (Method::Linear, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ] {
        let mut c = Concealer::new(method, f, 6).unwrap();
        let mut frame = wire.clone();
        let r = c.conceal(&mut frame, SampleMask::new(&words, 6)).unwrap();
        assert_eq!(
            r,
            Concealed {
                samples: 4,
                events: 1
            }
        );
        let mut got = [0f64; 6];
        encoding::decode(Encoding::F64, &frame, &mut got);
        assert_eq!(got, want, "{method}");
    }
    // Linear across a whole lost frame, with the next frame as look-ahead:
    // last value 2 at index 1, next value 8 at index 4.
    let mut c = Concealer::new(Method::Linear, f, 2).unwrap();
    let mut a = vec![0u8; 16];
    encoding::encode(Encoding::F64, &[1.0, 2.0], &mut a);
    c.conceal(&mut a, SampleMask::new(&[0b11], 2)).unwrap();
    let mut lost = vec![0u8; 16];
    let mut next = vec![0u8; 16];
    encoding::encode(Encoding::F64, &[8.0, 10.0], &mut next);
    let la = Lookahead {
        bytes: &next,
        mask: SampleMask::new(&[0b11], 2),
    };
    c.conceal_with(&mut lost, SampleMask::new(&[0], 2), Some(la))
        .unwrap();
    let mut got = [0f64; 2];
    encoding::decode(Encoding::F64, &lost, &mut got);
    assert_eq!(got, [4.0, 6.0]);
    // Without look-ahead, linear holds.
    let mut lost = vec![0u8; 16];
    c.conceal(&mut lost, SampleMask::new(&[0], 2)).unwrap();
    encoding::decode(Encoding::F64, &lost, &mut got);
    assert_eq!(got, [8.0, 10.0].map(|_| got[0]));
}

#[test]
fn events_span_frames_and_stats_add_up() {
    let f = audio(Encoding::L16);
    let mut c = Concealer::new(Method::Waveform, f, FRAME).unwrap();
    let wire = signal(f, 10, FRAME);
    let full = mask_words(FRAME, |_| false);
    let none = mask_words(FRAME, |_| true);
    let tail = mask_words(FRAME, |i| i >= 400);
    for (i, chunk) in wire.chunks(FRAME * 4).enumerate() {
        let mut frame = chunk.to_vec();
        let words = match i {
            5 => &tail,
            6 | 7 => &none,
            _ => &full,
        };
        c.conceal(&mut frame, SampleMask::new(words, FRAME))
            .unwrap();
    }
    let s = c.stats();
    assert_eq!(s.frames, 10);
    assert_eq!((s.frames_partial, s.frames_lost), (1, 2));
    assert_eq!(s.samples, 80 + 2 * FRAME as u64);
    assert_eq!(s.events, 1, "one gap across three frames is one event");
    assert_eq!(s.synthesized, s.samples);
}

#[test]
fn bad_calls_are_errors_not_panics() {
    let f = audio(Encoding::L16);
    let mut c = Concealer::new(Method::Waveform, f, 100).unwrap();
    let words = [u64::MAX; 4];
    let mut short = vec![0u8; 10];
    assert!(c.conceal(&mut short, SampleMask::new(&words, 100)).is_err());
    let mut long = vec![0u8; 200 * 4];
    assert!(c.conceal(&mut long, SampleMask::new(&words, 200)).is_err());
    let mut ok = vec![0u8; 100 * 4];
    let la = Lookahead {
        bytes: &[0u8; 3],
        mask: SampleMask::new(&words, 1),
    };
    assert!(
        c.conceal_with(&mut ok, SampleMask::new(&words, 100), Some(la))
            .is_err()
    );
    assert_eq!(
        c.conceal(&mut [], SampleMask::new(&[], 0)).unwrap(),
        Concealed::default()
    );
    assert!(Concealer::new(Method::Waveform, f, usize::MAX).is_err());
    assert!(Concealer::for_frame_duration(Method::Hold, f, u64::MAX).is_err());
    assert!(Concealer::for_frame_duration(Method::Waveform, f, 20_000).is_ok());
    assert_eq!("Linear".parse::<Method>().unwrap(), Method::Linear);
    assert!(
        "loud"
            .parse::<Method>()
            .unwrap_err()
            .to_string()
            .contains("loud")
    );
}

/// No clicks: the fill joins the signal before it (and, with look-ahead,
/// after it) with steps no larger than the music itself takes.
#[test]
fn fills_join_the_signal_without_jumps() {
    let f = audio(Encoding::F32);
    let frames = 40;
    let wire = signal(f, frames, FRAME);
    let mut x = vec![0f64; frames * FRAME * 2];
    encoding::decode(Encoding::F32, &wire, &mut x);
    let left: Vec<f64> = x.iter().step_by(2).copied().collect();
    let natural = left
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f64::max);
    let full = mask_words(FRAME, |_| false);
    let none = mask_words(FRAME, |_| true);
    for lookahead in [false, true] {
        let mut c = Concealer::new(Method::Waveform, f, FRAME).unwrap();
        let mut out = wire.clone();
        let stride = f.stride();
        for i in 0..frames {
            let (a, b) = (i * FRAME * stride, (i + 1) * FRAME * stride);
            let lost = i % 10 == 7;
            let mask = SampleMask::new(if lost { &none } else { &full }, FRAME);
            let next = (lookahead && i + 1 < frames).then(|| Lookahead {
                bytes: &wire[b..b + FRAME * stride],
                mask: SampleMask::new(&full, FRAME),
            });
            let (_, rest) = out.split_at_mut(a);
            c.conceal_with(&mut rest[..FRAME * stride], mask, next)
                .unwrap();
        }
        let mut y = vec![0f64; x.len()];
        encoding::decode(Encoding::F32, &out, &mut y);
        let yl: Vec<f64> = y.iter().step_by(2).copied().collect();
        for lost in (7..frames).step_by(10) {
            let s = lost * FRAME;
            let end = if lookahead {
                s + FRAME + 1
            } else {
                s + FRAME - 1
            };
            let worst = yl[s - 1..end]
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0, f64::max);
            assert!(
                worst <= 1.5 * natural,
                "look-ahead {lookahead}, frame {lost}: step {worst:.4} vs natural {natural:.4}"
            );
        }
    }
}
