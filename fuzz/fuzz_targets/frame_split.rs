//! The framing's marker search: wherever the stream is cut into reads, the splitter finds
//! the first marker at the same place and hands back exactly the bytes before it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // only the marker search is exercised here
#[path = "../../runner/src/frame.rs"]
mod frame;
use frame::first_marker;

const NEEDLE: &[u8] = b"\n\x1fEKnonce:end:";

fuzz_target!(|data: &[u8]| {
    let [step, input @ ..] = data else { return };
    let expected = input
        .windows(NEEDLE.len())
        .position(|w| w == NEEDLE)
        .map(|at| input[..at].to_vec());
    let got = first_marker(NEEDLE, input.chunks(usize::from(*step).max(1)));
    assert_eq!(got, expected, "the splitter disagreed with a plain search");
});
