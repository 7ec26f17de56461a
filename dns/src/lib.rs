//! # kubelab-dns: the cluster DNS server
//!
//! A Service gives a set of pods one stable address, but nobody wants to write `10.96.14.3` in a config file. The
//! cluster DNS server gives every Service a name: `catalog.shop.svc.cluster.local` stands for the cluster IP of
//! the Service `catalog` in the namespace `shop`, and a pod's resolver, told to search `shop.svc.cluster.local`
//! first, finds it as plain `catalog`. In Kubernetes this is CoreDNS (kube-dns before it): a Deployment in
//! `kube-system`, behind the Service `kube-dns` at a fixed cluster IP that the kubelet writes into every pod's
//! `/etc/resolv.conf`. This crate plays that part. It is a client of the apiserver like any other component:
//!
//! - it **watches** Services, EndpointSlices and Endpoints through three [`kubelab_api::informer::Informer`]s (the
//!   last two only matter for headless Services: a Service's EndpointSlices when it has any, as CoreDNS reads
//!   them, else its older Endpoints, which CoreDNS no longer reads: DNS works whichever controller runs);
//! - it **writes** nothing to the cluster; it only answers DNS questions, over UDP and TCP;
//! - it **answers** ([`answer()`](answer())) A and AAAA records for `<service>.<namespace>.svc.<cluster domain>`
//!   (the cluster IP, or every ready pod's IP for a headless Service), A records for a headless Service's pods by
//!   their own name (`web-0.web.shop.svc.cluster.local`), SRV records for named ports
//!   (`_http._tcp.web.shop.svc.cluster.local`), a CNAME for an ExternalName Service, NXDOMAIN for any other name in
//!   the cluster domain, and REFUSED for names outside it.
//!
//! The modules, in the order a question travels:
//!
//! - [`server`]: binds the sockets, runs the informers, rebuilds the index after each change, and hands every
//!   question to hickory's server loop, which decodes and encodes the DNS messages;
//! - [`index`]: [`ServiceIndex`], what the cluster looks like to DNS, built from Services and their endpoints as
//!   plain data;
//! - [`answer`](mod@answer): the decision, a pure function of (name, type, index), tested as a table of questions.
//!
//! The wire format (message layout, name compression, EDNS, truncation and TCP framing) is the `hickory-server`
//! crate's, never ours: DNS is full of corner cases, and the interesting part for a student is which names exist.
//!
//! Book chapter: "Cluster DNS" (`book/src/dns.md`).
//!
//! ## Not wired into the cluster yet
//! `kubelab up` does not start this server, no `kube-dns` Service gives it a cluster IP, and the kubelet does not
//! yet write pods' `/etc/resolv.conf` to point at it: kube-proxy's userspace mode forwards TCP only, and DNS needs
//! UDP to reach it through a cluster IP. Until then it runs as `kubelab-dns --listen 127.0.0.1:10053` and is asked with `dig -p 10053`.
//!
//! ## What we leave out
//! - **Forwarding.** CoreDNS forwards every name outside the cluster domain to the node's own resolvers, so pods
//!   resolve `example.com` through it. We answer REFUSED, and a resolver with a second `nameserver` line moves on to
//!   it. A forwarder is the `forward` plugin's whole job, with its own cache and health checks, not written here.
//! - **Pod records** (`10-244-1-5.shop.pod.cluster.local`, deprecated in the DNS specification), reverse (PTR)
//!   records, the SOA record in negative answers (which tells resolvers how long to cache an NXDOMAIN),
//!   `dns-version` TXT, DNSSEC, and a response cache.

pub mod answer;
pub mod index;
pub mod server;

pub use answer::{Answer, TTL, answer};
pub use index::ServiceIndex;
pub use server::{Config, DnsServer};

/// What can go wrong starting the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain given is not a DNS name.
    #[error("the cluster domain {domain:?} is not a DNS name: {reason}")]
    InvalidClusterDomain {
        /// As given, e.g. `cluster..local`.
        domain: String,
        /// hickory's reason.
        reason: String,
    },
    /// The UDP or TCP socket could not be bound (the port is taken, or below 1024 without privileges).
    #[error("cannot listen on {addr} ({protocol}): {source}")]
    Bind {
        /// Where we tried to listen.
        addr: std::net::SocketAddr,
        /// `udp` or `tcp`.
        protocol: &'static str,
        source: std::io::Error,
    },
    /// kubelab-api has no Service, EndpointSlice or Endpoints resource (a build of it without them).
    #[error("kubelab-api does not serve {0}")]
    MissingResource(&'static str),
    /// hickory's server loop ended with an error.
    #[error("the DNS server stopped: {0}")]
    Server(#[from] hickory_server::net::NetError),
}

/// Parses a cluster domain (`cluster.local`, with or without the final dot) into the lowercase, fully qualified
/// name the index compares questions against.
pub fn cluster_domain(domain: &str) -> Result<hickory_server::proto::rr::Name, Error> {
    let invalid = |reason: String| Error::InvalidClusterDomain { domain: domain.to_string(), reason };
    if domain.trim_end_matches('.').is_empty() {
        return Err(invalid("it is empty".to_string()));
    }
    let mut name = hickory_server::proto::rr::Name::from_ascii(domain).map_err(|e| invalid(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}
