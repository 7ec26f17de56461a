use kubelab_tests::spawn_apiserver;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() -> anyhow::Result<()> {
    let server = spawn_apiserver().await?;
    for (ct, body) in [("application/json", "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"ConfigMap\",\n  \"metadata\": {\"name\": \"broken\",}\n}\n"), ("application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [broken\n")] {
        let r = server.http().post(server.path_url("/api/v1/namespaces/default/configmaps")).header("Content-Type", ct).body(body).send().await?;
        println!("{} {}", r.status(), r.text().await?);
    }
    let typo = include_str!("manifests/shop.yaml").replace("imagePullPolicy: IfNotPresent", "imagePullPolcy: IfNotPresent");
    let m = server.write_file("t.yaml", &typo)?;
    println!("{}", server.kubectl().run(&["apply", "-f", &m]).await?);
    let d = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: -1\n  selector:\n    matchLabels:\n      app: x\n  template:\n    metadata:\n      labels:\n        app: y\n    spec:\n      containers:\n      - name: c\n        image: nginx\n";
    let m = server.write_file("d.yaml", d)?;
    println!("{}", server.kubectl().run(&["apply", "-f", &m]).await?);
    Ok(())
}
