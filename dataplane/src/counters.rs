//! Per-worker counters: plain integers owned by one core (no shared atomics on the hot path).
//! The control core reads copies the worker publishes between bursts.

/// Why a packet was dropped. Every drop is counted under exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    TruncatedEthernet,
    UnsupportedEthertype,
    MalformedIpv4,
    MalformedL4,
    /// IPv4 to a VIP with no service for its protocol/port.
    NoService,
    /// A later fragment for a VIP where several services could own it.
    FragmentWithoutService,
    /// The service has no healthy backend (with a resolved MAC) for a new flow.
    NoHealthyBackend,
    /// Not for a VIP nor the LB, and nothing routes it (one-arm: no open relay).
    NotForUs,
    /// Inline routing with TTL <= 1.
    TtlExceeded,
    /// Inline routing before the client-side gateway's MAC is known.
    GatewayUnresolved,
    /// ICMP to a VIP that is neither echo nor an error we can steer.
    IcmpUnsupported,
    /// An ICMP error whose embedded header is too short or names no service.
    IcmpErrorUnmatched,
    /// Too big for the egress MTU with DF set (or IPv6, which routers never fragment); a
    /// "fragmentation needed" or Packet Too Big was sent or rate-limited.
    TooBigDontFragment,
    /// No buffer for an outer fragment, or no headroom for encapsulation.
    NoBuffer,
    /// Not addressed to the receiving port's MAC (broadcast is taken for ARP only): flooded
    /// unicast for another host, multicast, broadcast IP.
    NotOurMac,
    /// A new flow from an address no client has: 0/8, 127/8, multicast, reserved, broadcast,
    /// or one of our own VIPs and addresses.
    MartianSource,
    /// Too big for the egress MTU, DF clear, in a mode that does not fragment (l2, dscp).
    TooBig,
    /// For the control core, but over this worker's rate for its kind (ARP, replies, the rest).
    PuntPoliced,
    /// An IPv6 header that is cut short or names more bytes than the frame holds.
    MalformedIpv6,
    /// An IPv6 extension header that cannot be handled safely: a routing header with segments
    /// left, hop-by-hop options not first, a second fragment header, or too many of them.
    Ipv6ExtensionHeader,
    /// Neighbour discovery that a neighbour cannot have sent (hop limit not 255, as RFC 4861
    /// requires, so that it was not routed from off the link), or router discovery and
    /// redirects, which a load balancer does not take.
    NeighborDiscoveryRefused,
}

impl DropReason {
    pub const COUNT: usize = 21;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::TruncatedEthernet,
        DropReason::UnsupportedEthertype,
        DropReason::MalformedIpv4,
        DropReason::MalformedL4,
        DropReason::NoService,
        DropReason::FragmentWithoutService,
        DropReason::NoHealthyBackend,
        DropReason::NotForUs,
        DropReason::TtlExceeded,
        DropReason::GatewayUnresolved,
        DropReason::IcmpUnsupported,
        DropReason::IcmpErrorUnmatched,
        DropReason::TooBigDontFragment,
        DropReason::NoBuffer,
        DropReason::NotOurMac,
        DropReason::MartianSource,
        DropReason::TooBig,
        DropReason::PuntPoliced,
        DropReason::MalformedIpv6,
        DropReason::Ipv6ExtensionHeader,
        DropReason::NeighborDiscoveryRefused,
    ];

    /// A stable snake_case name for metrics and `dsrlb ctl stats`.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::TruncatedEthernet => "truncated_ethernet",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::MalformedIpv4 => "malformed_ipv4",
            DropReason::MalformedL4 => "malformed_l4",
            DropReason::NoService => "no_service",
            DropReason::FragmentWithoutService => "fragment_without_service",
            DropReason::NoHealthyBackend => "no_healthy_backend",
            DropReason::NotForUs => "not_for_us",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::GatewayUnresolved => "gateway_unresolved",
            DropReason::IcmpUnsupported => "icmp_unsupported",
            DropReason::IcmpErrorUnmatched => "icmp_error_unmatched",
            DropReason::TooBigDontFragment => "too_big_dont_fragment",
            DropReason::NoBuffer => "no_buffer",
            DropReason::NotOurMac => "not_our_mac",
            DropReason::MartianSource => "martian_source",
            DropReason::TooBig => "too_big",
            DropReason::PuntPoliced => "punt_policed",
            DropReason::MalformedIpv6 => "malformed_ipv6",
            DropReason::Ipv6ExtensionHeader => "ipv6_extension_header",
            DropReason::NeighborDiscoveryRefused => "neighbor_discovery_refused",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// Everything one worker counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub forwarded: u64,
    pub to_control: u64,
    pub drops: [u64; DropReason::COUNT],
    /// Indexed by stable service id.
    pub services: Vec<TrafficCounters>,
    /// Indexed by stable backend id.
    pub backends: Vec<TrafficCounters>,
    /// New flows forwarded by the consistent hash without state because the table was full
    /// (counted per TCP SYN, per UDP datagram).
    pub stateless_fallbacks: u64,
    /// TCP packets of a connection this worker held no state for (the table was full when it
    /// opened, or it opened before a restart, on another worker or another instance),
    /// forwarded by the consistent hash.
    pub midflow_without_state: u64,
    /// Flows that saw only a SYN and expired on the short SYN timeout.
    pub embryonic_expired: u64,
    /// Expired entries reclaimed to make room for a new flow.
    pub reclaimed_on_insert: u64,
    /// Entries removed by the background sweep.
    pub expired_by_sweep: u64,
    /// Flows moved to another backend because theirs failed or left the configuration.
    pub rescheduled: u64,
    pub icmp_errors_steered: u64,
    /// "Fragmentation needed" answers sent back out the ingress port (not counted as
    /// forwarded: every packet is counted once, as forwarded, to control, dropped or answered).
    pub frag_needed_sent: u64,
    pub frag_needed_rate_limited: u64,
    pub outer_fragments: u64,
    pub inline_routed: u64,
}

impl Counters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Every packet received is counted once: forwarded, to control, dropped, or answered.
    pub fn accounted(&self) -> u64 {
        self.forwarded + self.to_control + self.total_drops() + self.frag_needed_sent
    }

    /// `packets` packets of `bytes` bytes forwarded for service id `service` to backend id
    /// `backend` (ids the counters have no room for are not counted: `ensure_ids` makes room
    /// for every id of the installed snapshot).
    #[inline(always)]
    pub fn add_traffic(&mut self, service: u16, backend: u32, packets: u64, bytes: u64) {
        if let Some(sc) = self.services.get_mut(service as usize) {
            sc.packets += packets;
            sc.bytes += bytes;
        }
        if let Some(bc) = self.backends.get_mut(backend as usize) {
            bc.packets += packets;
            bc.bytes += bytes;
        }
    }

    /// Make room for ids up to the given counts (called when a snapshot is installed).
    pub fn ensure_ids(&mut self, services: usize, backends: usize) {
        if self.services.len() < services {
            self.services.resize(services, TrafficCounters::default());
        }
        if self.backends.len() < backends {
            self.backends.resize(backends, TrafficCounters::default());
        }
    }

    /// Add another worker's counters (the control core's sum over workers).
    pub fn merge(&mut self, o: &Counters) {
        self.rx_packets += o.rx_packets;
        self.forwarded += o.forwarded;
        self.to_control += o.to_control;
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        self.ensure_ids(o.services.len(), o.backends.len());
        for (a, b) in self.services.iter_mut().zip(&o.services) {
            add(a, b);
        }
        for (a, b) in self.backends.iter_mut().zip(&o.backends) {
            add(a, b);
        }
        self.stateless_fallbacks += o.stateless_fallbacks;
        self.midflow_without_state += o.midflow_without_state;
        self.embryonic_expired += o.embryonic_expired;
        self.reclaimed_on_insert += o.reclaimed_on_insert;
        self.expired_by_sweep += o.expired_by_sweep;
        self.rescheduled += o.rescheduled;
        self.icmp_errors_steered += o.icmp_errors_steered;
        self.frag_needed_sent += o.frag_needed_sent;
        self.frag_needed_rate_limited += o.frag_needed_rate_limited;
        self.outer_fragments += o.outer_fragments;
        self.inline_routed += o.inline_routed;
    }
}

fn add(a: &mut TrafficCounters, b: &TrafficCounters) {
    a.packets += b.packets;
    a.bytes += b.bytes;
    a.new_flows += b.new_flows;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reasons_listed_once_with_distinct_names() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
