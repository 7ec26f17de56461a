//! `kubectl explain`: the schemas kubelab publishes, read the way students read them.
//!
//! `kubectl explain deployment.spec.strategy` walks the OpenAPI v3 schemas from the kind's root, field by field,
//! and prints the field's type (`<DeploymentStrategy>`, `<[]Container>`, `<map[string]string>`, `<IntOrString>`)
//! and description. The schemas are k8s-openapi's, generated from Kubernetes' own document, so the descriptions
//! are the ones a real cluster prints. Each test asks for fields at depth 1, 3 and 5 and for a `--recursive`
//! outline, with the `kubectl` dispatcher (which runs 1.32 against kubelab) and with kubectl 1.27.
//!
//! kubectl wraps descriptions at 80 columns, so texts are compared with their whitespace collapsed.

use kubelab_tests::{Kubectl, spawn_apiserver};

/// The kubectl releases every explanation is checked with: the default (1.32) and the oldest supported.
async fn each_kubectl(kubectl: &Kubectl) -> anyhow::Result<Vec<Kubectl>> {
    Ok(vec![kubectl.clone(), kubectl.release(27)?])
}

/// What `kubectl explain <args>` printed, with runs of whitespace collapsed to one space.
async fn explain(kubectl: &Kubectl, args: &[&str]) -> anyhow::Result<String> {
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let printed = kubectl.ok(&all).await?;
    Ok(printed.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Checks that `printed` contains each of `expected` (already whitespace-collapsed).
fn assert_prints(printed: &str, expected: &[&str], what: &str) {
    for text in expected {
        assert!(printed.contains(text), "`kubectl explain {what}` should print {text:?}; it printed:\n{printed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_fields_at_depth_1_3_and_5() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    for kubectl in each_kubectl(&server.kubectl()).await? {
        let top = explain(&kubectl, &["pod"]).await?;
        assert_prints(
            &top,
            &[
                "KIND: Pod VERSION: v1",
                "Pod is a collection of containers that can run on a host.",
                "metadata <ObjectMeta> Standard object's metadata.",
                "spec <PodSpec> Specification of the desired behavior of the pod.",
            ],
            "pod",
        );
        assert!(!top.contains("metadata <ObjectMeta> -required-"), "metadata is optional, as in Kubernetes:\n{top}");

        let spec = explain(&kubectl, &["pod.spec"]).await?;
        assert_prints(
            &spec,
            &[
                "FIELD: spec <PodSpec>",
                "PodSpec is a description of a pod.",
                "containers <[]Container> -required- List of containers belonging to the pod.",
                "nodeSelector <map[string]string> NodeSelector is a selector which must be true for the pod to fit",
                "restartPolicy <string>",
                "terminationGracePeriodSeconds <integer>",
            ],
            "pod.spec",
        );

        let probe = explain(&kubectl, &["pod.spec.containers.readinessProbe"]).await?;
        assert_prints(
            &probe,
            &[
                "FIELD: readinessProbe <Probe>",
                "Periodic probe of container service readiness. Container will be removed from service endpoints",
                "httpGet <HTTPGetAction> HTTPGet specifies",
                "periodSeconds <integer> How often (in seconds) to perform the probe.",
            ],
            "pod.spec.containers.readinessProbe",
        );

        let port = explain(&kubectl, &["pod.spec.containers.readinessProbe.httpGet.port"]).await?;
        assert_prints(
            &port,
            &[
                "FIELD: port <IntOrString>",
                "Name or number of the port to access on the container. Number must be in the range 1 to 65535.",
                "IntOrString is a type that can hold an int32 or a string.",
            ],
            "pod.spec.containers.readinessProbe.httpGet.port",
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_fields_at_depth_1_3_and_5_and_recursive() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    for kubectl in each_kubectl(&server.kubectl()).await? {
        let spec = explain(&kubectl, &["deployment.spec"]).await?;
        assert_prints(
            &spec,
            &[
                "GROUP: apps KIND: Deployment VERSION: v1",
                "FIELD: spec <DeploymentSpec>",
                "replicas <integer> Number of desired pods.",
                "selector <LabelSelector> -required- Label selector for pods.",
                "strategy <DeploymentStrategy> The deployment strategy to use to replace existing pods with new ones.",
                "template <PodTemplateSpec> -required-",
            ],
            "deployment.spec",
        );

        let rolling = explain(&kubectl, &["deployment.spec.strategy.rollingUpdate"]).await?;
        assert_prints(
            &rolling,
            &[
                "FIELD: rollingUpdate <RollingUpdateDeployment>",
                "Rolling update config params. Present only if DeploymentStrategyType = RollingUpdate.",
                "maxSurge <IntOrString> The maximum number of pods that can be scheduled above the desired number",
                "maxUnavailable <IntOrString>",
            ],
            "deployment.spec.strategy.rollingUpdate",
        );

        let ports = explain(&kubectl, &["deployment.spec.template.spec.containers.ports"]).await?;
        assert_prints(
            &ports,
            &[
                "FIELD: ports <[]ContainerPort>",
                "List of ports to expose from the container.",
                "ContainerPort represents a network port in a single container.",
                "containerPort <integer> -required- Number of port to expose on the pod's IP address.",
                "protocol <string>",
            ],
            "deployment.spec.template.spec.containers.ports",
        );

        let outline = explain(&kubectl, &["deployment.spec.strategy", "--recursive"]).await?;
        assert_prints(
            &outline,
            &[
                "FIELD: strategy <DeploymentStrategy>",
                "rollingUpdate <RollingUpdateDeployment> maxSurge <IntOrString> maxUnavailable <IntOrString> \
                 type <string>",
            ],
            "deployment.spec.strategy --recursive",
        );
        // The same fields from the v2 document, in the older format, whose types name no definitions.
        let v2 = explain(&kubectl, &["deployment.spec.template.spec", "--output=plaintext-openapiv2"]).await?;
        assert_prints(
            &v2,
            &[
                "RESOURCE: spec <Object>",
                "containers <[]Object> -required- List of containers belonging to the pod.",
                "nodeSelector <map[string]string>",
                "affinity <Object>",
            ],
            "deployment.spec.template.spec --output=plaintext-openapiv2",
        );
        let whole = explain(&kubectl, &["deployment", "--recursive"]).await?;
        assert_prints(
            &whole,
            &[
                "containers <[]Container> -required-",
                "resources <ResourceRequirements>",
                "limits <map[string]Quantity>",
                "readinessProbe <Probe>",
                "observedGeneration <integer>",
            ],
            "deployment --recursive",
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_fields_at_depth_1_3_and_5() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    for kubectl in each_kubectl(&server.kubectl()).await? {
        let spec = explain(&kubectl, &["service.spec"]).await?;
        assert_prints(
            &spec,
            &[
                "KIND: Service VERSION: v1",
                "FIELD: spec <ServiceSpec>",
                "ports <[]ServicePort> The list of ports that are exposed by this service.",
                "selector <map[string]string> Route service traffic to pods with label keys and values matching",
                "type <string>",
            ],
            "service.spec",
        );

        let target = explain(&kubectl, &["service.spec.ports.targetPort"]).await?;
        assert_prints(
            &target,
            &["FIELD: targetPort <IntOrString>", "Number or name of the port to access on the pods targeted by"],
            "service.spec.ports.targetPort",
        );

        let port = explain(&kubectl, &["service.status.loadBalancer.ingress.ports.port"]).await?;
        assert_prints(
            &port,
            &["FIELD: port <integer>", "Port is the port number of the service port of which status is recorded"],
            "service.status.loadBalancer.ingress.ports.port",
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_served_is_explained_and_api_version_picks_the_group_version() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    let kubectl = server.kubectl();
    for resource in kubelab_api::resources::RESOURCES {
        let printed = explain(&kubectl, &[resource.plural, "--api-version", &resource.api_version()]).await?;
        let kind = format!("KIND: {} VERSION: {}", resource.kind, resource.version);
        assert!(printed.contains(&kind), "{}:\n{printed}", resource.plural);
        if !resource.group.is_empty() {
            assert!(printed.starts_with(&format!("GROUP: {}", resource.group)), "{printed}");
        }
        assert!(printed.contains("apiVersion <string> APIVersion defines"), "{}:\n{printed}", resource.plural);
    }
    let lease = explain(&kubectl, &["lease.spec.holderIdentity", "--api-version=coordination.k8s.io/v1"]).await?;
    assert_prints(
        &lease,
        &["FIELD: holderIdentity <string>", "holderIdentity contains the identity of the holder"],
        "lease.spec.holderIdentity",
    );

    let unknown = kubectl.fails(&["explain", "deployment.spec.strategy.nonsense"]).await?;
    assert!(unknown.contains(r#"field "nonsense" does not exist"#), "{unknown}");
    Ok(())
}
