//! The remote helper's wire protocol, read by the server from a host that may be hostile:
//! any bytes, cut into reads anywhere, decode into the same frames (or the same error) as
//! the whole stream at once, never panic, and frames built from the input survive an
//! encode/decode round trip.
#![no_main]

use execkit_helper::wire::{encode, Decoder, Kind};
use libfuzzer_sys::fuzz_target;

fn decode_all(chunks: impl Iterator<Item = Vec<u8>>) -> (Vec<(Kind, Vec<u8>)>, bool) {
    let mut d = Decoder::new();
    let mut frames = Vec::new();
    for c in chunks {
        d.push(&c);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fuzz_target!(|data: &[u8]| {
    let [step, input @ ..] = data else { return };
    let step = usize::from(*step).max(1);
    let whole = decode_all(std::iter::once(input.to_vec()));
    let cut = decode_all(input.chunks(step).map(<[u8]>::to_vec));
    assert_eq!(whole, cut, "decoding depends on where the reads were cut");
    // Frames of every kind, from the input's bytes, round-trip.
    let kinds = [Kind::Input, Kind::Stdout, Kind::Reply, Kind::Ping, Kind::Exited];
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for (i, part) in input.chunks(step * 3).enumerate() {
        let kind = kinds[i % kinds.len()];
        stream.extend(encode(kind, part));
        sent.push((kind, part.to_vec()));
    }
    let (got, failed) = decode_all(stream.chunks(step).map(<[u8]>::to_vec));
    assert!(!failed);
    assert_eq!(got, sent);
});
