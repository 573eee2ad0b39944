//! Driver 2, fan-out: a stream published once by name, played by any
//! number of listeners on any number of machines, the copies made by
//! Eclipse Zenoh routers.
//!
//! The same sans-IO core as point to point: the [`Publisher`] runs a
//! [`SenderCore`](crate::SenderCore) and turns each datagram into one zenoh
//! put; each [`Subscriber`] feeds what arrives to an
//! [`Ingress`](crate::ingress::Ingress) with its arrival time and plays it
//! through the shared playout thread, concealment and sinks. What is
//! specific to fan-out:
//!
//! - [`keys`]: the key space (media, catalog, key service, end of stream,
//!   reports, liveliness),
//! - [`config`]: the zenoh configuration (multicast scouting off, a `udp/`
//!   media link beside a `tcp/` declaration link),
//! - [`budget`]: datagrams planned so no put is ever fragmented,
//! - [`router`]: a zenoh router with that configuration (`isochron router`),
//! - [`discovery`]: what is on air (`isochron streams`),
//! - [`tap`]: sealed datagrams as a router forwards them (the bench's
//!   per-hop delay),
//! - end-to-end security ([`crate::seal`]): sealed datagrams, a signed
//!   catalog pinned like a receiver's certificate, the key wrapped to each
//!   authorised listener.

pub mod budget;
pub mod config;
pub mod discovery;
pub mod error;
pub mod keys;
pub mod publisher;
pub mod router;
pub mod subscriber;
pub mod tap;

pub use config::ZenohOptions;
pub use discovery::{StreamListing, list_streams};
pub use error::{FanoutError, RefusedReason};
pub use publisher::{Publisher, PublisherOptions, PublisherReport, PublisherStats};
pub use router::Router;
pub use subscriber::{StreamInfo, Subscriber, SubscriberOptions};
pub use tap::Tap;

use ::zenoh::Wait;

/// Open a zenoh session, raised: zenoh starts its runtime threads (link
/// readers and writers, the routing) on the process's first open, and they
/// carry every media sample, so they must not wait behind batch jobs for
/// their time slice any more than the point-to-point network threads
/// (a few tens of milliseconds on a loaded machine make packets late or
/// make zenoh drop them, see [`crate::net::priority`]).
///
/// Real-time, not only nice: with zenoh's threads at nice -10 or -20 the
/// fan-out tests still failed now and then under load 20 (1-2 of 8 per
/// run); at SCHED_FIFO none did. The price: a process overloaded beyond
/// its cores (200 listeners and their playouts in one bench process on two
/// cores) leaves other processes only the kernel's 5 % real-time reserve.
pub(crate) fn open_raised(cfg: ::zenoh::Config) -> ::zenoh::Result<::zenoh::Session> {
    crate::net::priority::with_raised(crate::net::priority::Urgency::Network, || {
        ::zenoh::open(cfg).wait()
    })
}

/// Open a zenoh session, naming the routers when none answers.
pub(crate) fn open_session(
    cfg: ::zenoh::Config,
    opts: &ZenohOptions,
) -> Result<::zenoh::Session, FanoutError> {
    open_raised(cfg).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("Unable to connect") || msg.contains("connect") {
            FanoutError::Unreachable {
                routers: opts.routers.join(", "),
            }
        } else {
            FanoutError::Zenoh(msg)
        }
    })
}
