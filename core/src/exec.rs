//! The exec workload: a program run once per item, and who may run it.
//!
//! Arguments follow GNU parallel's convention: every `{}` is replaced by the item; when no
//! argument holds `{}`, the item is appended as the last argument. No shell is involved unless
//! the user runs one (`sh -c '…'`), so items are never word-split or interpreted.

use crate::{SpecError, SpecResult};
use serde::{Deserialize, Serialize};

/// Per-item timeout of exec items when the job gives none.
pub const DEFAULT_EXEC_TIMEOUT_MS: u64 = 60_000;
/// Bytes of a child's stdout or stderr kept for the report; the rest is only counted.
pub const EXEC_CAPTURE_BYTES: usize = 4096;
/// The placeholder replaced by the item.
pub const PLACEHOLDER: &str = "{}";

/// The items of an exec job: a range of integers (cheap for big jobs) or explicit strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecItems {
    /// `start..end`, end exclusive, each item the integer in decimal.
    Range {
        /// First item.
        start: u64,
        /// One past the last item.
        end: u64,
    },
    /// Explicit items, in order.
    List(Vec<String>),
}

impl ExecItems {
    /// Number of items.
    pub fn len(&self) -> u64 {
        match self {
            ExecItems::Range { start, end } => end.saturating_sub(*start),
            ExecItems::List(items) => items.len() as u64,
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The item at `index` (below [`ExecItems::len`]); empty when out of range.
    pub fn get(&self, index: u64) -> String {
        match self {
            ExecItems::Range { start, .. } => (start + index).to_string(),
            ExecItems::List(items) => items.get(index as usize).cloned().unwrap_or_default(),
        }
    }
}

/// A program run once per item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The program: a name looked up in the worker's PATH, or a path.
    pub program: String,
    /// Its arguments; `{}` stands for the item.
    pub args: Vec<String>,
    /// The items.
    pub items: ExecItems,
    /// Per-item timeout in milliseconds; the item's whole process group is killed after it.
    pub timeout_ms: u64,
}

impl ExecSpec {
    /// Checks the program and items.
    ///
    /// # Errors
    /// No program, no items, an empty range, or a NUL byte (which no argv can carry).
    pub fn validate(&self) -> SpecResult<()> {
        let bad = |reason: &str| SpecError::BadExec(reason.to_string());
        if self.program.is_empty() {
            return Err(bad("no program given"));
        }
        if let ExecItems::Range { start, end } = self.items
            && start >= end
        {
            return Err(SpecError::EmptyRange { start, end });
        }
        if self.items.is_empty() {
            return Err(SpecError::NoItems("items"));
        }
        // Workers allow programs by name, so the program is fixed for the whole job.
        if self.program.contains(PLACEHOLDER) {
            return Err(bad(
                "{} cannot stand for the program (workers allow programs by name); use sh -c '{}' or pass the item as an argument",
            ));
        }
        let nul = |s: &String| s.contains('\0');
        if nul(&self.program) || self.args.iter().any(nul) {
            return Err(bad("the command holds a NUL byte"));
        }
        if let ExecItems::List(items) = &self.items
            && items.iter().any(nul)
        {
            return Err(bad("an item holds a NUL byte"));
        }
        Ok(())
    }
}

/// The arguments for one item: `{}` replaced by it, or the item appended when no `{}` appears.
pub fn item_args(args: &[String], item: &str) -> Vec<String> {
    if args.iter().any(|a| a.contains(PLACEHOLDER)) {
        args.iter().map(|a| a.replace(PLACEHOLDER, item)).collect()
    } else {
        let mut out = args.to_vec();
        out.push(item.to_string());
        out
    }
}

/// Which programs a worker runs for exec jobs. Workers refuse exec unless started with
/// `--allow-exec`: an exec job runs arbitrary commands as the worker's user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecPermission {
    /// No exec at all (the default).
    #[default]
    Denied,
    /// Any program.
    Any,
    /// Only these program names or paths, compared exactly as the job spells them.
    Only(Vec<String>),
}

impl ExecPermission {
    /// Whether `program` may run here.
    pub fn allows(&self, program: &str) -> bool {
        match self {
            ExecPermission::Denied => false,
            ExecPermission::Any => true,
            ExecPermission::Only(programs) => programs.iter().any(|p| p == program),
        }
    }

    /// The wire form: whether exec is allowed, and the list (empty = any program).
    pub fn to_wire(&self) -> (bool, Vec<String>) {
        match self {
            ExecPermission::Denied => (false, Vec::new()),
            ExecPermission::Any => (true, Vec::new()),
            ExecPermission::Only(programs) => (true, programs.clone()),
        }
    }

    /// From the wire form (see [`ExecPermission::to_wire`]).
    pub fn from_wire(allow: bool, programs: &[String]) -> Self {
        match (allow, programs.is_empty()) {
            (false, _) => ExecPermission::Denied,
            (true, true) => ExecPermission::Any,
            (true, false) => ExecPermission::Only(programs.to_vec()),
        }
    }
}

/// An exec item's CPU time and stderr bytes, packed into an outcome's `value` (an exec item
/// has no sum): stderr bytes in the high 64 bits, CPU microseconds in the low 64. Packing
/// keeps them in every store and on the wire without a new column.
pub fn pack_value(cpu_s: f64, stderr_bytes: u64) -> u128 {
    (u128::from(stderr_bytes) << 64) | u128::from((cpu_s.max(0.0) * 1e6) as u64)
}

/// The CPU seconds and stderr bytes packed by [`pack_value`].
pub fn unpack_value(value: u128) -> (f64, u64) {
    let cpu_us = value as u64;
    ((cpu_us as f64) / 1e6, (value >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placeholder_is_replaced_or_the_item_appended() {
        assert_eq!(
            item_args(&strings(&["-n", "{}.txt", "x{}y{}"]), "7"),
            strings(&["-n", "7.txt", "x7y7"])
        );
        assert_eq!(item_args(&strings(&["-n"]), "a b"), strings(&["-n", "a b"]));
        assert_eq!(item_args(&[], "z"), strings(&["z"]));
    }

    #[test]
    fn permissions_round_trip_and_restrict() {
        let only = ExecPermission::Only(strings(&["true", "/bin/echo"]));
        assert!(only.allows("true") && only.allows("/bin/echo"));
        assert!(!only.allows("echo") && !only.allows("sh"));
        assert!(!ExecPermission::Denied.allows("true"));
        assert!(ExecPermission::Any.allows("anything"));
        for p in [ExecPermission::Denied, ExecPermission::Any, only] {
            let (allow, list) = p.to_wire();
            assert_eq!(ExecPermission::from_wire(allow, &list), p);
        }
    }

    #[test]
    fn value_packs_cpu_and_stderr() {
        let (cpu, stderr) = unpack_value(pack_value(1.25, 4097));
        assert!((cpu - 1.25).abs() < 1e-6);
        assert_eq!(stderr, 4097);
    }

    #[test]
    fn validation_refuses_empty_and_nul() {
        let spec = |program: &str, items| ExecSpec {
            program: program.into(),
            args: Vec::new(),
            items,
            timeout_ms: 1,
        };
        assert!(
            spec("true", ExecItems::Range { start: 1, end: 3 })
                .validate()
                .is_ok()
        );
        assert!(
            spec("", ExecItems::Range { start: 1, end: 3 })
                .validate()
                .is_err()
        );
        assert!(
            spec("true", ExecItems::Range { start: 3, end: 3 })
                .validate()
                .is_err()
        );
        assert!(spec("true", ExecItems::List(vec![])).validate().is_err());
        assert!(
            spec("true", ExecItems::List(strings(&["a\0"])))
                .validate()
                .is_err()
        );
    }
}
