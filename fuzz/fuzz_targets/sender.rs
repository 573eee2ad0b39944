//! A hostile receiver against the sender core: its accept (decoded and
//! validated as the driver does), then control messages (reports, credits,
//! pauses), feedback datagrams (NACKs) and time, with the queue drained as
//! the driver drains it. Records as in `session`: `[tag][len lo][len
//! hi][bytes]`; tag 0 the accept body, 1 a feedback datagram, 2 a control
//! body, 3 a time step (ms in the first byte) with a poll.
#![no_main]

use std::time::Duration;

use isochron_codecs::{Encoding, Rate, StreamFormat};
use isochron_engine::catalog::SubstreamDesc;
use isochron_engine::config::SenderConfig;
use isochron_engine::sim::PatternSource;
use isochron_engine::wire::control::Control;
use isochron_engine::{SenderCore, Time};
use libfuzzer_sys::fuzz_target;

#[path = "common/records.rs"]
mod records;
use records::records;

fuzz_target!(|data: &[u8]| {
    let mut recs = records(data);
    let Some((0, body)) = recs.next() else { return };
    let Ok(Control::Accept(accept)) = Control::decode_body(body) else {
        return;
    };
    // The sender's own session: stereo 48 kHz, the defaults (hybrid, 16+4
    // adaptive), ten seconds long so the stream can end.
    let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
    let mut desc = SubstreamDesc::audio(0, "a.wav", format);
    desc.length = Some(480_000);
    let subs = vec![desc];
    let Ok(mut tx) = SenderCore::new("fuzz", subs.clone(), &SenderConfig::default()) else {
        return;
    };
    let mut source = PatternSource::new(&subs, None);
    let mut now = Time::from_micros(1_000_000);
    if tx.on_accept(now, &accept).is_err() {
        return;
    }
    let mut polls = 0u32;
    for (tag, body) in recs {
        match tag {
            1 => tx.on_feedback(now, body),
            2 => {
                if let Ok(m) = Control::decode_body(body) {
                    tx.on_control(now, &m);
                }
            }
            _ => {
                now += Duration::from_millis(body.first().copied().unwrap_or(1) as u64);
                polls += 1;
                if tx.poll(now, &mut source).is_err() {
                    return;
                }
                tx.expire(now);
                // Bounded output however the receiver behaves.
                let mut sent = 0usize;
                while tx.poll_transmit().is_some() {
                    sent += 1;
                    assert!(sent < 100_000, "unbounded output");
                }
                if polls > 2000 {
                    return;
                }
            }
        }
    }
});
