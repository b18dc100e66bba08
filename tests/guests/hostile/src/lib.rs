//! A hostile test guest: a connector, built with the SDK, that misbehaves on demand so
//! host tests can prove the sandbox holds.
//!
//! `parse_webhook` reads the webhook query parameter `do`:
//!
//! | `do`     | what the guest does                                   | expected in the host |
//! |----------|-------------------------------------------------------|----------------------|
//! | `loop`   | spins forever                                         | CPU deadline, call fails |
//! | `alloc`  | grabs 1 MiB blocks forever                            | memory cap, call fails |
//! | `file`   | reads `/etc/passwd`                                   | `vendor-error` starting `file: ` |
//! | `env`    | counts environment variables and arguments            | `vendor-error` `env: 0 vars, 0 args` |
//! | `socket` | resolves `localhost:80`, connects to `127.0.0.1:80`   | `vendor-error` starting `socket: ` |
//! | `trap`   | panics                                                | trap, call fails |
//! | other    | behaves: one `things` event                           | one event |
//!
//! An `internal` error (`file: read succeeded`, `socket: connected`, ...) means the sandbox
//! leaked.

use std::hint::black_box;

use guest_sdk::prelude::*;

/// The hostile connector.
pub struct Hostile;

/// One block of the memory bomb.
const MIB: usize = 1 << 20;

impl Connector for Hostile {
    fn info() -> ConnectorInfo {
        ConnectorInfo::new("hostile", "Hostile", "test").webhooks()
    }

    fn validate_config(_config: &Config) -> Result<(), Error> {
        Ok(())
    }

    fn parse_webhook(_ctx: &Context, req: &WebhookRequest) -> Result<Vec<EventObject>, Error> {
        match req.query_param("do").as_deref() {
            Some("loop") => spin_forever(),
            Some("alloc") => allocate_forever(),
            Some("file") => read_file(),
            Some("env") => read_env(),
            Some("socket") => open_socket(req.query_param("port").as_deref().unwrap_or("80")),
            Some("trap") => panic!("hostile guest panics"),
            _ => Ok(vec![EventObject::new("things", "1", EventType::Created)]),
        }
    }
}

/// Loops forever; `black_box` keeps the optimizer from removing the loop.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Keeps every 1 MiB block it allocates, each written to, until memory runs out.
fn allocate_forever() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill writes every byte, so no page stays untouched.
        let block = black_box(vec![0xA5u8; MIB]);
        hoard.push(block);
        black_box(&mut hoard);
    }
}

/// Tries to read a host file; the host grants no directories.
fn read_file() -> Result<Vec<EventObject>, Error> {
    match std::fs::read_to_string("/etc/passwd") {
        Ok(_) => Err(Error::internal("file: read succeeded")),
        Err(e) => Err(Error::vendor(format!("file: {e}"))),
    }
}

/// Counts the environment variables and arguments; the host grants none.
fn read_env() -> Result<Vec<EventObject>, Error> {
    let vars = std::env::vars().collect::<Vec<_>>();
    let args = std::env::args().collect::<Vec<_>>();
    Err(Error::vendor(format!(
        "env: {} vars, {} args",
        black_box(vars).len(),
        black_box(args).len()
    )))
}

/// Tries name lookup and a TCP connection to `port` on loopback; the host grants no network.
fn open_socket(port: &str) -> Result<Vec<EventObject>, Error> {
    use std::net::{TcpStream, ToSocketAddrs};

    if let Ok(mut addrs) = format!("localhost:{port}").to_socket_addrs()
        && let Some(addr) = addrs.next()
        && TcpStream::connect(addr).is_ok()
    {
        return Err(Error::internal(format!("socket: connected to {addr}")));
    }
    match TcpStream::connect(format!("127.0.0.1:{port}")) {
        Ok(_) => Err(Error::internal("socket: connected")),
        Err(e) => Err(Error::vendor(format!("socket: {e}"))),
    }
}

guest_sdk::export_connector!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(query: &str) -> WebhookRequest {
        WebhookRequest {
            method: "POST".into(),
            path: "/elements/api-v2/events/hostile".into(),
            query: query.into(),
            headers: vec![],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn behaves_without_an_order() {
        let events = Hostile::parse_webhook(&Context::default(), &webhook("")).unwrap();
        assert_eq!(
            events,
            vec![EventObject::new("things", "1", EventType::Created)]
        );
        let info = Hostile::info();
        assert_eq!((info.key.as_str(), info.hub.as_str()), ("hostile", "test"));
        assert!(Hostile::validate_config(&Config::new([("any", "thing")])).is_ok());
    }

    #[test]
    #[should_panic(expected = "hostile guest panics")]
    fn trap_panics() {
        let _ = Hostile::parse_webhook(&Context::default(), &webhook("do=trap"));
    }

    #[test]
    fn env_reports_counts() {
        let err = Hostile::parse_webhook(&Context::default(), &webhook("do=env")).unwrap_err();
        assert!(matches!(err, Error::VendorError(m) if m.starts_with("env: ")));
    }
}
