//! The two ranges a Service draws from, and how their addresses and ports are numbered as bitmap slots.
//!
//! ```text
//!   service CIDR 10.96.0.0/12                       node ports 30000-32767
//!   10.96.0.0  10.96.0.1  10.96.0.2 … 10.111.255.254  10.111.255.255    30000  30001 … 32767
//!   network    slot 0     slot 1      slot 1048573    broadcast         slot 0 slot 1  slot 2767
//!   (never)    (kubernetes Service)                   (never)
//! ```
//!
//! As in Kubernetes (`ipallocator/bitmap.go`), neither the network address nor the broadcast address of the CIDR is
//! ever handed out, and the *reserved* lower part of each range (see [`super::bitmap`]) is
//! `min(max(16, size / 16), 256)` addresses and `min(max(16, size / 32), 128)` ports.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The service CIDR (`--service-cluster-ip-range`, default `10.96.0.0/12`). IPv4 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: Ipv4Addr,
    prefix: u8,
}

/// The node port range (`--service-node-port-range`, default `30000-32767`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl Default for IpRange {
    fn default() -> Self {
        IpRange { network: Ipv4Addr::new(10, 96, 0, 0), prefix: 12 }
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange { first: 30000, last: 32767 }
    }
}

impl FromStr for IpRange {
    type Err = String;

    /// `10.96.0.0/12`. Kubernetes refuses CIDRs larger than a `/12` (the bitmap would be too big to store) and we
    /// refuse those with fewer than two usable addresses.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IPv4 CIDR such as 10.96.0.0/12");
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(12..=30).contains(&prefix) {
            return Err(format!("the service CIDR {text} must have a prefix between /12 and /30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(IpRange { network: Ipv4Addr::from(u32::from(address) & mask), prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl IpRange {
    /// How many addresses the CIDR holds, network and broadcast included.
    fn cidr_size(&self) -> usize {
        1 << (32 - self.prefix)
    }

    /// How many addresses can be handed out: all but the network and the broadcast address.
    pub fn size(&self) -> usize {
        self.cidr_size() - 2
    }

    /// The lower slots kept for addresses users ask for by number.
    pub fn reserved(&self) -> usize {
        reserved(self.cidr_size(), 16, 256)
    }

    /// The address of slot `slot` (slot 0 is the first address after the network address).
    pub fn address(&self, slot: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1 + slot as u32)
    }

    /// The slot of `ip`, or Kubernetes' refusal when it is outside the range.
    pub fn slot(&self, ip: Ipv4Addr) -> Result<usize, String> {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network)) as usize;
        if u32::from(ip) < u32::from(self.network) || offset == 0 || offset > self.size() {
            return Err(format!("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self}"));
        }
        Ok(offset - 1)
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `30000-32767`, or Kubernetes' other spelling `30000+2767`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a port range such as 30000-32767");
        let (first, last) = if let Some((first, last)) = text.split_once('-') {
            (first.parse::<u16>().map_err(|_| bad())?, last.parse::<u16>().map_err(|_| bad())?)
        } else if let Some((first, count)) = text.split_once('+') {
            let first = first.parse::<u16>().map_err(|_| bad())?;
            (first, first.checked_add(count.parse::<u16>().map_err(|_| bad())?).ok_or_else(bad)?)
        } else {
            return Err(bad());
        };
        if first == 0 || last < first {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl PortRange {
    /// How many ports the range has.
    pub fn size(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// The lower slots kept for ports users ask for by number.
    pub fn reserved(&self) -> usize {
        reserved(self.size(), 32, 128)
    }

    /// The port of slot `slot`.
    pub fn port(&self, slot: usize) -> i32 {
        i32::from(self.first) + slot as i32
    }

    /// The slot of `port`, or Kubernetes' refusal when it is outside the range.
    pub fn slot(&self, port: i32) -> Result<usize, String> {
        if port < i32::from(self.first) || port > i32::from(self.last) {
            return Err(format!("provided port is not in the valid range. The range of valid ports is {self}"));
        }
        Ok((port - i32::from(self.first)) as usize)
    }
}

/// Kubernetes' `calculateRangeOffset`: `min(max(16, size / step), max)`, and nothing for tiny ranges.
fn reserved(size: usize, step: usize, max: usize) -> usize {
    if size <= 16 { 0 } else { (size / step).clamp(16, max) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_service_cidr_skips_the_network_and_broadcast_addresses() {
        let range = IpRange::default();
        assert_eq!(range.to_string(), "10.96.0.0/12");
        assert_eq!(range.address(0), Ipv4Addr::new(10, 96, 0, 1), "slot 0 is the kubernetes Service's");
        assert_eq!(range.slot(Ipv4Addr::new(10, 96, 0, 10)), Ok(9));
        assert_eq!(range.address(range.size() - 1), Ipv4Addr::new(10, 111, 255, 254));
        assert_eq!(range.reserved(), 256);
        for outside in ["10.96.0.0", "10.111.255.255", "10.112.0.1", "10.95.255.255", "1.1.1.1"] {
            assert!(range.slot(outside.parse().unwrap()).is_err(), "{outside}");
        }
        assert_eq!(
            range.slot(Ipv4Addr::new(1, 1, 1, 1)).unwrap_err(),
            "the provided IP (1.1.1.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
        );
    }

    #[test]
    fn a_service_cidr_is_read_like_kubernetes_reads_it() {
        assert_eq!("10.0.0.7/24".parse::<IpRange>().unwrap().to_string(), "10.0.0.0/24");
        assert_eq!("10.0.0.0/24".parse::<IpRange>().unwrap().reserved(), 16);
        assert_eq!("10.0.0.0/28".parse::<IpRange>().unwrap().reserved(), 0);
        assert!("10.0.0.0/8".parse::<IpRange>().is_err(), "too large for a bitmap");
        assert!("10.0.0.0/31".parse::<IpRange>().is_err());
        assert!("fd00::/108".parse::<IpRange>().is_err(), "IPv6 is left out");
    }

    #[test]
    fn node_ports_are_numbered_from_the_start_of_their_range() {
        let range = PortRange::default();
        assert_eq!((range.size(), range.reserved()), (2768, 86));
        assert_eq!(range.slot(30080), Ok(80));
        assert_eq!(range.port(80), 30080);
        assert_eq!(
            range.slot(8080).unwrap_err(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        assert_eq!("30000+9".parse::<PortRange>().unwrap().to_string(), "30000-30009");
        assert!("32767-30000".parse::<PortRange>().is_err());
    }
}
