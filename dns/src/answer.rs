//! The decision: what cluster DNS answers to one question, without I/O.
//!
//! A question is a name and a record type. [`answer`] reads the name from the right: is it under the cluster
//! domain at all, then `svc`, then a namespace, a Service, and maybe a pod label or a port. Every shape a name can
//! have is one arm of a `match`, written as the name reads:
//!
//! | name                                         | answer                                                |
//! |----------------------------------------------|-------------------------------------------------------|
//! | `web.shop.svc.cluster.local`                 | A/AAAA: the cluster IP; headless: every ready pod's IP |
//! | `db-0.db.shop.svc.cluster.local`             | A: that pod of the headless Service `db`               |
//! | `_http._tcp.web.shop.svc.cluster.local`      | SRV: port `http`'s number, and the name to connect to  |
//! | `ext.shop.svc.cluster.local` (ExternalName)  | CNAME: the name it aliases                             |
//! | any other name under `cluster.local`         | NXDOMAIN                                               |
//! | any name outside `cluster.local`             | REFUSED: we do not forward (see the crate docs)        |
//!
//! A name that exists but has no record of the asked type (AAAA of an IPv4-only Service) is NOERROR with no
//! record ("NODATA"), never NXDOMAIN: a resolver that asks for A and AAAA at once would otherwise conclude the
//! name does not exist at all.

use crate::index::{Backend, NamedPort, ServiceIndex, Target};
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, SRV};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

/// How long a client may cache an answer, in seconds: CoreDNS' `kubernetes` plugin default. Short, because a
/// headless Service's pods come and go; a cluster IP lasts as long as its Service.
pub const TTL: u32 = 5;

// ANCHOR: answer_type
/// The answer to one question.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// NOERROR: the name exists. `answers` may be empty: the name has no record of the asked type (NODATA).
    Records {
        answers: Vec<Record>,
        /// What the asker will want next, sent along: the addresses of the SRV records' targets.
        additionals: Vec<Record>,
    },
    /// NXDOMAIN: no such name in the cluster domain.
    NoSuchName,
    /// REFUSED: the name is outside the cluster domain, and this server does not forward.
    NotOurs,
}
// ANCHOR_END: answer_type

impl Answer {
    /// The response code the DNS message carries.
    pub fn response_code(&self) -> ResponseCode {
        match self {
            Answer::Records { .. } => ResponseCode::NoError,
            Answer::NoSuchName => ResponseCode::NXDomain,
            Answer::NotOurs => ResponseCode::Refused,
        }
    }

    /// Whether we answer with authority: for the cluster domain we do (nobody else knows it); for other names we
    /// say nothing.
    pub fn authoritative(&self) -> bool {
        !matches!(self, Answer::NotOurs)
    }

    fn records(answers: Vec<Record>) -> Answer {
        Answer::Records { answers, additionals: Vec::new() }
    }

    fn no_data() -> Answer {
        Answer::records(Vec::new())
    }
}

// ANCHOR: answer
/// What the cluster DNS answers when asked for `query_type` records of `name`.
pub fn answer(name: &Name, query_type: RecordType, index: &ServiceIndex) -> Answer {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    if !index.domain.zone_of(&name) {
        return Answer::NotOurs;
    }
    // The labels before the cluster domain, left to right: `web.shop.svc.cluster.local.` gives [web, shop, svc].
    let own = usize::from(name.num_labels() - index.domain.num_labels());
    let labels: Vec<String> = name.iter().take(own).map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    match labels.as_slice() {
        // The cluster domain itself and `svc.<domain>` exist (they hold every Service's name), with no record.
        [] | ["svc"] => Answer::no_data(),
        [namespace, "svc"] if index.has_namespace(namespace) => Answer::no_data(),
        [service, namespace, "svc"] => match index.service(namespace, service) {
            Some(target) => service_records(&name, target, query_type),
            None => Answer::NoSuchName,
        },
        [port, protocol, service, namespace, "svc"] if port.starts_with('_') && protocol.starts_with('_') => {
            match index.service(namespace, service) {
                Some(target) => named_port_records(&name, target, &port[1..], &protocol[1..], query_type),
                None => Answer::NoSuchName,
            }
        }
        [pod, service, namespace, "svc"] => match index.service(namespace, service) {
            Some(Target::Headless(backends)) => match backends.iter().find(|b| b.label == *pod) {
                Some(backend) => Answer::records(address_records(&name, [backend.ip], query_type)),
                None => Answer::NoSuchName,
            },
            _ => Answer::NoSuchName,
        },
        // Pod names (`10-244-1-5.shop.pod.cluster.local`) and anything else: no such name.
        _ => Answer::NoSuchName,
    }
}
// ANCHOR_END: answer

/// The records of a Service's own name, `<service>.<namespace>.svc.<domain>`.
fn service_records(name: &Name, target: &Target, query_type: RecordType) -> Answer {
    match target {
        // An alias answers every type with the CNAME; the asker's resolver follows it.
        Target::ExternalName(alias) => {
            Answer::records(vec![Record::from_rdata(name.clone(), TTL, RData::CNAME(CNAME(alias.clone())))])
        }
        Target::ClusterIp { ips, ports } => match query_type {
            RecordType::SRV => {
                srv_answer(name, ports.iter().map(|port| (port.port, name.clone(), ips.clone())).collect())
            }
            _ => Answer::records(address_records(name, ips.iter().copied(), query_type)),
        },
        Target::Headless(backends) => match query_type {
            RecordType::SRV => srv_answer(
                name,
                backends
                    .iter()
                    .flat_map(|b| b.ports.iter().map(move |port| (port.port, backend_name(name, b), vec![b.ip])))
                    .collect(),
            ),
            _ => Answer::records(address_records(name, backends.iter().map(|b| b.ip), query_type)),
        },
    }
}

// ANCHOR: srv
/// The records of `_<port>._<protocol>.<service>.<namespace>.svc.<domain>`: one SRV record per way to reach the
/// port — the Service's name for a cluster IP, each pod's own name for a headless Service.
fn named_port_records(name: &Name, target: &Target, port: &str, protocol: &str, query_type: RecordType) -> Answer {
    let service = name.base_name().base_name();
    let matches = |p: &NamedPort| p.name.eq_ignore_ascii_case(port) && p.protocol == protocol;
    let targets: Vec<(u16, Name, Vec<IpAddr>)> = match target {
        Target::ExternalName(_) => Vec::new(),
        Target::ClusterIp { ips, ports } => {
            ports.iter().filter(|p| matches(p)).map(|p| (p.port, service.clone(), ips.clone())).collect()
        }
        Target::Headless(backends) => backends
            .iter()
            .flat_map(|b| {
                b.ports.iter().filter(|p| matches(p)).map(|p| (p.port, backend_name(&service, b), vec![b.ip]))
            })
            .collect(),
    };
    if targets.is_empty() {
        return Answer::NoSuchName;
    }
    match query_type {
        RecordType::SRV => srv_answer(name, targets),
        _ => Answer::no_data(),
    }
}

/// SRV records of `owner` for `(port, target name, target addresses)`, all of priority 0 and equal weight
/// (clients spread evenly over them), with each target's addresses as additional records so that the client needs
/// no second question.
fn srv_answer(owner: &Name, targets: Vec<(u16, Name, Vec<IpAddr>)>) -> Answer {
    let mut answers = Vec::new();
    let mut additionals: Vec<Record> = Vec::new();
    for (port, target, ips) in targets {
        answers.push(Record::from_rdata(owner.clone(), TTL, RData::SRV(SRV::new(0, 100, port, target.clone()))));
        for query_type in [RecordType::A, RecordType::AAAA] {
            for record in address_records(&target, ips.iter().copied(), query_type) {
                if !additionals.contains(&record) {
                    additionals.push(record);
                }
            }
        }
    }
    Answer::Records { answers, additionals }
}
// ANCHOR_END: srv

/// A and AAAA records of `name` for those of `ips` that match `query_type` (IPv4 for A, IPv6 for AAAA); none for
/// any other type.
fn address_records(name: &Name, ips: impl IntoIterator<Item = IpAddr>, query_type: RecordType) -> Vec<Record> {
    ips.into_iter()
        .filter_map(|ip| match (query_type, ip) {
            (RecordType::A, IpAddr::V4(v4)) => Some(RData::A(A(v4))),
            (RecordType::AAAA, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(v6))),
            _ => None,
        })
        .map(|data| Record::from_rdata(name.clone(), TTL, data))
        .collect()
}

/// `<label>.<service>.<namespace>.svc.<domain>`: a headless Service's pod by its own name.
fn backend_name(service: &Name, backend: &Backend) -> Name {
    // A label is a DNS-1123 hostname or an IP with dashes, both valid labels; should one not be, the Service's
    // own name still leads to the pod.
    service.prepend_label(backend.label.as_str()).unwrap_or_else(|_| service.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Endpoints, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    /// The cluster every question is asked of, as `kubectl get` would show it:
    ///
    /// - `shop/web`: a ClusterIP Service at 10.96.0.20, ports `http` 80/TCP and an unnamed 8443;
    /// - `shop/db`: headless, two ready pods (`db-0` with a hostname, 10.244.2.7 without) and one not ready,
    ///   port `postgres` 5432;
    /// - `shop/cache`: headless, with an EndpointSlice (one pod ready, one not, one without conditions, which
    ///   counts as ready) and a stale Endpoints object that the slice overrides, port `redis` 6379;
    /// - `shop/payments`: an ExternalName alias of `pay.example.com`;
    /// - `shop/v6`: a dual-stack Service, 10.96.0.30 and fd00:10:96::30, port `dns` 53/UDP;
    /// - `shop/pending`: a Service whose cluster IP is not allocated yet.
    fn cluster() -> ServiceIndex {
        let services: Vec<Service> = [
            json!({"metadata": {"namespace": "shop", "name": "web"}, "spec": {"clusterIP": "10.96.0.20",
                "ports": [{"name": "http", "port": 80}, {"port": 8443}]}}),
            json!({"metadata": {"namespace": "shop", "name": "db"}, "spec": {"clusterIP": "None",
                "ports": [{"name": "postgres", "port": 5432}]}}),
            json!({"metadata": {"namespace": "shop", "name": "cache"}, "spec": {"clusterIP": "None"}}),
            json!({"metadata": {"namespace": "shop", "name": "payments"},
                "spec": {"type": "ExternalName", "externalName": "pay.example.com"}}),
            json!({"metadata": {"namespace": "shop", "name": "v6"}, "spec": {"clusterIP": "10.96.0.30",
                "clusterIPs": ["10.96.0.30", "fd00:10:96::30"], "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}),
            json!({"metadata": {"namespace": "shop", "name": "pending"}, "spec": {}}),
        ]
        .into_iter()
        .map(|s| serde_json::from_value(s).unwrap())
        .collect();
        let endpoints: Vec<Endpoints> = vec![
            serde_json::from_value(json!({"metadata": {"namespace": "shop", "name": "db"}, "subsets": [{
                "addresses": [{"ip": "10.244.1.5", "hostname": "db-0"}, {"ip": "10.244.2.7"}],
                "notReadyAddresses": [{"ip": "10.244.3.9", "hostname": "db-2"}],
                "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP"}]}]}))
            .unwrap(),
            serde_json::from_value(json!({"metadata": {"namespace": "shop", "name": "cache"}, "subsets": [{
                "addresses": [{"ip": "10.244.9.9"}]}]}))
            .unwrap(),
        ];
        let slices: Vec<EndpointSlice> = vec![
            serde_json::from_value(json!({"metadata": {"namespace": "shop", "name": "cache-x7k2p",
                "labels": {"kubernetes.io/service-name": "cache"}}, "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.244.1.8"], "hostname": "cache-0", "conditions": {"ready": true}},
                    {"addresses": ["10.244.2.9"], "conditions": {"ready": false}},
                    {"addresses": ["10.244.3.3"]}],
                "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}))
            .unwrap(),
        ];
        ServiceIndex::build(crate::cluster_domain("cluster.local").unwrap(), &services, &slices, &endpoints)
    }

    /// The answer as text: `NXDOMAIN`, `REFUSED`, or one line per record (`+` before additional ones), `NODATA`
    /// when the name exists without records of that type.
    fn ask(name: &str, query_type: RecordType) -> Vec<String> {
        let name = Name::from_ascii(name).unwrap();
        match answer(&name, query_type, &cluster()) {
            Answer::NoSuchName => vec!["NXDOMAIN".to_string()],
            Answer::NotOurs => vec!["REFUSED".to_string()],
            Answer::Records { answers, additionals } if answers.is_empty() => {
                assert!(additionals.is_empty());
                vec!["NODATA".to_string()]
            }
            Answer::Records { answers, additionals } => answers
                .iter()
                .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
                .chain(additionals.iter().map(|r| format!("+ {} {} {}", r.name, r.record_type(), r.data)))
                .collect(),
        }
    }

    use RecordType::{A, AAAA, MX, SRV};

    #[test]
    fn decision_table() {
        #[rustfmt::skip]
        let table: &[(&str, &str, RecordType, &[&str])] = &[
            ("a service's name is its cluster IP",
             "web.shop.svc.cluster.local.", A, &["web.shop.svc.cluster.local. A 10.96.0.20"]),
            ("names are case-insensitive and the final dot is optional",
             "Web.SHOP.svc.Cluster.Local", A, &["web.shop.svc.cluster.local. A 10.96.0.20"]),
            ("an IPv4-only service has no AAAA record, but the name exists",
             "web.shop.svc.cluster.local.", AAAA, &["NODATA"]),
            ("a dual-stack service answers AAAA with its IPv6 cluster IP",
             "v6.shop.svc.cluster.local.", AAAA, &["v6.shop.svc.cluster.local. AAAA fd00:10:96::30"]),
            ("a type with no meaning for services has no record",
             "web.shop.svc.cluster.local.", MX, &["NODATA"]),
            ("a service without a cluster IP yet exists with no address",
             "pending.shop.svc.cluster.local.", A, &["NODATA"]),
            ("a headless service's name is every ready pod, never the unready one",
             "db.shop.svc.cluster.local.", A,
             &["db.shop.svc.cluster.local. A 10.244.1.5", "db.shop.svc.cluster.local. A 10.244.2.7"]),
            ("a headless service's pods come from its EndpointSlices when it has any; a pod without conditions is ready",
             "cache.shop.svc.cluster.local.", A,
             &["cache.shop.svc.cluster.local. A 10.244.1.8", "cache.shop.svc.cluster.local. A 10.244.3.3"]),
            ("an EndpointSlice's named port is an SRV record per ready pod",
             "_redis._tcp.cache.shop.svc.cluster.local.", SRV,
             &["_redis._tcp.cache.shop.svc.cluster.local. SRV 0 100 6379 cache-0.cache.shop.svc.cluster.local.",
               "_redis._tcp.cache.shop.svc.cluster.local. SRV 0 100 6379 10-244-3-3.cache.shop.svc.cluster.local.",
               "+ cache-0.cache.shop.svc.cluster.local. A 10.244.1.8",
               "+ 10-244-3-3.cache.shop.svc.cluster.local. A 10.244.3.3"]),
            ("a headless service's pod is named by its hostname",
             "db-0.db.shop.svc.cluster.local.", A, &["db-0.db.shop.svc.cluster.local. A 10.244.1.5"]),
            ("a headless service's pod without a hostname is named by its IP with dashes",
             "10-244-2-7.db.shop.svc.cluster.local.", A, &["10-244-2-7.db.shop.svc.cluster.local. A 10.244.2.7"]),
            ("an unready pod has no name",
             "db-2.db.shop.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("a service with a cluster IP has no pod names",
             "10-96-0-20.web.shop.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("a named port is an SRV record pointing at the service's name, its address sent along",
             "_http._tcp.web.shop.svc.cluster.local.", SRV,
             &["_http._tcp.web.shop.svc.cluster.local. SRV 0 100 80 web.shop.svc.cluster.local.",
               "+ web.shop.svc.cluster.local. A 10.96.0.20"]),
            ("a headless service's named port is one SRV record per ready pod, by the pod's own name",
             "_postgres._tcp.db.shop.svc.cluster.local.", SRV,
             &["_postgres._tcp.db.shop.svc.cluster.local. SRV 0 100 5432 db-0.db.shop.svc.cluster.local.",
               "_postgres._tcp.db.shop.svc.cluster.local. SRV 0 100 5432 10-244-2-7.db.shop.svc.cluster.local.",
               "+ db-0.db.shop.svc.cluster.local. A 10.244.1.5",
               "+ 10-244-2-7.db.shop.svc.cluster.local. A 10.244.2.7"]),
            ("a UDP port is asked for with _udp, and both addresses of a dual-stack service come along",
             "_dns._udp.v6.shop.svc.cluster.local.", SRV,
             &["_dns._udp.v6.shop.svc.cluster.local. SRV 0 100 53 v6.shop.svc.cluster.local.",
               "+ v6.shop.svc.cluster.local. A 10.96.0.30", "+ v6.shop.svc.cluster.local. AAAA fd00:10:96::30"]),
            ("a named port asked with the wrong protocol does not exist",
             "_http._udp.web.shop.svc.cluster.local.", SRV, &["NXDOMAIN"]),
            ("a port name the service does not have does not exist",
             "_https._tcp.web.shop.svc.cluster.local.", SRV, &["NXDOMAIN"]),
            ("a named port's name exists for other types, without records",
             "_http._tcp.web.shop.svc.cluster.local.", A, &["NODATA"]),
            ("SRV of the service's own name lists every named port",
             "web.shop.svc.cluster.local.", SRV,
             &["web.shop.svc.cluster.local. SRV 0 100 80 web.shop.svc.cluster.local.",
               "+ web.shop.svc.cluster.local. A 10.96.0.20"]),
            ("an ExternalName service is an alias, whatever type is asked",
             "payments.shop.svc.cluster.local.", A, &["payments.shop.svc.cluster.local. CNAME pay.example.com."]),
            ("an unknown service in a known namespace does not exist",
             "nope.shop.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("a known service in another namespace does not exist there",
             "web.default.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("a namespace with services exists, without records",
             "shop.svc.cluster.local.", A, &["NODATA"]),
            ("a namespace without services does not exist",
             "default.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("the cluster domain and svc exist, without records",
             "svc.cluster.local.", A, &["NODATA"]),
            ("pod records are left out",
             "10-244-1-5.shop.pod.cluster.local.", A, &["NXDOMAIN"]),
            ("a search-path expansion of an outside name is inside the domain, so NXDOMAIN (the resolver moves on)",
             "example.com.shop.svc.cluster.local.", A, &["NXDOMAIN"]),
            ("a name outside the cluster domain is refused, not forwarded",
             "example.com.", A, &["REFUSED"]),
            ("a name that merely ends like the domain is outside it",
             "notcluster.local.", A, &["REFUSED"]),
        ];
        for (sentence, name, query_type, expected) in table {
            assert_eq!(ask(name, *query_type), *expected, "{sentence}: {name} {query_type}");
        }
    }

    #[test]
    fn the_cluster_domain_is_configurable() {
        let services: Vec<Service> = vec![
            serde_json::from_value(
                json!({"metadata": {"namespace": "shop", "name": "web"}, "spec": {"clusterIP": "10.96.0.20"}}),
            )
            .unwrap(),
        ];
        let index = ServiceIndex::build(crate::cluster_domain("Lab.Example.").unwrap(), &services, &[], &[]);
        let asked = |name: &str| answer(&Name::from_ascii(name).unwrap(), A, &index).response_code();
        assert_eq!(asked("web.shop.svc.lab.example."), ResponseCode::NoError);
        assert_eq!(asked("web.shop.svc.cluster.local."), ResponseCode::Refused);
    }

    #[test]
    fn a_cluster_domain_that_is_not_a_name_is_refused_with_a_reason() {
        assert!(crate::cluster_domain("").unwrap_err().to_string().contains("it is empty"));
        assert!(crate::cluster_domain("cluster..local").is_err());
    }

    #[test]
    fn every_answer_lives_five_seconds() {
        let Answer::Records { answers, .. } =
            answer(&Name::from_ascii("web.shop.svc.cluster.local.").unwrap(), A, &cluster())
        else {
            panic!("web.shop.svc.cluster.local has records")
        };
        assert!(answers.iter().all(|r| r.ttl == TTL));
    }
}
