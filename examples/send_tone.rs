//! Send a 440 Hz tone to a receiver, live.
//!
//! ```sh
//! cargo run --release --example receive_wav -- out/ 0.0.0.0:4433   # prints ADDR and FINGERPRINT
//! cargo run --release --example send_tone -- HOST:4433 FINGERPRINT  # on this or another host
//! ```
//!
//! Arguments: the receiver's address (`host:port`, names allowed), its
//! fingerprint, and optionally the seconds of tone (default 3). It presents
//! this user's identity (`~/.config/isochron/identity`); a receiver that
//! does not list it refuses the tone, and both ends print the command that
//! admits it (`isochron trust add sha256:...`).

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use isochron::{
    Encoding, Frame, Identity, Rate, Sender, SenderOptions, StreamFormat, SubstreamDesc, Trust,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(fingerprint)) = (args.next(), args.next()) else {
        eprintln!("usage: send_tone HOST:PORT sha256:FINGERPRINT [SECONDS]");
        std::process::exit(2);
    };
    let seconds: f64 = args.next().map_or(Ok(3.0), |s| s.parse())?;
    let to = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))?;
    let format = StreamFormat::new(Encoding::L16, 1, Rate::hz(48_000)?)?;
    let tone = SubstreamDesc::audio(0, "tone.wav", format);
    let me = Identity::load_or_create(&Identity::default_dir())?;
    let opts = SenderOptions::new(to, Trust::Pinned(vec![fingerprint.parse()?]), me);
    let tx = Sender::connect(opts, vec![tone])?;
    // Push 20 ms of tone every 20 ms, as a live app would.
    let start = Instant::now();
    for chunk in 0..(seconds * 50.0).round() as u32 {
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
        report.stats.frames(0),
        report.receiver.map_or(0, |r| r.unrecovered),
        report.receiver.map_or(0, |r| r.received + r.unrecovered)
    );
    Ok(())
}
