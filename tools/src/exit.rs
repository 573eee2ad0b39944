//! Exit codes scripts can rely on: one per cause, the same for every
//! command (documented in the README's "Exit codes" table), and the one
//! place an error becomes a code and a message.

use isochron_engine::net::TransportError;
use isochron_engine::wire::control::RejectReason;

/// Something else went wrong (the message says what).
pub const ERROR: u8 = 1;
/// The command line is wrong (clap's own code for usage errors).
pub const USAGE: u8 = 2;
/// The stream ended truncated (the peer vanished before its end).
pub const TRUNCATED: u8 = 3;
/// Refused by the peer or by us: fingerprint, authorisation, token,
/// catalog, latency, limits.
pub const REFUSED: u8 = 4;
/// The peer could not be reached (connect timeout, no route, no router).
pub const UNREACHABLE: u8 = 5;
/// An input file or stream is missing, unreadable or malformed.
pub const INPUT: u8 = 6;
/// Output could not be written in full: disk full, output limit, I/O.
pub const OUTPUT: u8 = 7;
/// Stopped by SIGINT or SIGTERM (outputs were finalised first).
pub const INTERRUPTED: u8 = 130;

/// An error that carries its exit code (what a command knows about the
/// cause that the error's type does not say).
#[derive(Debug)]
pub struct Coded {
    /// One of the codes above.
    pub code: u8,
    /// What happened, for people.
    pub message: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error with this exit code.
pub fn coded(code: u8, message: impl Into<String>) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
    }
    .into()
}

/// A wrong command line that clap cannot see (options that contradict).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    coded(USAGE, message)
}

/// Mark `e` as a problem with an input file or stream.
pub fn input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e = e.into();
    let message = describe(&e);
    coded(INPUT, message)
}

/// The exit code for `e`: a [`Coded`] in its chain, else by the first
/// cause that says (transport, files, TLS material).
pub fn code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(t) = cause.downcast_ref::<TransportError>() {
            return transport_code(t);
        }
        if cause.downcast_ref::<isochron_codecs::Error>().is_some()
            || cause
                .downcast_ref::<isochron_engine::net::tls::TlsError>()
                .is_some()
        {
            return INPUT;
        }
    }
    ERROR
}

/// The exit code of a transport error.
pub fn transport_code(e: &TransportError) -> u8 {
    match e {
        TransportError::Unreachable { .. } => UNREACHABLE,
        // The receiver could not write the stream: an output failure on
        // its side, which the sender reports as one too.
        TransportError::Rejected {
            reason: RejectReason::Output,
            ..
        } => OUTPUT,
        TransportError::Handshake { .. } | TransportError::Rejected { .. } => REFUSED,
        // The stream stopped before its end: lost, or held paused too long.
        TransportError::ConnectionLost(_) | TransportError::Paused { .. } => TRUNCATED,
        TransportError::Tls(_) => INPUT,
        TransportError::Engine(isochron_engine::SenderError::Catalog(_)) => INPUT,
        _ => ERROR,
    }
}

/// `e` and its causes, each said once: a cause whose text the message
/// already holds is skipped, and one that holds the message replaces it
/// (errors that print their source, wrapped in context that repeats it).
pub fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        // A cause that repeats the context it sits in says it all.
        while parts.last().is_some_and(|p| text.contains(p.as_str())) {
            parts.pop();
        }
        parts.push(text);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        // An error that prints its source, in context naming the file.
        #[derive(Debug)]
        struct Open(std::io::Error);
        impl std::fmt::Display for Open {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "-: {}", self.0)
            }
        }
        impl std::error::Error for Open {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e: anyhow::Result<()> = Err(Open(io).into());
        let e = e.context("-").unwrap_err();
        assert_eq!(describe(&e), "-: No such file or directory");
        let e = anyhow::anyhow!("disk full").context("writing out/a.wav");
        assert_eq!(describe(&e), "writing out/a.wav: disk full");
    }

    #[test]
    fn codes_follow_the_cause() {
        let e = anyhow::Error::from(TransportError::Unreachable {
            addr: "127.0.0.1:9".parse().unwrap(),
            timeout: std::time::Duration::from_secs(1),
        });
        assert_eq!(code_of(&e), UNREACHABLE);
        assert_eq!(code_of(&e.context("sending")), UNREACHABLE);
        assert_eq!(
            code_of(&usage("--low-water must be below --high-water")),
            USAGE
        );
        assert_eq!(code_of(&anyhow::anyhow!("odd")), ERROR);
        let rejected = |reason| {
            anyhow::Error::from(TransportError::Rejected {
                reason,
                message: "no".into(),
            })
        };
        assert_eq!(code_of(&rejected(RejectReason::Output)), OUTPUT);
        assert_eq!(code_of(&rejected(RejectReason::Unauthorized)), REFUSED);
        let wav = isochron_codecs::wav::WavReader::open("/nonexistent/x.wav").unwrap_err();
        assert_eq!(code_of(&anyhow::Error::from(wav)), INPUT);
    }
}
