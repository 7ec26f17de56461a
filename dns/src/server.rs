//! The thin async shell around [`answer`](crate::answer()): sockets, informers, and hickory's server loop.
//!
//! [`DnsServer::bind`] takes the UDP and TCP sockets first (a taken port is the most common startup error, and
//! tests need the real port before anything else happens). [`DnsServer::serve`] then:
//!
//! 1. starts an informer each for Services, EndpointSlices and Endpoints, and waits until all three hold a
//!    complete list: answering earlier would send NXDOMAIN for Services that exist, and resolvers cache that;
//! 2. builds the first [`ServiceIndex`] and hands the sockets to hickory's [`Server`], whose handler
//!    (`Handler`) answers each question from the index of the moment;
//! 3. loops: whenever an informer reports a change, rebuilds the index from the three caches and swaps it in.

use crate::Error;
use crate::answer::answer;
use crate::index::ServiceIndex;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Name};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kubelab_api::client::{Client, ListParams};
use kubelab_api::informer::Informer;
use kubelab_api::resources;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// How to run the DNS server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen, UDP and TCP on the same port. Port 0 picks a free one (tests); in a real cluster CoreDNS
    /// listens on 53 inside its pod.
    pub listen: SocketAddr,
    /// The cluster domain (`cluster.local`), from [`cluster_domain`](crate::cluster_domain).
    pub cluster_domain: Name,
}

/// How long a TCP client may stay silent before hickory closes its connection.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many responses hickory may queue per TCP connection (its own tests use 32).
const TCP_RESPONSE_BUFFER: usize = 32;

// ANCHOR: shared_index
/// The index the handler answers from. A std `RwLock`, not Tokio's: it is held only to clone or replace the `Arc`,
/// never across an `.await`. A question reads one whole index, old or new, never half of a rebuild.
type SharedIndex = Arc<RwLock<Arc<ServiceIndex>>>;
// ANCHOR_END: shared_index

/// A DNS server with its sockets bound, not answering yet.
pub struct DnsServer {
    udp: UdpSocket,
    tcp: TcpListener,
    addr: SocketAddr,
    cluster_domain: Name,
}

impl DnsServer {
    /// Binds UDP, then TCP on the same port. With port 0, UDP picks the port; should TCP find that port taken,
    /// a few other ports are tried.
    pub async fn bind(config: &Config) -> Result<DnsServer, Error> {
        let bind_error = |protocol, source| Error::Bind { addr: config.listen, protocol, source };
        let mut attempts = if config.listen.port() == 0 { 5 } else { 1 };
        loop {
            let udp = UdpSocket::bind(config.listen).await.map_err(|e| bind_error("udp", e))?;
            let addr = udp.local_addr().map_err(|e| bind_error("udp", e))?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => return Ok(DnsServer { udp, tcp, addr, cluster_domain: config.cluster_domain.clone() }),
                Err(e) if attempts > 1 && e.kind() == std::io::ErrorKind::AddrInUse => attempts -= 1,
                Err(e) => return Err(bind_error("tcp", e)),
            }
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    // ANCHOR: serve
    /// Answers questions from the cluster behind `client` until the future is dropped (which also stops
    /// hickory's tasks) or the server fails.
    pub async fn serve(self, client: Client) -> Result<(), Error> {
        let DnsServer { udp, tcp, addr, cluster_domain } = self;
        let services = resources::by_kind("v1", "Service").ok_or(Error::MissingResource("Services"))?;
        let slices = resources::by_kind("discovery.k8s.io/v1", "EndpointSlice")
            .ok_or(Error::MissingResource("EndpointSlices"))?;
        let endpoints = resources::by_kind("v1", "Endpoints").ok_or(Error::MissingResource("Endpoints"))?;
        let [mut services, mut slices, mut endpoints] =
            [services, slices, endpoints].map(|r| Informer::spawn(client.clone(), r, None, ListParams::default()));
        for informer in [&mut services, &mut slices, &mut endpoints] {
            informer.wait_synced().await;
        }

        let caches = (services.cache.clone(), slices.cache.clone(), endpoints.cache.clone());
        let build = || {
            let (services, slices, endpoints) = &caches;
            Arc::new(ServiceIndex::build(
                cluster_domain.clone(),
                &services.list_typed::<Service>(),
                &slices.list_typed::<EndpointSlice>(),
                &endpoints.list_typed::<Endpoints>(),
            ))
        };
        let index: SharedIndex = Arc::new(RwLock::new(build()));
        let mut server = Server::new(Handler { index: index.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::info!(%addr, domain = %cluster_domain, "cluster DNS answering");

        // hickory's tasks end only on an error; one future for the whole loop, so that no result is lost.
        let done = server.block_until_done();
        tokio::pin!(done);
        loop {
            tokio::select! {
                Some(_) = services.changed.recv() => {}
                Some(_) = slices.changed.recv() => {}
                Some(_) = endpoints.changed.recv() => {}
                result = &mut done => return result.map_err(Error::from),
            }
            // Level-triggered: whatever changed, and however many changes queued up, rebuild from all three caches.
            for informer in [&mut services, &mut slices, &mut endpoints] {
                while informer.changed.try_recv().is_ok() {}
            }
            let fresh = build();
            *index.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        }
    }
    // ANCHOR_END: serve
}

/// hickory's hook: called for every decoded question, it sends the encoded answer.
struct Handler {
    index: SharedIndex,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        // Answer EDNS with EDNS (version 0), keeping the client's buffer size: larger answers fit in one datagram.
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let query = match request.request_info() {
            Ok(info) if request.metadata.message_type == MessageType::Query => info.query,
            // Not one question (hickory checks), or not a query at all.
            _ => return send(&mut response, builder.error_msg(&request.metadata, ResponseCode::FormErr)).await,
        };
        if request.metadata.op_code != OpCode::Query || query.query_class() != DNSClass::IN {
            return send(&mut response, builder.error_msg(&request.metadata, ResponseCode::NotImp)).await;
        }

        let index = self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let answer = answer(&Name::from(query.name()), query.query_type(), &index);
        tracing::debug!(name = %query.name(), r#type = %query.query_type(), code = %answer.response_code(), "question");
        metadata.response_code = answer.response_code();
        metadata.authoritative = answer.authoritative();
        metadata.recursion_available = false;
        let (answers, additionals) = match &answer {
            crate::Answer::Records { answers, additionals } => (answers.as_slice(), additionals.as_slice()),
            _ => (&[][..], &[][..]),
        };
        send(&mut response, builder.build(metadata, answers, [], [], additionals)).await
    }
}

/// Sends `message`; when that fails (the client went away), logs it and reports a SERVFAIL to hickory's metrics.
async fn send<'a, R: ResponseHandler>(
    response: &mut R,
    message: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_server::proto::rr::Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let mut failed = *message.metadata();
    match response.send_response(message).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "cannot send a DNS response");
            failed.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
        }
    }
}
