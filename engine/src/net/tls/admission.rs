//! Which senders a receiver admits, decided from the fingerprint of the
//! client certificate a sender proved it holds the key of.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{AuthorizedSenders, Fingerprint};

/// A receiver's admission policy. Secure by default: only listed senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Only senders whose certificate fingerprint is in `allow` or in the
    /// authorized-senders `file` (re-read when it changes, so `isochron
    /// trust add` takes effect without a restart). Both empty: nobody.
    Listed {
        /// Fingerprints admitted in any case (`recv --allow`).
        allow: Vec<Fingerprint>,
        /// An authorized-senders file ([`AuthorizedSenders`]); a missing
        /// file lists nobody.
        file: Option<PathBuf>,
    },
    /// Any sender with a certificate whose key signed the handshake: no
    /// authorization at all (a token, if set, is the only check). Only
    /// behind a loudly named option; the receiver warns when it starts.
    DangerouslyAnyone,
}

impl Admission {
    /// Only these senders.
    pub fn only(allow: impl IntoIterator<Item = Fingerprint>) -> Admission {
        Admission::Listed {
            allow: allow.into_iter().collect(),
            file: None,
        }
    }

    /// The senders listed in `file`, and these.
    pub fn file(
        file: impl Into<PathBuf>,
        allow: impl IntoIterator<Item = Fingerprint>,
    ) -> Admission {
        Admission::Listed {
            allow: allow.into_iter().collect(),
            file: Some(file.into()),
        }
    }

    /// The exact command that would admit `sender` under this policy.
    pub fn admit_command(&self, sender: &Fingerprint) -> String {
        match self {
            Admission::Listed {
                file: Some(file), ..
            } => {
                let mut cmd = format!("isochron trust add {sender}");
                if file != &AuthorizedSenders::default_path() {
                    cmd.push_str(" --file ");
                    cmd.push_str(&shell_quote(file));
                }
                cmd
            }
            _ => format!("isochron recv --allow {sender} ..."),
        }
    }
}

fn inode(meta: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// A path as one shell word.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:,@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        // Control characters would forge log lines; they cannot be typed
        // into a path by accident.
        let inner: String = s
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!("'{}'", inner.replace('\'', r"'\''"))
    }
}

/// The file as last read: re-read only when its inode (`trust add`
/// renames a new file into place), size or mtime changes.
#[derive(Debug)]
struct Cached {
    stamp: Option<(u64, u64, SystemTime)>,
    list: AuthorizedSenders,
}

/// An [`Admission`] policy in force, deciding on each sender. Shareable
/// between tasks; reading the file is a `stat` per decision, plus a read
/// when it changed.
#[derive(Debug)]
pub struct Gate {
    admission: Admission,
    cache: Mutex<Option<Cached>>,
}

impl Gate {
    /// Enforce `admission`.
    pub fn new(admission: Admission) -> Gate {
        if admission == Admission::DangerouslyAnyone {
            tracing::warn!(
                "sender authorization is OFF (dangerously admitting anyone): any sender that \
                 reaches this receiver can write streams"
            );
        }
        Gate {
            admission,
            cache: Mutex::new(None),
        }
    }

    /// The policy enforced.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Admit `sender`, or say why not and the exact command that would
    /// admit it (for the reject the sender prints and the receiver logs).
    pub fn check(&self, sender: &Fingerprint) -> Result<(), String> {
        let (allow, file) = match &self.admission {
            Admission::DangerouslyAnyone => return Ok(()),
            Admission::Listed { allow, file } => (allow, file),
        };
        if allow.contains(sender) {
            return Ok(());
        }
        let mut trouble = String::new();
        if let Some(file) = file {
            match self.listed_in(file, sender) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => trouble = format!(" (its authorized-senders file is unusable: {e})"),
            }
        }
        Err(format!(
            "sender {sender} is not authorized by this receiver{trouble}; to admit it, run on \
             the receiving host: {}",
            self.admission.admit_command(sender)
        ))
    }

    fn listed_in(&self, file: &Path, sender: &Fingerprint) -> Result<bool, String> {
        let stamp = match fs::metadata(file) {
            Ok(m) => Some((
                inode(&m),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot inspect {}: {e}", file.display())),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|c| c.stamp != stamp) {
            let (list, bad) = AuthorizedSenders::load_lenient(file).map_err(|e| e.to_string())?;
            for b in &bad {
                tracing::warn!(file = %file.display(), "ignoring a bad authorized-senders {b}");
            }
            *cache = Some(Cached { stamp, list });
        }
        Ok(cache.as_ref().is_some_and(|c| c.list.contains(sender)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of(&[n])
    }

    #[test]
    fn listed_only_and_the_refusal_names_the_command() {
        let gate = Gate::new(Admission::only([fp(1)]));
        assert!(gate.check(&fp(1)).is_ok());
        let why = gate.check(&fp(2)).unwrap_err();
        assert!(
            why.contains(&format!("isochron recv --allow {}", fp(2))),
            "{why}"
        );
        assert!(Gate::new(Admission::only([])).check(&fp(1)).is_err());
        assert!(
            Gate::new(Admission::DangerouslyAnyone)
                .check(&fp(9))
                .is_ok()
        );
    }

    #[test]
    fn the_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my list");
        let gate = Gate::new(Admission::file(&path, []));
        let why = gate.check(&fp(3)).unwrap_err();
        let cmd = format!("isochron trust add {} --file '{}'", fp(3), path.display());
        assert!(why.ends_with(&cmd), "{why}");
        AuthorizedSenders::add(&path, fp(3), "x").unwrap();
        assert!(gate.check(&fp(3)).is_ok());
        AuthorizedSenders::remove(&path, &fp(3)).unwrap();
        assert!(gate.check(&fp(3)).is_err());
    }

    #[test]
    fn quoting_is_one_shell_word() {
        assert_eq!(shell_quote(Path::new("/a/b_c")), "/a/b_c");
        assert_eq!(shell_quote(Path::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(Path::new("a\nb")), "'a?b'");
    }
}
