//! Helpers the built-binary tests share.

use std::path::{Path, PathBuf};

use isochron_codecs::signal::Music;
use isochron_codecs::wav::WavWriter;
use isochron_codecs::{Encoding, Origin, Rate, StreamFormat, WavLayout};

/// `secs` of seeded music, 48 kHz stereo 16-bit, as `dir/song.wav`.
pub fn song(dir: &Path, secs: f64) -> PathBuf {
    let path = dir.join("song.wav");
    let rate = Rate::hz(48_000).unwrap();
    let format = StreamFormat::new(Encoding::L16, 2, rate).unwrap();
    let mut w = WavWriter::create(&path, format, &Origin::Wav(WavLayout::pcm(16))).unwrap();
    let n = (48_000.0 * secs) as usize;
    let mut v = vec![0.0; n * 2];
    Music::new(5, rate).fill(&mut v);
    let mut wire = vec![0u8; n * 4];
    isochron_codecs::encoding::encode::<f64>(Encoding::L16, &v, &mut wire);
    w.write(&wire).unwrap();
    w.finish().unwrap();
    path
}
