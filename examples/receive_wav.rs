//! Receive streams into WAV (and CSV) files.
//!
//! ```sh
//! cargo run --release --example receive_wav -- out/ 0.0.0.0:4433
//! ```
//!
//! Arguments: the output directory (default `received`) and the address to
//! listen on (default `0.0.0.0:4433`: every interface, so a sender on
//! another host can reach it; port 0 picks a free one). It prints the
//! address and the fingerprint a sender pins, then one line per file of
//! the first session.
//!
//! It presents this user's identity (`~/.config/isochron/identity`) and
//! admits the senders listed in `~/.config/isochron/authorized_senders`
//! (`isochron trust add`) and this same identity, so a `send_tone` run by
//! the same user gets in; another sender is refused with the command that
//! admits it.

use std::net::ToSocketAddrs;
use std::path::PathBuf;

use isochron::engine::net::tls::AuthorizedSenders;
use isochron::{Admission, FileSink, Identity, Receiver, ReceiverEvent, ReceiverOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "received".into()));
    let listen = args.next().unwrap_or_else(|| "0.0.0.0:4433".into());
    let listen = listen
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{listen} resolves to no address"))?;
    // This user's persistent identity: the fingerprint senders pin stays the same.
    let identity = Identity::load_or_create(&Identity::default_dir())?;
    let admission = Admission::file(AuthorizedSenders::default_path(), [identity.fingerprint()]);
    let dir = out.clone();
    let opts = ReceiverOptions::new(listen, admission);
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
