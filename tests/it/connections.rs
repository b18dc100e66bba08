//! Slow senders cannot hold the server: a connection that does not finish its request head
//! within the header time-out is closed, and the host keeps answering everyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tests::{TestHost, get};

/// Connections that each send half a request head and then nothing.
const SLOW: usize = 100;

#[tokio::test]
async fn half_sent_request_heads_are_closed_by_the_header_timeout_while_others_are_served() {
    let host = TestHost::start_with(&["echo"], &["--header-timeout-ms", "300"]);
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(host.addr()).await.expect("connect");
        s.write_all(b"POST /elements/api-v2/events/echo HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }

    // The host answers a normal request while they hang.
    let answer = get(&host.url("/elements")).await;
    assert_eq!(answer.status, 200);

    // Each slow connection is closed by the host (end of stream, or a reset), well before
    // the deadline; a 408 answer before the close is fine.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (n, mut s) in slow.into_iter().enumerate() {
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("slow connection {n} is still open after 10 s"),
            }
        }
    }

    // And the host still serves.
    assert_eq!(get(&host.url("/elements")).await.status, 200);
}
