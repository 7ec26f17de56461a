//! The local images: a busybox for examples and tests, and the pause image that holds every pod's sandbox.
//!
//! No registry can be reached on the course machines, so kubelab builds its two images itself, from Debian's
//! `busybox-static` (one static binary that is `sh`, `httpd`, `sleep`, `wget`... depending on the name it is
//! called by). A Docker build takes a *build context*: a tar archive holding a `Dockerfile` and the files it
//! copies. We write that archive in memory:
//!
//! ```text
//! Dockerfile            FROM scratch / COPY rootfs/ / / CMD [...]
//! rootfs/bin/busybox    the static binary, read from /bin/busybox
//! rootfs/bin/sh         -> busybox (a symlink per applet: sh, httpd, sleep, echo, cat, wget, ...)
//! rootfs/tmp/           mode 1777, like any /tmp
//! rootfs/etc/passwd     root and nobody, so that `id` and `httpd` find users
//! ```
//!
//! - `kubelab/busybox:1` starts a shell by default;
//! - `kubelab/pause:1` is the *sandbox*: the container that exists only to hold the pod's network namespace
//!   (see [`crate::docker`]). Kubernetes' pause is a 700-byte C program that sleeps until a signal. Ours is a
//!   shell loop: `sleep` as PID 1 would ignore SIGTERM (the kernel drops signals PID 1 has no handler for), so
//!   the shell installs a handler — `trap 'exit 0' TERM INT` — and waits on a backgrounded `sleep`, which a
//!   signal interrupts at once. `docker stop` of a sandbox therefore takes milliseconds, not the 10 s before
//!   Docker's SIGKILL; the kubelet stops sandboxes with a grace period of 0 anyway, since nothing in a sandbox
//!   needs to shut down cleanly.
//!
//! The images are built with Docker's classic builder (`version=1`), which the engine on these machines runs
//! without BuildKit.

use crate::error::KubeletError;
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures::StreamExt;
use std::path::Path;

/// The image for examples and tests: a shell, `httpd`, `sleep`, `wget`...
pub const BUSYBOX_IMAGE: &str = "kubelab/busybox:1";
/// The sandbox image, the kubelet's `--pod-infra-container-image`.
pub const PAUSE_IMAGE: &str = "kubelab/pause:1";
/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX_BINARY: &str = "/bin/busybox";

/// The pause loop: wait forever, leave at once on SIGTERM or SIGINT.
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// Builds the local images that are missing; returns the tags it built (empty when all were there).
pub async fn ensure_local_images(docker: &Docker) -> Result<Vec<String>, KubeletError> {
    let mut built = Vec::new();
    for image in [BUSYBOX_IMAGE, PAUSE_IMAGE] {
        if docker.inspect_image(image).await.is_ok() {
            continue;
        }
        build_local_image(docker, image, Path::new(BUSYBOX_BINARY)).await?;
        built.push(image.to_string());
    }
    Ok(built)
}

/// Builds one of the two local images (even if it exists), from the busybox binary at `busybox`.
pub async fn build_local_image(docker: &Docker, image: &str, busybox: &Path) -> Result<(), KubeletError> {
    let cmd = match image {
        BUSYBOX_IMAGE => r#"["sh"]"#.to_string(),
        PAUSE_IMAGE => serde_json::json!(["/bin/sh", "-c", PAUSE_SCRIPT]).to_string(),
        other => return Err(KubeletError::Images(format!("{other} is not one of kubelab's local images"))),
    };
    let binary = tokio::fs::read(busybox).await.map_err(|err| {
        KubeletError::Images(format!(
            "cannot read {}: {err}; kubelab builds its images from Debian's busybox-static \
             (`apt-get install busybox-static`)",
            busybox.display()
        ))
    })?;
    let applets = applets(busybox).await?;
    let dockerfile =
        format!("FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nLABEL io.kubelab.image=\"{image}\"\nCMD {cmd}\n");
    let context = build_context(&dockerfile, &binary, &applets);

    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(image)
        .rm(true)
        .forcerm(true)
        .version(BuilderVersion::BuilderV1)
        .build();
    let mut progress = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = progress.next().await {
        let step =
            step.map_err(|err| KubeletError::Images(format!("{image}: {}", crate::error::docker_message(&err))))?;
        if let Some(detail) = step.error_detail.and_then(|d| d.message) {
            return Err(KubeletError::Images(format!("{image}: {detail}")));
        }
    }
    docker
        .inspect_image(image)
        .await
        .map_err(|err| KubeletError::Images(format!("{image} was not tagged after the build: {err}")))?;
    tracing::info!(image, "built local image");
    Ok(())
}

/// The applets the binary provides (`busybox --list`), each of which becomes a symlink in `/bin`.
async fn applets(busybox: &Path) -> Result<Vec<String>, KubeletError> {
    let output = tokio::process::Command::new(busybox)
        .arg("--list")
        .output()
        .await
        .map_err(|err| KubeletError::Images(format!("cannot run {} --list: {err}", busybox.display())))?;
    let list = String::from_utf8_lossy(&output.stdout);
    let applets: Vec<String> = list
        .lines()
        .map(str::trim)
        // `[` and `[[` are applets too; a name with a slash would escape /bin.
        .filter(|name| !name.is_empty() && !name.contains('/') && *name != "busybox")
        .map(String::from)
        .collect();
    if !applets.iter().any(|a| a == "sh") {
        return Err(KubeletError::Images(format!("{} has no `sh` applet", busybox.display())));
    }
    Ok(applets)
}

// ANCHOR: build_context
/// The build context: a tar archive of the Dockerfile and the image's root filesystem.
fn build_context(dockerfile: &str, busybox: &[u8], applets: &[String]) -> Vec<u8> {
    let mut tar = Tar::default();
    tar.file("Dockerfile", 0o644, dockerfile.as_bytes());
    for dir in ["rootfs/", "rootfs/bin/", "rootfs/etc/", "rootfs/root/", "rootfs/var/", "rootfs/var/www/"] {
        tar.directory(dir, 0o755);
    }
    tar.directory("rootfs/tmp/", 0o1777);
    tar.file("rootfs/bin/busybox", 0o755, busybox);
    for applet in applets {
        tar.symlink(&format!("rootfs/bin/{applet}"), "busybox");
    }
    tar.file("rootfs/etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    tar.file("rootfs/etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    tar.finish()
}
// ANCHOR_END: build_context

/// A minimal writer of POSIX `ustar` archives: a 512-byte header per entry, the content padded to 512 bytes,
/// and two empty blocks at the end. Enough for a build context; names must fit the header's 100 bytes.
#[derive(Default)]
struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    fn file(&mut self, name: &str, mode: u32, content: &[u8]) {
        self.header(name, mode, content.len(), b'0', "");
        self.bytes.extend_from_slice(content);
        self.pad();
    }

    fn directory(&mut self, name: &str, mode: u32) {
        self.header(name, mode, 0, b'5', "");
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o777, 0, b'2', target);
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0; 1024]);
        self.bytes
    }

    fn pad(&mut self) {
        let rest = self.bytes.len() % 512;
        if rest != 0 {
            self.bytes.resize(self.bytes.len() + 512 - rest, 0);
        }
    }

    /// Field offsets of the ustar header: name 0, mode 100, uid 108, gid 116, size 124, mtime 136, checksum 148,
    /// type 156, link name 157, magic 257, version 263.
    fn header(&mut self, name: &str, mode: u32, size: usize, kind: u8, link: &str) {
        let mut header = [0u8; 512];
        let put = |header: &mut [u8; 512], at: usize, value: &[u8]| header[at..at + value.len()].copy_from_slice(value);
        put(&mut header, 0, &name.as_bytes()[..name.len().min(100)]);
        put(&mut header, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut header, 108, b"0000000\0");
        put(&mut header, 116, b"0000000\0");
        put(&mut header, 124, format!("{size:011o}\0").as_bytes());
        put(&mut header, 136, b"00000000000\0");
        header[156] = kind;
        put(&mut header, 157, &link.as_bytes()[..link.len().min(100)]);
        put(&mut header, 257, b"ustar\0");
        put(&mut header, 263, b"00");
        // The checksum is the sum of the header's bytes, counting its own field as eight spaces.
        put(&mut header, 148, b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
        self.bytes.extend_from_slice(&header);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_entry_is_a_512_byte_header_then_its_padded_content() {
        let mut tar = Tar::default();
        tar.file("hello.txt", 0o644, b"hi\n");
        let bytes = tar.finish();
        assert_eq!(bytes.len(), 512 + 512 + 1024);
        assert_eq!(&bytes[0..9], b"hello.txt");
        assert_eq!(&bytes[124..136], b"00000000003\0");
        assert_eq!(&bytes[257..263], b"ustar\0");
        assert_eq!(&bytes[512..515], b"hi\n");
    }

    #[test]
    fn the_tar_checksum_counts_its_own_field_as_spaces() {
        let mut tar = Tar::default();
        tar.symlink("rootfs/bin/sh", "busybox");
        let bytes = tar.finish();
        let mut header = bytes[..512].to_vec();
        let written = u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(written, header.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(header[156], b'2');
        assert_eq!(&header[157..164], b"busybox");
    }

    #[test]
    fn the_build_context_links_every_applet_to_busybox() {
        let context = build_context("FROM scratch\n", b"ELF", &["sh".into(), "httpd".into()]);
        let names: Vec<String> = context
            .chunks(512)
            .filter(|block| block[257..262] == *b"ustar")
            .map(|block| String::from_utf8_lossy(&block[..100]).trim_end_matches('\0').to_string())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"rootfs/bin/sh".to_string()));
        assert!(names.contains(&"rootfs/bin/httpd".to_string()));
        assert!(names.contains(&"rootfs/tmp/".to_string()));
    }
}
