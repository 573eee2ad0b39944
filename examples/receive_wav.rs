//! Receive streams into WAV (and CSV) files.
//!
//! ```sh
//! cargo run --example receive_wav -- out/
//! ```

use std::path::PathBuf;

use isochron::engine::net::{FileSink, Identity, Receiver, ReceiverEvent, ReceiverOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "received".into()));
    // A persistent identity: the fingerprint senders pin stays the same.
    let identity = Identity::load_or_create(&out.join(".identity"))?;
    let opts = ReceiverOptions::new("127.0.0.1:0".parse()?);
    let dir = out.clone();
    let rx = Receiver::start(opts, &identity, move |info| {
        FileSink::create(&dir, &info.session)
            .map(|s| Box::new(s) as _)
            .map_err(|e| e.to_string())
    })?;
    println!("{} {}", rx.local_addr(), rx.fingerprint());
    for event in rx.events() {
        match event {
            ReceiverEvent::Started(info) => println!("session {} from {}", info.id, info.peer),
            ReceiverEvent::Ended { end, .. } => {
                for (path, samples) in &end.files {
                    println!("wrote {} ({samples} samples)", path.display());
                }
                break;
            }
            ReceiverEvent::Refused { peer, reason } => eprintln!("refused {peer}: {reason}"),
        }
    }
    Ok(())
}
