//! Finding the cluster: the kubeconfig file that `kubectl` reads, read the same way.
//!
//! A kubeconfig names *clusters* (where an apiserver is), *users* (how to log in) and *contexts* (a cluster, a
//! user and a default namespace, under one name); `current-context` says which context to use. Every client of a
//! cluster — `kubectl`, the kubelet, the controller manager — starts by reading one. We read the same file in the
//! same order as kubectl, so that `kubelab` and `kubectl` always talk to the same cluster:
//!
//! 1. the `--kubeconfig` path, if given;
//! 2. else `$KUBECONFIG` — kubectl *merges* every file of that list; we take the first one that exists;
//! 3. else `~/.kube/config`.
//!
//! What we leave out: TLS (certificate authorities, client certificates), exec and auth-provider plugins,
//! proxies, and merging several files. The kubelab apiserver speaks plain HTTP and does no authentication, so a
//! server URL (and, for form's sake, a bearer token) is all we need.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why no cluster could be found in a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Neither `--kubeconfig`, `$KUBECONFIG` nor `$HOME` says where to look.
    #[error("no kubeconfig: set $KUBECONFIG or $HOME, or pass --kubeconfig")]
    NoPath,
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The kubeconfig file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a kubeconfig (bad YAML, or fields of the wrong type).
    #[error("{path} is not a valid kubeconfig: {message}")]
    Parse {
        /// The kubeconfig file.
        path: PathBuf,
        /// The YAML parser's message, with its line and column.
        message: String,
    },
    /// The file is fine but does not lead to a server: no current context, or a name that is not defined.
    #[error("{path}: {message}")]
    Incomplete {
        /// The kubeconfig file.
        path: PathBuf,
        /// What is missing, e.g. `context "dev" not found`.
        message: String,
    },
}

/// What a client needs from a kubeconfig, resolved through its current context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAccess {
    /// The apiserver's base URL, e.g. `http://127.0.0.1:6443`.
    pub server: String,
    /// A bearer token to send, when the context's user has one.
    pub token: Option<String>,
    /// The context's default namespace; `kubectl get pods` without `-n` uses it (and `default` without it).
    pub namespace: Option<String>,
    /// The file it came from, for error messages.
    pub path: PathBuf,
}

/// The subset of the kubeconfig format (`apiVersion: v1`, `kind: Config`) that we read and write.
///
/// Field names follow the file format, hyphens included; fields we do not know are ignored, so a real
/// kubeconfig with certificates still loads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    pub current_context: String,
}

/// An entry of `clusters:`: a name and where that apiserver is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: ClusterInfo,
}

/// Where the apiserver is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(default)]
    pub server: String,
}

/// An entry of `contexts:`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedContext {
    pub name: String,
    pub context: ContextInfo,
}

/// A cluster, a user and a default namespace under one name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContextInfo {
    #[serde(default)]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// An entry of `users:`. `user` may be empty (`user: {}`) or even null in files written by other tools.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NamedUser {
    pub name: String,
    #[serde(default)]
    pub user: Option<UserInfo>,
}

/// How to log in; we only know bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The file kubectl would read: `explicit` (from `--kubeconfig`), else the first existing file of
/// `$KUBECONFIG`, else `~/.kube/config`.
pub fn path(explicit: Option<&Path>) -> Result<PathBuf, KubeconfigError> {
    let env = std::env::var_os("KUBECONFIG");
    let home = std::env::var_os("HOME");
    choose_path(explicit, env.as_deref(), home.as_deref(), |p| p.exists())
}

/// The decision of [`path`], without touching the environment, so that it can be tested.
fn choose_path(
    explicit: Option<&Path>,
    kubeconfig_env: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
    exists: impl Fn(&Path) -> bool,
) -> Result<PathBuf, KubeconfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(list) = kubeconfig_env {
        let files: Vec<PathBuf> = std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()).collect();
        // Like kubectl, a listed file that does not exist is skipped; if none exists, report the first.
        if let Some(found) = files.iter().find(|p| exists(p)).or(files.first()) {
            return Ok(found.clone());
        }
    }
    match home {
        Some(home) if !home.is_empty() => Ok(Path::new(home).join(".kube").join("config")),
        _ => Err(KubeconfigError::NoPath),
    }
}

/// Reads the kubeconfig kubectl would read and resolves its current context.
pub fn load(explicit: Option<&Path>) -> Result<ClusterAccess, KubeconfigError> {
    let path = path(explicit)?;
    let text = std::fs::read_to_string(&path).map_err(|source| KubeconfigError::Io { path: path.clone(), source })?;
    parse(&text, &path)
}

/// Parses a kubeconfig and follows `current-context` to its cluster and user.
pub fn parse(text: &str, path: &Path) -> Result<ClusterAccess, KubeconfigError> {
    let config: Kubeconfig = serde_saphyr::from_str(text)
        .map_err(|err| KubeconfigError::Parse { path: path.to_path_buf(), message: err.to_string() })?;
    let incomplete = |message: String| KubeconfigError::Incomplete { path: path.to_path_buf(), message };

    if config.current_context.is_empty() {
        return Err(incomplete("current-context is not set".into()));
    }
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == config.current_context)
        .ok_or_else(|| incomplete(format!("context {:?} not found", config.current_context)))?;
    let cluster_name = &context.context.cluster;
    let cluster = config
        .clusters
        .iter()
        .find(|c| &c.name == cluster_name)
        .ok_or_else(|| incomplete(format!("cluster {cluster_name:?} not found")))?;
    if cluster.cluster.server.is_empty() {
        return Err(incomplete(format!("cluster {cluster_name:?} has no server")));
    }
    // A context without a user is allowed (no credentials); one naming a missing user is a mistake kubectl
    // reports too.
    let user_name = &context.context.user;
    let token = if user_name.is_empty() {
        None
    } else {
        let user = config
            .users
            .iter()
            .find(|u| &u.name == user_name)
            .ok_or_else(|| incomplete(format!("user {user_name:?} not found")))?;
        user.user.as_ref().and_then(|u| u.token.clone()).filter(|t| !t.is_empty())
    };
    Ok(ClusterAccess {
        server: cluster.cluster.server.trim_end_matches('/').to_string(),
        token,
        namespace: context.context.namespace.clone().filter(|n| !n.is_empty()),
        path: path.to_path_buf(),
    })
}

/// The token written by [`write_kubeconfig`].
///
/// The kubelab apiserver does no authentication at all: any token, or none, is accepted. We still write a user
/// with a token because that is the shape of every real kubeconfig, and it shows students where credentials go.
pub const PLACEHOLDER_TOKEN: &str = "kubelab-has-no-auth";

/// The kubeconfig text for a cluster at `server_url` (plain `http://`, no TLS): one cluster, one user, one
/// context, all named `cluster_name`, and that context current. Both `kubelab` and `kubectl` accept it.
pub fn kubeconfig_yaml(server_url: &str, cluster_name: &str) -> Result<String, serde_saphyr::SerializeError> {
    let config = Kubeconfig {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![NamedCluster {
            name: cluster_name.into(),
            cluster: ClusterInfo { server: server_url.trim_end_matches('/').into() },
        }],
        users: vec![NamedUser {
            name: cluster_name.into(),
            user: Some(UserInfo { token: Some(PLACEHOLDER_TOKEN.into()) }),
        }],
        contexts: vec![NamedContext {
            name: cluster_name.into(),
            context: ContextInfo { cluster: cluster_name.into(), user: cluster_name.into(), namespace: None },
        }],
        current_context: cluster_name.into(),
    };
    let yaml = serde_saphyr::to_string(&config)?;
    Ok(format!(
        "# Written by `kubelab up`. The kubelab apiserver has no authentication: the token is a placeholder.\n{yaml}"
    ))
}

/// Writes [`kubeconfig_yaml`] to `path`, creating its directory.
pub fn write_kubeconfig(path: &Path, server_url: &str, cluster_name: &str) -> Result<(), KubeconfigError> {
    let io = |source| KubeconfigError::Io { path: path.to_path_buf(), source };
    let text = kubeconfig_yaml(server_url, cluster_name)
        .map_err(|err| KubeconfigError::Parse { path: path.to_path_buf(), message: err.to_string() })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    const KUBECTL_STYLE: &str = r#"
apiVersion: v1
kind: Config
preferences: {}
clusters:
- cluster:
    certificate-authority-data: AAAA
    server: https://10.0.0.1:6443/
  name: prod
- cluster:
    server: http://127.0.0.1:6443
  name: lab
contexts:
- context:
    cluster: prod
    user: admin
  name: prod
- context:
    cluster: lab
    user: student
    namespace: dev
  name: lab
current-context: lab
users:
- name: admin
  user:
    client-certificate-data: BBBB
- name: student
  user:
    token: abc123
"#;

    #[test]
    fn current_context_leads_to_its_cluster_user_and_namespace() {
        let access = parse(KUBECTL_STYLE, Path::new("k")).unwrap();
        assert_eq!(access.server, "http://127.0.0.1:6443");
        assert_eq!(access.token.as_deref(), Some("abc123"));
        assert_eq!(access.namespace.as_deref(), Some("dev"));
    }

    #[test]
    fn a_missing_context_is_named_in_the_error() {
        let text = KUBECTL_STYLE.replace("current-context: lab", "current-context: nope");
        let err = parse(&text, Path::new("k")).unwrap_err();
        assert_eq!(err.to_string(), "k: context \"nope\" not found");
    }

    #[test]
    fn written_kubeconfig_reads_back() {
        let text = kubeconfig_yaml("http://127.0.0.1:6443", "kubelab").unwrap();
        let access = parse(&text, Path::new("k")).unwrap();
        assert_eq!(access.server, "http://127.0.0.1:6443");
        assert_eq!(access.token.as_deref(), Some(PLACEHOLDER_TOKEN));
        assert_eq!(access.namespace, None);
        assert!(text.contains("current-context: kubelab"), "{text}");
        assert!(text.contains("apiVersion: v1") && text.contains("kind: Config"), "{text}");
    }

    #[test]
    fn explicit_path_wins_then_kubeconfig_env_then_home() {
        let none = |_: &Path| false;
        let explicit = choose_path(Some(Path::new("/x")), Some(OsStr::new("/a")), Some(OsStr::new("/h")), none);
        assert_eq!(explicit.unwrap(), PathBuf::from("/x"));
        let env = choose_path(None, Some(OsStr::new("/a:/b")), Some(OsStr::new("/h")), |p| p == Path::new("/b"));
        assert_eq!(env.unwrap(), PathBuf::from("/b"));
        let first = choose_path(None, Some(OsStr::new("/a:/b")), None, none);
        assert_eq!(first.unwrap(), PathBuf::from("/a"));
        let home = choose_path(None, Some(OsStr::new("")), Some(OsStr::new("/h")), none);
        assert_eq!(home.unwrap(), PathBuf::from("/h/.kube/config"));
        assert!(matches!(choose_path(None, None, None, none), Err(KubeconfigError::NoPath)));
    }
}
