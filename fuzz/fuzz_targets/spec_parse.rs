//! Fuzzes the parsing and validation of user input: sum-squares specs, URLs and host rules.
#![no_main]

use concur_core::policy::HostPolicy;
use concur_core::workload::validate_url;
use concur_core::{NumberSpec, kernel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = NumberSpec::parse(text) {
        // Anything accepted must be non-empty and free of overflow.
        assert!(!spec.is_empty());
        for i in 0..spec.len().min(16) {
            assert!(kernel::closed_form(spec.get(i)).is_some());
        }
    }
    let _ = validate_url(text, 8192);
    let policy = HostPolicy {
        allow: vec!["example.com".into()],
        deny: vec!["bad.example.com".into()],
        deny_private: true,
    };
    let _ = policy.check(text);
});
