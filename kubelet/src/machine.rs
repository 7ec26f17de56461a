//! What the node is made of: CPUs, memory, kernel, operating system, read from the host.
//!
//! The real kubelet asks cAdvisor, which reads the same files: `/proc/cpuinfo`, `/proc/meminfo`, `/etc/os-release`,
//! `/proc/sys/kernel/osrelease`, `/etc/machine-id`. The parsing is pure and tested; [`MachineInfo::read`] does the
//! I/O. Simulated nodes on one machine all report that machine: `kubelab up --nodes 3` shows three nodes with the
//! same capacity, which is what a scheduler demo needs — each believes it has the whole machine.

use serde::Serialize;

/// The host, as the kubelet reports it in its Node and on `/spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    /// Logical CPUs.
    pub num_cores: u32,
    /// Total memory in bytes.
    pub memory_capacity: u64,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `/sys/class/dmi/id/product_uuid` when readable (it usually needs root), else the machine id.
    pub system_uuid: String,
    /// Changes at each boot (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// `6.1.0-18-amd64`.
    pub kernel_version: String,
    /// `Debian GNU/Linux 12 (bookworm)`.
    pub os_image: String,
    /// `linux`.
    pub operating_system: String,
    /// Go's name for the architecture, as Kubernetes uses it: `amd64`, `arm64`.
    pub architecture: String,
}

impl MachineInfo {
    /// Reads the host. Files that cannot be read leave their field empty (or 1 CPU / 0 bytes): a node with an
    /// odd `/proc` should still register.
    pub fn read() -> MachineInfo {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let machine_id = read("/etc/machine-id").trim().to_string();
        let product_uuid = read("/sys/class/dmi/id/product_uuid").trim().to_lowercase();
        let num_cores = count_cpus(&read("/proc/cpuinfo"))
            .or_else(|| std::thread::available_parallelism().ok().and_then(|n| u32::try_from(n.get()).ok()))
            .unwrap_or(1);
        MachineInfo {
            num_cores,
            memory_capacity: mem_total(&read("/proc/meminfo")).unwrap_or(0),
            system_uuid: if product_uuid.is_empty() { machine_id.clone() } else { product_uuid },
            machine_id,
            boot_id: read("/proc/sys/kernel/random/boot_id").trim().to_string(),
            kernel_version: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os_image: pretty_name(&read("/etc/os-release")).unwrap_or_else(|| "Unknown".into()),
            operating_system: std::env::consts::OS.to_string(),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
        }
    }
}

/// The number of `processor` entries of `/proc/cpuinfo`.
fn count_cpus(cpuinfo: &str) -> Option<u32> {
    let count = cpuinfo.lines().filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor")).count();
    u32::try_from(count).ok().filter(|n| *n > 0)
}

/// `MemTotal` of `/proc/meminfo`, in bytes (the file counts in KiB).
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `PRETTY_NAME` of `/etc/os-release`, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim().trim_matches('"').to_string())
}

/// Rust's architecture names as Go (and so Kubernetes' `kubernetes.io/arch` label) spells them.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_counted_from_processor_entries() {
        let cpuinfo = "processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: X\n";
        assert_eq!(count_cpus(cpuinfo), Some(2));
        assert_eq!(count_cpus(""), None);
    }

    #[test]
    fn memory_is_read_in_kibibytes_and_reported_in_bytes() {
        assert_eq!(mem_total("MemTotal:       24564384 kB\nMemFree: 1 kB\n"), Some(24564384 * 1024));
    }

    #[test]
    fn the_os_image_is_the_pretty_name() {
        let release = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(pretty_name(release).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    }

    #[test]
    fn architectures_use_gos_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
