//! Watching: one long `GET ...?watch=1` whose body is newline-delimited JSON, one [`WatchEvent`] per line.
//!
//! The server sends the body as chunks as things change, and chunks do not respect line boundaries, so a
//! [`LineSplitter`] reassembles lines before they are parsed. The informer ([`crate::informer`]) builds its cache
//! on this stream: list, then watch from the list's resourceVersion, and list again when the watch says `410`.

use super::request::{JSON, TABLE, build_url, collection_path_or_all, decode_error};
use super::{Client, ClientError, ListParams, api_error_from_body};
use crate::resources::Resource;
use crate::status::ApiError;
use futures::stream::{BoxStream, Stream, StreamExt};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

// ANCHOR: watch_event
/// What happened to an object, as one line of a watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    #[serde(rename = "type")]
    pub type_: WatchEventType,
    /// The object after the change (before it, for `DELETED`); for `BOOKMARK` only its resourceVersion;
    /// for `ERROR` a `Status`.
    pub object: Value,
}

/// The kinds of watch events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
    /// Nothing changed, but the watch has seen everything up to `object.metadata.resourceVersion`: a client that
    /// reconnects from there misses nothing (and the server need not replay history).
    Bookmark,
    /// The watch cannot go on; most often `410 Expired`, meaning: list again, then watch from the new list.
    Error,
}
// ANCHOR_END: watch_event

impl WatchEvent {
    /// The annotation of the BOOKMARK that ends the initial events of a streaming list ([`Client::watch_list`]).
    pub const INITIAL_EVENTS_END: &'static str = "k8s.io/initial-events-end";

    /// Whether this is the BOOKMARK that ends the initial events of a streaming list.
    pub fn is_initial_events_end(&self) -> bool {
        self.type_ == WatchEventType::Bookmark
            && self.object.pointer("/metadata/annotations").and_then(|a| a.get(Self::INITIAL_EVENTS_END))
                == Some(&Value::from("true"))
    }

    /// For an `ERROR` event, the error it carries.
    pub fn error(&self) -> Option<ApiError> {
        (self.type_ == WatchEventType::Error).then(|| api_error_from_body(500, "Internal Server Error", &self.object))
    }
}

/// A watch: events in the order the server sent them; it ends when the server closes the response.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, ClientError>>;

impl Client {
    /// Watches changes after `resource_version` (from a list). With bookmarks on, the server also reports
    /// progress, so that a reconnecting client can resume from a recent resourceVersion.
    pub async fn watch(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream, ClientError> {
        self.watch_as(resource, namespace, params, resource_version, JSON, &[]).await
    }

    /// A streaming list (watch-list, KEP-3157): one watch that first sends every object as it is now, as ADDED
    /// events, then a BOOKMARK annotated [`WatchEvent::INITIAL_EVENTS_END`], then the changes — a list and a
    /// watch in one request, the objects sent one by one rather than encoded as one large list. A server without
    /// it refuses with `422 Invalid` (or, older still, ignores it and never sends that bookmark).
    pub async fn watch_list(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<WatchStream, ClientError> {
        let streaming = [("sendInitialEvents", "true"), ("resourceVersionMatch", "NotOlderThan")];
        self.watch_as(resource, namespace, params, "", JSON, &streaming).await
    }

    /// Like [`Client::watch`], but each event's object is a one-row `Table` (what `kubectl get -w` prints).
    pub async fn watch_table(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream, ClientError> {
        self.watch_as(resource, namespace, params, resource_version, TABLE, &[]).await
    }

    // ANCHOR: watch_as
    /// The one watch request behind all three: the URL, then the response body as a stream of events.
    async fn watch_as(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
        accept: &str,
        extra: &[(&'static str, &str)],
    ) -> Result<WatchStream, ClientError> {
        let path = collection_path_or_all(resource, namespace);
        let mut query = params.query();
        query.push(("watch", "1".into()));
        query.extend(extra.iter().map(|(name, value)| (*name, value.to_string())));
        if !resource_version.is_empty() {
            query.push(("resourceVersion", resource_version.into()));
        }
        query.push(("allowWatchBookmarks", "true".into()));
        let url = build_url(&self.base, &path, &query)?;
        let response = self.send(Method::GET, url.clone(), accept, None).await?;
        let url = url.to_string();
        let chunks = response
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|source| ClientError::Http { url: url.clone(), source }));
        Ok(watch_events(chunks, path).boxed())
    }
    // ANCHOR_END: watch_as
}

// ANCHOR: line_splitter
/// Cuts a byte stream into lines, whatever the chunk boundaries: a watch's chunks carry whole events, part of
/// an event, or several, depending on buffering in the server and the network.
#[derive(Debug, Default)]
pub struct LineSplitter {
    /// Bytes after the last newline seen: the beginning of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk; returns the lines it completes (without their newline; blank lines are dropped).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            self.partial.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                let line = std::mem::take(&mut self.partial);
                lines.extend(non_blank(line));
            }
        }
        lines
    }

    /// The end of the stream: what is left is the last line, if the server did not end it with a newline.
    pub fn finish(self) -> Option<Vec<u8>> {
        non_blank(self.partial)
    }
}
// ANCHOR_END: line_splitter

/// A line without its trailing whitespace (`\r` included), or `None` when nothing is left of it.
fn non_blank(mut line: Vec<u8>) -> Option<Vec<u8>> {
    while line.last().is_some_and(|b| b.is_ascii_whitespace()) {
        line.pop();
    }
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
}

/// Turns the chunks of a watch response into events. Generic over the chunk stream so tests can feed it chunks.
fn watch_events<S, B>(chunks: S, path: String) -> impl Stream<Item = Result<WatchEvent, ClientError>>
where
    S: Stream<Item = Result<B, ClientError>> + Unpin,
    B: AsRef<[u8]>,
{
    struct State<S> {
        chunks: S,
        splitter: Option<LineSplitter>,
        ready: VecDeque<Vec<u8>>,
        path: String,
    }
    let state = State { chunks, splitter: Some(LineSplitter::default()), ready: VecDeque::new(), path };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(line) = state.ready.pop_front() {
                let event = serde_json::from_slice::<WatchEvent>(&line).map_err(|err| decode_error(&state.path, err));
                return Some((event, state));
            }
            // `splitter` is taken when the body ends: then there is nothing more to read.
            let splitter = state.splitter.as_mut()?;
            match state.chunks.next().await {
                Some(Ok(chunk)) => state.ready.extend(splitter.push(chunk.as_ref())),
                Some(Err(err)) => {
                    state.splitter = None;
                    return Some((Err(err), state));
                }
                None => state.ready.extend(state.splitter.take().and_then(LineSplitter::finish)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines_of(chunks: &[&str]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines: Vec<String> =
            chunks.iter().flat_map(|c| splitter.push(c.as_bytes())).map(|l| String::from_utf8(l).unwrap()).collect();
        lines.extend(splitter.finish().map(|l| String::from_utf8(l).unwrap()));
        lines
    }

    #[test]
    fn a_line_split_across_chunks_is_reassembled() {
        assert_eq!(lines_of(&["{\"a\":", "1}\n{\"b\"", ":2}\n"]), vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn several_lines_in_one_chunk_come_out_separately() {
        assert_eq!(lines_of(&["one\ntwo\nthree\n"]), vec!["one", "two", "three"]);
    }

    #[test]
    fn blank_lines_and_carriage_returns_are_dropped_and_a_last_unterminated_line_is_kept() {
        assert_eq!(lines_of(&["one\r\n\n", "\ntwo"]), vec!["one", "two"]);
    }

    #[test]
    fn a_newline_arriving_alone_ends_the_pending_line() {
        assert_eq!(lines_of(&["abc", "\n"]), vec!["abc"]);
    }

    #[tokio::test]
    async fn watch_chunks_become_typed_events() {
        let body = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n{\"type\":\"BOOKM";
        let rest = "ARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n";
        let chunks = futures::stream::iter(vec![Ok::<_, ClientError>(body.as_bytes()), Ok(rest.as_bytes())]);
        let events: Vec<WatchEvent> =
            watch_events(chunks, "/api/v1/pods".into()).map(|e| e.unwrap()).collect::<Vec<_>>().await;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].type_, WatchEventType::Added);
        assert_eq!(events[1].type_, WatchEventType::Bookmark);
        assert_eq!(events[1].object["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn an_error_event_carries_the_status_as_an_api_error() {
        let event: WatchEvent = serde_json::from_value(json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
            "message": "too old resource version: 1 (5)"}}))
        .unwrap();
        let err = event.error().unwrap();
        assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
    }
}
