//! Writing a sensor substream back to CSV.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::text::{push_field, push_value, time_decimals};
use crate::encoding;
use crate::error::{Error, Result};
use crate::format::{CsvLayout, Encoding, Origin, StreamFormat, TimeColumn};
use crate::mask::SampleMask;

/// Writes a sensor substream as CSV: the header of its origin, one row per
/// sample, times rebuilt from the media clock (`start + i / rate`, with the
/// input's decimals), values with each column's decimals.
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
                columns: (1..=format.channels).map(|i| format!("ch{i}")).collect(),
                time: Some(TimeColumn {
                    name: "time".into(),
                    index: 0,
                    start: 0.0,
                    decimals: time_decimals(rate.num(), rate.den()),
                }),
                decimals: Vec::new(),
                delimiter: b',',
            },
        };
        if layout.columns.len() != format.channels as usize {
            return Err(Error::Unwritable {
                path: path.into(),
                what: format!(
                    "the CSV header names {} value columns but the stream has {} channels",
                    layout.columns.len(),
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
        let has_time = layout.time.is_some();
        let mut time = layout.time.clone().unwrap_or(TimeColumn {
            name: String::new(),
            index: usize::MAX,
            start: 0.0,
            decimals: 0,
        });
        time.index = time.index.min(layout.columns.len());

        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = Self {
            file: BufWriter::new(file),
            path: path.into(),
            format,
            layout,
            time,
            has_time,
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
        self.line.push('\n');
        self.file
            .write_all(self.line.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
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
        for (r, row) in wire.chunks_exact(stride).enumerate() {
            let present = mask.is_none_or(|m| m.present(r));
            self.line.clear();
            let mut cells = row.chunks_exact(w);
            let mut value = 0;
            let total = self.layout.columns.len() + usize::from(self.has_time);
            for i in 0..total {
                if i > 0 {
                    self.line.push(d);
                }
                if self.has_time && i == self.time.index {
                    let t = self.time.start
                        + (self.first_row + self.written) as f64 * self.format.rate.den() as f64
                            / self.format.rate.num() as f64;
                    push_value(&mut self.line, t, Some(self.time.decimals), false);
                    continue;
                }
                let cell = cells.next().unwrap_or(&[]);
                if present && cell.len() == w {
                    let v = encoding::read_f64(enc, cell);
                    let decimals = self.layout.decimals.get(value).copied().flatten();
                    push_value(&mut self.line, v, decimals, single);
                }
                value += 1;
            }
            if total == 1 && self.line.is_empty() {
                // A lone empty cell would be a blank line; quote it.
                self.line.push_str("\"\"");
            }
            self.line.push('\n');
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
