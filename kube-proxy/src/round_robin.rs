//! The userspace mode's choice of endpoint: round robin, skipping endpoints that refuse.
//!
//! The userspace proxy accepts each client connection itself and opens a second one to an endpoint. Which one is
//! decided here, with no I/O: [`LoadBalancer::attempts`] gives the order in which to try the endpoints for one new
//! connection — starting with the next one in turn, then each other once, wrapping around — and the forwarder
//! ([`crate::forwarder`]) connects to the first that accepts. So an endpoint that refuses (a pod that died before
//! the EndpointSlice caught up) costs one failed connect, never a failed client connection while another endpoint
//! is up. Kubernetes' userspace proxy (removed in 1.26) did the same with its `LoadBalancerRR`, and tried each
//! endpoint with a growing timeout.

use std::net::SocketAddr;

// ANCHOR: load_balancer
/// Round robin over one service port's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancer {
    endpoints: Vec<SocketAddr>,
    /// Index of the endpoint the next connection tries first.
    next: usize,
}

impl LoadBalancer {
    /// A balancer over `endpoints`, starting with the first.
    pub fn new(endpoints: Vec<SocketAddr>) -> Self {
        LoadBalancer { endpoints, next: 0 }
    }

    /// Replaces the endpoints (the EndpointSlices changed). The turn goes on from the same position, so that an
    /// update does not send the next connections back to the first endpoint.
    pub fn set_endpoints(&mut self, endpoints: Vec<SocketAddr>) {
        if endpoints != self.endpoints {
            self.endpoints = endpoints;
            self.next = if self.endpoints.is_empty() { 0 } else { self.next % self.endpoints.len() };
        }
    }

    /// The endpoints to try for one new connection, in order: the one whose turn it is, then the following ones,
    /// wrapping around, each once. The turn moves on by one, whichever of them ends up taking the connection.
    /// Empty when there are no endpoints: the client is then refused.
    pub fn attempts(&mut self) -> Vec<SocketAddr> {
        let n = self.endpoints.len();
        if n == 0 {
            return Vec::new();
        }
        let first = self.next % n;
        self.next = (first + 1) % n;
        (0..n).map(|i| self.endpoints[(first + i) % n]).collect()
    }
}
// ANCHOR_END: load_balancer

/// The endpoint a connection lands on: the first of `attempts` that `accepts`. The forwarder's loop, without the
/// sockets, for the tests.
#[cfg(test)]
fn land(balancer: &mut LoadBalancer, accepts: impl Fn(SocketAddr) -> bool) -> Option<SocketAddr> {
    balancer.attempts().into_iter().find(|endpoint| accepts(*endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 244, 0, last], 8080))
    }

    #[test]
    fn connections_take_turns_and_wrap_around() {
        let mut balancer = LoadBalancer::new(vec![addr(1), addr(2), addr(3)]);
        let landed: Vec<_> = (0..7).map(|_| land(&mut balancer, |_| true).unwrap()).collect();
        assert_eq!(landed, [addr(1), addr(2), addr(3), addr(1), addr(2), addr(3), addr(1)]);
    }

    #[test]
    fn each_connection_tries_every_endpoint_once_starting_with_the_one_whose_turn_it_is() {
        let mut balancer = LoadBalancer::new(vec![addr(1), addr(2), addr(3)]);
        assert_eq!(balancer.attempts(), [addr(1), addr(2), addr(3)]);
        assert_eq!(balancer.attempts(), [addr(2), addr(3), addr(1)]);
        assert_eq!(balancer.attempts(), [addr(3), addr(1), addr(2)]);
        assert_eq!(balancer.attempts(), [addr(1), addr(2), addr(3)]);
    }

    #[test]
    fn an_endpoint_that_refuses_is_skipped_and_the_next_takes_the_connection() {
        let mut balancer = LoadBalancer::new(vec![addr(1), addr(2), addr(3)]);
        let refuses = addr(2);
        let landed: Vec<_> = (0..4).map(|_| land(&mut balancer, |e| e != refuses).unwrap()).collect();
        // Turn of 1 → 1; turn of 2 → refused, 3; turn of 3 → 3; turn of 1 → 1.
        assert_eq!(landed, [addr(1), addr(3), addr(3), addr(1)]);
    }

    #[test]
    fn when_every_endpoint_refuses_or_there_are_none_the_connection_goes_nowhere() {
        let mut balancer = LoadBalancer::new(vec![addr(1), addr(2)]);
        assert_eq!(land(&mut balancer, |_| false), None);
        assert_eq!(LoadBalancer::default().attempts(), []);
    }

    #[test]
    fn new_endpoints_keep_the_turn_where_it_was() {
        let mut balancer = LoadBalancer::new(vec![addr(1), addr(2), addr(3)]);
        balancer.attempts();
        balancer.attempts();
        // Turn of the third; a scale-down to two wraps it to the first.
        balancer.set_endpoints(vec![addr(1), addr(2)]);
        assert_eq!(balancer.attempts(), [addr(1), addr(2)]);
        // The same endpoints again change nothing.
        balancer.set_endpoints(vec![addr(1), addr(2)]);
        assert_eq!(balancer.attempts(), [addr(2), addr(1)]);
    }
}
