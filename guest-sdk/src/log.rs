//! Logging to the host's log. Never log secrets.
//!
//! Inside the host each line is tagged with the connector key; under native `cargo test`
//! lines go to standard error.

use crate::bindings::openconnectors::connector::logging::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::openconnectors::connector::logging::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs a debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}

/// Logs an info line.
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Logs a warning.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}

/// Logs an error.
pub fn error(message: &str) {
    write(Level::Error, message)
}
