//! Health of one backend: the rise/fall state machine over probe outcomes, and when the next
//! probe is due. Pure: time comes in as an argument, transitions go out as values.

use std::time::{Duration, Instant};

use crate::probe::Outcome;

/// What the health checks say of one backend, and when it is next probed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Passing checks (or no check configured).
    pub up: bool,
    pub ok_streak: u32,
    pub fail_streak: u32,
    pub last_latency: Option<Duration>,
    pub last_error: Option<String>,
    pub transitions: u64,
    pub probes: u64,
    /// When the next probe is due; `None`: as soon as possible.
    pub next_due: Option<Instant>,
}

/// A change of a backend's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `rise` checks in a row passed.
    Up,
    /// `fall` checks in a row failed.
    Down,
}

impl Health {
    /// A backend as it starts: up if nothing checks it, down until its checks pass otherwise.
    pub fn new(up: bool) -> Health {
        Health { up, ..Health::default() }
    }

    /// Count a probe's outcome; the transition it causes, if any.
    pub fn record(&mut self, outcome: &Outcome, rise: u32, fall: u32) -> Option<Transition> {
        self.probes += 1;
        match outcome {
            Outcome::Ok(rtt) => {
                self.last_latency = Some(*rtt);
                self.last_error = None;
                self.ok_streak += 1;
                self.fail_streak = 0;
                (!self.up && self.ok_streak >= rise).then(|| {
                    self.up = true;
                    self.transitions += 1;
                    Transition::Up
                })
            }
            Outcome::Fail(why) => {
                self.fail_streak += 1;
                self.ok_streak = 0;
                self.last_error = Some(why.clone());
                (self.up && self.fail_streak >= fall).then(|| {
                    self.up = false;
                    self.transitions += 1;
                    Transition::Down
                })
            }
        }
    }

    /// Whether a probe is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_due.is_none_or(|d| now >= d)
    }

    /// A probe starts now: the next is an interval after this one was due, not after `now`
    /// (the cadence holds whatever the control core's tick), unless that is already past.
    pub fn schedule_next(&mut self, now: Instant, interval: Duration) {
        self.next_due =
            Some(self.next_due.map(|d| d + interval).filter(|n| *n > now).unwrap_or(now + interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Outcome {
        Outcome::Ok(Duration::from_millis(2))
    }

    fn fail() -> Outcome {
        Outcome::Fail("timeout".into())
    }

    #[test]
    fn rises_after_rise_passes_and_falls_after_fall_failures() {
        let mut h = Health::new(false);
        assert_eq!(h.record(&ok(), 2, 3), None, "one pass of two");
        assert_eq!(h.record(&ok(), 2, 3), Some(Transition::Up));
        assert_eq!(h.record(&ok(), 2, 3), None, "already up");
        assert_eq!(h.record(&fail(), 2, 3), None);
        assert_eq!(h.record(&fail(), 2, 3), None);
        assert_eq!(h.last_error.as_deref(), Some("timeout"));
        assert_eq!(h.record(&fail(), 2, 3), Some(Transition::Down));
        assert_eq!((h.up, h.transitions, h.probes), (false, 2, 6));
    }

    #[test]
    fn a_pass_between_failures_resets_the_count() {
        let mut h = Health::new(true);
        for o in [fail(), ok(), fail(), ok(), fail()] {
            assert_eq!(h.record(&o, 1, 2), None, "never two failures in a row");
        }
        assert!(h.up);
        assert_eq!(h.last_error.as_deref(), Some("timeout"));
        assert_eq!(h.record(&fail(), 1, 2), Some(Transition::Down));
        assert_eq!(h.record(&ok(), 1, 2), Some(Transition::Up), "rise 1: one pass brings it back");
        assert_eq!(h.last_error, None);
        assert_eq!(h.last_latency, Some(Duration::from_millis(2)));
    }

    #[test]
    fn probes_keep_their_cadence() {
        let t0 = Instant::now();
        let i = Duration::from_millis(500);
        let mut h = Health::new(true);
        assert!(h.is_due(t0), "never probed: due at once");
        h.schedule_next(t0, i);
        assert!(!h.is_due(t0 + Duration::from_millis(499)));
        assert!(h.is_due(t0 + i));
        // Noticed 30 ms late: the next is still due at t0 + 2i, not 30 ms later.
        h.schedule_next(t0 + i + Duration::from_millis(30), i);
        assert_eq!(h.next_due, Some(t0 + 2 * i));
        // More than an interval behind: counted from now.
        let late = t0 + 5 * i;
        h.schedule_next(late, i);
        assert_eq!(h.next_due, Some(late + i));
    }
}
