//! Send a 440 Hz tone to a receiver, live.
//!
//! ```sh
//! cargo run --example receive_wav -- out/            # prints ADDR and FINGERPRINT
//! cargo run --example send_tone -- ADDR FINGERPRINT  # in another terminal
//! ```
//!
//! The first time, the receiver refuses the tone and both ends print the
//! command that admits this sender (`isochron trust add sha256:...`).

use std::time::{Duration, Instant};

use isochron::codecs::{Encoding, Frame, Origin, Rate, StreamFormat};
use isochron::engine::catalog::{MediaKind, SubstreamDesc};
use isochron::engine::net::{Identity, Sender, SenderOptions, Trust};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(fingerprint)) = (args.next(), args.next()) else {
        eprintln!("usage: send_tone ADDR sha256:FINGERPRINT");
        std::process::exit(2);
    };
    let format = StreamFormat::new(Encoding::L16, 1, Rate::hz(48_000)?)?;
    let tone = SubstreamDesc {
        id: 0,
        name: "tone.wav".into(),
        kind: MediaKind::Audio,
        format,
        frame_us: 10_000,
        sample_interleave: 1,
        frames_per_packet: 1,
        origin: Origin::Raw,
        length: None,
    };
    // This user's persistent identity, presented to the receiver.
    let me = Identity::load_or_create(&Identity::default_dir())?;
    let trust = Trust::Pinned(vec![fingerprint.parse()?]);
    let opts = SenderOptions::new(addr.parse()?, trust, me);
    let tx = Sender::connect(opts, vec![tone])?;
    // Push 20 ms of tone every 20 ms for three seconds, as a live app would.
    let start = Instant::now();
    for chunk in 0..150u32 {
        let samples: Vec<f32> = (0..960)
            .map(|i| {
                let t = (chunk * 960 + i) as f32 / 48_000.0;
                0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            })
            .collect();
        tx.push(0, Frame::from_f32(format, &samples)?.into_bytes())?;
        let due = start + Duration::from_millis(20 * (chunk as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let report = tx.finish()?;
    println!(
        "sent {} frames; receiver says {} unrecovered of {}",
        report.stats.frames,
        report.receiver.map_or(0, |r| r.unrecovered),
        report.receiver.map_or(0, |r| r.received + r.unrecovered)
    );
    Ok(())
}
