//! Helpers shared by swim-tokio's integration tests.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Poll `check` every 50 ms until it is true; fail the test after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
