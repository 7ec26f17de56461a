"""The official Python client (`kubernetes` on PyPI) against a kubelab apiserver.

Run by tests/tests/python_client.rs as `python client_check.py KUBECONFIG STEP...`, with the Python of the venv that
`scripts/deps.sh test` makes. Each step prints `ok <step>: <what it saw>`; the first failure raises, which prints
the traceback and exits with 1. Steps:

- `api`: version, ConfigMap and Deployment CRUD, a watch, scale, delete — needs only the apiserver;
- `logs NAMESPACE POD TEXT`: the pod's log holds TEXT — needs a node running the pod.
"""

import sys

from kubernetes import client, config, watch

NAMESPACE = "default"


def ok(step, detail=""):
    print(f"ok {step}: {detail}", flush=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def version():
    info = client.VersionApi().get_code()
    check(info.major == "1" and info.git_version.startswith("v1."), f"unexpected version {info}")
    ok("version", info.git_version)


def config_map_crud(core):
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-settings", labels={"app": "py"}), data={"colour": "blue"}
    )
    created = core.create_namespaced_config_map(NAMESPACE, body)
    check(created.metadata.uid, "a created object has a uid")
    read = core.read_namespaced_config_map("py-settings", NAMESPACE)
    check(read.data == {"colour": "blue"}, f"read back {read.data}")
    read.data["colour"] = "green"
    replaced = core.replace_namespaced_config_map("py-settings", NAMESPACE, read)
    check(replaced.data["colour"] == "green", f"replaced {replaced.data}")
    patched = core.patch_namespaced_config_map("py-settings", NAMESPACE, {"data": {"size": "L"}})
    check(patched.data == {"colour": "green", "size": "L"}, f"patched {patched.data}")
    listed = core.list_namespaced_config_map(NAMESPACE, label_selector="app=py")
    check([c.metadata.name for c in listed.items] == ["py-settings"], f"listed {listed.items}")
    ok("configmap crud", f"resourceVersion {patched.metadata.resource_version}")


def watch_config_maps(core):
    start = core.list_namespaced_config_map(NAMESPACE, label_selector="app=py").metadata.resource_version
    core.create_namespaced_config_map(
        NAMESPACE, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-later", labels={"app": "py"}))
    )
    core.delete_namespaced_config_map("py-later", NAMESPACE)
    seen = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map,
        NAMESPACE,
        label_selector="app=py",
        resource_version=start,
        timeout_seconds=10,
        _request_timeout=15,
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            stream.stop()
    check(seen == [("ADDED", "py-later"), ("DELETED", "py-later")], f"watch saw {seen}")
    ok("watch", seen)


def deployment_crud_and_scale(apps):
    labels = {"app": "py-web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="kubelab/busybox:1")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(NAMESPACE, deployment)
    check(created.spec.strategy.type == "RollingUpdate", f"defaulted strategy {created.spec.strategy}")
    scale = apps.patch_namespaced_deployment_scale("py-web", NAMESPACE, {"spec": {"replicas": 3}})
    check(scale.spec.replicas == 3, f"scale answered {scale.spec}")
    check(apps.read_namespaced_deployment_scale("py-web", NAMESPACE).spec.replicas == 3, "scale read back")
    check(apps.read_namespaced_deployment("py-web", NAMESPACE).spec.replicas == 3, "deployment read back")
    names = [d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items]
    check("py-web" in names, f"listed {names}")
    ok("deployment crud and scale", "replicas 3")


def delete_all(core, apps):
    core.delete_namespaced_config_map("py-settings", NAMESPACE)
    apps.delete_namespaced_deployment("py-web", NAMESPACE, propagation_policy="Background")
    try:
        core.read_namespaced_config_map("py-settings", NAMESPACE)
        raise AssertionError("the ConfigMap is still there")
    except client.exceptions.ApiException as err:
        check(err.status == 404, f"read after delete: {err.status}")
    ok("delete", "404 after delete")


def logs(namespace, pod, text):
    log = client.CoreV1Api().read_namespaced_pod_log(pod, namespace)
    check(text in log, f"log of {pod}: {log!r}")
    ok("logs", log.strip())


def main(argv):
    config.load_kube_config(config_file=argv[1])
    step = argv[2]
    if step == "api":
        core, apps = client.CoreV1Api(), client.AppsV1Api()
        version()
        config_map_crud(core)
        watch_config_maps(core)
        deployment_crud_and_scale(apps)
        delete_all(core, apps)
    elif step == "logs":
        logs(*argv[3:6])
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv)
