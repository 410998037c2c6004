//! Exit codes: 0 success, 1 "ran fine but the answer is no" (failed items, cancelled),
//! 2 bad input or an unreachable coordinator.

use std::process::ExitCode;

/// An error that ends the command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad input or an unreachable coordinator: exit 2.
    #[error("{0}")]
    Input(String),
    /// Anything else that went wrong: exit 2 as well, with the cause chain.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message();
        CliError::Input(match status.code() {
            tonic::Code::InvalidArgument => format!("rejected by the coordinator: {message}"),
            tonic::Code::NotFound => message.to_string(),
            tonic::Code::Unavailable => format!("coordinator unavailable: {message}"),
            tonic::Code::Unauthenticated => format!(
                "the coordinator refused this client: {message}. Set --token or CONCUR_TOKEN to the coordinator's client token"
            ),
            tonic::Code::ResourceExhausted => format!("the coordinator is at a limit: {message}"),
            code => format!("coordinator error ({code:?}): {message}"),
        })
    }
}

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the job failed items or was cancelled.
    No,
    /// Exit 130: interrupted by the user.
    Interrupted,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::No => ExitCode::from(1),
            Outcome::Interrupted => ExitCode::from(130),
        }
    }
}
