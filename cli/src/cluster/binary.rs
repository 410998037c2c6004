//! The worker binary on the hosts: which local file to ship, its sha256, and copying it to
//! `RUN_DIR/concur-worker` on a host only when that file is missing or differs.

use super::hosts::Host;
use super::remote::{self, Answer, Vars};
use super::ssh::{Input, Ssh};
use crate::exit::CliError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The binary to copy, with its digest computed once for all hosts.
#[derive(Debug, Clone)]
pub(crate) struct LocalBinary {
    /// The local file.
    pub(crate) path: PathBuf,
    /// Its sha256, lowercase hex (as `sha256sum` prints it).
    pub(crate) sha256: String,
    /// Its size, checked on the host before the copy replaces anything.
    pub(crate) size: u64,
}

/// The local worker binary: `copy_bin`, or `concur-worker` beside this executable (both are
/// built and installed together).
///
/// # Errors
/// The file is missing, not executable, or unreadable.
pub(crate) fn local_binary(copy_bin: Option<&Path>) -> Result<LocalBinary, CliError> {
    let path = match copy_bin {
        Some(path) => path.to_path_buf(),
        None => {
            let exe = std::env::current_exe()
                .map_err(|e| CliError::Input(format!("cannot locate this executable: {e}")))?;
            let beside = exe.with_file_name("concur-worker");
            if !beside.is_file() {
                return Err(CliError::Input(format!(
                    "no concur-worker beside {} to copy to the hosts: give --copy-bin FILE, or --bin PATH for a binary already on the hosts",
                    exe.display()
                )));
            }
            beside
        }
    };
    let flag = if copy_bin.is_some() {
        "--copy-bin: "
    } else {
        ""
    };
    let meta = std::fs::metadata(&path)
        .map_err(|e| CliError::Input(format!("{flag}cannot read {}: {e}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(CliError::Input(format!(
            "{flag}{} is not an executable file",
            path.display()
        )));
    }
    let sha256 = sha256_file(&path)
        .map_err(|e| CliError::Input(format!("{flag}cannot read {}: {e}", path.display())))?;
    Ok(LocalBinary {
        path,
        sha256,
        size: meta.len(),
    })
}

/// The sha256 of a file, read in blocks (a debug worker binary is a few hundred MB).
///
/// # Errors
/// The file cannot be read.
pub(crate) fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What [`ensure`] did on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    /// The host had no binary, or another one: ours was copied.
    Copied,
    /// The host's binary has our sha256 already.
    UpToDate,
}

/// Makes `RUN_DIR/concur-worker` on `host` the same file as `binary`: compares the sha256
/// there (`sha256sum`, or `shasum -a 256`; without either it copies every time) and copies over
/// ssh's standard input when it differs. One session to ask, one more to copy.
///
/// # Errors
/// A failed session, as a one-line reason.
pub(crate) async fn ensure(
    ssh: &Ssh,
    host: &Host,
    run_dir: &str,
    binary: &LocalBinary,
) -> Result<Copied, String> {
    let probe = Vars::default()
        .set("run_dir", run_dir)
        .set("name", host.name())
        .script(remote::PROBE_BINARY);
    let session = ssh
        .run(host, "sh -s", Input::Script(probe))
        .await
        .map_err(|e| e.to_string())?;
    if !session.ok() {
        return Err(session.failure());
    }
    if Answer::parse(&session.stdout).get("sha256") == Some(binary.sha256.as_str()) {
        return Ok(Copied::UpToDate);
    }
    let session = ssh
        .run(
            host,
            &remote::copy_binary_command(run_dir, binary.size),
            Input::File(binary.path.clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
    if !session.ok() {
        return Err(format!("copying the worker binary: {}", session.failure()));
    }
    Ok(Copied::Copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_digest() {
        let dir = std::env::temp_dir().join(format!("concur-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("abc");
        std::fs::write(&file, "abc").unwrap();
        assert_eq!(
            sha256_file(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let err = local_binary(Some(&file)).unwrap_err();
        assert!(err.to_string().contains("not an executable"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
