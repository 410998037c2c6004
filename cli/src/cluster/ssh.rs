//! Running things on the hosts with the system's ssh client: the ssh command line, quoting for
//! the far side's shell, feeding a script or a file on ssh's standard input (so secrets never
//! sit on any command line), and a bounded number of sessions at once.

use super::hosts::Host;
use futures::StreamExt;
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// `word` quoted for any POSIX shell: single quotes, each `'` written as `'\''`.
pub(crate) fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The ssh client and the options every session uses.
#[derive(Debug, Clone)]
pub(crate) struct Ssh {
    program: OsString,
    options: Vec<OsString>,
}

/// What a session gets on its standard input.
#[derive(Debug)]
pub(crate) enum Input {
    /// A script for `sh -s` (it may hold the worker token: that is why it goes this way).
    Script(String),
    /// A local file's bytes, e.g. the worker binary for `cat > file`.
    File(PathBuf),
}

/// How a session ended.
#[derive(Debug)]
pub(crate) struct Session {
    /// The remote command's exit code; 255 is ssh's own failure (connection, authentication);
    /// `None` when ssh died of a signal.
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error (the remote command's and ssh's).
    pub(crate) stderr: String,
}

impl Session {
    /// Whether the remote command exited 0.
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-line reason for a failed session: ssh's or the script's last words.
    pub(crate) fn failure(&self) -> String {
        let said: Vec<&str> = self
            .stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let said = if said.is_empty() {
            "no message".to_string()
        } else {
            said.join("; ")
        };
        match self.code {
            Some(255) => format!("ssh failed: {said}"),
            Some(code) => format!("{said} (exit {code})"),
            None => format!("ssh was killed: {said}"),
        }
    }
}

impl Ssh {
    /// ssh with `BatchMode=yes` (a prompt would hang a batch of hosts), a connect timeout, an
    /// optional configuration file and extra `-o` options, in that order so the user's `-o`
    /// can override ours (ssh keeps the first value given for an option, so ours go last).
    pub(crate) fn new(config: Option<&Path>, options: &[String], connect_timeout: u32) -> Self {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(config) = config {
            args.push("-F".into());
            args.push(config.as_os_str().to_owned());
        }
        for option in options {
            args.push("-o".into());
            args.push(option.into());
        }
        for option in [
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={connect_timeout}"),
        ] {
            args.push("-o".into());
            args.push(option.into());
        }
        Self {
            program: std::env::var_os("CONCUR_SSH").unwrap_or_else(|| "ssh".into()),
            options: args,
        }
    }

    /// The full local argument list for running `remote` on `host` (also shown in tests).
    pub(crate) fn args(&self, host: &Host, remote: &str) -> Vec<OsString> {
        let mut args = self.options.clone();
        // `--` ends ssh's options: a host can never be read as one (hosts are checked too).
        args.push("--".into());
        args.push(host.target.clone().into());
        args.push(remote.into());
        args
    }

    /// Runs `remote` (a command line for the login shell there) on `host` with `input` on its
    /// standard input, and collects what it printed.
    ///
    /// # Errors
    /// ssh cannot be started, or the input file cannot be read.
    pub(crate) async fn run(
        &self,
        host: &Host,
        remote: &str,
        input: Input,
    ) -> std::io::Result<Session> {
        // A file goes straight to ssh's standard input; a script is written by us.
        let (stdin, script) = match input {
            Input::Script(text) => (Stdio::piped(), Some(text)),
            Input::File(path) => {
                let file = std::fs::File::open(&path).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
                })?;
                (Stdio::from(file), None)
            }
        };
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(self.args(host, remote))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C at the terminal reaches only us, so a start in
            // flight finishes and we know what to tear down (see `up`).
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot run ssh ({e}); is openssh-client installed?"),
            )
        })?;
        let stdin = child.stdin.take();
        // Written beside the reads, so a remote side that talks before reading never deadlocks.
        let feed = async move {
            let (Some(mut stdin), Some(text)) = (stdin, script) else {
                return Ok(());
            };
            match stdin.write_all(text.as_bytes()).await {
                // The far side may exit before reading everything: its exit code and message
                // tell the story.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            }
        };
        let (fed, output) = tokio::join!(feed, child.wait_with_output());
        let output = output?;
        fed?;
        Ok(Session {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Runs `each` for every host, at most `parallel` at once, and returns the results in the
/// hosts' order (each host's outcome can be printed as it finishes, inside `each`).
pub(crate) async fn for_each_host<T, F, Fut>(hosts: &[Host], parallel: usize, each: F) -> Vec<T>
where
    F: Fn(Host) -> Fut,
    Fut: Future<Output = T>,
{
    let mut results: Vec<(usize, T)> = futures::stream::iter(hosts.iter().cloned().enumerate())
        .map(|(i, host)| {
            let run = each(host);
            async move { (i, run.await) }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_word() {
        assert_eq!(sh_quote("plain"), "'plain'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        // Round trip through a real POSIX shell for the nasty cases.
        for word in [
            "a b",
            "$(id)",
            "`x`",
            "'",
            "\"",
            "a\nb",
            "--tls-ca=/x y",
            "\\",
            "*",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(word)))
                .output()
                .expect("sh");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }

    #[test]
    fn ssh_gets_batch_mode_and_the_host_after_double_dash() {
        let ssh = Ssh::new(Some(Path::new("/cfg")), &["Port=2222".into()], 7);
        let host = Host {
            target: "root@h1".into(),
        };
        let args: Vec<String> = ssh
            .args(&host, "sh -s")
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-F",
                "/cfg",
                "-o",
                "Port=2222",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=7",
                "--",
                "root@h1",
                "sh -s"
            ]
        );
    }
}
