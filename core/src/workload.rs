//! The workloads and the parsing of their inputs.

use crate::exec::ExecSpec;
use crate::kernel::{self, MAX_N};
use crate::urls::UrlList;
use crate::{SpecError, SpecResult};
use serde::{Deserialize, Serialize};

/// Per-request timeout of `fetch` items when the job gives none.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 30_000;
/// Body-size cap of `fetch` items when the job gives none.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The n values of a sum-squares job: a half-open range or an explicit list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumberSpec {
    /// `start..end`, end exclusive; stored as a range so a million items cost nothing.
    Range {
        /// First n.
        start: u64,
        /// One past the last n.
        end: u64,
    },
    /// Explicit values, in order.
    List(Vec<u64>),
}

impl NumberSpec {
    /// Parses `a..b` or `x,y,z` (a single `x` is a list of one).
    ///
    /// # Errors
    /// A malformed or empty spec, or an n whose sum of squares overflows u128.
    pub fn parse(text: &str) -> SpecResult<Self> {
        let text = text.trim();
        let malformed = |reason: &str| SpecError::MalformedNumbers {
            spec: text.to_string(),
            reason: reason.to_string(),
        };
        let number = |part: &str| -> SpecResult<u64> {
            let part = part.trim().replace('_', "");
            if part.is_empty() {
                return Err(malformed("missing number"));
            }
            part.parse::<u64>()
                .map_err(|_| malformed(&format!("'{part}' is not a non-negative integer")))
        };
        let spec = if let Some((start, end)) = text.split_once("..") {
            if end.starts_with('=') {
                return Err(malformed("inclusive ranges are not supported; use a..b"));
            }
            NumberSpec::Range {
                start: number(start)?,
                end: number(end)?,
            }
        } else {
            if text.is_empty() {
                return Err(SpecError::NoItems("numbers"));
            }
            NumberSpec::List(text.split(',').map(number).collect::<SpecResult<_>>()?)
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the spec is non-empty and every sum fits in u128.
    ///
    /// # Errors
    /// An empty range or list, or an n above [`MAX_N`].
    pub fn validate(&self) -> SpecResult<()> {
        match self {
            NumberSpec::Range { start, end } if start >= end => Err(SpecError::EmptyRange {
                start: *start,
                end: *end,
            }),
            NumberSpec::List(values) if values.is_empty() => Err(SpecError::NoItems("numbers")),
            _ => match self.max() {
                Some(n) if n > MAX_N => Err(SpecError::Overflow(n)),
                _ => Ok(()),
            },
        }
    }

    /// Number of n values.
    pub fn len(&self) -> u64 {
        match self {
            NumberSpec::Range { start, end } => end.saturating_sub(*start),
            NumberSpec::List(values) => values.len() as u64,
        }
    }

    /// True when there is no n at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The n at `index`, which must be below [`NumberSpec::len`].
    pub fn get(&self, index: u64) -> u64 {
        match self {
            NumberSpec::Range { start, .. } => start + index,
            NumberSpec::List(values) => values[index as usize],
        }
    }

    fn max(&self) -> Option<u64> {
        match self {
            NumberSpec::Range { end, .. } => end.checked_sub(1),
            NumberSpec::List(values) => values.iter().copied().max(),
        }
    }
}

/// The URLs of a fetch job and the limits each request runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchSpec {
    /// http or https URLs, fetched with GET.
    pub urls: UrlList,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Larger bodies fail the item.
    pub max_body_bytes: u64,
}

impl FetchSpec {
    /// A fetch spec with default timeout and body cap.
    pub fn new(urls: UrlList) -> Self {
        Self {
            urls,
            timeout_ms: DEFAULT_FETCH_TIMEOUT_MS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What a job computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Workload {
    /// Run a program once per item (a child process each).
    Exec(ExecSpec),
    /// GET each URL and read the whole body (I/O-bound).
    Fetch(FetchSpec),
    /// For each n, the exact sum of i*i for i in 0..n (CPU-bound).
    SumSquares(NumberSpec),
}

impl Workload {
    /// Names users type, in the order the CLI lists them.
    pub const NAMES: [&'static str; 3] = ["exec", "fetch", "sum-squares"];

    /// The workload's name as users type it.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Exec(_) => "exec",
            Workload::Fetch(_) => "fetch",
            Workload::SumSquares(_) => "sum-squares",
        }
    }

    /// Number of items (exec items, URLs or n values).
    pub fn item_count(&self) -> u64 {
        match self {
            Workload::Exec(spec) => spec.items.len(),
            Workload::Fetch(spec) => spec.urls.len() as u64,
            Workload::SumSquares(ns) => ns.len(),
        }
    }

    /// The item's input as shown in reports: the URL, or n in decimal.
    pub fn item_input(&self, index: u64) -> String {
        match self {
            Workload::Exec(spec) => spec.items.get(index),
            Workload::Fetch(spec) => spec
                .urls
                .get(index as usize)
                .unwrap_or_default()
                .to_string(),
            Workload::SumSquares(ns) => ns.get(index).to_string(),
        }
    }

    /// Checks the workload's own inputs.
    ///
    /// # Errors
    /// No items, a bad URL, or an overflowing n.
    pub fn validate(&self, max_url_len: usize) -> SpecResult<()> {
        match self {
            Workload::Exec(spec) => spec.validate(),
            Workload::Fetch(spec) => {
                if spec.urls.is_empty() {
                    return Err(SpecError::NoItems("URLs"));
                }
                spec.urls
                    .iter()
                    .try_for_each(|url| validate_url(url, max_url_len))
            }
            Workload::SumSquares(ns) => ns.validate(),
        }
    }

    /// The exact expected value of a sum-squares item, for checking results.
    pub fn expected_sum(n: u64) -> Option<u128> {
        kernel::closed_form(n)
    }
}

/// Accepts only absolute http(s) URLs with a host.
///
/// # Errors
/// The URL does not parse, is too long, has another scheme, or has no host.
pub fn validate_url(url: &str, max_len: usize) -> SpecResult<()> {
    let bad = |reason: String| SpecError::BadUrl {
        url: url.chars().take(200).collect(),
        reason,
    };
    if url.len() > max_len {
        return Err(bad(format!("longer than {max_len} bytes")));
    }
    // The URL parser silently drops tabs and newlines; refuse them (and other control
    // characters or spaces) instead, so what is fetched is exactly what was submitted.
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(format!(
            "contains the character {c:?} (percent-encode it)"
        )));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(bad(format!("scheme '{other}' is not http or https"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_lists() {
        assert_eq!(
            NumberSpec::parse("5000000..5000020").unwrap(),
            NumberSpec::Range {
                start: 5_000_000,
                end: 5_000_020
            }
        );
        assert_eq!(
            NumberSpec::parse("10, 20,30").unwrap(),
            NumberSpec::List(vec![10, 20, 30])
        );
        assert_eq!(
            NumberSpec::parse("1_000").unwrap(),
            NumberSpec::List(vec![1000])
        );
    }

    #[test]
    fn refuses_malformed_empty_and_overflowing_specs() {
        for bad in ["", "a..b", "1..", "..5", "1,,2", "-5", "1..=5", "1.5"] {
            assert!(NumberSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(
            NumberSpec::parse("5..5"),
            Err(SpecError::EmptyRange { .. })
        ));
        assert!(matches!(
            NumberSpec::parse("9..3"),
            Err(SpecError::EmptyRange { .. })
        ));
        let too_big = (MAX_N + 1).to_string();
        assert_eq!(
            NumberSpec::parse(&too_big),
            Err(SpecError::Overflow(MAX_N + 1))
        );
        assert!(NumberSpec::parse(&MAX_N.to_string()).is_ok());
        assert!(NumberSpec::parse(&format!("0..{}", MAX_N + 2)).is_err());
    }

    #[test]
    fn url_validation() {
        assert!(validate_url("http://127.0.0.1:8080/a", 100).is_ok());
        assert!(validate_url("https://example.com", 100).is_ok());
        for bad in [
            "ftp://x/y",
            "file:///etc/passwd",
            "not a url",
            "http://",
            "http://a/b\nc",
            "http://a/ b",
        ] {
            assert!(validate_url(bad, 100).is_err(), "{bad} accepted");
        }
        assert!(validate_url("http://example.com/aaaaaaaaaa", 20).is_err());
    }
}
