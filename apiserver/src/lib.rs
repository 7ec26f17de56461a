//! apiserver (essay to be written)

pub mod patch;
pub mod protobuf;
pub mod server;
pub mod store;
pub mod table;
pub mod openapi;
pub mod discovery;

pub use server::{Config, RunningServer, start};
