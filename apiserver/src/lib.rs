//! apiserver (essay to be written)

pub mod discovery;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod server;
pub mod store;
pub mod table;

pub use server::{Config, RunningServer, start};
