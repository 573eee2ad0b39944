//! Where a shared token comes from: a file (`--token-file`), the
//! environment (`ISOCHRON_TOKEN`), or argv (`--token`, which every user can
//! read in `ps`). The token is a second factor, after the identity.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The environment variable holding the token when no option gives one.
pub const ENV: &str = "ISOCHRON_TOKEN";

/// Longest token the control protocol carries.
const MAX: usize = 1024;

/// The token to use: `--token-file`, else `--token` (with a warning), else
/// `$ISOCHRON_TOKEN`, else none.
pub fn resolve(arg: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    let token = match (file, arg) {
        (Some(path), _) => Some(read(path)?),
        (None, Some(t)) => {
            eprintln!(
                "warning: --token on the command line is visible to every user of this host \
                 (ps); prefer --token-file FILE or ${ENV}"
            );
            Some(t.to_owned())
        }
        (None, None) => std::env::var_os(ENV)
            .map(|v| {
                v.into_string()
                    .map_err(|_| anyhow::anyhow!("${ENV} is not valid UTF-8"))
            })
            .transpose()?,
    };
    match token {
        Some(t) if t.is_empty() => bail!("the token is empty"),
        Some(t) if t.len() > MAX => bail!("the token is longer than {MAX} bytes"),
        t => Ok(t),
    }
}

/// The file's contents, without one trailing newline.
fn read(path: &Path) -> Result<String> {
    let shown = path.display();
    let mut f = std::fs::File::open(path).with_context(|| format!("--token-file {shown}"))?;
    warn_if_shared(path, &f);
    let mut bytes = Vec::new();
    f.by_ref()
        .take(MAX as u64 + 3)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading --token-file {shown}"))?;
    let mut text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{shown} is not UTF-8 text"))?;
    for end in ["\r\n", "\n"] {
        if let Some(t) = text.strip_suffix(end) {
            text.truncate(t.len());
            break;
        }
    }
    Ok(text)
}

fn warn_if_shared(path: &Path, f: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = f.metadata() {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o044 != 0 {
                eprintln!(
                    "warning: {} is readable by other users (mode {mode:03o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, f);
}
