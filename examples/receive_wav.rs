//! Receive streams into WAV (and CSV) files.
//!
//! ```sh
//! cargo run --example receive_wav -- out/ [sha256:SENDER...]
//! ```
//!
//! Admits the senders listed in `~/.config/isochron/authorized_senders`
//! (`isochron trust add`) and those given after the directory.

use std::path::PathBuf;

use isochron::engine::net::tls::AuthorizedSenders;
use isochron::engine::net::{
    Admission, FileSink, Identity, Receiver, ReceiverEvent, ReceiverOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "received".into()));
    let allow = args.map(|a| a.parse()).collect::<Result<Vec<_>, _>>()?;
    // This user's persistent identity: the fingerprint senders pin stays the same.
    let identity = Identity::load_or_create(&Identity::default_dir())?;
    let admission = Admission::file(AuthorizedSenders::default_path(), allow);
    let opts = ReceiverOptions::new("127.0.0.1:0".parse()?, admission);
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
