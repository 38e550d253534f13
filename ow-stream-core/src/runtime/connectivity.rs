//! Broker connectivity as several clients of one application see it.
//!
//! Each stream thread has two Kafka clients that report on their broker connections: its
//! consumer (served by the thread's own poll loop) and its producer (served by the producer's
//! background thread). A stream thread that is busy — a long commit, a flush that waits for an
//! unreachable broker, a slow closure — polls its consumer late, so the consumer alone cannot
//! be trusted to notice an outage in time; the producer goes on reporting meanwhile. The
//! clients may also disagree for a while after an outage: an idle client reconnects only when
//! it has something to send.
//!
//! The rule: the application is unreachable when a client reports no broker connection up and
//! no *other* client has reported one up within [`FRESH`]. A report from a client replaces that
//! client's earlier one, so one client's "up" never outlives its own "down".

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{BrokerConnectivity, now_ms};

/// How long a client's "a broker connection is up" counts for another client's "down" (the
/// clients report their statistics every second).
pub(crate) const FRESH: Duration = Duration::from_millis(2_500);

/// Which client of the application a report comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Client {
    /// The consumer of stream thread `n`.
    Consumer(usize),
    /// The producer of stream thread `n`.
    Producer(usize),
}

/// The clients' last reports and the state they add up to.
#[derive(Debug)]
pub(crate) struct Connectivity {
    state: BrokerConnectivity,
    /// Per client: whether its last report saw a connection up, and when it came.
    last: HashMap<Client, (bool, Instant)>,
}

impl Default for Connectivity {
    fn default() -> Self {
        Connectivity {
            state: BrokerConnectivity::Connected,
            last: HashMap::new(),
        }
    }
}

/// What a report changed, for the caller to log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing.
    None,
    /// Connected → unreachable.
    Lost,
    /// Unreachable → connected, after this many milliseconds.
    Regained(i64),
}

impl Connectivity {
    /// The state the reports add up to.
    pub(crate) fn state(&self) -> &BrokerConnectivity {
        &self.state
    }

    /// `client` sees at least one broker connection up.
    pub(crate) fn up(&mut self, client: Client, now: Instant) -> Change {
        self.last.insert(client, (true, now));
        match &self.state {
            BrokerConnectivity::Unreachable { since_ms, .. } => {
                let after = now_ms() - since_ms;
                self.state = BrokerConnectivity::Connected;
                Change::Regained(after)
            }
            BrokerConnectivity::Connected => Change::None,
        }
    }

    /// `client` sees no broker connection up, for `reason`.
    pub(crate) fn down(&mut self, client: Client, reason: &str, now: Instant) -> Change {
        self.last.insert(client, (false, now));
        match &mut self.state {
            BrokerConnectivity::Unreachable { reason: r, .. } => {
                if r != reason {
                    *r = reason.to_owned();
                }
                Change::None
            }
            BrokerConnectivity::Connected => {
                let another_is_up = self.last.iter().any(|(c, (up, at))| {
                    *c != client && *up && now.saturating_duration_since(*at) < FRESH
                });
                if another_is_up {
                    return Change::None;
                }
                self.state = BrokerConnectivity::Unreachable {
                    since_ms: now_ms(),
                    reason: reason.to_owned(),
                };
                Change::Lost
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(c: &Connectivity) -> bool {
        matches!(c.state(), BrokerConnectivity::Unreachable { .. })
    }

    #[test]
    fn one_client_down_with_no_other_up_is_an_outage_at_once() {
        let mut c = Connectivity::default();
        let t0 = Instant::now();
        assert_eq!(c.up(Client::Consumer(0), t0), Change::None);
        // Its own earlier "up" does not hold its "down" back.
        assert_eq!(
            c.down(Client::Consumer(0), "1/1 brokers are down", t0),
            Change::Lost
        );
        match c.state() {
            BrokerConnectivity::Unreachable { reason, .. } => {
                assert_eq!(reason, "1/1 brokers are down");
            }
            BrokerConnectivity::Connected => panic!("connected"),
        }
        assert!(matches!(c.up(Client::Consumer(0), t0), Change::Regained(_)));
        assert!(!unreachable(&c));
    }

    #[test]
    fn a_busy_thread_s_consumer_does_not_hide_what_its_producer_sees() {
        let mut c = Connectivity::default();
        let t0 = Instant::now();
        c.up(Client::Consumer(0), t0);
        c.up(Client::Producer(0), t0);
        // The consumer goes silent (its thread is busy); the producer sees the outage. While
        // the consumer's last "up" is fresh it still counts...
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(c.down(Client::Producer(0), "down", soon), Change::None);
        // ...and once it is stale, the producer's next report is the outage.
        let later = t0 + FRESH + Duration::from_millis(1);
        assert_eq!(c.down(Client::Producer(0), "down", later), Change::Lost);
        assert!(unreachable(&c));
    }

    #[test]
    fn an_idle_client_still_down_after_an_outage_does_not_flap_the_state() {
        let mut c = Connectivity::default();
        let mut t = Instant::now();
        c.down(Client::Consumer(0), "down", t);
        c.down(Client::Producer(0), "down", t);
        assert!(unreachable(&c));
        // The consumer reconnects; the idle producer goes on reporting no connection.
        for _ in 0..10 {
            t += Duration::from_secs(1);
            c.up(Client::Consumer(0), t);
            assert_eq!(c.down(Client::Producer(0), "down", t), Change::None);
            assert!(!unreachable(&c));
        }
    }

    #[test]
    fn reasons_follow_the_latest_report_without_a_new_outage() {
        let mut c = Connectivity::default();
        let t = Instant::now();
        assert_eq!(c.down(Client::Consumer(1), "first", t), Change::Lost);
        assert_eq!(c.down(Client::Producer(1), "second", t), Change::None);
        match c.state() {
            BrokerConnectivity::Unreachable { reason, .. } => assert_eq!(reason, "second"),
            BrokerConnectivity::Connected => panic!("connected"),
        }
    }
}
