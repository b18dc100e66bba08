//! Slow or idle clients cannot hold the server: a connection that does not finish its
//! request head within the header time-out is closed, a body that does not arrive within
//! the body time-out is answered 408 and its connection closed, a kept-alive connection
//! idle longer than the idle time-out is closed, and at the connection cap further clients
//! wait to be accepted. The host keeps answering everyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tests::{TestHost, get};

/// Connections that each send half a request head and then nothing.
const SLOW: usize = 100;

/// A complete keep-alive request.
const GET_ELEMENTS: &[u8] = b"GET /elements/api-v2/elements HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads until the host closes `s` (end of stream or a reset); false if it is still open
/// at `deadline`. Whatever it sends before (a 408, say) is skipped.
async fn closed_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Reads one answer (head and `Content-Length` body) from `s`; its status, or `None` when
/// none is complete within `wait`.
async fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<u16> {
    let read = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + length {
                    return head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .filter(|_| got.len() == end + 4 + length);
                }
            }
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok().flatten()
}

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
        assert!(
            closed_by(&mut s, deadline).await,
            "slow connection {n} is still open after 10 s"
        );
    }

    // And the host still serves.
    assert_eq!(get(&host.url("/elements")).await.status, 200);
}

/// A webhook head announcing `length` body bytes.
fn webhook_head(length: usize) -> Vec<u8> {
    format!(
        "POST /elements/api-v2/events/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_trickling_or_stalled_body_is_answered_408_and_closed_after_the_body_timeout() {
    let host = TestHost::start_with(&["echo"], &["--body-timeout-ms", "500"]);

    // One byte every 50 ms of a 1000-byte body: each read is quick, the whole would take
    // 50 s. The time-out is of the whole body, not of each read.
    let mut trickle = TcpStream::connect(host.addr()).await.unwrap();
    trickle.write_all(&webhook_head(1000)).await.unwrap();
    let (mut trickle_read, mut trickle_write) = trickle.into_split();
    let sender = tokio::spawn(async move {
        for _ in 0..1000 {
            if trickle_write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Ten bytes of 1000, then nothing.
    let mut stalled = TcpStream::connect(host.addr()).await.unwrap();
    stalled.write_all(&webhook_head(1000)).await.unwrap();
    stalled.write_all(b"{\"id\": 1, ").await.unwrap();
    let started = Instant::now();

    // A complete request on another connection is answered meanwhile.
    assert_eq!(get(&host.url("/elements")).await.status, 200);

    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), trickle_read.read(&mut buf))
        .await
        .expect("the trickling body is answered within 5 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(
        answer_within(&mut stalled, Duration::from_secs(5)).await,
        Some(408),
        "the stalled body is answered 408"
    );
    let answered = started.elapsed();
    assert!(
        answered >= Duration::from_millis(400),
        "answered after {answered:?}, before the body time-out"
    );

    // Both connections are then closed by the host.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), trickle_read.read_to_end(&mut rest))
        .await
        .is_ok();
    assert!(closed, "the trickling connection is still open");
    assert!(
        closed_by(&mut stalled, deadline).await,
        "the stalled connection is still open"
    );
    sender.abort();
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let host = TestHost::start_with(
        &["echo"],
        &["--header-timeout-ms", "60000", "--idle-timeout-ms", "300"],
    );
    let mut s = TcpStream::connect(host.addr()).await.unwrap();
    // Kept alive: two requests on the connection.
    for _ in 0..2 {
        s.write_all(GET_ELEMENTS).await.unwrap();
        assert_eq!(
            answer_within(&mut s, Duration::from_secs(5)).await,
            Some(200)
        );
    }
    let answered = Instant::now();
    assert!(
        closed_by(&mut s, answered + Duration::from_secs(5)).await,
        "the idle connection is still open after 5 s"
    );
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(250),
        "closed after {idle:?} of idleness, before the idle time-out"
    );
}

#[tokio::test]
async fn idleness_between_requests_is_not_a_slow_head_but_the_next_head_is_timed() {
    let host = TestHost::start_with(
        &["echo"],
        &["--header-timeout-ms", "300", "--idle-timeout-ms", "60000"],
    );
    let mut s = TcpStream::connect(host.addr()).await.unwrap();
    s.write_all(GET_ELEMENTS).await.unwrap();
    assert_eq!(
        answer_within(&mut s, Duration::from_secs(5)).await,
        Some(200)
    );
    // Idle for three header time-outs: the connection stays open…
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(900), s.read(&mut buf)).await;
    assert!(read.is_err(), "the idle connection was closed: {read:?}");
    // …and serves the next request.
    s.write_all(GET_ELEMENTS).await.unwrap();
    assert_eq!(
        answer_within(&mut s, Duration::from_secs(5)).await,
        Some(200)
    );
    // A next head begun and not finished is closed by the header time-out, not the idle one.
    s.write_all(b"GET /elements/api-v2/elements HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(
        closed_by(&mut s, Instant::now() + Duration::from_secs(5)).await,
        "a half-sent second head is still open after 5 s"
    );
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_waits_until_a_connection_closes() {
    const CAP: usize = 8;
    let host = TestHost::start_with(
        &["echo"],
        &["--max-connections", "8", "--header-timeout-ms", "60000"],
    );
    // CAP connections that send nothing hold every slot.
    let mut held = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        held.push(TcpStream::connect(host.addr()).await.unwrap());
    }
    // One more: the kernel completes its handshake, but the host does not accept it.
    let mut waiting = TcpStream::connect(host.addr()).await.unwrap();
    waiting.write_all(GET_ELEMENTS).await.unwrap();
    assert_eq!(
        answer_within(&mut waiting, Duration::from_secs(1)).await,
        None,
        "a connection beyond the cap was served"
    );
    // One held connection closes: its slot goes to the waiting client.
    drop(held.pop());
    assert_eq!(
        answer_within(&mut waiting, Duration::from_secs(5)).await,
        Some(200),
        "the waiting client is served once a slot is free"
    );
}

/// The open descriptors of process `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The CPU time process `pid` has used, in clock ticks (user + system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn out_of_file_descriptors_the_accept_loop_waits_instead_of_spinning() {
    const LIMIT: u32 = 96;
    let host = TestHost::start_with_fd_limit(&[], LIMIT);
    let pid = host.pid();
    // Connections the host accepts until it has no descriptor left; the rest wait in the
    // backlog, and every accept fails (EMFILE) while they do.
    let mut held = Vec::new();
    for _ in 0..(LIMIT as usize + 24) {
        held.push(TcpStream::connect(host.addr()).await.unwrap());
    }
    tests::eventually(
        Duration::from_secs(10),
        "the host out of descriptors",
        || async { (open_files(pid) >= LIMIT as usize).then_some(()) },
    )
    .await;
    // A measuring window, not a synchronization: the CPU the process uses in it while
    // every accept fails. A loop retrying at once spins a core (100 ticks a second); with
    // the pause it retries ten times a second.
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 30,
        "the accept loop spun: {used} ticks of CPU in one second"
    );
    assert!(
        open_files(pid) >= LIMIT as usize - 1,
        "the host is still out of descriptors"
    );

    // Descriptors back: the host answers again.
    drop(held);
    tests::eventually(Duration::from_secs(10), "an answer", || async {
        let answered = tokio::time::timeout(Duration::from_secs(1), get(&host.url("/elements")))
            .await
            .ok()
            .filter(|a| a.status == 200);
        answered.map(|_| ())
    })
    .await;
}
