//! Sensor CSV: read -> wire bytes -> write reproduces the file, and
//! arbitrary columns and values survive write -> read.

use isochron_codecs::csv::{CsvOptions, CsvReader, CsvWriter, TIME_COLUMN_NAMES};
use isochron_codecs::{CsvLayout, Encoding, Origin, Rate, SampleMask, StreamFormat, TimeColumn};
use proptest::prelude::*;

fn through(text: &str, options: &CsvOptions) -> (String, CsvReader) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, text).unwrap();
    let mut r = CsvReader::open_with(&input, options).unwrap();
    let f = r.format();
    let out = dir.path().join("out.csv");
    let mut w = CsvWriter::create(&out, f, &r.origin()).unwrap();
    let mut buf = vec![0u8; 7 * f.stride()];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        w.write(&buf[..n * f.stride()]).unwrap();
    }
    assert_eq!(w.finish().unwrap(), r.total_samples());
    // Re-open for the caller to inspect the format and origin.
    let r = CsvReader::open_with(&input, options).unwrap();
    (std::fs::read_to_string(&out).unwrap(), r)
}

fn accelerometer(rows: usize) -> String {
    let mut s = String::from("time,acc_x,acc_y,acc_z\n");
    for i in 0..rows {
        let t = 12.5 + i as f64 * 0.01;
        let x = (i as f64 * 0.1).sin() * 0.5;
        s += &format!("{t:.2},{x:.3},-9.81,{:.4}\n", i as f64 * 1e-4);
    }
    s
}

#[test]
fn a_regular_file_comes_back_byte_for_byte() {
    let text = accelerometer(250);
    let (out, r) = through(&text, &CsvOptions::default());
    assert_eq!(out, text);
    let f = r.format();
    assert_eq!(
        (f.encoding, f.channels, f.rate),
        (Encoding::F64, 3, Rate::hz(100).unwrap())
    );
    let Origin::Csv(layout) = r.origin() else {
        panic!("csv origin")
    };
    assert_eq!(layout.columns, ["acc_x", "acc_y", "acc_z"]);
    let time = layout.time.unwrap();
    assert_eq!(
        (time.name.as_str(), time.index, time.start, time.decimals),
        ("time", 0, 12.5, 2)
    );
    assert_eq!(layout.decimals, [Some(3), Some(2), Some(4)]);
}

#[test]
fn compact_encodings_keep_the_printed_values() {
    let text = accelerometer(120);
    let (out, r) = through(
        &text,
        &CsvOptions {
            encoding: Encoding::F32,
            ..Default::default()
        },
    );
    assert_eq!(r.format().stride(), 12);
    assert_eq!(out, text);
    let (out, r) = through(
        &text,
        &CsvOptions {
            encoding: Encoding::Scaled32 { decimals: 4 },
            ..Default::default()
        },
    );
    assert_eq!(r.format().stride(), 12);
    assert_eq!(out, text);
}

#[test]
fn layout_variants_survive() {
    // Semicolons, a quoted name with the separator, the time column in the
    // middle under another accepted name, empty cells for missing values.
    let text = "\"temp;C\";Timestamp;humidity\n21.5;100.000;40\n;100.250;41\n21.7;100.500;\n";
    let (out, r) = through(text, &CsvOptions::default());
    assert_eq!(out, text);
    assert_eq!(r.format().rate, Rate::hz(4).unwrap());
    // No time column: the rate comes from the caller, no column is invented.
    let text = "a\tb\n1\t2\n3\t4\n";
    let opts = CsvOptions {
        rate: Some(Rate::new(1, 60).unwrap()),
        ..Default::default()
    };
    let (out, r) = through(text, &opts);
    assert_eq!(out, text);
    assert_eq!(r.format().rate, Rate::new(1, 60).unwrap());
    // A single value column with a lost value: the empty cell stays a cell.
    let text = "t,v\n0,1\n1,\n2,3\n";
    assert_eq!(through(text, &CsvOptions::default()).0, text);
    let text = "v\n1\n\"\"\n3\n";
    let opts = CsvOptions {
        rate: Some(Rate::hz(1).unwrap()),
        ..Default::default()
    };
    assert_eq!(through(text, &opts).0, text);
}

#[test]
fn lost_rows_are_written_as_empty_cells() {
    let dir = tempfile::tempdir().unwrap();
    let f = StreamFormat::new(Encoding::F64, 2, Rate::hz(10).unwrap()).unwrap();
    let p = dir.path().join("lost.csv");
    let mut w = CsvWriter::create(&p, f, &Origin::Raw).unwrap();
    let values = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut wire = vec![0u8; 48];
    isochron_codecs::encoding::encode(Encoding::F64, &values, &mut wire);
    let words = [0b101u64];
    w.write_frame(&wire, SampleMask::new(&words, 3)).unwrap();
    w.finish().unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(text, "time,ch1,ch2\n0.0,1,2\n0.1,,\n0.2,5,6\n");
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => any::<f64>().prop_filter("finite", |v| v.is_finite()),
        2 => -1e6f64..1e6,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_ ,\"]{0,8}".prop_filter("not a time column", |s| {
        // Every name the reader takes for the time column (`ts`, `utc`...).
        !TIME_COLUMN_NAMES
            .iter()
            .any(|n| s.trim().eq_ignore_ascii_case(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any columns and values, written then read, come back bit for bit
    /// (NaN, the missing value, comes back as NaN).
    #[test]
    fn arbitrary_tables_round_trip(
        names in proptest::collection::vec(name(), 1..8),
        rows in 1usize..30,
        seed in proptest::collection::vec(value(), 240),
        rate_hz in prop_oneof![Just(1u32), Just(10), Just(50), Just(100), Just(1000)],
        start_ms in 0u32..100_000,
        time_at in 0usize..8,
        delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t')],
    ) {
        let channels = names.len();
        let values: Vec<f64> = seed.iter().cycle().take(rows * channels).copied().collect();
        let rate = Rate::hz(rate_hz).unwrap();
        let format = StreamFormat::new(Encoding::F64, channels as u16, rate).unwrap();
        let layout = CsvLayout {
            columns: names.clone(),
            time: Some(TimeColumn::seconds(
                "time",
                time_at.min(channels),
                start_ms as f64 / 1000.0,
                3,
            )),
            delimiter,
            ..CsvLayout::new(Vec::new())
        };
        let mut wire = vec![0u8; values.len() * 8];
        isochron_codecs::encoding::encode(Encoding::F64, &values, &mut wire);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("prop.csv");
        let mut w = CsvWriter::create(&p, format, &Origin::Csv(layout.clone())).unwrap();
        w.write(&wire).unwrap();
        w.finish().unwrap();

        // One row has no step to take a rate from: then the caller gives it.
        let opts = CsvOptions { rate: (rows == 1).then_some(rate), ..Default::default() };
        let mut r = CsvReader::open_with(&p, &opts).unwrap();
        prop_assert_eq!(r.format().rate, rate);
        prop_assert_eq!(r.format().channels as usize, channels);
        let Origin::Csv(back) = r.origin() else { panic!("csv origin") };
        prop_assert_eq!(&back.columns, &names);
        prop_assert_eq!(back.time.as_ref().map(|t| t.index), Some(time_at.min(channels)));
        prop_assert_eq!(back.delimiter, delimiter);
        let mut got = vec![0u8; wire.len()];
        prop_assert_eq!(r.read(&mut got).unwrap(), rows);
        let mut decoded = vec![0f64; values.len()];
        isochron_codecs::encoding::decode(Encoding::F64, &got, &mut decoded);
        for (a, b) in decoded.iter().zip(&values) {
            prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{a} vs {b}");
        }
    }

    /// Values printed with fixed decimals come back as the same text.
    #[test]
    fn fixed_decimals_round_trip_as_text(
        decimals in 0u8..7,
        ints in proptest::collection::vec(-10_000_000i64..10_000_000, 2..50),
    ) {
        let mut text = String::from("t,x\n");
        for (i, v) in ints.iter().enumerate() {
            let x = *v as f64 / 10f64.powi(decimals as i32);
            text += &format!("{i},{x:.*}\n", decimals as usize);
        }
        let (out, _) = through(&text, &CsvOptions::default());
        prop_assert_eq!(out, text);
    }
}
