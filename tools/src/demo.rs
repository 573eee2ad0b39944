//! `isochron demo`: no arguments, no files. A generated song and a 3-axis
//! sensor track stream over real QUIC on loopback through an impaired link
//! (5 % loss, 20 +- 10 ms jitter); the received files, statistics and a
//! short report land in the output directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use isochron_codecs::csv::CsvWriter;
use isochron_codecs::signal::{Music, Sensor};
use isochron_codecs::wav::{WavReader, WavWriter};
use isochron_codecs::{CsvLayout, Encoding, Origin, Rate, StreamFormat, TimeColumn, WavLayout};
use isochron_engine::files::{InputOptions, open_input};
use isochron_engine::net::relay::{RelayConfig, RelayHandle};
use isochron_engine::net::{
    Admission, FileSink, Identity, Receiver, ReceiverEvent, ReceiverOptions, Sender, SenderOptions,
    SessionEnd, Trust,
};
use isochron_engine::sim::{Impairment, Loss};
use isochron_engine::stats::{ReceiverStats, SenderStats};
use serde_json::json;

use crate::{args, say, write_json};

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the sent and received files, stats.json and report.md
    #[arg(long, default_value = "isochron-demo", value_name = "DIR")]
    out: PathBuf,
    /// Length of the generated media
    #[arg(long, default_value = "10s", value_parser = args::duration)]
    duration: Duration,
    /// Seed of the media and of the link's random decisions
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn write_media(dir: &Path, secs: f64, seed: u64) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let rate = Rate::hz(48_000)?;
    let format = StreamFormat::new(Encoding::L16, 2, rate)?;
    let song = dir.join("song.wav");
    let mut w = WavWriter::create(&song, format, &Origin::Wav(WavLayout::pcm(16)))?;
    let n = (48_000.0 * secs) as usize;
    let mut music = Music::new(seed, rate);
    let mut buf = vec![0.0; 4800 * 2];
    let mut wire = vec![0u8; 4800 * 4];
    let mut done = 0;
    while done < n {
        let k = (n - done).min(4800);
        music.fill(&mut buf[..k * 2]);
        let len = isochron_codecs::encoding::encode::<f64>(Encoding::L16, &buf[..k * 2], &mut wire);
        w.write(&wire[..len * 2])?;
        done += k;
    }
    w.finish()?;

    let srate = Rate::hz(200)?;
    let sformat = StreamFormat::new(Encoding::F64, 3, srate)?;
    let imu = dir.join("imu.csv");
    let origin = Origin::Csv(CsvLayout {
        columns: vec!["ax".into(), "ay".into(), "az".into()],
        time: Some(TimeColumn::seconds("time", 0, 0.0, 3)),
        decimals: vec![Some(4); 3],
        ..CsvLayout::new(Vec::new())
    });
    let mut w = CsvWriter::create(&imu, sformat, &origin)?;
    let rows = (200.0 * secs) as usize;
    let mut v = vec![0.0; rows * 3];
    Sensor::new(seed, srate).fill(&mut v);
    for x in &mut v {
        *x = (*x * 1e4).round() / 1e4;
    }
    let mut wire = vec![0u8; v.len() * 8];
    isochron_codecs::encoding::encode::<f64>(Encoding::F64, &v, &mut wire);
    w.write(&wire)?;
    w.finish()?;
    Ok((song, imu))
}

fn samples_f64(path: &Path) -> Result<Vec<f64>> {
    let mut r = WavReader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let f = r.format();
    let mut wire = vec![0u8; r.total_samples() as usize * f.stride()];
    let n = r.read(&mut wire)?;
    let mut out = vec![0.0; n * f.channels as usize];
    isochron_codecs::encoding::decode::<f64>(f.encoding, &wire[..n * f.stride()], &mut out);
    Ok(out)
}

pub fn run(a: DemoArgs) -> Result<u8> {
    let secs = a.duration.as_secs_f64();
    let sent_dir = a.out.join("sent");
    let recv_dir = a.out.join("received");
    if recv_dir.exists() {
        std::fs::remove_dir_all(&recv_dir)
            .with_context(|| format!("clearing {}", recv_dir.display()))?;
    }
    eprintln!("generating {secs} s of music (48 kHz stereo) and a 3-axis sensor at 200 Hz");
    let (song, imu) = write_media(&sent_dir, secs, a.seed)?;

    // Two throwaway identities, one per end. Pairing is one step each way:
    // the receiver admits the sender's fingerprint (between hosts:
    // `isochron trust add`), the sender pins the receiver's (`--pin`).
    let identity = Identity::ephemeral()?;
    let sender_identity = Identity::ephemeral()?;
    eprintln!(
        "pairing: the receiver admits sender {} (between hosts: `isochron trust add`)",
        sender_identity.fingerprint()
    );
    let admission = Admission::only([sender_identity.fingerprint()]);
    let dir = recv_dir.clone();
    let rx = Receiver::start(
        ReceiverOptions::new("127.0.0.1:0".parse()?, admission),
        &identity,
        move |info| {
            FileSink::create(&dir, &info.session)
                .map(|s| Box::new(s) as _)
                .map_err(|e| e.to_string())
        },
    )?;
    let link = Impairment {
        loss: Loss::from_mean(0.05, 1.0),
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        ..Default::default()
    };
    let relay = RelayHandle::start(RelayConfig {
        listen: "127.0.0.1:0".parse()?,
        upstream: rx.local_addr(),
        forward: link.clone(),
        backward: link,
        seed: a.seed,
    })?;
    eprintln!(
        "receiver {} ({}), impaired link {} (5 % loss, 20 +- 10 ms each way)",
        rx.local_addr(),
        rx.fingerprint(),
        relay.local_addr()
    );
    let inputs = [
        open_input(&song, 0, &InputOptions::default())?,
        open_input(&imu, 1, &InputOptions::default())?,
    ];
    let trust = Trust::Pinned(vec![rx.fingerprint()]);
    let mut opts = SenderOptions::new(relay.local_addr(), trust, sender_identity);
    opts.name = "demo".into();
    let mut tx = Sender::connect(opts, inputs.iter().map(|f| f.desc.clone()).collect())?;
    for (i, f) in inputs.into_iter().enumerate() {
        tx.feed_from(i, f.reader)?;
    }
    let accept = *tx.accept();
    // What was configured (adaptive FEC then varies m, and blocks the time
    // budget closes early hold fewer sources: the code used is reported
    // from the sender's counters).
    let fec = isochron_engine::SenderConfig::default().fec;
    eprintln!("streaming live for {secs} s...");
    let stop = crate::interrupted();
    while !tx.is_finished() && !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let interrupted = stop.load(std::sync::atomic::Ordering::SeqCst);
    let sent = if interrupted {
        eprintln!("interrupted: stopping the demo stream");
        tx.stop()?
    } else {
        tx.wait()?
    };
    let end = loop {
        match rx.events().recv_timeout(Duration::from_secs(30)) {
            Ok(ReceiverEvent::Ended { end, .. }) => break *end,
            Ok(ReceiverEvent::Refused { reason, .. }) => {
                bail!("the receiver refused the demo stream: {reason}")
            }
            Ok(ReceiverEvent::Started(_)) => {}
            Err(_) => bail!("the demo stream did not end"),
        }
    };
    let link_stats = relay.stop();
    let received_song = end
        .files
        .iter()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "wav"))
        .map(|(p, _)| p.clone())
        .context("no WAV was received")?;
    let snr = isochron_codecs::quality::snr_db(&samples_f64(&received_song)?, &samples_f64(&song)?);
    let s = &end.stats;
    let rows = summary_rows(s, &sent.stats, &end, snr);
    let table = rows
        .iter()
        .map(|(k, v)| format!("| {k} | {v} |"))
        .collect::<Vec<_>>()
        .join("\n");
    say(format!("\n| measure | value |\n|---|---|\n{table}"));
    std::fs::write(
        a.out.join("report.md"),
        format!(
            "# isochron demo\n\n{secs} s of 48 kHz stereo music and a 3-axis 200 Hz sensor, sent live over QUIC \
             on loopback through a relay dropping 5 % of packets each way with 20 +- 10 ms of delay. \
             FEC {}+{} configured (adaptive: the code used is in the table) and retransmission where the latency leaves a round trip (hybrid recovery), block window {:.1} ms (chosen by the receiver from its {} ms latency).\n\n\
             | measure | value |\n|---|---|\n{table}\n\nFiles: `sent/` (originals), `received/` (what played out).\n",
            fec.k,
            fec.m,
            accept.fec_window_us as f64 / 1e3,
            accept.latency_us / 1000,
        ),
    )?;
    write_json(
        &a.out.join("stats.json"),
        &json!({ "receiver": s, "sender": sent.stats, "link": link_stats, "snr_db": if snr.is_finite() { json!(snr) } else { json!("bit-exact") } }),
    )?;
    eprintln!("wrote {}", a.out.display());
    Ok(if interrupted {
        crate::exit::INTERRUPTED
    } else {
        0
    })
}

fn summary_rows(
    s: &ReceiverStats,
    sent: &SenderStats,
    end: &SessionEnd,
    snr: f64,
) -> Vec<(String, String)> {
    let ms = |us: u64| us as f64 / 1e3;
    let blocks = sent.fec_blocks.max(1) as f64;
    let mut frames: Vec<(String, String)> = s
        .substreams
        .iter()
        .map(|d| {
            (
                format!("frames concealed ({})", d.name),
                format!("{} of {}", d.frames.concealed, d.frames.played),
            )
        })
        .collect();
    let p = &s.packets;
    let pct = |n: u64| {
        if p.expected == 0 {
            0.0
        } else {
            100.0 * n as f64 / p.expected as f64
        }
    };
    vec![
        ("completed".into(), (!end.truncated).to_string()),
        (
            "network delay p50 / p99".into(),
            format!(
                "{:.1} / {:.1} ms",
                ms(s.network_delay.p50_us),
                ms(s.network_delay.p99_us)
            ),
        ),
        (
            "end-to-end delay p50 / p99".into(),
            format!(
                "{:.1} / {:.1} ms",
                ms(s.end_to_end_delay.p50_us),
                ms(s.end_to_end_delay.p99_us)
            ),
        ),
        (
            "interarrival jitter (RFC 3550)".into(),
            format!("{:.2} ms", ms(s.jitter_us)),
        ),
        (
            "loss before recovery".into(),
            format!(
                "{:.2} % ({} of {} packets)",
                pct(p.lost),
                p.lost,
                p.expected
            ),
        ),
        (
            "recovered by FEC / by retransmission".into(),
            format!(
                "{} / {}",
                p.recovered.saturating_sub(p.retransmitted),
                p.retransmitted
            ),
        ),
        (
            "loss after recovery (unrecovered)".into(),
            format!("{:.5} % ({} packets)", pct(p.unrecovered), p.unrecovered),
        ),
        ("late".into(), format!("{}", p.late)),
    ]
    .into_iter()
    .chain(frames.drain(..))
    .chain([
        (
            "FEC code used (mean sources + repairs a block)".into(),
            format!(
                "{:.1}+{:.1}",
                sent.source_packets as f64 / blocks,
                sent.repair_packets as f64 / blocks
            ),
        ),
        (
            format!(
                "redundancy ({} recovery): FEC + retransmission",
                sent.recovery.name()
            ),
            format!(
                "{:.1} % ({:.1} + {:.1}; {} packets sent again)",
                sent.redundancy_ratio * 100.0,
                sent.fec_overhead_ratio * 100.0,
                (sent.redundancy_ratio - sent.fec_overhead_ratio) * 100.0,
                sent.retransmit_packets
            ),
        ),
        (
            "playout tick deviation p99".into(),
            format!("{:.3} ms", s.tick_deviation.p99_us as f64 / 1e3),
        ),
        (
            "SNR of received audio".into(),
            if snr.is_finite() {
                format!("{snr:.1} dB")
            } else {
                "bit-exact".into()
            },
        ),
    ])
    .collect()
}
