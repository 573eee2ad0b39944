//! Writing a sensor substream back to CSV.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::number::push_number;
use super::text::{push_field, time_decimals};
use super::timestamp::push_time;
use super::timing::grid_units;
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{CsvLayout, CsvText, Encoding, NumberStyle, Origin, StreamFormat, TimeColumn};
use crate::mask::SampleMask;

/// Writes a sensor substream as CSV: the header of its origin, one row per
/// sample, times rebuilt from the media clock (`start + i / rate` in the
/// input's decimals and style, plus each row's offset when the time column
/// jittered), values in each column's number style, NaN and infinity as
/// the input spelled them, the input's line ends.
///
/// Lost rows can be written as explicit empty cells: pass the frame's
/// [`SampleMask`] to [`write_frame`](Self::write_frame), and missing-value
/// markers (NaN, the scaled encodings' reserved minimum) print as empty
/// cells too. Only whole lines reach the file, and they are flushed at
/// least once per second of media, so a crash leaves a readable file.
pub struct CsvWriter {
    file: BufWriter<File>,
    path: PathBuf,
    format: StreamFormat,
    layout: CsvLayout,
    time: TimeColumn,
    has_time: bool,
    /// Number style of each value column.
    styles: Vec<NumberStyle>,
    line: String,
    written: u64,
    /// Index of the first row written (a stream joined mid-way).
    first_row: u64,
    unflushed: u64,
    flush_every: u64,
}

impl std::fmt::Debug for CsvWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvWriter")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("layout", &self.layout)
            .field("written", &self.written)
            .finish()
    }
}

impl CsvWriter {
    /// Creates (or truncates) `path` and writes the header row. A stream
    /// that did not come from a CSV gets columns `ch1..chN` and a `time`
    /// column first.
    pub fn create(path: impl AsRef<Path>, format: StreamFormat, origin: &Origin) -> Result<Self> {
        let path = path.as_ref();
        let rate = format.rate;
        let mut layout = match origin {
            Origin::Csv(l) => l.clone(),
            _ => CsvLayout {
                time: Some(TimeColumn::seconds(
                    "time",
                    0,
                    0.0,
                    time_decimals(rate.num(), rate.den()),
                )),
                ..CsvLayout::new((1..=format.channels).map(|i| format!("ch{i}")).collect())
            },
        };
        let jitter = layout.time.as_ref().is_some_and(|t| t.jitter);
        if let Err(what) = layout.check() {
            return Err(Error::Unwritable {
                path: path.into(),
                what,
            });
        }
        if layout.columns.len() + usize::from(jitter) != format.channels as usize {
            return Err(Error::Unwritable {
                path: path.into(),
                what: format!(
                    "the CSV header names {} value columns{} but the stream has {} channels",
                    layout.columns.len(),
                    if jitter { " and time offsets" } else { "" },
                    format.channels
                ),
            });
        }
        // Scaled encodings know their decimals when the origin does not.
        let fallback = format.encoding.decimals();
        layout.decimals.resize(layout.columns.len(), None);
        for d in &mut layout.decimals {
            *d = d.or(fallback);
        }
        if !matches!(layout.delimiter, b',' | b';' | b'\t') {
            layout.delimiter = b',';
        }
        let styles = (0..layout.columns.len())
            .map(|j| match layout.text.styles.get(j) {
                Some(s) => *s,
                None => match layout.decimals[j] {
                    Some(decimals) => NumberStyle::Fixed {
                        decimals,
                        plus: false,
                    },
                    None => NumberStyle::Shortest { point: false },
                },
            })
            .collect();
        let has_time = layout.time.is_some();
        let mut time =
            layout
                .time
                .clone()
                .unwrap_or(TimeColumn::seconds(String::new(), usize::MAX, 0.0, 0));
        time.index = time.index.min(layout.columns.len());

        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = Self {
            file: BufWriter::new(file),
            path: path.into(),
            format,
            layout,
            time,
            has_time,
            styles,
            line: String::with_capacity(256),
            written: 0,
            first_row: 0,
            unflushed: 0,
            flush_every: rate.samples_before(1_000_000).max(1),
        };
        w.write_header()?;
        w.flush()?;
        Ok(w)
    }

    fn write_header(&mut self) -> Result<()> {
        self.line.clear();
        let d = self.layout.delimiter;
        let total = self.layout.columns.len() + usize::from(self.has_time);
        let mut value = 0;
        for i in 0..total {
            if i > 0 {
                self.line.push(d as char);
            }
            if self.has_time && i == self.time.index {
                push_field(&mut self.line, &self.time.name);
            } else {
                push_field(&mut self.line, &self.layout.columns[value]);
                value += 1;
            }
        }
        self.end_line();
        self.file
            .write_all(self.line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }

    fn end_line(&mut self) {
        if self.layout.text.crlf {
            self.line.push('\r');
        }
        self.line.push('\n');
    }

    /// Encoding, channels and rate of the wire bytes this writer takes.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// The rows written start at row `n` of the stream (a listener that
    /// joined mid-way): times continue from that row's, so they are the
    /// real media times. Call before the first row.
    pub fn start_at_row(&mut self, n: u64) {
        self.first_row = n;
    }

    /// Rows written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rows given as wire bytes, every one present.
    pub fn write(&mut self, wire: &[u8]) -> Result<()> {
        self.write_rows(wire, None)
    }

    /// Appends one frame's rows; rows the mask marks absent are written as
    /// a time with empty value cells (the "empty" concealment).
    pub fn write_frame(&mut self, wire: &[u8], mask: SampleMask<'_>) -> Result<()> {
        self.write_rows(wire, Some(mask))
    }

    fn write_rows(&mut self, wire: &[u8], mask: Option<SampleMask<'_>>) -> Result<()> {
        let stride = self.format.stride();
        if wire.len() % stride != 0 {
            return Err(Error::Ragged {
                len: wire.len(),
                stride,
            });
        }
        let rows = wire.len() / stride;
        if let Some(m) = mask
            && m.len() != rows
        {
            return Err(Error::Size {
                what: "the sample mask",
                expected: rows,
                found: m.len(),
            });
        }
        let enc = self.format.encoding;
        let w = enc.bytes();
        let single = matches!(enc, Encoding::F32);
        let d = self.layout.delimiter as char;
        let columns = self.layout.columns.len();
        let total = columns + usize::from(self.has_time);
        for (r, row) in wire.chunks_exact(stride).enumerate() {
            let present = mask.is_none_or(|m| m.present(r));
            self.line.clear();
            let mut cells = row.chunks_exact(w);
            let mut value = 0;
            for i in 0..total {
                if i > 0 {
                    self.line.push(d);
                }
                if self.has_time && i == self.time.index {
                    let t = self.time_units(row, present);
                    push_time(&mut self.line, t, &self.time.style, self.time.decimals);
                    continue;
                }
                let cell = cells.next().unwrap_or(&[]);
                if present && cell.len() == w {
                    push_cell(
                        &mut self.line,
                        enc,
                        cell,
                        self.styles[value],
                        &self.layout.text,
                        single,
                    );
                }
                value += 1;
            }
            if total == 1 && self.line.is_empty() {
                // A lone empty cell would be a blank line; quote it.
                self.line.push_str("\"\"");
            }
            self.end_line();
            self.file
                .write_all(self.line.as_bytes())
                .map_err(|e| Error::io(&self.path, e))?;
            self.written += 1;
            self.unflushed += 1;
        }
        if self.unflushed >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// The time of the row being written: the grid's, plus the row's own
    /// offset when the time column jittered (a lost row keeps the grid's,
    /// or the concealer's estimate).
    fn time_units(&self, row: &[u8], present: bool) -> i64 {
        let grid = self.time.start_units()
            + grid_units(
                self.first_row + self.written,
                self.format.rate,
                self.time.decimals,
            );
        if !self.time.jitter {
            return grid;
        }
        let w = self.format.encoding.bytes();
        let off = row
            .get(self.layout.columns.len() * w..)
            .filter(|c| c.len() >= w && present)
            .map(|c| encoding::read_f64(self.format.encoding, c))
            .filter(|v| v.is_finite())
            .map_or(0, |v| v.round() as i64);
        grid.saturating_add(off)
    }

    /// Pushes every complete row to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.unflushed = 0;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// Completes the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.written)
    }
}

impl Drop for CsvWriter {
    fn drop(&mut self) {
        // Nobody to report to here; BufWriter would flush too, this is explicit.
        let _ = self.file.flush();
    }
}

/// Appends one value cell: empty when missing, NaN and infinity as the
/// input spelled them, numbers in the column's style.
fn push_cell(
    out: &mut String,
    enc: Encoding,
    cell: &[u8],
    style: NumberStyle,
    text: &CsvText,
    single: bool,
) {
    if encoding::is_nan_value(enc, cell) {
        out.push_str(text.nan.as_deref().unwrap_or("NaN"));
        return;
    }
    let v = encoding::read_f64(enc, cell);
    if v.is_nan() {
        return;
    }
    if v.is_infinite() {
        if v < 0.0 {
            out.push('-');
        }
        out.push_str(text.inf.as_deref().unwrap_or("inf"));
        return;
    }
    push_number(out, v, style, single);
}
