//! Fan-out in one program: a zenoh router, a publisher of a 2 s tone and
//! two listeners that pull what they play.
//!
//! ```sh
//! cargo run --release --example fanout            # router on 127.0.0.1:7448
//! cargo run --release --example fanout -- 7500    # or another port
//! ```
//!
//! The publisher signs its catalog with its identity and wraps the stream
//! key to the listener identity it allows; the listeners pin the
//! publisher's fingerprint. Each prints the frames it played.

use std::time::{Duration, Instant};

use isochron::{
    Encoding, Frame, Identity, Publisher, PublisherOptions, Pulled, Rate, Router, StreamFormat,
    Subscriber, SubscriberOptions, SubstreamDesc, ZenohOptions, pull_channel,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).map_or(Ok(7448), |p| p.parse())?;
    let addr = format!("127.0.0.1:{port}");
    // A router of our own on loopback (udp + tcp links, no multicast).
    let router = Router::start(std::slice::from_ref(&addr), &[], None, false)?;
    let zenoh = ZenohOptions {
        routers: vec![addr],
        ..Default::default()
    };
    let publisher_id = Identity::ephemeral()?;
    let listener_id = Identity::ephemeral()?;

    // Two listeners, waiting for the stream to come on air.
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let (zenoh, pin, id) = (
            zenoh.clone(),
            publisher_id.fingerprint(),
            listener_id.clone(),
        );
        listeners.push(std::thread::spawn(move || -> Result<u64, String> {
            let (sink, frames) = pull_channel(512);
            let opts = SubscriberOptions::new("example/tone", zenoh, vec![pin]);
            let sub = Subscriber::start(opts, &id, move |_| Ok(Box::new(sink)))
                .map_err(|e| e.to_string())?;
            let mut played = 0;
            for f in frames.iter() {
                match f {
                    Pulled::Frame(_) => played += 1,
                    Pulled::End(end) => {
                        println!("listener: {played} frames, {}", end.reason);
                        break;
                    }
                }
            }
            sub.wait();
            Ok(played)
        }));
    }

    // The publisher: one mono 48 kHz substream, the listener identity
    // allowed, live once both listeners are there.
    let format = StreamFormat::new(Encoding::L16, 1, Rate::hz(48_000)?)?;
    let mut tone = SubstreamDesc::audio(0, "tone.wav", format);
    tone.length = Some(96_000);
    let mut opts = PublisherOptions::new("example/tone", zenoh);
    opts.allow = vec![listener_id.fingerprint()];
    opts.wait_listeners = 2;
    let publisher = Publisher::start(opts, &publisher_id, vec![tone])?;
    println!("publishing example/tone as {}", publisher_id.fingerprint());
    let start = Instant::now();
    for chunk in 0..100u32 {
        let samples: Vec<f32> = (0..960)
            .map(|i| {
                let t = (chunk * 960 + i) as f32 / 48_000.0;
                0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            })
            .collect();
        publisher.push(0, Frame::from_f32(format, &samples)?.into_bytes())?;
        let due = start + Duration::from_millis(20 * (chunk as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let report = publisher.finish()?;
    println!(
        "published {} frames to {} listeners (keys granted {})",
        report.stats.sender.frames(0),
        report.stats.listeners_max,
        report.stats.keys_granted
    );
    for l in listeners {
        l.join().map_err(|_| "a listener panicked")??;
    }
    router.close();
    Ok(())
}
