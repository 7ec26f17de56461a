//! The `kubelab` command line, and [`cluster`], the library behind `kubelab up` that the end-to-end tests use
//! to start the same cluster.

pub mod cluster;
