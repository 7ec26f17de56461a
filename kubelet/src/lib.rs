//! kubelab-kubelet (being written)
