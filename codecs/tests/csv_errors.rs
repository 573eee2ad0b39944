//! Every bad sensor CSV gets an error naming the problem and where it is.

use isochron_codecs::csv::{CsvOptions, CsvReader};
use isochron_codecs::{Encoding, Error, Rate};

fn open(text: &str, options: &CsvOptions) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sensor.csv");
    std::fs::write(&p, text).unwrap();
    let e = CsvReader::open_with(&p, options).expect_err("bad file accepted");
    assert!(e.to_string().contains("sensor.csv"), "names the file: {e}");
    e
}

fn message(text: &str) -> String {
    open(text, &CsvOptions::default()).to_string()
}

#[test]
fn non_numeric_cell_names_line_row_and_column() {
    let e = open(
        "time,x,y\n0.0,1,2\n0.1,1,2\n0.2,1,oops\n",
        &CsvOptions::default(),
    );
    assert!(
        matches!(&e, Error::CsvCell { line: 4, row: 3, column, cell, .. } if column == "y" && cell == "oops"),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(
        e.contains("line 4") && e.contains("row 3") && e.contains("'y'"),
        "{e}"
    );
    assert!(e.contains("'oops'") && e.contains("a number"), "{e}");
    let e = message("t,x\n0,1\nsoon,2\n");
    assert!(
        e.contains("line 3") && e.contains("'t'") && e.contains("a time in seconds"),
        "{e}"
    );
}

#[test]
fn irregular_time_names_the_line() {
    let mut text = String::from("time,v\n");
    for i in 0..50 {
        if i != 20 {
            text += &format!("{:.2},{i}\n", i as f64 * 0.02);
        }
    }
    let e = open(&text, &CsvOptions::default());
    // The 21st data row (t = 0.42 s, after the missing 0.40 s) is on line 22.
    assert!(matches!(e, Error::IrregularTime { line: 22, .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("irregular time column 'time'") && e.contains("line 22"),
        "{e}"
    );
    assert!(
        e.contains("step of 0.04 s") && e.contains("% of a period"),
        "{e}"
    );
    let e = message("time,v\n0,1\n1,2\n1,3\n");
    assert!(
        e.contains("line 4") && e.contains("does not come after"),
        "{e}"
    );
    // A rate given by the user that the time column contradicts.
    let opts = CsvOptions {
        rate: Some(Rate::hz(10).unwrap()),
        ..Default::default()
    };
    let e = open("time,v\n0,1\n1,2\n2,3\n", &opts).to_string();
    assert!(
        e.contains("line 3") && e.contains("the given rate is 10 Hz"),
        "{e}"
    );
}

#[test]
fn empty_files_and_missing_headers() {
    let e = open("", &CsvOptions::default());
    assert!(matches!(e, Error::Empty { .. }), "{e:?}");
    assert!(
        e.to_string().contains("is empty") && e.to_string().contains("no header"),
        "{e}"
    );
    let e = message("time,x\n");
    assert!(e.contains("is empty") && e.contains("no data rows"), "{e}");
    let e = message("\n\n");
    assert!(e.contains("is empty"), "{e}");
    let e = open("0.0,1.5\n0.1,1.6\n", &CsvOptions::default());
    assert!(matches!(e, Error::MissingHeader { line: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("missing header") && e.to_string().contains("0.0,1.5"));
    let e = message("time\n0\n1\n");
    assert!(e.contains("no value columns"), "{e}");
}

#[test]
fn shape_rate_and_encoding_problems() {
    let e = message("time,x,y\n0,1,2\n1,1\n");
    assert!(
        e.contains("line 3") && e.contains("expected 3 cells") && e.contains("found 2"),
        "{e}"
    );
    let e = message("x,y\n1,2\n");
    assert!(
        e.contains("no sample rate") && e.contains("no time column"),
        "{e}"
    );
    assert!(
        e.contains("--sensor-rate"),
        "names the option that fixes it: {e}"
    );
    let e = message("time,x\n0,1\n");
    assert!(e.contains("single data row"), "{e}");
    let opts = CsvOptions {
        encoding: Encoding::Scaled16 { decimals: 2 },
        ..Default::default()
    };
    let e = open("t,x\n0,1\n1,400.5\n", &opts).to_string();
    assert!(
        e.contains("line 3") && e.contains("'x'") && e.contains("327.67"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.csv");
    std::fs::write(&p, "t,x\n0,1\n1,2\n").unwrap();
    let opts = CsvOptions {
        encoding: Encoding::L16,
        ..Default::default()
    };
    let e = CsvReader::open_with(&p, &opts).unwrap_err().to_string();
    assert!(e.contains("sensor CSV") && e.contains("L16"), "{e}");
    let e = CsvReader::open(dir.path().join("nope.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.csv"), "{e}");
}

#[test]
fn invalid_utf8_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bin.csv");
    std::fs::write(&p, b"time,x\n0,1\n1,\xff\xfe\n").unwrap();
    let e = CsvReader::open(&p).unwrap_err().to_string();
    assert!(e.contains("bin.csv") && e.contains("line 3"), "{e}");
}
