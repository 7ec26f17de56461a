//! Probes and lifecycle hooks: how the kubelet checks a container and what it runs around its life.
//!
//! Mirrors `validateProbe`, `validateHandler`, `validateLifecycle` and `ValidatePortNumOrName` of
//! `pkg/apis/core/validation/validation.go`.

use super::{Path, each_invalid, non_negative};
use crate::names::{is_http_header_name, is_valid_port_name, is_valid_port_num};
use crate::status::Cause;
use k8s_openapi::api::core::v1::{HTTPGetAction, Lifecycle, LifecycleHandler, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// A probe: one handler, non-negative timings; liveness and startup probes succeed after one success.
pub(super) fn validate_probe(probe: Option<&Probe>, kind: ProbeKind, path: &Path) -> Vec<Cause> {
    let Some(probe) = probe else { return Vec::new() };
    let mut causes = Vec::new();
    let handler = Handler {
        exec: probe.exec.as_ref().map(|e| e.command.as_ref().is_some_and(|c| !c.is_empty())),
        http_get: probe.http_get.as_ref(),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| &t.port),
        grpc: probe.grpc.as_ref().map(|g| g.port),
        sleep: None,
    };
    causes.extend(handler.validate(None, path));
    for (field, value) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        causes.extend(non_negative(value.unwrap_or(0).into(), path.child(field)));
    }
    if let Some(grace) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
        causes.push(Cause::invalid(path.child("terminationGracePeriodSeconds"), grace, "must be greater than 0"));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let success = probe.success_threshold.unwrap_or(0);
            if success != 1 {
                causes.push(Cause::invalid(path.child("successThreshold"), success, "must be 1"));
            }
        }
        ProbeKind::Readiness => {
            if let Some(grace) = probe.termination_grace_period_seconds {
                let detail = "must not be set for readinessProbes";
                causes.push(Cause::invalid(path.child("terminationGracePeriodSeconds"), grace, detail));
            }
        }
    }
    causes
}

pub(super) fn validate_lifecycle(lifecycle: &Lifecycle, grace: Option<i64>, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (field, handler) in [("postStart", &lifecycle.post_start), ("preStop", &lifecycle.pre_stop)] {
        if let Some(handler) = handler {
            causes.extend(Handler::of_lifecycle(handler).validate(grace, &path.child(field)));
        }
    }
    causes
}

/// The one action of a probe or lifecycle hook, whatever its kind. `exec` holds whether a command is given.
struct Handler<'a> {
    exec: Option<bool>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a IntOrString>,
    grpc: Option<i32>,
    sleep: Option<i64>,
}

impl<'a> Handler<'a> {
    fn of_lifecycle(handler: &'a LifecycleHandler) -> Handler<'a> {
        Handler {
            exec: handler.exec.as_ref().map(|e| e.command.as_ref().is_some_and(|c| !c.is_empty())),
            http_get: handler.http_get.as_ref(),
            tcp_socket: handler.tcp_socket.as_ref().map(|t| &t.port),
            grpc: None,
            sleep: handler.sleep.as_ref().map(|s| s.seconds),
        }
    }

    fn validate(&self, grace: Option<i64>, path: &Path) -> Vec<Cause> {
        let mut causes = Vec::new();
        let mut handlers = 0;
        let mut check = |field: &str, present: bool, causes: &mut Vec<Cause>| -> bool {
            if !present {
                return false;
            }
            handlers += 1;
            if handlers > 1 {
                causes.push(Cause::forbidden(path.child(field), "may not specify more than 1 handler type"));
                return false;
            }
            true
        };
        if check("exec", self.exec.is_some(), &mut causes) && self.exec == Some(false) {
            causes.push(Cause::required(path.child("exec").child("command"), ""));
        }
        if let Some(http) = self.http_get
            && check("httpGet", true, &mut causes)
        {
            causes.extend(validate_http_get(http, &path.child("httpGet")));
        }
        if let Some(port) = self.tcp_socket
            && check("tcpSocket", true, &mut causes)
        {
            causes.extend(validate_port_num_or_name(port, &path.child("tcpSocket").child("port")));
        }
        if let Some(port) = self.grpc
            && check("grpc", true, &mut causes)
        {
            causes.extend(validate_port_num_or_name(&IntOrString::Int(port), &path.child("grpc").child("port")));
        }
        if let Some(seconds) = self.sleep
            && check("sleep", true, &mut causes)
            && let Some(grace) = grace
            && !(0..=grace).contains(&seconds)
        {
            let detail = format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})");
            causes.push(Cause::invalid(path.child("sleep"), seconds, detail));
        }
        if handlers == 0 {
            causes.push(Cause::required(path, "must specify a handler type"));
        }
        causes
    }
}

fn validate_http_get(http: &HTTPGetAction, path: &Path) -> Vec<Cause> {
    let mut causes = Vec::new();
    if http.path.as_deref().unwrap_or("").is_empty() {
        causes.push(Cause::required(path.child("path"), ""));
    }
    causes.extend(validate_port_num_or_name(&http.port, &path.child("port")));
    let scheme = http.scheme.as_deref().unwrap_or("");
    if !["HTTP", "HTTPS"].contains(&scheme) {
        causes.push(Cause::not_supported(path.child("scheme"), scheme, &["HTTP", "HTTPS"]));
    }
    for header in http.http_headers.iter().flatten() {
        causes.extend(each_invalid(&path.child("httpHeaders"), &header.name, is_http_header_name(&header.name)));
    }
    causes
}

/// A port given as a number (1-65535) or as the name of a container port.
pub(super) fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> Vec<Cause> {
    match port {
        IntOrString::Int(number) => {
            is_valid_port_num((*number).into()).into_iter().map(|m| Cause::invalid(path, number, m)).collect()
        }
        IntOrString::String(name) => each_invalid(path, name, is_valid_port_name(name)),
    }
}

#[cfg(test)]
mod tests {
    use crate::validation::test_support::pod_errors as errors;
    use serde_json::json;

    #[test]
    fn probes_need_one_handler_and_liveness_succeeds_once() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx",
            "livenessProbe": {"successThreshold": 2, "httpGet": {"port": 0}},
            "readinessProbe": {"periodSeconds": -5, "exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
            "startupProbe": {}}]});
        assert_eq!(
            errors(spec),
            vec![
                "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
                "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -5: must be greater than or equal to 0",
                "spec.containers[0].startupProbe: Required value: must specify a handler type",
            ]
        );
    }
}
