//! Waiting for something to become true, without sleeping.
//!
//! A cluster is eventually consistent: after a write, a watcher, a controller, a restarted etcd or a
//! reconnecting client catches up *soon*, not at once. A test that sleeps a fixed time is both slow (when things
//! are fast) and flaky (when the machine is busy). [`wait_for`] instead asks again and again until the answer is
//! yes, and gives up after a deadline with a message that says what it was waiting for and what it saw last.

use anyhow::Context;
use std::future::Future;
use std::time::Duration;

/// How long to pause between two checks. Short, because checks are cheap (one request, one read).
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Calls `condition` until it returns `Ok`, and returns that value; after `timeout`, fails.
///
/// `condition` answers "not yet" with an `Err` that says why (the last status code, the output seen so far...).
/// The timeout error names `what` was awaited and carries that last answer:
///
/// ```text
/// timed out after 30s waiting for the server to answer 200 again; last check: GET /api/v1/namespaces → 503 ...
/// ```
///
/// Each check runs to completion: a check that hangs (a request without its own timeout) is cut at the
/// deadline too.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("the condition was never checked");
    loop {
        match tokio::time::timeout_at(deadline, condition()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(not_yet)) => last = format!("{not_yet:#}"),
            Err(_) => last = format!("the last check was still running at the deadline (before it: {last})"),
        }
        if tokio::time::Instant::now() + POLL_INTERVAL >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}; last check: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_for`] for a check with nothing to say while it waits: `Some(value)` when done, `None` while not yet.
/// It returns the value itself and panics at the deadline, for tests that treat a timeout as a failed assertion.
pub async fn wait_for_some<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let answer = wait_for(what, timeout, || {
        let check = condition();
        async move { check.await.context("not yet") }
    });
    answer.await.unwrap_or_else(|err| panic!("{err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let value = wait_for("the third call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= 3 { Ok(n) } else { anyhow::bail!("call {n}") }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn the_timeout_names_what_was_awaited_and_the_last_answer() {
        let err = wait_for("a miracle", Duration::from_millis(100), || async {
            anyhow::bail!("still nothing") as anyhow::Result<()>
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for a miracle"), "{err}");
        assert!(err.contains("still nothing"), "{err}");
    }

    #[tokio::test]
    async fn an_optional_check_returns_its_value() {
        let calls = AtomicU32::new(0);
        let value = wait_for_some("the second call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n >= 2).then_some(n)
        })
        .await;
        assert_eq!(value, 2);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a miracle")]
    async fn an_optional_check_that_never_holds_panics_naming_what_was_awaited() {
        wait_for_some("a miracle", Duration::from_millis(100), || async { None::<()> }).await;
    }
}
