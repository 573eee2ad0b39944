//! Prints the concealment quality table of `codecs/CONCEALMENT.md`:
//! SNR of each method against the loss-free signal, on the music-like test
//! signal (and the sensor signal), with 2 % loss.
//!
//! cargo run --release -p isochron-codecs --example conceal_snr

use isochron_codecs::conceal::Method;
use isochron_codecs::quality::score_concealment;
use isochron_codecs::signal::{Music, Rng, Sensor};
use isochron_codecs::{Encoding, Rate, StreamFormat};

const SECONDS: usize = 60;
const LOSS: f64 = 0.02;
const GROUP: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rate = Rate::hz(48_000)?;
    let format = StreamFormat::new(Encoding::L16, 2, rate)?;
    let frame = 480; // 10 ms
    let mut music = vec![0.0; SECONDS * 48_000 * 2];
    Music::new(1, rate).fill(&mut music);
    let frames = music.len() / 2 / frame;

    // Whole 10 ms frames lost at random.
    let mut rng = Rng::new(2024);
    let lost: Vec<bool> = (0..frames).map(|_| rng.next_f64() < LOSS).collect();
    // Sample interleaving over 4 frames: a lost packet is one lane of a group.
    let mut rng = Rng::new(2025);
    let lanes: Vec<bool> = (0..frames).map(|_| rng.next_f64() < LOSS).collect();

    println!("music-like stereo, 48 kHz L16, {SECONDS} s, 10 ms frames, 2 % loss");
    println!();
    println!("| loss pattern | method | look-ahead | SNR (dB) | SNR over gaps (dB) |");
    println!("|---|---|---|---|---|");
    for (pattern, interleaved) in [("whole frames", false), ("interleaved lanes, G = 4", true)] {
        for (method, la) in [
            (Method::Silence, false),
            (Method::Waveform, false),
            (Method::Waveform, true),
        ] {
            let s = score_concealment(
                &music,
                format,
                frame,
                |f, i| {
                    if interleaved {
                        // Packet p of group g carries samples with index % G == p.
                        let g = f / GROUP;
                        let idx = (f % GROUP) * frame + i;
                        !lanes[g * GROUP + idx % GROUP]
                    } else {
                        !lost[f]
                    }
                },
                method,
                la,
            )?;
            println!(
                "| {pattern} | {method} | {} | {:.1} | {:.1} |",
                if la { "yes" } else { "no" },
                s.snr_db,
                s.gap_snr_db
            );
        }
    }

    let srate = Rate::hz(100)?;
    let sformat = StreamFormat::new(Encoding::F64, 3, srate)?;
    let mut sensor = vec![0.0; 3600 * 100 * 3];
    Sensor::new(1, srate).fill(&mut sensor);
    let sframe = 10; // 100 ms
    let sframes = sensor.len() / 3 / sframe;
    let mut rng = Rng::new(7);
    let slost: Vec<bool> = (0..sframes).map(|_| rng.next_f64() < LOSS).collect();
    println!();
    println!("3-axis sensor, 100 Hz F64, 1 h, 100 ms frames, 2 % of frames lost");
    println!();
    println!("| method | look-ahead | SNR (dB) | SNR over gaps (dB) |");
    println!("|---|---|---|---|");
    for (method, la) in [
        (Method::Silence, false),
        (Method::Hold, false),
        (Method::Linear, false),
        (Method::Linear, true),
    ] {
        let s = score_concealment(&sensor, sformat, sframe, |f, _| !slost[f], method, la)?;
        println!(
            "| {method} | {} | {:.1} | {:.1} |",
            if la { "yes" } else { "no" },
            s.snr_db,
            s.gap_snr_db
        );
    }
    Ok(())
}
