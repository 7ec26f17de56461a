//! Background tasks that end with the test.
//!
//! A scenario often runs a component (the controller manager, a scheduler, a fake kubelet) as a Tokio task beside
//! the apiserver. Tokio does not stop a spawned task when its `JoinHandle` is dropped: it would go on, talking to
//! a server that is shutting down, until the runtime ends. [`AbortOnDrop`] ties the task to a value the test holds,
//! so it stops when that value is dropped — at the end of the test, passed or failed, or earlier with `drop`.

use tokio::task::JoinHandle;

/// A spawned task, aborted when this is dropped.
#[must_use = "the task is aborted as soon as this is dropped"]
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Spawns `future` on the test's runtime, to run until the returned value is dropped.
    pub fn spawn<F>(future: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        AbortOnDrop(tokio::spawn(future))
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_guard_aborts_the_task() {
        let guard = AbortOnDrop::spawn(std::future::pending::<()>());
        let handle = guard.0.abort_handle();
        drop(guard);
        crate::wait_for_some("the task to end", std::time::Duration::from_secs(5), || async {
            handle.is_finished().then_some(())
        })
        .await;
    }
}
