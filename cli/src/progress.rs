//! Progress bars on a terminal, silence elsewhere: long commands (`submit --wait`, `compare`,
//! `demo`) show items done/total, rate and ETA only when a person is watching stderr, so
//! piped and JSON output stay machine-readable.

use crate::args::OutputFormat;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// True when bars should be drawn: human output and stderr is a terminal.
pub(crate) fn enabled(format: OutputFormat) -> bool {
    format == OutputFormat::Human && std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid progress template")
        .progress_chars("=> ")
}

/// A bar for one job's items, labelled `label`.
pub(crate) fn job_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(style(
        "{spinner} {msg} [{bar:30}] {pos}/{len} items  {per_sec}  ETA {eta}",
    ));
    bar.set_message(label.to_string());
    bar
}

/// Progress of a command that runs many jobs: an overall bar of runs and, under it, a bar for
/// the items of the job running now. Every method is a no-op when bars are off.
#[derive(Debug)]
pub(crate) struct RunsProgress {
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl RunsProgress {
    /// Progress over `total` job runs.
    pub(crate) fn new(format: OutputFormat, total: u64, what: &str) -> Self {
        let bars = enabled(format).then(|| {
            let multi = MultiProgress::new();
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(style(
                "{prefix} [{bar:30}] {pos}/{len} runs  {elapsed} elapsed  ETA {eta}  {msg}",
            ));
            overall.set_prefix(what.to_string());
            (multi, overall)
        });
        Self { bars }
    }

    /// A bar for the next job's items, shown under the overall bar.
    pub(crate) fn job(&self, label: &str) -> Option<ProgressBar> {
        self.bars.as_ref().map(|(multi, overall)| {
            overall.set_message(label.to_string());
            multi.add(job_bar(label))
        })
    }

    /// One run finished.
    pub(crate) fn run_done(&self, job: Option<ProgressBar>) {
        if let Some(job) = job {
            job.finish_and_clear();
        }
        if let Some((_, overall)) = &self.bars {
            overall.inc(1);
        }
    }

    /// Removes the bars.
    pub(crate) fn finish(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.finish_and_clear();
        }
    }
}
