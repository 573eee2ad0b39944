//! Any bytes as a WAV stream: a clear error or samples, never a panic, an
//! endless loop or an allocation the input's sizes choose.
#![no_main]

use isochron_codecs::wav::WavReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = WavReader::from_reader(std::io::Cursor::new(data.to_vec()), "fuzz.wav", None)
    else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    // Each read either makes progress or ends; the input is finite.
    for _ in 0..=data.len() {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
});
