//! The `kubelab` command line, run as a student runs it: the real binary, as a child process, against a running
//! cluster. Each test checks what the student reads — the lines printed, the columns of `get`, the sections of
//! `describe`, the error messages — and the exit codes scripts rely on (0 done, 1 failed, 2 a usage error).
//!
//! **Which binary.** `env!("CARGO_BIN_EXE_kubelab")` only exists in the tests of the package that has the binary
//! (`cli/`), and Cargo builds only the *library* of a dependency, so this crate cannot simply name it. (Cargo's
//! "artifact dependencies", which would, are unstable.) Calling the CLI's code in-process would not test the
//! binary either: its argument parsing, its exit codes, what goes to stdout and what to stderr. So
//! [`kubelab_binary`] asks Cargo itself, once per test run: `cargo build -p kubelab --bin kubelab`, whose JSON
//! messages say where the executable is. When the whole workspace is tested (`scripts/test.sh`), the binary is
//! already built and this takes a moment.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use kubelab_tests::{KubectlOutput, TestServer, run_command, spawn_apiserver, spawn_cluster, tables};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How long one `kubelab` command may run; `rollout status` and `delete` wait for the cluster, the others do not.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

// ANCHOR: kubelab_binary
/// The path of the `kubelab` executable, built on first use (see the module documentation).
fn kubelab_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let output = StdCommand::new(env!("CARGO"))
            .args(["build", "-p", "kubelab", "--bin", "kubelab", "--message-format=json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo to build the kubelab binary");
        assert!(output.status.success(), "`cargo build -p kubelab` failed (its errors are above)");
        // One JSON message per line; the binary's `compiler-artifact` message carries its `executable` path.
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == "kubelab")
            .find_map(|message| message["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no kubelab executable")
    })
}
// ANCHOR_END: kubelab_binary

/// The `kubelab` binary with one kubeconfig, run in one directory.
struct Kubelab {
    /// `--kubeconfig` of every command; `None` to see what a user without one sees.
    kubeconfig: Option<PathBuf>,
    /// The working directory, and `$HOME`, of every command: nothing of the developer's own
    /// `~/.kube/config` may leak in.
    dir: PathBuf,
}

impl Kubelab {
    /// `kubelab` pointed at a test server.
    fn for_server(server: &TestServer) -> Self {
        Kubelab { kubeconfig: Some(server.kubeconfig().to_path_buf()), dir: server.dir().to_path_buf() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(kubelab_binary());
        if let Some(kubeconfig) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(kubeconfig);
        }
        command
            .args(args)
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env_remove("KUBECONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `kubelab <args>` to completion, whatever its exit status, as kubectl is run.
    async fn run(&self, args: &[&str]) -> anyhow::Result<KubectlOutput> {
        run_command(self.command(args), format!("kubelab {}", args.join(" ")), None, COMMAND_TIMEOUT).await
    }

    /// Runs `kubelab <args>`, which must exit with 0; returns stdout.
    async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args).await?;
        ensure!(output.success(), "kubelab failed:\n{output}");
        Ok(output.stdout)
    }

    /// Runs `kubelab <args>`, which must exit with `code`; returns stderr, where the reason is.
    async fn fails_with(&self, code: i32, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args).await?;
        ensure!(output.status.code() == Some(code), "expected exit code {code}:\n{output}");
        Ok(output.stderr)
    }
}

/// The whole stdout of a command, trimmed line by line, for exact comparisons.
fn lines(stdout: &str) -> Vec<&str> {
    stdout.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect()
}

/// A Deployment of `replicas` idle busybox pods in namespace `shop`; `version` goes into the pod template and
/// into the change cause that `rollout history` shows.
fn web(replicas: u32, version: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    kubernetes.io/change-cause: version {version}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: kubelab/busybox:1
        command: ["sleep", "3600"]
        env:
        - {{name: VERSION, value: "{version}"}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_and_delete_print_what_kubectl_prints_and_bad_input_gets_a_clear_error() -> anyhow::Result<()> {
    kubelab_binary();
    let server = spawn_apiserver().await?;
    let kubelab = Kubelab::for_server(&server);

    // apply: created, then unchanged, then configured — each read from the server, not guessed.
    let manifest = server.write_file("web.yaml", &web(2, 1).replace("namespace: shop", "namespace: default"))?;
    assert_eq!(lines(&kubelab.ok(&["apply", "-f", &manifest]).await?), ["deployment.apps/web created"]);
    assert_eq!(lines(&kubelab.ok(&["apply", "-f", &manifest]).await?), ["deployment.apps/web unchanged"]);
    let three = server.write_file("web3.yaml", &web(3, 1).replace("namespace: shop", "namespace: default"))?;
    assert_eq!(lines(&kubelab.ok(&["apply", "-f", &three]).await?), ["deployment.apps/web configured"]);

    // get: the server's columns; no pods run here (no controllers), so 0 of 3 are ready.
    let out = kubelab.ok(&["get", "deploy"]).await?;
    let printed = tables(&out);
    assert_eq!(printed.len(), 1, "{out}");
    assert_eq!(printed[0].header_line(), "NAME READY UP-TO-DATE AVAILABLE AGE", "{out}");
    assert_eq!(printed[0].cell("web", "READY"), Some("0/3"), "{out}");
    let wide = kubelab.ok(&["get", "deploy", "web", "-o", "wide"]).await?;
    assert_eq!(tables(&wide)[0].cell("web", "SELECTOR"), Some("app=web"), "{wide}");
    let object: Value = serde_json::from_str(&kubelab.ok(&["get", "deploy/web", "-o", "json"]).await?)?;
    assert_eq!(object["spec"]["replicas"], 3, "{object}");
    assert_eq!(lines(&kubelab.ok(&["get", "deploy", "-o", "name"]).await?), ["deployment.apps/web"]);
    // Nothing to list is not an error; the note goes to stderr, so a pipe reads nothing.
    let none = kubelab.run(&["get", "pods"]).await?;
    assert!(none.success() && none.stdout.is_empty(), "{none}");
    assert_eq!(none.stderr.trim(), "No resources found in default namespace.", "{none}");

    // create namespace, and -n.
    assert_eq!(lines(&kubelab.ok(&["create", "namespace", "dev"]).await?), ["namespace/dev created"]);
    let err = kubelab.fails_with(1, &["get", "deploy", "web", "-n", "dev"]).await?;
    assert_eq!(err.trim(), r#"Error from server (NotFound): deployments.apps "web" not found"#);

    // A manifest that fails validation gets Kubernetes' own message; the other objects of the file are still
    // applied, and the exit code says that something failed.
    let mixed = server.write_file(
        "mixed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken}\n\
         spec: {replicas: -1, selector: {matchLabels: {app: x}}, template: {metadata: {labels: {app: x}}, \
         spec: {containers: [{name: x, image: x}]}}}\n",
    )?;
    let output = kubelab.run(&["apply", "-f", &mixed]).await?;
    assert_eq!(output.status.code(), Some(1), "{output}");
    assert_eq!(lines(&output.stdout), ["configmap/settings created"], "{output}");
    assert_eq!(
        output.stderr.trim(),
        r#"The Deployment "broken" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"#,
        "{output}"
    );

    // A kind kubelab does not serve, in a manifest and on the command line.
    let widget = server.write_file("widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")?;
    let err = kubelab.fails_with(1, &["apply", "-f", &widget]).await?;
    assert!(err.contains(r#"no matches for kind "Widget" in version "example.com/v1""#), "{err}");
    let err = kubelab.fails_with(1, &["get", "widgets"]).await?;
    assert_eq!(err.trim(), r#"error: the server doesn't have a resource type "widgets""#);

    // Not YAML at all: the file is named, nothing is sent.
    let garbage = server.write_file("garbage.yaml", "kind: [unclosed\n")?;
    let err = kubelab.fails_with(1, &["apply", "-f", &garbage]).await?;
    assert!(err.starts_with("error: ") && err.contains("garbage.yaml: invalid YAML"), "{err}");

    // A usage error is clap's, with exit code 2, as for kubectl.
    let err = kubelab.fails_with(2, &["scale", "deploy/web"]).await?;
    assert!(err.contains("--replicas"), "{err}");

    // delete: the line kubectl prints, and the object is gone when the command returns.
    assert_eq!(lines(&kubelab.ok(&["delete", "deploy", "web"]).await?), [r#"deployment.apps "web" deleted"#]);
    let err = kubelab.fails_with(1, &["delete", "deploy", "web"]).await?;
    assert_eq!(err.trim(), r#"Error from server (NotFound): deployments.apps "web" not found"#);

    // Without a kubeconfig (none given, no $KUBECONFIG, no ~/.kube/config): say how to get one.
    let homeless = Kubelab { kubeconfig: None, dir: server.dir().join("empty-home") };
    std::fs::create_dir_all(&homeless.dir)?;
    let err = homeless.fails_with(1, &["get", "pods"]).await?;
    assert!(err.starts_with("error: no kubeconfig at ") && err.contains("kubelab up"), "{err}");

    // A kubeconfig whose server is not running: say so, not a transport error chain.
    let stopped = server.dir().join("stopped-kubeconfig");
    kubelab_tests::server::write_kubeconfig(&stopped, "http://127.0.0.1:9")?;
    let unreachable = Kubelab { kubeconfig: Some(stopped), dir: server.dir().to_path_buf() };
    let err = unreachable.fails_with(1, &["get", "pods"]).await?;
    assert!(err.starts_with("error: cannot connect to the apiserver at http://127.0.0.1:9"), "{err}");
    assert!(err.trim_end().ends_with("is the cluster running? try `kubelab up`"), "{err}");

    server.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_is_rolled_out_scaled_described_rolled_back_and_deleted_with_kubelab() -> anyhow::Result<()> {
    kubelab_binary();
    let cluster = spawn_cluster(1, |_| {}).await?;
    let kubeconfig = cluster.cluster.as_ref().context("the cluster runs")?.kubeconfig.clone();
    let kubelab = Kubelab { kubeconfig: Some(kubeconfig), dir: cluster.dir().to_path_buf() };
    let manifest = cluster.dir().join("web.yaml");
    let manifest = manifest.to_str().context("temporary paths are UTF-8")?;
    // Writes web.yaml with these values and applies it.
    let apply = async |replicas: u32, version: u32| {
        std::fs::write(manifest, web(replicas, version))?;
        kubelab.ok(&["apply", "-f", manifest]).await
    };

    assert_eq!(lines(&kubelab.ok(&["create", "ns", "shop"]).await?), ["namespace/shop created"]);
    assert_eq!(lines(&apply(2, 1).await?), ["deployment.apps/web created"]);

    // rollout status follows the Deployment until its pods run, then returns.
    let status = kubelab.ok(&["rollout", "status", "deploy/web", "-n", "shop", "--timeout", "90s"]).await?;
    assert_eq!(lines(&status).last(), Some(&r#"deployment "web" successfully rolled out"#), "{status}");
    let pods = kubelab.ok(&["get", "pods", "-n", "shop"]).await?;
    let printed = tables(&pods);
    assert_eq!(printed[0].header_line(), "NAME READY STATUS RESTARTS AGE", "{pods}");
    assert_eq!(printed[0].rows.len(), 2, "{pods}");
    assert!(printed[0].rows.iter().all(|row| row[1] == "1/1" && row[2] == "Running"), "{pods}");

    // scale goes through the scale subresource; rollout status returns once the third pod is available.
    assert_eq!(
        lines(&kubelab.ok(&["scale", "deploy/web", "--replicas", "3", "-n", "shop"]).await?),
        ["deployment.apps/web scaled"]
    );
    kubelab.ok(&["rollout", "status", "deploy", "web", "-n", "shop", "--timeout", "90s"]).await?;
    let deployments = kubelab.ok(&["get", "deploy", "-n", "shop"]).await?;
    assert_eq!(tables(&deployments)[0].cell("web", "READY"), Some("3/3"), "{deployments}");

    // describe: kubectl's sections, and the events the deployment controller recorded.
    let page = kubelab.ok(&["describe", "deploy", "web", "-n", "shop"]).await?;
    let field = |key: &str| {
        page.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}:")).map(str::trim))
            .unwrap_or_else(|| panic!("no {key}: in\n{page}"))
    };
    assert_eq!(field("Name"), "web");
    assert_eq!(field("Namespace"), "shop");
    assert_eq!(field("Replicas"), "3 desired | 3 updated | 3 total | 3 available | 0 unavailable", "{page}");
    assert_eq!(field("StrategyType"), "RollingUpdate");
    assert!(page.contains("\nEvents:\n"), "{page}");
    assert!(
        page.lines().any(|l| l.contains("ScalingReplicaSet") && l.contains("Scaled up replica set web-")),
        "{page}"
    );

    // A new template: configured, a second revision, and the history lists both with their change causes.
    assert_eq!(lines(&apply(3, 2).await?), ["deployment.apps/web configured"]);
    kubelab.ok(&["rollout", "status", "deploy/web", "-n", "shop", "--timeout", "90s"]).await?;
    let history = kubelab.ok(&["rollout", "history", "deploy/web", "-n", "shop"]).await?;
    assert_eq!(
        lines(&history),
        ["deployment.apps/web", "REVISION  CHANGE-CAUSE", "1         version 1", "2         version 2"],
        "{history}"
    );

    // undo goes back to revision 1's template, which becomes revision 3.
    assert_eq!(
        lines(&kubelab.ok(&["rollout", "undo", "deploy/web", "-n", "shop"]).await?),
        ["deployment.apps/web rolled back"]
    );
    kubelab.ok(&["rollout", "status", "deploy/web", "-n", "shop", "--timeout", "90s"]).await?;
    let history = kubelab.ok(&["rollout", "history", "deploy/web", "-n", "shop"]).await?;
    let revisions: Vec<&str> = lines(&history)[2..].iter().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    let deployment: Value =
        serde_json::from_str(&kubelab.ok(&["get", "deploy/web", "-n", "shop", "-o", "json"]).await?)?;
    let version = deployment.pointer("/spec/template/spec/containers/0/env/0/value");
    assert_eq!(version, Some(&Value::from("1")), "{deployment}");
    let err = kubelab.fails_with(1, &["rollout", "undo", "deploy/web", "-n", "shop", "--to-revision", "9"]).await?;
    assert_eq!(err.trim(), "error: unable to find specified revision 9 in history");

    // delete --cascade=foreground returns only once the whole tree is gone: Deployment, ReplicaSets, pods.
    let deleted = kubelab.ok(&["delete", "deploy", "web", "-n", "shop", "--cascade=foreground"]).await?;
    assert_eq!(lines(&deleted), [r#"deployment.apps "web" deleted"#]);
    let left = kubelab.run(&["get", "deploy,rs,pods", "-n", "shop"]).await?;
    assert!(left.success() && left.stdout.is_empty(), "still there after delete returned:\n{left}");

    // Deleting a namespace waits for the namespace controller to empty it and remove its finalizer.
    assert_eq!(lines(&kubelab.ok(&["delete", "ns", "shop"]).await?), [r#"namespace "shop" deleted"#]);
    let err = kubelab.fails_with(1, &["get", "ns", "shop"]).await?;
    assert_eq!(err.trim(), r#"Error from server (NotFound): namespaces "shop" not found"#);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelab_up_starts_a_cluster_that_kubelab_can_use_and_stops_on_sigterm() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("kubelab-up-").tempdir()?;
    let data = dir.path().join("data");
    let kubelab = Kubelab { kubeconfig: None, dir: dir.path().to_path_buf() };
    // No nodes: the control plane alone needs no Docker. Port 0: any free port.
    let data_arg = data.to_str().context("temporary paths are UTF-8")?;
    // Its logs go to a file: a pipe nobody reads would fill up and block it.
    let log = dir.path().join("up.log");
    let mut up = kubelab
        .command(&["up", "--nodes", "0", "--port", "0", "--data-dir", data_arg])
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut printed = BufReader::new(up.stdout.take().context("up's stdout")?).lines();
    let mut seen = Vec::new();
    let kubeconfig = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = printed.next_line().await? {
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("kubeconfig written to ") {
                return Ok(PathBuf::from(rest.split_once(". ").map_or(rest, |(path, _)| path)));
            }
        }
        bail!("`kubelab up` exited")
    })
    .await
    .with_context(|| format!("`kubelab up` printed no kubeconfig line; it printed:\n{}", seen.join("\n")))??;
    assert_eq!(kubeconfig, data.join("kubeconfig"), "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.starts_with("apiserver ") && l.contains("http://127.0.0.1:")), "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("controller-manager ") && l.ends_with("running")), "{seen:?}");

    // The kubeconfig it wrote is all another terminal needs.
    let user = Kubelab { kubeconfig: Some(kubeconfig), dir: dir.path().to_path_buf() };
    let namespaces = user.ok(&["get", "ns"]).await?;
    assert!(tables(&namespaces)[0].names().contains(&"default"), "{namespaces}");

    // SIGTERM (what `kill` and service managers send) stops it cleanly, with exit code 0.
    let pid = up.id().context("up is running")?;
    let killed = StdCommand::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    ensure!(killed.success(), "kill -TERM {pid} failed");
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait()).await.context("up did not stop")??;
    let logs = std::fs::read_to_string(&log)?;
    assert!(status.success(), "kubelab up exited with {status}; its logs:\n{logs}");
    assert!(logs.lines().any(|l| l == "stopped"), "{logs}");
    let err = user.fails_with(1, &["get", "ns"]).await?;
    assert!(err.contains("cannot connect to the apiserver"), "{err}");
    Ok(())
}
