//! End-to-end tests, one binary (see matklad's "delete cargo integration tests").

mod cli;
mod connectors;
mod elements;
mod hostile;
mod hot_reload;
mod delivery;
mod instances;
mod webhooks;
