//! Interleaved streaming over rubato's synchronous FFT resampler: fixed
//! chunks in and out, an integer delay, so both ends can compute the exact
//! alignment (see [`super::Alignment`]).

use rubato::{FftFixedInOut, Resampler};

use crate::error::{Error, Result};

/// Resamples an interleaved stream between two fixed rates.
pub struct Resample {
    r: FftFixedInOut<f32>,
    channels: usize,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    fill: usize,
}

impl Resample {
    /// `from` Hz to `to` Hz, in chunks of about `chunk` input samples.
    pub fn new(from: u32, to: u32, chunk: usize, channels: usize) -> Result<Self> {
        let r = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk.max(1), channels)
            .map_err(|e| Error::Opus {
                what: format!("resampler {from} Hz -> {to} Hz: {e}"),
            })?;
        let (i, o) = (r.input_frames_next(), r.output_frames_next());
        Ok(Self {
            r,
            channels,
            input: vec![vec![0.0; i]; channels],
            output: vec![vec![0.0; o]; channels],
            fill: 0,
        })
    }

    /// The delay of the output behind the input, in output samples.
    pub fn delay(&self) -> usize {
        self.r.output_delay()
    }

    /// Input samples per chunk.
    pub fn chunk_in(&self) -> usize {
        self.input[0].len()
    }

    /// Output samples per chunk.
    pub fn chunk_out(&self) -> usize {
        self.output[0].len()
    }

    /// Feeds interleaved `pcm`; appends every completed output chunk,
    /// interleaved, to `out`.
    pub fn push(&mut self, pcm: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let chunk = self.chunk_in();
        for frame in pcm.chunks_exact(self.channels) {
            for (c, &v) in frame.iter().enumerate() {
                self.input[c][self.fill] = v;
            }
            self.fill += 1;
            if self.fill == chunk {
                self.fill = 0;
                self.r
                    .process_into_buffer(&self.input, &mut self.output, None)
                    .map_err(|e| Error::Opus {
                        what: format!("resampling: {e}"),
                    })?;
                let n = self.chunk_out();
                out.reserve(n * self.channels);
                for i in 0..n {
                    out.extend(self.output.iter().map(|ch| ch[i]));
                }
            }
        }
        Ok(())
    }
}
