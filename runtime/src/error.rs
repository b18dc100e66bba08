//! Errors of loading a connector and of calling into one.

use std::time::Duration;

use super::types::ConnectorError;

/// Why a connector file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// The component exports no `openconnectors:connector/api` interface.
    #[error("not a connector: it exports no `openconnectors:connector/api` interface")]
    NotAConnector,
    /// The component was built for a contract version this host does not accept.
    #[error("built for contract version {found}; this host supports {supported}")]
    UnsupportedVersion {
        /// The version the component exports.
        found: String,
        /// The versions the host accepts.
        supported: String,
    },
    /// The component imports something the host does not provide.
    #[error("cannot link: {0}")]
    Link(String),
    /// Calling `info()` failed.
    #[error("info() failed: {0}")]
    Info(#[from] CallError),
    /// Another file already provides this connector key.
    #[error("connector key `{key}` is already provided by {other}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// The file that has it.
        other: String,
    },
}

/// Why a call into a connector failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The connector ran and answered with its own error.
    #[error("{}", super::types::describe(.0))]
    Connector(ConnectorError),
    /// The call used up its CPU deadline (an endless loop, or far too much work).
    #[error("connector `{key}` exceeded its CPU deadline of {limit:?}")]
    CpuDeadline {
        /// The connector key.
        key: String,
        /// The deadline.
        limit: Duration,
    },
    /// The call did not finish within its wall-clock timeout.
    #[error("connector `{key}` timed out after {limit:?}")]
    Timeout {
        /// The connector key.
        key: String,
        /// The timeout.
        limit: Duration,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("connector `{key}` exceeded its memory limit of {limit} bytes")]
    OutOfMemory {
        /// The connector key.
        key: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    #[error("connector `{key}` crashed: {message}")]
    Trap {
        /// The connector key.
        key: String,
        /// The trap and its backtrace, as wasmtime describes it.
        message: String,
    },
    /// The host could not create an instance (for example, all pool slots are busy).
    #[error("cannot instantiate connector `{key}`: {message}")]
    Instantiate {
        /// The connector key.
        key: String,
        /// What went wrong.
        message: String,
    },
}
