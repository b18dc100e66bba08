//! End-to-end tests, one binary (see matklad's "delete cargo integration tests").

mod at_rest;
mod callback_url_secrets;
mod cli;
mod connections;
mod connectors;
mod delivery;
mod egress;
mod elements;
mod hostile;
mod hosts;
mod hot_reload;
mod instances;
mod intake;
mod isolation;
mod origins;
mod pg_intake;
mod pg_store;
mod poll_budget;
mod polling;
mod postgres;
mod quotas;
mod responsive;
mod structure;
mod webhooks;
