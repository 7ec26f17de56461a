//! `kubelab get KIND [NAME...]`: list objects, as a table or as YAML/JSON, and optionally follow changes.
//!
//! For a table we ask the server for its printed form (`Accept: application/json;as=Table;...`): the columns of
//! `kubectl get pods` are decided by the apiserver, not by the client. For `-o yaml|json|name` we ask for plain
//! objects. `-w` then watches from the list's resourceVersion, so that no change between the list and the watch
//! is missed, and prints each changed object as one more row.

use crate::context::Context;
use crate::table::{self, Options};
use crate::tabwriter::TabWriter;
use crate::target::{self, Target};
use crate::{AlreadyReported, print};
use anyhow::bail;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use kubelab_api::client::{ListParams, WatchEventType, WatchStream};
use serde_json::{Value, json};
use std::io::Write as _;

/// Display one or many objects.
///
/// Prints a table of the objects of a kind, in the current namespace unless -A is given. The columns are
/// chosen by the server, as for kubectl. With -o yaml|json the objects themselves are printed; with -w the
/// command keeps running and prints a row each time an object changes.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kubelab get pods                      # pods of the current namespace
  kubelab get deploy web -o yaml        # one deployment, as YAML
  kubelab get pods -A -o wide           # pods of every namespace, with more columns
  kubelab get pods -l app=web -w        # pods labelled app=web, then follow changes
  kubelab get pods,deploy               # several kinds
  kubelab get deploy/web pod/web-1      # kind/name form")]
pub struct Get {
    /// What to get: KIND [NAME...], KIND,KIND... or KIND/NAME... KIND may be a plural (`pods`), a singular
    /// (`pod`), a short name (`po`, `deploy`, `svc`, `ns`), a kind with its group (`deployments.apps`), or `all`
    /// (pods, services, deployments, replica sets...).
    #[arg(value_name = "KIND [NAME...]", required = true)]
    args: Vec<String>,

    /// List objects of every namespace; adds a NAMESPACE column.
    #[arg(short = 'A', long)]
    all_namespaces: bool,

    /// Only objects whose labels match: `app=web`, `app!=web`, `tier in (a,b)`, `app`, combined with commas.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    selector: Option<String>,

    /// Only objects whose fields match: `metadata.name=web`, `spec.nodeName=node-1`, `status.phase!=Running`.
    #[arg(long, value_name = "SELECTOR")]
    field_selector: Option<String>,

    /// Output format: `wide` (a table with more columns), `yaml`, `json`, or `name` (`kind/name` lines).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    output: Option<Output>,

    /// After listing, watch for changes and print each changed object (Ctrl-C to stop).
    #[arg(short = 'w', long)]
    watch: bool,
}

/// The `-o` formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

impl Get {
    pub async fn run(self, ctx: &Context) -> anyhow::Result<()> {
        let targets = target::parse(&self.args)?;
        let has_names = targets.iter().any(|t| !t.names.is_empty());
        if has_names && (self.selector.is_some() || self.field_selector.is_some()) {
            bail!("name cannot be provided when a selector is specified");
        }
        if self.watch && (targets.len() > 1 || targets[0].names.len() > 1) {
            bail!("you may only specify a single resource type (and at most one name) with --watch");
        }
        match self.output {
            None | Some(Output::Wide) => self.tables(ctx, &targets).await,
            Some(_) => self.objects(ctx, &targets).await,
        }
    }

    fn params(&self) -> ListParams {
        ListParams {
            label_selector: self.selector.clone(),
            field_selector: self.field_selector.clone(),
            ..Default::default()
        }
    }

    /// `None` lists across namespaces (`-A`, or a cluster-scoped kind).
    fn namespace<'a>(&self, ctx: &'a Context, target: &Target) -> Option<&'a str> {
        if self.all_namespaces { None } else { ctx.namespace_for(target.resource) }
    }

    fn table_options(&self, target: &Target, several: bool) -> Options {
        Options {
            wide: self.output == Some(Output::Wide),
            with_namespace: self.all_namespaces && target.resource.namespaced,
            name_prefix: several.then(|| print::kind_name(target.resource)),
        }
    }

    /// The default output: one table per kind.
    async fn tables(&self, ctx: &Context, targets: &[Target]) -> anyhow::Result<()> {
        let mut failed = false;
        let mut printed = false;
        let mut writer = TabWriter::table();
        let mut last = None;
        for target in targets {
            let options = self.table_options(target, targets.len() > 1);
            let (table, ok) = self.fetch_table(ctx, target).await?;
            failed |= !ok;
            let rows = table::rows(&table, &options);
            if !rows.is_empty() {
                if printed {
                    println!();
                }
                writer = TabWriter::table();
                let mut lines = vec![table::header(&table, &options)];
                lines.extend(rows);
                print!("{}", writer.format(&table::to_text(&lines)));
                printed = true;
            }
            last = Some((table, options));
        }
        let no_names = targets.iter().all(|t| t.names.is_empty());
        if !printed && no_names && !self.watch {
            match self.namespace(ctx, &targets[0]) {
                Some(ns) => eprintln!("No resources found in {ns} namespace."),
                None => eprintln!("No resources found"),
            }
        }
        if let (true, Some((table, options))) = (self.watch, last) {
            return self.follow_table(ctx, &targets[0], table, options, writer, printed).await;
        }
        if failed { Err(AlreadyReported.into()) } else { Ok(()) }
    }

    // ANCHOR: fetch_table
    /// One kind's table: the list, or the named objects' rows. Errors about single names are printed and
    /// reported as `false`, so the other names still show.
    async fn fetch_table(&self, ctx: &Context, target: &Target) -> anyhow::Result<(Value, bool)> {
        let now = chrono::Utc::now();
        let namespace = self.namespace(ctx, target);
        if target.names.is_empty() {
            let answer = ctx.client.list_table(target.resource, namespace, &self.params()).await?;
            return Ok((table::ensure_table(answer, now), true));
        }
        let namespace = ctx.namespace_for(target.resource);
        let mut merged: Option<Value> = None;
        let mut ok = true;
        for name in &target.names {
            match ctx.client.get_table(target.resource, namespace, name).await {
                Ok(answer) => {
                    let mut one = table::ensure_table(answer, now);
                    match &mut merged {
                        None => merged = Some(one),
                        Some(all) => {
                            let rows = one["rows"].as_array_mut().map(std::mem::take).unwrap_or_default();
                            if let Some(all_rows) = all["rows"].as_array_mut() {
                                all_rows.extend(rows);
                            }
                        }
                    }
                }
                Err(err) => {
                    eprintln!("{}", print::error_message(&err.into()));
                    ok = false;
                }
            }
        }
        Ok((merged.unwrap_or_else(|| json!({"rows": []})), ok))
    }
    // ANCHOR_END: fetch_table

    /// `-w` after a table: each event is a one-row table, printed under the first table's columns.
    async fn follow_table(
        &self,
        ctx: &Context,
        target: &Target,
        first: Value,
        options: Options,
        mut writer: TabWriter,
        mut header_printed: bool,
    ) -> anyhow::Result<()> {
        let resource_version = kubelab_api::object::resource_version(&first).to_string();
        let params = self.watch_params(target);
        let namespace = self.namespace(ctx, target);
        let mut events = ctx.client.watch_table(target.resource, namespace, &params, &resource_version).await?;
        let mut columns = first["columnDefinitions"].clone();
        while let Some(object) = next_change(&mut events).await? {
            let mut one = table::ensure_table(object, chrono::Utc::now());
            // Columns may come only with the first table; later events reuse them.
            match one["columnDefinitions"].as_array() {
                Some(defs) if !defs.is_empty() => columns = one["columnDefinitions"].clone(),
                _ => one["columnDefinitions"] = columns.clone(),
            }
            let mut lines = Vec::new();
            if !header_printed {
                lines.push(table::header(&one, &options));
                header_printed = true;
            }
            lines.extend(table::rows(&one, &options));
            print!("{}", writer.format(&table::to_text(&lines)));
            std::io::stdout().flush()?;
        }
        Ok(())
    }

    /// `-o yaml|json|name`: the objects themselves.
    async fn objects(&self, ctx: &Context, targets: &[Target]) -> anyhow::Result<()> {
        let mut items = Vec::new();
        let mut failed = false;
        let mut resource_version = String::new();
        for target in targets {
            if target.names.is_empty() {
                let list = ctx.client.list(target.resource, self.namespace(ctx, target), &self.params()).await?;
                items.extend(list.items);
                resource_version = list.resource_version;
                continue;
            }
            for name in &target.names {
                match ctx.client.get(target.resource, ctx.namespace_for(target.resource), name).await {
                    Ok(object) => items.push(object),
                    Err(err) => {
                        eprintln!("{}", print::error_message(&err.into()));
                        failed = true;
                    }
                }
            }
        }
        let single = targets.len() == 1 && targets[0].names.len() == 1;
        match (self.output, single, items.as_slice()) {
            (Some(Output::Name), _, _) => items.iter().try_for_each(|o| self.print_object(o))?,
            (_, true, [object]) => self.print_object(object)?,
            (_, true, []) => {}
            _ => self.print_object(&json!({"apiVersion": "v1", "kind": "List",
                "metadata": {"resourceVersion": ""}, "items": items}))?,
        }
        if self.watch {
            let target = &targets[0];
            let rv = match items.first() {
                Some(object) if single => kubelab_api::object::resource_version(object).to_string(),
                _ => resource_version,
            };
            let params = self.watch_params(target);
            let mut events = ctx.client.watch(target.resource, self.namespace(ctx, target), &params, &rv).await?;
            while let Some(object) = next_change(&mut events).await? {
                if self.output == Some(Output::Yaml) {
                    println!("---");
                }
                self.print_object(&object)?;
            }
        }
        if failed { Err(AlreadyReported.into()) } else { Ok(()) }
    }

    /// Prints one object (or a `List`) in the `-o` format.
    fn print_object(&self, object: &Value) -> anyhow::Result<()> {
        match self.output {
            Some(Output::Yaml) => print!("{}", print::to_yaml(object)?),
            Some(Output::Name) => {
                let resource = kubelab_api::resources::by_kind(
                    object["apiVersion"].as_str().unwrap_or_default(),
                    object["kind"].as_str().unwrap_or_default(),
                );
                let kind = resource.map(print::kind_name).unwrap_or_default();
                println!("{kind}/{}", kubelab_api::object::name(object));
            }
            _ => println!("{}", to_json(object)?),
        }
        std::io::stdout().flush()?;
        Ok(())
    }

    /// The watch of `get -w`: a single name becomes a field selector, as kubectl does.
    fn watch_params(&self, target: &Target) -> ListParams {
        match target.names.as_slice() {
            [name] => ListParams::default().fields(format!("metadata.name={name}")),
            _ => self.params(),
        }
    }
}

/// The next changed object of a watch; `None` when the server ends the watch. Bookmarks are skipped; an
/// `ERROR` event (such as `410 Expired`) ends the command with its message.
async fn next_change(events: &mut WatchStream) -> anyhow::Result<Option<Value>> {
    while let Some(event) = events.next().await {
        let event = event?;
        match event.type_ {
            WatchEventType::Bookmark => continue,
            WatchEventType::Error => {
                return Err(event.error().map(anyhow::Error::from).unwrap_or_else(|| anyhow::anyhow!("watch failed")));
            }
            _ => return Ok(Some(event.object)),
        }
    }
    Ok(None)
}

/// JSON as kubectl prints it: indented by four spaces.
fn to_json(value: &Value) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer)?;
    Ok(String::from_utf8(out)?)
}
