//! Requests per minute per identity: a token bucket per subject (capacity a quarter of
//! the minute's allowance, at least 10, refilled continuously), so a burst is served and a
//! flood from one identity does not starve the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets are forgotten after this long unused (the map stays bounded by active users).
const FORGET_AFTER: Duration = Duration::from_secs(600);

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The operator's rate, per identity.
pub struct PerIdentity {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl PerIdentity {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32) -> PerIdentity {
        PerIdentity {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The allowance.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    fn capacity(&self) -> f64 {
        (f64::from(self.per_minute) / 4.0).max(10.0)
    }

    /// Takes one request of `subject`'s allowance, or says how long until one is free.
    pub fn admit(&self, subject: &str) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let per_sec = f64::from(self.per_minute) / 60.0;
        let cap = self.capacity();
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 4096 {
            b.retain(|_, v| now.duration_since(v.at) < FORGET_AFTER);
        }
        let bucket = b.entry(subject.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_sec).min(cap);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_identity_s_flood_does_not_use_another_s_allowance() {
        let r = PerIdentity::new(60);
        let admitted = (0..30).filter(|_| r.admit("flood").is_ok()).count();
        assert_eq!(admitted, 15, "a quarter of the minute, then refused");
        let wait = r.admit("flood").unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(r.admit("quiet").is_ok());
    }

    #[test]
    fn zero_is_no_limit() {
        let r = PerIdentity::new(0);
        assert!((0..10_000).all(|_| r.admit("a").is_ok()));
    }
}
