//! Late join in simulation: a receiver that starts listening mid-stream
//! (fan-out) starts at the first whole FEC group, plays from a known media
//! time, bit-exact, with the usual latency, and counts nothing before its
//! start as lost.

mod common;

use std::time::Duration;

use common::{ms, sensor200, stereo48k};
use isochron::engine::catalog::SubstreamDesc;
use isochron::engine::config::{ReceiverConfig, SenderConfig};
use isochron::engine::sim::media::fill_pattern;
use isochron::engine::sim::{Impairment, Loss, PatternSource, SimLink};
use isochron::engine::time::Time;
use isochron::engine::wire::control::{Accept, FecParams};
use isochron::engine::{ReceiverCore, SenderCore};

struct Joined {
    core: ReceiverCore,
    /// Per substream: first frame played, frames played, samples, corrupt
    /// frames, frames out of sequence.
    seen: Vec<(Option<u64>, u64, u64, u64, u64)>,
    /// Extra delay over the latency of the first frame played.
    first_deadline: Option<(Time, u64)>,
}

/// Stream `secs` of media; receivers join at the given offsets.
fn run(
    subs: &[SubstreamDesc],
    fec: FecParams,
    link: Impairment,
    joins: &[Duration],
    secs: f64,
) -> (Vec<Joined>, Vec<SubstreamDesc>) {
    let subs: Vec<SubstreamDesc> = subs
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.length = Some((d.format.rate.as_f64() * secs).round() as u64);
            d
        })
        .collect();
    let rcfg = ReceiverConfig::default();
    let scfg = SenderConfig {
        fec,
        ..Default::default()
    };
    let mut sender = SenderCore::new("late", subs.clone(), &scfg).unwrap();
    let window = rcfg.check_session(sender.session()).unwrap();
    let accept = Accept {
        session_id: 1,
        latency_us: 80_000,
        low_water_us: 40_000,
        high_water_us: 160_000,
        fec_window_us: window.as_micros() as u32,
        max_depth: sender.session().fec.depth,
    };
    let start = Time::from_micros(1_000_000);
    sender.on_accept(start, &accept).unwrap();
    let session = sender.session().clone();
    let mut source = PatternSource::new(&subs, None);
    let mut links: Vec<SimLink> = (0..joins.len())
        .map(|i| SimLink::new(link.clone(), 7 + i as u64, start))
        .collect();
    let mut rx: Vec<Option<Joined>> = joins.iter().map(|_| None).collect();
    let mut now = start;
    let mut eos_at = None;
    loop {
        sender.poll(now, &mut source).unwrap();
        sender.expire(now);
        while let Some(d) = sender.poll_transmit() {
            for (i, l) in links.iter_mut().enumerate() {
                if now >= start + joins[i] {
                    l.send(now, d);
                }
            }
        }
        for (i, r) in rx.iter_mut().enumerate() {
            if r.is_none() && now >= start + joins[i] {
                let mut core = ReceiverCore::new(&rcfg, &session, &accept);
                core.join_mid_stream(&session);
                *r = Some(Joined {
                    core,
                    seen: vec![(None, 0, 0, 0, 0); subs.len()],
                    first_deadline: None,
                });
            }
        }
        if eos_at.is_none() && sender.is_finished() {
            eos_at = Some(now + ms(5));
        }
        for (i, r) in rx.iter_mut().enumerate() {
            let Some(j) = r else { continue };
            while let Some(p) = links[i].recv(now) {
                j.core.on_datagram(now, &p);
                links[i].recycle(p);
            }
            if eos_at.is_some_and(|t| now >= t) && !j.core.playout().end_known() {
                j.core.on_control(&isochron::engine::Control::EndOfStream(
                    sender.end_of_stream(),
                ));
            }
            let seen = &mut j.seen;
            let first = &mut j.first_deadline;
            j.core.poll(now, &mut |f| {
                let d = &subs[f.index];
                let s = &mut seen[f.index];
                match s.0 {
                    None => {
                        s.0 = Some(f.frame);
                        if first.is_none() {
                            *first = Some((f.deadline, d.frame_ts(f.frame)));
                        }
                    }
                    Some(f0) if f.frame != f0 + s.1 => s.4 += 1,
                    Some(_) => {}
                }
                s.1 += 1;
                s.2 += f.mask.len() as u64;
                let stride = d.format.stride();
                let mut want = vec![0u8; f.mask.len() * stride];
                fill_pattern(d.id, d.frame_start(f.frame), stride, &mut want);
                let bad = (0..f.mask.len()).any(|k| {
                    f.mask.present(k)
                        && f.data[k * stride..(k + 1) * stride]
                            != want[k * stride..(k + 1) * stride]
                });
                s.3 += bad as u64;
            });
            while j.core.poll_control(now).is_some() {}
        }
        let done = rx
            .iter()
            .all(|r| r.as_ref().is_some_and(|j| j.core.is_finished()));
        if done {
            break;
        }
        let mut next = [sender.next_timeout(), eos_at.filter(|&t| t > now)]
            .into_iter()
            .flatten()
            .chain(links.iter().filter_map(|l| l.next_delivery()))
            .chain(rx.iter().flatten().filter_map(|j| j.core.next_timeout()))
            .chain(joins.iter().map(|&d| start + d).filter(|&t| t > now))
            .min()
            .unwrap_or(now + ms(1));
        next = next.max(now + Duration::from_micros(1));
        assert!(
            next < start + Duration::from_secs_f64(secs + 10.0),
            "the run ends"
        );
        now = next;
    }
    (rx.into_iter().map(|r| r.unwrap()).collect(), subs)
}

fn check_joined(j: &Joined, subs: &[SubstreamDesc], joined_at: Duration) {
    let stats = j.core.stats();
    for (i, d) in subs.iter().enumerate() {
        let (first, frames, samples, corrupt, gaps) = j.seen[i];
        let first = first.expect("played something");
        let st = &stats.substreams[i];
        assert_eq!(
            st.start_sample,
            d.frame_start(first),
            "start recorded in the stats"
        );
        assert_eq!(st.start_media_us, d.frame_ts(first));
        assert_eq!(
            (corrupt, gaps),
            (0, 0),
            "substream {i}: bit-exact and in sequence"
        );
        let total = d.length.unwrap();
        assert_eq!(
            samples,
            total - st.start_sample,
            "substream {i}: every sample from the start point"
        );
        assert!(frames > 0);
        if joined_at.is_zero() {
            assert_eq!(first, 0, "there from the start: everything");
        } else {
            // The next whole group after joining: within the FEC window
            // (35 ms) times depth, plus a frame, of the join time.
            let start = d.frame_ts(first);
            let joined = joined_at.as_micros() as u64;
            assert!(
                start >= joined && start <= joined + 200_000,
                "substream {i} starts at {start} us, joined at {joined}"
            );
        }
    }
    assert_eq!(stats.packets.late, 0, "{:?}", stats.packets);
    assert!(stats.start_media_us > 0 || joined_at.is_zero());
    if !joined_at.is_zero() {
        assert!(
            stats.skipped_before_start > 0,
            "the partial group was dropped"
        );
    }
}

#[test]
fn listeners_joining_late_play_bit_exact_from_a_known_media_time() {
    let subs = [stereo48k(0, ms(10)), sensor200(1, ms(10))];
    let joins = [Duration::ZERO, ms(3_000), ms(3_013), ms(5_507)];
    let fec = SenderConfig::default().fec;
    let (rx, subs) = run(
        &subs,
        fec,
        Impairment {
            delay: ms(10),
            ..Default::default()
        },
        &joins,
        8.0,
    );
    for (j, at) in rx.iter().zip(joins) {
        check_joined(j, &subs, at);
        let s = j.core.stats();
        assert_eq!(
            (
                s.packets.lost,
                s.substreams.iter().map(|x| x.frames.concealed).sum::<u64>()
            ),
            (0, 0),
            "clean link: nothing lost from the start point: {:?}",
            s.packets
        );
        // The first frame is due the usual latency after the fastest path.
        let (deadline, media) = j.first_deadline.unwrap();
        let offset = deadline.as_micros() - (1_000_000 + media);
        assert!(
            (99_000..=101_000).contains(&offset),
            "frame 10 ms + path 10 ms + latency 80 ms, as from the start: {offset}"
        );
    }
}

#[test]
fn late_join_with_interleaving_and_loss_counts_only_from_its_start() {
    let subs = [stereo48k(0, ms(10))];
    let fec = FecParams {
        k: 16,
        m: 4,
        depth: 2,
        window_us: 0,
        auto_depth: false,
    };
    let link = Impairment {
        delay: ms(10),
        loss: Loss::from_mean(0.05, 1.0),
        ..Default::default()
    };
    let joins = [ms(3_000), ms(3_021)];
    let (rx, subs) = run(&subs, fec, link, &joins, 10.0);
    for (j, at) in rx.iter().zip(joins) {
        let s = j.core.stats();
        // Expected packets: only those from the start point on.
        let d = &subs[0];
        let st = &s.substreams[0];
        let frames = d.length.unwrap() - st.start_sample;
        assert!(
            s.packets.expected <= frames.div_ceil(480) * 2 + 4,
            "{:?}",
            s.packets
        );
        assert!(s.packets.lost > 0, "the link is lossy");
        assert!(
            s.residual_loss_ratio <= 5e-3,
            "FEC works from the first whole group: {:?}",
            s.packets
        );
        assert!(st.start_media_us >= at.as_micros() as u64);
        assert_eq!(j.seen[0].3, 0, "bit-exact where present");
        assert_eq!(j.seen[0].2, d.length.unwrap() - st.start_sample);
    }
}
