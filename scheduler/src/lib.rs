//! kubelab-scheduler (being written)
