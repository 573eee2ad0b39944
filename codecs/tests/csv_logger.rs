//! Sensor CSVs as real loggers write them (issue 12, must-show 4):
//! timestamps jittering +-30 %, ISO 8601 times, NaN and empty cells, each
//! column in its own number style, CR LF line ends: rows, times and cells
//! come out exactly as they went in.

use isochron_codecs::csv::{CsvOptions, CsvReader, CsvWriter};
use isochron_codecs::{Encoding, Origin, Rate, SampleMask, TimeStyle};
use proptest::prelude::*;

/// Reads `text` as a file, sends it through wire bytes (lost rows per
/// `lost`) and writes it back; returns the output and the reader.
fn through(text: &str, lost: &[usize]) -> (String, CsvReader) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("logger.csv");
    std::fs::write(&input, text).unwrap();
    let mut r = CsvReader::open_with(&input, &CsvOptions::default()).unwrap();
    let f = r.format();
    let out = dir.path().join("out.csv");
    let mut w = CsvWriter::create(&out, f, &r.origin()).unwrap();
    let mut row = vec![0u8; f.stride()];
    let mut i = 0;
    while r.read(&mut row).unwrap() == 1 {
        let bits = [if lost.contains(&i) { 0u64 } else { 1 }];
        w.write_frame(&row, SampleMask::new(&bits, 1)).unwrap();
        i += 1;
    }
    w.finish().unwrap();
    (std::fs::read_to_string(&out).unwrap(), r)
}

/// A deterministic generator for the logger's jitter and values.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 50 Hz rows whose ISO times jitter +-30 % of the period, with NaN and
/// empty cells and four number styles.
fn logger(rows: usize, seed: u64) -> String {
    let mut g = Lcg(seed);
    let mut s = String::from("Timestamp (UTC);temp_C;pressure;accel;flag\r\n");
    for i in 0..rows {
        let jitter = (g.next() * 0.6 - 0.3) * 20.0; // ms, +-30 % of 20 ms
        let ms = (i as f64 * 20.0 + jitter).round() as i64 + 500;
        let (sec, ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let t = format!("2024-05-01T12:{:02}:{:02}.{ms:03}Z", sec / 60, sec % 60);
        let temp = match i % 17 {
            3 => "NaN".to_owned(),
            9 => String::new(),
            _ => format!("{:.2}", 21.0 + g.next()),
        };
        let pressure = format!("{:.4E}", 101_325.0 + g.next() * 50.0);
        let accel = match i % 23 {
            5 => String::new(),
            _ => format!("{}", ((g.next() - 0.5) * 2000.0).round() / 1000.0),
        };
        let flag = format!("{}", i % 3);
        s += &format!("{t};{temp};{pressure};{accel};{flag}\r\n");
    }
    s
}

#[test]
fn a_logger_file_comes_back_character_for_character() {
    let text = logger(600, 1);
    let (out, r) = through(&text, &[]);
    assert!(
        out == text,
        "the file changed:\n{}",
        first_difference(&text, &out)
    );
    let Origin::Csv(layout) = r.origin() else {
        panic!("csv origin")
    };
    let time = layout.time.as_ref().unwrap();
    assert!(time.jitter, "the timestamps jitter, offsets travel");
    assert!(matches!(time.style, TimeStyle::Iso(_)));
    assert_eq!(r.format().rate, Rate::hz(50).unwrap(), "the nominal grid");
    assert_eq!(r.format().channels, 5, "4 values and the time offsets");
    assert_eq!(layout.text.nan.as_deref(), Some("NaN"));
    assert!(layout.text.crlf);
}

#[test]
fn seconds_times_with_jitter_and_python_floats_come_back() {
    let mut g = Lcg(3);
    let mut text = String::from("time,x,y\n");
    for i in 0..400 {
        let t = 1_700_000_000.0 + i as f64 * 0.01 + (g.next() * 0.6 - 0.3) * 0.01;
        let x = (g.next() - 0.5) * 10f64.powi((i % 9) - 6);
        text += &format!(
            "{t:.6},{},{}\n",
            py_repr(x),
            if i % 31 == 0 { "nan" } else { "1.0" }
        );
    }
    let (out, r) = through(&text, &[]);
    assert!(out == text, "{}", first_difference(&text, &out));
    assert_eq!(r.format().rate, Rate::hz(100).unwrap());
}

#[test]
fn a_lost_row_keeps_its_place_with_a_grid_time() {
    let text = logger(100, 5);
    let (out, _) = through(&text, &[10]);
    let (a, b): (Vec<&str>, Vec<&str>) = (text.lines().collect(), out.lines().collect());
    assert_eq!(a.len(), b.len(), "rows out as in");
    let ms = |line: &str| -> i64 { line[20..23].parse().unwrap() };
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if i == 11 {
            // Data row 10: its values are gone, its time is the grid's.
            assert!(y.ends_with(";;;;"), "{y}");
            assert!(y.starts_with("2024-05-01T12:00:00."), "{y}");
            assert!((ms(y) - (ms(a[1]) + 200)).abs() <= 12, "{y}");
            assert!(
                ms(b[10]) < ms(y) && ms(y) < ms(b[12]),
                "{y} between its neighbours"
            );
        } else {
            assert_eq!(x, y, "row {i}");
        }
    }
}

#[test]
fn no_time_column_names_the_sensor_rate_option() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("norate.csv");
    std::fs::write(&p, "x,y\n1,2\n3,4\n").unwrap();
    let e = CsvReader::open(&p).unwrap_err().to_string();
    assert!(e.contains("--sensor-rate"), "{e}");
    let r = CsvReader::open_with(
        &p,
        &CsvOptions {
            rate: Some(Rate::hz(10).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.total_samples(), 2);
}

#[test]
fn compact_encodings_refuse_offsets_they_cannot_carry() {
    let mut g = Lcg(2);
    let mut text = String::from("t,v\n");
    for i in 0..50 {
        let t = i as f64 * 0.01 + (g.next() * 0.6 - 0.3) * 0.01;
        text += &format!("{t:.4},0.5\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.csv");
    std::fs::write(&p, &text).unwrap();
    let e = CsvReader::open_with(
        &p,
        &CsvOptions {
            encoding: Encoding::Scaled16 { decimals: 4 },
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("offset") && e.contains("F64"), "{e}");
}

/// Python's repr of a float, the way pandas writes it.
fn py_repr(v: f64) -> String {
    let e = format!("{v:e}");
    let exp: i32 = e.split_once('e').unwrap().1.parse().unwrap();
    if (-4..16).contains(&exp) {
        let s = format!("{v}");
        if s.contains('.') { s } else { s + ".0" }
    } else {
        let (m, x) = e.split_once('e').unwrap();
        let (neg, x) = x.strip_prefix('-').map_or((false, x), |x| (true, x));
        format!("{m}e{}{x:0>2}", if neg { '-' } else { '+' })
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: {x:?} became {y:?}", i + 1);
        }
    }
    format!("{} lines became {}", a.lines().count(), b.lines().count())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any jitter within +-35 % of the period, any decimals, NaN and empty
    /// cells anywhere: the text comes back as it was.
    #[test]
    fn jittered_files_round_trip_as_text(
        rate in prop_oneof![Just(1.0f64), Just(10.0), Just(100.0), Just(1000.0)],
        decimals in 3usize..7,
        jitter in prop::collection::vec(-0.35f64..0.35, 3..80),
        cells in prop::collection::vec(prop_oneof![Just(None), Just(Some(f64::NAN)), (-1e6f64..1e6).prop_map(Some)], 80),
        start in 0.0f64..1e5,
    ) {
        let scale = 10f64.powi(decimals as i32);
        prop_assume!(scale / rate >= 100.0); // a period spans 100 printed units
        let mut text = String::from("t,v\n");
        for (i, j) in jitter.iter().enumerate() {
            let t = ((start + (i as f64 + j) / rate) * scale).round() / scale;
            let v = match cells[i] {
                None => String::new(),
                Some(v) if v.is_nan() => "NaN".into(),
                Some(v) => format!("{v:.3}"),
            };
            text += &format!("{t:.decimals$},{v}\n");
        }
        let (out, _) = through(&text, &[]);
        prop_assert_eq!(out, text);
    }
}
