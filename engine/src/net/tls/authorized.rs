//! The authorized-senders file, in the spirit of ssh's `authorized_keys`:
//! one `sha256:HEX [comment]` per line, `#` comments and blank lines
//! ignored. `isochron trust add|remove|list` manages it; a receiver admits
//! the senders it lists (see [`super::Gate`]).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Fingerprint, TlsError, config_dir};

/// Larger files are refused: nobody lists that many senders by hand, and a
/// receiver re-reads the file when it changes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

const HEADER: &str = "# isochron authorized senders: one `sha256:HEX [comment]` per line \
                      (managed by `isochron trust add|remove|list`)\n";

/// One line of the file: a sender's certificate fingerprint and a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedSender {
    /// The sender's certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// Free text after the fingerprint (who this is); may be empty.
    pub comment: String,
}

/// A line that is not `sha256:HEX [comment]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// The senders a receiver admits, as listed in an authorized-senders file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizedSenders {
    entries: Vec<AuthorizedSender>,
}

impl AuthorizedSenders {
    /// `$XDG_CONFIG_HOME/isochron/authorized_senders`, or
    /// `~/.config/isochron/authorized_senders`.
    pub fn default_path() -> PathBuf {
        config_dir().join("authorized_senders")
    }

    /// Parse the file's text, keeping the good lines and reporting the bad.
    pub fn parse(text: &str) -> (AuthorizedSenders, Vec<BadLine>) {
        let mut entries = Vec::new();
        let mut bad = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (fp, comment) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(f, c)| (f, c.trim()));
            match fp.parse::<Fingerprint>() {
                Ok(fingerprint) => entries.push(AuthorizedSender {
                    fingerprint,
                    comment: comment.to_owned(),
                }),
                Err(e) => bad.push(BadLine {
                    line: i + 1,
                    problem: e.to_string(),
                }),
            }
        }
        (AuthorizedSenders { entries }, bad)
    }

    /// Read `path` strictly: a missing file lists nobody; a bad line, a file
    /// over [`MAX_FILE_BYTES`] or one other users may write is an error
    /// naming the file (an authorization file anyone can edit authorizes
    /// anyone).
    pub fn load(path: &Path) -> Result<AuthorizedSenders, TlsError> {
        let (list, bad) = Self::load_lenient(path)?;
        match bad.into_iter().next() {
            Some(b) => Err(TlsError::AuthorizedLine {
                path: path.to_owned(),
                line: b.line,
                problem: b.problem,
            }),
            None => Ok(list),
        }
    }

    /// Like [`load`](Self::load), but bad lines are returned beside the
    /// good ones instead of failing (a running receiver keeps admitting
    /// what is still well listed, and warns).
    pub fn load_lenient(path: &Path) -> Result<(AuthorizedSenders, Vec<BadLine>), TlsError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((AuthorizedSenders::default(), Vec::new()));
            }
            Err(e) => return Err(TlsError::io("inspect", path, e)),
        };
        check_not_shared(path, &meta)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(TlsError::AuthorizedTooLarge {
                path: path.to_owned(),
                bytes: meta.len(),
            });
        }
        let text = fs::read(path).map_err(|e| TlsError::io("read", path, e))?;
        Ok(Self::parse(&String::from_utf8_lossy(&text)))
    }

    /// Whether `fingerprint` is listed.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.entries.iter().any(|e| &e.fingerprint == fingerprint)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[AuthorizedSender] {
        &self.entries
    }

    /// List `fingerprint` in the file at `path` (created, with its
    /// directory, if missing). Returns false if it was listed already
    /// (the file is left as it is). Control characters in `comment` become
    /// spaces: a comment can never start a line of its own.
    pub fn add(path: &Path, fingerprint: Fingerprint, comment: &str) -> Result<bool, TlsError> {
        let text = read_existing(path)?;
        let (list, bad) = Self::parse(&text);
        if let Some(b) = bad.first() {
            return Err(TlsError::AuthorizedLine {
                path: path.to_owned(),
                line: b.line,
                problem: b.problem.clone(),
            });
        }
        if list.contains(&fingerprint) {
            return Ok(false);
        }
        let mut out = if text.is_empty() {
            HEADER.to_owned()
        } else {
            text
        };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        let comment: String = comment
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let comment = comment.trim();
        out.push_str(&fingerprint.to_string());
        if !comment.is_empty() {
            out.push(' ');
            out.push_str(comment);
        }
        out.push('\n');
        replace(path, &out)?;
        Ok(true)
    }

    /// Remove every line listing `fingerprint` from the file at `path`,
    /// keeping the other lines (comments included) as they are. Returns
    /// false if it was not listed.
    pub fn remove(path: &Path, fingerprint: &Fingerprint) -> Result<bool, TlsError> {
        let text = read_existing(path)?;
        let mut found = false;
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.parse::<Fingerprint>().ok().as_ref() == Some(fingerprint) {
                found = true;
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        if found {
            replace(path, &out)?;
        }
        Ok(found)
    }
}

/// The file's text, or empty if it does not exist yet.
fn read_existing(path: &Path) -> Result<String, TlsError> {
    match fs::metadata(path) {
        Ok(meta) => {
            check_not_shared(path, &meta)?;
            if meta.len() > MAX_FILE_BYTES {
                return Err(TlsError::AuthorizedTooLarge {
                    path: path.to_owned(),
                    bytes: meta.len(),
                });
            }
            let bytes = fs::read(path).map_err(|e| TlsError::io("read", path, e))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(TlsError::io("inspect", path, e)),
    }
}

/// Write `text` to a temporary file beside `path` (mode 0600) and rename it
/// over `path`: a receiver reading meanwhile sees the old list or the new,
/// never half of one.
fn replace(path: &Path, text: &str) -> Result<(), TlsError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    super::identity::create_private_dir(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "authorized_senders".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(TlsError::io("write", &tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        TlsError::io("replace", path, e)
    })
}

/// Like sshd's StrictModes: a list other users can write is no list.
fn check_not_shared(path: &Path, meta: &fs::Metadata) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(TlsError::AuthorizedPermissions {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::of(&[n])
    }

    #[test]
    fn parse_keeps_comments_and_reports_bad_lines() {
        let text = format!(
            "# header\n\n{} laptop  of ann \n  {}\nnot-a-fingerprint x\n",
            fp(1),
            fp(2)
        );
        let (list, bad) = AuthorizedSenders::parse(&text);
        assert_eq!(list.entries().len(), 2);
        assert_eq!(list.entries()[0].comment, "laptop  of ann");
        assert!(list.contains(&fp(1)) && list.contains(&fp(2)) && !list.contains(&fp(3)));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 5);
        assert!(bad[0].to_string().starts_with("line 5: expected sha256:"));
    }

    #[test]
    fn add_remove_round_trip_in_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/isochron/authorized_senders");
        assert!(AuthorizedSenders::load(&path).unwrap().entries().is_empty());
        assert!(AuthorizedSenders::add(&path, fp(1), "one").unwrap());
        assert!(!AuthorizedSenders::add(&path, fp(1), "again").unwrap());
        assert!(AuthorizedSenders::add(&path, fp(2), "two\nsha256:forged").unwrap());
        let list = AuthorizedSenders::load(&path).unwrap();
        assert_eq!(list.entries().len(), 2, "a comment cannot add a line");
        assert_eq!(list.entries()[1].comment, "two sha256:forged");
        assert!(AuthorizedSenders::remove(&path, &fp(1)).unwrap());
        assert!(!AuthorizedSenders::remove(&path, &fp(1)).unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# isochron authorized senders"), "{text}");
        let list = AuthorizedSenders::load(&path).unwrap();
        assert_eq!(list.entries().len(), 1);
        assert!(list.contains(&fp(2)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authorized_senders");
        fs::write(&path, format!("{}\n", fp(1))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        let err = AuthorizedSenders::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("chmod 600") && err.contains("authorized_senders"),
            "{err}"
        );
        assert!(AuthorizedSenders::add(&path, fp(2), "").is_err());
    }

    #[test]
    fn strict_load_names_the_line_and_oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        fs::write(&path, format!("{}\nsha256:zz\n", fp(1))).unwrap();
        let err = AuthorizedSenders::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("a:"), "{err}");
        let (list, bad) = AuthorizedSenders::load_lenient(&path).unwrap();
        assert!(list.contains(&fp(1)) && bad.len() == 1);
        fs::write(&path, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(matches!(
            AuthorizedSenders::load(&path),
            Err(TlsError::AuthorizedTooLarge { .. })
        ));
    }
}
