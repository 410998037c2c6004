//! Fuzzes the scheduler state machine with arbitrary event streams (honest, forged and stale
//! results, losses, cancels, time), checking its invariants after every event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    concur_coordinator::scheduler::fuzzing::drive(data);
});
