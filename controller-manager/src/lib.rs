//! kubelab-controller-manager (being written)
