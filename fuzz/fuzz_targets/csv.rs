//! Any bytes as a logger CSV stream (with and without a rate): a clear
//! error or rows, never a panic or an endless loop.
#![no_main]

use isochron_codecs::csv::CsvStream;
use isochron_codecs::{Encoding, Rate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for rate in [None, Rate::hz(200).ok()] {
        let Ok(mut s) = CsvStream::new(data, "fuzz.csv", rate, Encoding::F64) else {
            continue;
        };
        let mut buf = vec![0u8; 4096];
        for _ in 0..=data.len() {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
});
