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
//!
//! ## Only a static busybox will do
//! A `FROM scratch` image holds nothing but what we copy into it: no `/lib`, no C library, no dynamic loader.
//! Debian's ordinary `busybox` package (which other packages pull in, and which `busybox-static` replaces) is
//! *dynamically linked*: its ELF header names an interpreter, `/lib64/ld-linux-x86-64.so.2`, that the kernel must
//! run first to load the C library. In our image that file does not exist, so every container dies at once with
//! `exec /bin/sh: no such file or directory` — the *interpreter* is what is missing, not `/bin/sh`. The builder
//! therefore reads the binary's ELF program headers before building ([`elf_linking`]) and refuses a dynamic one
//! with the fix in the message. An image built before that check existed has no `io.kubelab.busybox` label and is
//! built again.

use crate::error::KubeletError;
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use futures::StreamExt;
use std::path::{Path, PathBuf};

/// The image for examples and tests: a shell, `httpd`, `sleep`, `wget`...
pub const BUSYBOX_IMAGE: &str = "kubelab/busybox:1";
/// The sandbox image, the kubelet's `--pod-infra-container-image`.
pub const PAUSE_IMAGE: &str = "kubelab/pause:1";
/// Where Debian's `busybox-static` puts its binary (`dpkg -L busybox-static`); the dynamic `busybox` package
/// installs the same path, which is why the binary found there must be checked.
pub const BUSYBOX_BINARY: &str = "/bin/busybox";

/// Where else a static busybox may be, tried after [`BUSYBOX_BINARY`]: `/usr/bin` on systems without a merged
/// `/usr`, `/usr/local/bin` for one built or downloaded by hand.
const OTHER_BUSYBOX_PATHS: [&str; 2] = ["/usr/bin/busybox", "/usr/local/bin/busybox"];

/// How to get a static busybox: the end of every error about it.
const BUSYBOX_FIX: &str = "pods need a static one: run `scripts/deps.sh build` or `apt-get install busybox-static`";

/// The label that marks an image built from a busybox checked to be static; images without it are rebuilt.
const BUSYBOX_LABEL: &str = "io.kubelab.busybox";

/// The pause loop: wait forever, leave at once on SIGTERM or SIGINT.
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// Builds the local images that are missing (or were built from an unchecked busybox); returns the tags it built
/// (empty when all were there).
pub async fn ensure_local_images(docker: &Docker) -> Result<Vec<String>, KubeletError> {
    let mut built = Vec::new();
    for image in [BUSYBOX_IMAGE, PAUSE_IMAGE] {
        let checked = docker
            .inspect_image(image)
            .await
            .ok()
            .and_then(|inspect| inspect.config?.labels?.remove(BUSYBOX_LABEL))
            .is_some_and(|linking| linking == "static");
        if checked {
            continue;
        }
        build_local_image(docker, image, &find_static_busybox()?).await?;
        built.push(image.to_string());
    }
    Ok(built)
}

/// The first statically linked busybox among [`BUSYBOX_BINARY`] and the other usual places; otherwise an error
/// that says what was found and how to get the right one.
pub fn find_static_busybox() -> Result<PathBuf, KubeletError> {
    let places: Vec<&Path> = std::iter::once(BUSYBOX_BINARY).chain(OTHER_BUSYBOX_PATHS).map(Path::new).collect();
    first_static(&places)
}

/// The first statically linked program among `places`; the error names the first dynamic one found.
fn first_static(places: &[&Path]) -> Result<PathBuf, KubeletError> {
    let mut dynamic = None;
    for &path in places {
        let Ok(binary) = std::fs::read(path) else { continue };
        match elf_linking(&binary) {
            Ok(Linking::Static) => return Ok(path.to_path_buf()),
            Ok(Linking::Dynamic { interpreter }) => {
                dynamic.get_or_insert_with(|| dynamic_busybox(path, &interpreter));
            }
            Err(_) => {}
        }
    }
    Err(dynamic.unwrap_or_else(|| {
        let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        KubeletError::Images(format!("no busybox found (looked at {}); {BUSYBOX_FIX}", looked.join(", ")))
    }))
}

/// The error for a dynamically linked busybox at `path`.
fn dynamic_busybox(path: &Path, interpreter: &str) -> KubeletError {
    KubeletError::Images(format!(
        "`{}` is dynamically linked (as Debian's `busybox` package is): it needs {interpreter}, which a FROM scratch \
         image does not have; {BUSYBOX_FIX}",
        path.display()
    ))
}

/// Builds one of the two local images (even if it exists), from the busybox binary at `busybox`.
pub async fn build_local_image(docker: &Docker, image: &str, busybox: &Path) -> Result<(), KubeletError> {
    let cmd = match image {
        BUSYBOX_IMAGE => r#"["sh"]"#.to_string(),
        PAUSE_IMAGE => serde_json::json!(["/bin/sh", "-c", PAUSE_SCRIPT]).to_string(),
        other => return Err(KubeletError::Images(format!("{other} is not one of kubelab's local images"))),
    };
    let binary = tokio::fs::read(busybox)
        .await
        .map_err(|err| KubeletError::Images(format!("cannot read {}: {err}; {BUSYBOX_FIX}", busybox.display())))?;
    match elf_linking(&binary) {
        Ok(Linking::Static) => {}
        Ok(Linking::Dynamic { interpreter }) => return Err(dynamic_busybox(busybox, &interpreter)),
        Err(why) => return Err(KubeletError::Images(format!("{}: {why}; {BUSYBOX_FIX}", busybox.display()))),
    }
    let applets = applets(busybox).await?;
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nLABEL io.kubelab.image=\"{image}\" {BUSYBOX_LABEL}=\"static\"\n\
         CMD {cmd}\n"
    );
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

// ANCHOR: elf_linking
/// How a program is linked, as its ELF header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    /// Everything is in the file: it runs in an empty image.
    Static,
    /// The kernel first runs `interpreter` (the dynamic loader), which loads the shared libraries.
    Dynamic { interpreter: String },
}

/// Reads an ELF file's program headers: a `PT_INTERP` header (type 3) names the dynamic loader, and only a
/// dynamically linked program has one (a static-pie has `PT_DYNAMIC` but no interpreter, and runs anywhere).
///
/// Written by hand rather than with the `object` or `goblin` crate because it is the lesson: four fields of the
/// file header, then one field of each program header. Offsets are the ELF specification's, for 32- and 64-bit
/// files of either byte order.
pub fn elf_linking(file: &[u8]) -> Result<Linking, String> {
    if file.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF executable".into());
    }
    let wide = match file[4] {
        1 => false,
        2 => true,
        class => return Err(format!("unknown ELF class {class}")),
    };
    let big_endian = file.get(5) == Some(&2);
    let number = |at: usize, len: usize| -> Result<u64, String> {
        let bytes = file.get(at..at + len).ok_or("truncated ELF file")?;
        let fold = |n: u64, b: &u8| n << 8 | u64::from(*b);
        Ok(if big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) })
    };
    // (e_phoff, e_phentsize, e_phnum) in the file header; (p_offset, p_filesz) in a program header.
    let (phoff, phentsize, phnum) = if wide {
        (number(0x20, 8)?, number(0x36, 2)?, number(0x38, 2)?)
    } else {
        (number(0x1c, 4)?, number(0x2a, 2)?, number(0x2c, 2)?)
    };
    const PT_INTERP: u64 = 3;
    for index in 0..phnum {
        let header = usize::try_from(phoff + index * phentsize).map_err(|_| "program header out of range")?;
        if number(header, 4)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (number(header + 8, 8)?, number(header + 0x20, 8)?)
        } else {
            (number(header + 4, 4)?, number(header + 0x10, 4)?)
        };
        let start = usize::try_from(offset).map_err(|_| "interpreter out of range")?;
        let end = usize::try_from(offset + size).map_err(|_| "interpreter out of range")?;
        let path = file.get(start..end).ok_or("truncated ELF file")?;
        let interpreter = String::from_utf8_lossy(path).trim_end_matches('\0').to_string();
        return Ok(Linking::Dynamic { interpreter });
    }
    Ok(Linking::Static)
}
// ANCHOR_END: elf_linking

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
    fn a_dynamically_linked_program_names_its_interpreter() {
        // /bin/ls is dynamically linked on every Debian machine.
        let ls = std::fs::read("/bin/ls").unwrap();
        match elf_linking(&ls).unwrap() {
            Linking::Dynamic { interpreter } => assert!(interpreter.starts_with("/lib"), "{interpreter}"),
            Linking::Static => panic!("/bin/ls read as statically linked"),
        }
    }

    #[test]
    fn the_static_busybox_is_found_and_read_as_static() {
        // busybox-static is a build dependency (`scripts/deps.sh build`).
        let busybox = find_static_busybox().unwrap();
        assert_eq!(busybox, Path::new(BUSYBOX_BINARY));
        assert_eq!(elf_linking(&std::fs::read(busybox).unwrap()).unwrap(), Linking::Static);
    }

    #[test]
    fn a_static_busybox_is_preferred_and_a_dynamic_one_alone_is_refused_with_the_fix() {
        let (dynamic, stat) = (Path::new("/bin/ls"), Path::new(BUSYBOX_BINARY));
        assert_eq!(first_static(&[dynamic, stat]).unwrap(), stat);
        let err = first_static(&[Path::new("/nonexistent/busybox"), dynamic]).unwrap_err().to_string();
        assert!(err.starts_with("cannot build the local images: `/bin/ls` is dynamically linked"), "{err}");
        assert!(err.contains("it needs /lib"), "{err}");
        assert!(
            err.ends_with("pods need a static one: run `scripts/deps.sh build` or `apt-get install busybox-static`")
        );
        let none = first_static(&[Path::new("/nonexistent/busybox")]).unwrap_err().to_string();
        assert!(none.contains("no busybox found (looked at /nonexistent/busybox)"), "{none}");
    }

    #[test]
    fn what_is_not_an_elf_file_is_refused() {
        assert_eq!(elf_linking(b"#!/bin/sh\n").unwrap_err(), "not an ELF executable");
        assert_eq!(elf_linking(b"\x7fELF\x02\x01").unwrap_err(), "truncated ELF file");
    }

    #[tokio::test]
    async fn a_dynamic_busybox_is_refused_with_the_fix() {
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        let err = build_local_image(&docker, PAUSE_IMAGE, Path::new("/bin/ls")).await.unwrap_err().to_string();
        assert!(err.starts_with("cannot build the local images: `/bin/ls` is dynamically linked"), "{err}");
        assert!(err.ends_with("run `scripts/deps.sh build` or `apt-get install busybox-static`"), "{err}");
    }

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
