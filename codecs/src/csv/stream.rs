//! Sensor CSV rows as they arrive on a byte stream (a pipe, standard input):
//! one row per line, handed on line by line, never waiting for more than
//! the stream has delivered.
//!
//! Unlike [`super::CsvReader`] nothing is surveyed ahead: the header names
//! the columns, the first row gives each column's decimals, and the rate
//! comes from the caller or from the first two rows' time column.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use super::TIME_COLUMN_NAMES;
use super::text::decimals_of;
use super::timing::simplest_rate;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{CsvLayout, Encoding, Origin, Rate, StreamFormat, TimeColumn};

/// Longest line accepted (a hostile or binary stream cannot grow memory).
const MAX_LINE: usize = 64 * 1024;

/// Reads sensor rows from a stream as they come.
pub struct CsvStream<R: Read> {
    name: PathBuf,
    input: BufReader<R>,
    line: String,
    /// Rows read ahead to find the rate, served first.
    ahead: Vec<Vec<f64>>,
    format: StreamFormat,
    layout: CsvLayout,
    value_index: Vec<usize>,
    /// Every column's name (the time column's too), for errors.
    headers: Vec<String>,
    line_no: u64,
    rows: u64,
}

impl<R: Read> std::fmt::Debug for CsvStream<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvStream")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("rows", &self.rows)
            .finish()
    }
}

impl<R: Read> CsvStream<R> {
    /// Read the header (and, without a `rate`, the first two rows, whose
    /// times give it). `name` labels errors (e.g. `<stdin>`).
    pub fn new(input: R, name: &str, rate: Option<Rate>, encoding: Encoding) -> Result<Self> {
        if !matches!(
            encoding,
            Encoding::F64 | Encoding::F32 | Encoding::Scaled16 { .. } | Encoding::Scaled32 { .. }
        ) {
            return Err(Error::Encoding {
                what: "a sensor CSV (use F64, F32, Scaled16 or Scaled32)",
                encoding,
            });
        }
        let mut s = Self {
            name: name.into(),
            input: BufReader::new(input),
            line: String::new(),
            ahead: Vec::new(),
            // Replaced below once the header is known.
            format: StreamFormat::new(encoding, 1, Rate::hz(1)?)?,
            layout: CsvLayout::new(Vec::new()),
            value_index: Vec::new(),
            headers: Vec::new(),
            line_no: 0,
            rows: 0,
        };
        if !s.next_line()? {
            return Err(s.empty("no header row"));
        }
        let header = s.line.trim_end_matches(['\r', '\n']).to_owned();
        let delimiter = [b',', b';', b'\t']
            .into_iter()
            .max_by_key(|&d| header.bytes().filter(|&c| c == d).count())
            .filter(|&d| header.as_bytes().contains(&d))
            .unwrap_or(b',');
        let headers = header_fields(&header, delimiter);
        let time = headers.iter().position(|h| {
            TIME_COLUMN_NAMES
                .iter()
                .any(|n| h.trim().eq_ignore_ascii_case(n))
        });
        s.value_index = (0..headers.len()).filter(|&i| Some(i) != time).collect();
        if s.value_index.is_empty() {
            return Err(s.empty("no value column in the header"));
        }
        let channels = u16::try_from(s.value_index.len()).map_err(|_| Error::Unwritable {
            path: s.name.clone(),
            what: "more value columns than a stream carries".into(),
        })?;
        s.layout.delimiter = delimiter;
        s.layout.columns = s.value_index.iter().map(|&i| headers[i].clone()).collect();
        s.headers = headers.clone();
        // The first row fixes the decimals (and starts the time column).
        let Some(first) = s.parse_row(headers.len())? else {
            return Err(s.empty("no data row after the header"));
        };
        let cells = s.line_decimals();
        s.layout.decimals = s
            .value_index
            .iter()
            .map(|&i| cells.get(i).copied().flatten())
            .collect();
        let times = time.map(|i| (i, first[i], cells.get(i).copied().flatten()));
        s.ahead.push(first);
        let rate = match (rate, times) {
            (Some(r), _) => r,
            (None, Some((i, t0, _))) => {
                let Some(second) = s.parse_row(headers.len())? else {
                    return Err(s.no_rate());
                };
                let dt = second[i] - t0;
                s.ahead.push(second);
                simplest_rate(1.0 / dt, 1e-3).ok_or_else(|| s.no_rate())?
            }
            (None, None) => return Err(s.no_rate()),
        };
        // Rows from a pipe play on the grid in seconds (no per-row offsets:
        // the stream cannot be surveyed ahead for jitter).
        s.layout.time = times.map(|(index, start, decimals)| {
            TimeColumn::seconds(
                headers[index].clone(),
                index,
                start,
                decimals.unwrap_or_else(|| super::text::time_decimals(rate.num(), rate.den())),
            )
        });
        s.format = StreamFormat::new(encoding, channels, rate)?;
        Ok(s)
    }

    fn empty(&self, what: &str) -> Error {
        Error::Empty {
            path: self.name.clone(),
            what: what.into(),
        }
    }

    fn no_rate(&self) -> Error {
        Error::NoRate {
            path: self.name.clone(),
            why: " from its first two rows (give the rate, or a time column that ticks)".into(),
        }
    }

    /// The next line into `self.line`; false at the end of the stream.
    fn next_line(&mut self) -> Result<bool> {
        self.line.clear();
        let n = (&mut self.input)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut self.line)
            .map_err(|e| Error::io(&self.name, e))?;
        self.line_no += 1;
        if n > MAX_LINE {
            return Err(Error::io(
                &self.name,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {} is longer than {MAX_LINE} bytes", self.line_no),
                ),
            ));
        }
        Ok(n > 0)
    }

    /// The next non-blank row, every cell as a number (NaN when empty).
    /// The line stays in `self.line` (the first row's decimals are read
    /// from it).
    ///
    /// A row has exactly the header's cells, as in a file
    /// ([`super::CsvReader`]): a short row would make a whole row of
    /// values (`8 x columns` bytes) out of one or two bytes of input, so a
    /// wide header and a stream of `0` lines cost work quadratic in the
    /// input; with every cell present, each value costs at least one byte.
    fn parse_row(&mut self, columns: usize) -> Result<Option<Vec<f64>>> {
        loop {
            if !self.next_line()? {
                return Ok(None);
            }
            let text = self.line.trim_end_matches(['\r', '\n']);
            if text.trim().is_empty() && columns > 1 {
                continue;
            }
            let delimiter = self.layout.delimiter as char;
            let shape = |found: usize| Error::CsvShape {
                path: self.name.clone(),
                line: self.line_no,
                expected: columns,
                found,
            };
            let mut values = Vec::with_capacity(columns);
            for cell in text.split(delimiter) {
                if values.len() == columns {
                    return Err(shape(text.split(delimiter).count()));
                }
                let (cell, j) = (cell.trim(), values.len());
                values.push(if cell.is_empty() {
                    f64::NAN
                } else {
                    cell.parse().map_err(|_| Error::CsvCell {
                        path: self.name.clone(),
                        line: self.line_no,
                        row: self.rows + self.ahead.len() as u64 + 1,
                        column: self.headers.get(j).cloned().unwrap_or_default(),
                        cell: cell.into(),
                        expected: "a number".into(),
                    })?
                });
            }
            if values.len() != columns {
                return Err(shape(values.len()));
            }
            return Ok(Some(values));
        }
    }

    /// Each cell's decimals in the line last read (the first row's).
    fn line_decimals(&self) -> Vec<Option<u8>> {
        self.line
            .trim_end_matches(['\r', '\n'])
            .split(self.layout.delimiter as char)
            .map(decimals_of)
            .collect()
    }

    /// Encoding, channels (value columns) and rate of the wire bytes.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// [`Origin::Csv`] with the stream's header, for the session catalog.
    pub fn origin(&self) -> Origin {
        Origin::Csv(self.layout.clone())
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads rows into `out` as wire bytes: at least one (waiting for it),
    /// then more only while the stream has them buffered, so each row goes
    /// on as soon as it arrived. Returns the rows read, 0 at the end.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        let stride = self.format.stride();
        let max = out.len() / stride;
        let columns = self.headers.len();
        let mut n = 0;
        while n < max {
            if n > 0 && self.ahead.is_empty() && self.input.buffer().is_empty() {
                break;
            }
            let row = if self.ahead.is_empty() {
                match self.parse_row(columns)? {
                    Some(v) => v,
                    None => break,
                }
            } else {
                self.ahead.remove(0)
            };
            let w = self.format.encoding.bytes();
            let slot = &mut out[n * stride..(n + 1) * stride];
            for (cell, &col) in slot.chunks_exact_mut(w).zip(&self.value_index) {
                encoding::write_f64(self.format.encoding, row[col], cell);
            }
            n += 1;
            self.rows += 1;
        }
        Ok(n)
    }
}

/// The header's fields: split on `delimiter` outside double quotes, the
/// quotes removed (`""` within quotes is one quote), as a CSV reader reads
/// them. By hand in one pass: building a CSV reader's state machine costs
/// far more than reading a header (most of each fuzzed input's time).
fn header_fields(line: &str, delimiter: u8) -> Vec<String> {
    if line.is_empty() {
        return Vec::new();
    }
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("one field at least");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            c if !quoted && c == delimiter as char => fields.push(String::new()),
            c => field.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_as_they_are_read_with_the_rate_from_the_time_column() {
        let text = "time,x,y\n0.000,1.5,2\n0.005,1.25,\n0.010,-3,4\n";
        let mut s = CsvStream::new(text.as_bytes(), "<stdin>", None, Encoding::F64).unwrap();
        assert_eq!(s.format().rate, Rate::hz(200).unwrap());
        assert_eq!(s.format().channels, 2);
        let Origin::Csv(layout) = s.origin() else {
            panic!("a CSV origin")
        };
        assert_eq!(layout.columns, ["x", "y"]);
        assert_eq!(layout.decimals, [Some(1), Some(0)]);
        assert_eq!(layout.time.as_ref().map(|t| t.decimals), Some(3));
        let mut out = [0u8; 16 * 8];
        assert_eq!(s.read(&mut out).unwrap(), 3);
        let v = |i: usize| f64::from_be_bytes(out[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!((v(0), v(1), v(2)), (1.5, 2.0, 1.25));
        assert!(v(3).is_nan(), "an empty cell is a missing value");
        assert_eq!((v(4), v(5)), (-3.0, 4.0));
        assert_eq!(s.read(&mut out).unwrap(), 0);
    }

    #[test]
    fn bad_streams_say_what_is_wrong() {
        let e = CsvStream::new("x,y\n1,2\n".as_bytes(), "<stdin>", None, Encoding::F64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("<stdin>"), "{e}");
        let e = CsvStream::new("".as_bytes(), "<stdin>", None, Encoding::F64).unwrap_err();
        assert!(e.to_string().contains("no header row"), "{e}");
        let rate = Some(Rate::hz(10).unwrap());
        let mut s =
            CsvStream::new("x\n1\nabc\n".as_bytes(), "<stdin>", rate, Encoding::F64).unwrap();
        let mut out = [0u8; 64];
        let e = s.read(&mut out).and_then(|_| s.read(&mut out)).unwrap_err();
        assert!(e.to_string().contains("abc"), "{e}");
        let long = format!("x\n{}\n", "1".repeat(MAX_LINE + 10));
        let mut s = CsvStream::new(long.as_bytes(), "<stdin>", rate, Encoding::F64);
        assert!(s.as_mut().map_or(true, |s| s.read(&mut out).is_err()));
    }

    /// Reads `text` to its end (or first error): rows, values decoded.
    fn drain(text: &str, rate: Option<Rate>) -> Result<(u64, u64)> {
        let mut s = CsvStream::new(text.as_bytes(), "<stdin>", rate, Encoding::F64)?;
        let mut out = vec![0u8; 1 << 16];
        while s.read(&mut out)? > 0 {}
        Ok((s.rows(), s.rows() * s.format().channels as u64))
    }

    /// The fuzzer's slow shape (about 20 ms an input): a wide header, then
    /// rows of one short cell, each once made into a whole row of NaNs
    /// (512 values from 2 bytes). Such a row is refused where it is, as a
    /// file's is; and what is read costs at most one value per byte.
    #[test]
    fn short_rows_under_a_wide_header_are_refused_not_expanded() {
        let rate = Some(Rate::hz(10).unwrap());
        let header = format!("{}\n", ",".repeat(511));
        let slow = format!("{header}{}", "0\n".repeat(20_000));
        match drain(&slow, rate) {
            Err(Error::CsvShape {
                line: 2,
                expected: 512,
                found: 1,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // Later in the stream, and too many cells, likewise.
        let e = drain("x,y\n1,2\n3,4\n5\n", rate).unwrap_err();
        assert!(
            matches!(
                e,
                Error::CsvShape {
                    line: 4,
                    found: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = drain("t,x\n0,1\n0.1,2,3\n", None).unwrap_err();
        assert!(
            matches!(
                e,
                Error::CsvShape {
                    line: 3,
                    found: 3,
                    ..
                }
            ),
            "{e}"
        );
        // Whole rows of the wide header pass (empty cells are missing
        // values), as do blank lines of a single column.
        for (text, rows) in [
            (format!("{header}{}", header.repeat(2_000)), 2_000),
            (format!("x\n{}", "\n".repeat(20_000)), 20_000),
            (format!("t;a;b\n{}", "0;1;2\n".repeat(3)), 3),
        ] {
            let (got, values) = drain(&text, rate).unwrap();
            assert_eq!(got, rows);
            assert!(
                values <= text.len() as u64,
                "{values} values from {} bytes",
                text.len()
            );
        }
    }

    #[test]
    fn header_fields_are_read_as_a_csv_reader_reads_them() {
        assert_eq!(header_fields("time,x,y", b','), ["time", "x", "y"]);
        assert_eq!(
            header_fields("\"acc, x\";\"say \"\"hi\"\"\";;t", b';'),
            ["acc, x", "say \"hi\"", "", "t"]
        );
        assert_eq!(header_fields(" a \t b", b'\t'), [" a ", " b"]);
        assert!(header_fields("", b',').is_empty());
        let rate = Some(Rate::hz(10).unwrap());
        let s = CsvStream::new(
            "\"a,b\",c\n1,2\n".as_bytes(),
            "<stdin>",
            rate,
            Encoding::F64,
        )
        .unwrap();
        let Origin::Csv(layout) = s.origin() else {
            panic!("a CSV origin")
        };
        assert_eq!(layout.columns, ["a,b", "c"]);
    }
}
