//! Exit codes: 0 success, 1 "ran fine but the answer is no" (failed items, cancelled),
//! 2 bad input or an unreachable coordinator, 130 interrupted.

use std::process::ExitCode;

/// An error that ends the command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input, or the coordinator refused the request: exit 2.
    #[error("{0}")]
    Input(String),
    /// The coordinator cannot be reached, or the connection to it broke: exit 2 (a wait
    /// reconnects first).
    #[error("{0}")]
    Unreachable(String),
    /// Anything else that went wrong: exit 2 as well, with the cause chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Whether a status is the transport's (the connection broke), not the coordinator's answer.
fn broken_connection(status: &tonic::Status) -> bool {
    let message = status.message();
    match status.code() {
        // The coordinator's own UNAVAILABLE answers start with "the coordinator".
        tonic::Code::Unavailable => !message.starts_with("the coordinator"),
        tonic::Code::Cancelled => true,
        tonic::Code::Unknown | tonic::Code::Internal => [
            "h2 protocol error",
            "transport error",
            "connection",
            "broken pipe",
            "stream closed",
        ]
        .iter()
        .any(|needle| message.contains(needle)),
        _ => false,
    }
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message();
        if status.code() == tonic::Code::Unavailable && message.contains("standby") {
            // Unreachable, not input: `job --wait` keeps trying through a failover.
            return CliError::Unreachable(format!(
                "{message} (give every coordinator, comma-separated: --coordinator URL1,URL2)"
            ));
        }
        if broken_connection(&status) {
            return CliError::Unreachable(format!(
                "lost the connection to the coordinator: {message}"
            ));
        }
        CliError::Input(match status.code() {
            tonic::Code::InvalidArgument => format!("rejected by the coordinator: {message}"),
            tonic::Code::NotFound | tonic::Code::FailedPrecondition => message.to_string(),
            tonic::Code::Unavailable => format!("coordinator unavailable: {message}"),
            tonic::Code::Unauthenticated => format!(
                "the coordinator refused this client: {message}. Set --token or CONCUR_TOKEN to the coordinator's client token"
            ),
            tonic::Code::ResourceExhausted => format!("the coordinator is at a limit: {message}"),
            tonic::Code::DataLoss => {
                format!("the coordinator's stored state is damaged: {message}")
            }
            code => format!("coordinator error ({code:?}): {message}"),
        })
    }
}

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exit 0.
    Success,
    /// Exit 1: the job failed items or was cancelled.
    No,
    /// Exit 130: interrupted by the user.
    Interrupted,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Success => ExitCode::SUCCESS,
            Exit::No => ExitCode::from(1),
            Exit::Interrupted => ExitCode::from(130),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_told_apart_from_a_refusal() {
        let gone = CliError::from(tonic::Status::unknown(
            "h2 protocol error: error reading a body from connection",
        ));
        assert!(matches!(gone, CliError::Unreachable(_)));
        let refusal = CliError::from(tonic::Status::unavailable(
            "the coordinator cannot store its state (disk full)",
        ));
        assert!(matches!(refusal, CliError::Input(_)));
        let missing = CliError::from(tonic::Status::not_found("no job with id 9"));
        assert_eq!(missing.to_string(), "no job with id 9");
    }
}
