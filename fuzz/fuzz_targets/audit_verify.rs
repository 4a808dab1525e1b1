//! Audit verification of arbitrary bytes never panics, and a report that finds no problem
//! has counted exactly the lines it read.
#![no_main]

use execkit_audit::{verify, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = verify(data, &VerifyOptions::default()).expect("reading a slice cannot fail");
    if report.problem.is_none() {
        let lines = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(report.records, lines, "a clean report skipped or invented records");
    }
});
