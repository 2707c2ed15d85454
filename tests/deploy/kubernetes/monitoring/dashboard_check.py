#!/usr/bin/env python3
"""Checks leadflow's Grafana dashboard and writes its queries as recording rules for promtool.

usage: dashboard_check.py DASHBOARD_JSON KUSTOMIZATION_YAML OPERATIONS_MD SOURCE_ROOT OUT_RULES_YAML

Checks:
  - the JSON parses, has a uid, a title and a schemaVersion, and template variables `datasource`
    (type datasource, prometheus), `namespace` and `service` (queries on that data source);
  - every panel has a unique id, a title and a gridPos inside the 24 columns; every panel but
    the rows, and every target, uses the data source `${datasource}`; every target has an expr
    and a refId unique in its panel;
  - every `$variable` an expr uses is a template variable or one of Grafana's ($__rate_interval,
    $__interval, $__range, ...);
  - every metric an expr (or a variable's label_values()) reads is `up` or listed in
    OPERATIONS.md's "## Metrics" section (histograms by their name, without _bucket/_sum/_count);
  - every label an expr matches or groups on, or a legend shows, is a target label Prometheus
    adds (namespace, job, pod, ...) or one the code gives a metric: a `{"name", value}` pair in
    a source file under SOURCE_ROOT/{common,services} that builds prometheus-cpp metrics;
  - KUSTOMIZATION_YAML generates a ConfigMap from the dashboard, labelled grafana_dashboard: "1".
Writes every expr, its variables replaced by valid values, to OUT_RULES_YAML as recording rules
dashboard:panel_<id>_<refId> (the variables' label_values() selectors as dashboard:variable_<name>),
for `promtool check rules` to parse. Prints every problem found and exits 1 if there is any.
"""

import json
import os
import re
import sys

import yaml

DATASOURCE_UIDS = {"${datasource}", "$datasource"}
# What Grafana substitutes itself, with values of the kind it would put there.
GRAFANA_VARIABLES = {
    "__rate_interval": "2m",
    "__interval": "30s",
    "__interval_ms": "30000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
}
# Target labels: job (the PodMonitor's jobLabel), namespace, pod, container, endpoint (the
# Prometheus Operator), instance (Prometheus); le: histogram buckets.
TARGET_LABELS = {"namespace", "job", "pod", "container", "endpoint", "instance", "le"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan"}
# $name, ${name} or ${name:format}, [[name]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr, values, unknown):
    """expr with every variable replaced by its value; the names of unknown ones go to unknown."""
    def value(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            unknown.add(name)
            return m.group(0)
        return values[name]
    return VARIABLE.sub(value, expr)


def metrics_and_labels(expr):
    """The metric names and label names a PromQL expression refers to (a tokenizer, not a parser:
    enough for the expressions of a dashboard)."""
    labels = set()
    # String literals hold label values (and regexes), never names.
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    for selector in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", selector))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)",
                               text):
        labels.update(re.findall(r"[A-Za-z_]\w*", grouping))
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    metrics = set()
    # Numbers and durations first, so 1e3 or 10m yield no name; a name before "(" is a function.
    for m in re.finditer(r"\d[\w.]*|([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if name and not call and name.lower() not in PROMQL_KEYWORDS:
            metrics.add(name)
    return metrics, labels


def code_labels(source_root):
    """Label names the services give their metrics: `{"name", value}` pairs in the sources that
    build prometheus-cpp metrics (common/kafka/consumer_loop.cc, services/*/handler.cc, ...)."""
    labels = set()
    for top in ("common", "services"):
        for dirpath, _, files in os.walk(os.path.join(source_root, top)):
            for f in files:
                if not f.endswith(".cc") or f.endswith("_test.cc"):
                    continue
                with open(os.path.join(dirpath, f), encoding="utf-8") as src:
                    text = src.read()
                if "prometheus::Build" in text:
                    labels.update(re.findall(r'\{"([a-z_][a-z0-9_]*)",', text))
    return labels


def datasource_uid(ds):
    return ds.get("uid") if isinstance(ds, dict) else ds


def sample_value(var):
    """A value Grafana could give the template variable: what its query would return (a label
    value; several as a regex alternation when multi or All), or its current/first option."""
    name = var["name"]
    if var.get("type") == "query":
        return f"({name}_a|{name}_b)" if var.get("multi") or var.get("includeAll") else f"{name}_a"
    current = (var.get("current") or {}).get("value")
    if isinstance(current, list):
        current = current[0] if current else None
    if current is None and var.get("options"):
        current = var["options"][0].get("value")
    return str(current if current is not None else var.get("query", "")).split(",")[0].strip()


def check_kustomization(path, dashboard_path, problems):
    with open(path) as f:
        kustomization = yaml.safe_load(f) or {}
    base = os.path.dirname(os.path.abspath(path))
    for gen in kustomization.get("configMapGenerator") or []:
        files = [os.path.normpath(os.path.join(base, entry.split("=")[-1]))
                 for entry in gen.get("files") or []]
        if os.path.abspath(dashboard_path) in files:
            labels = (gen.get("options") or {}).get("labels") or {}
            if labels.get("grafana_dashboard") != "1":
                problems.append(f'{path}: ConfigMap {gen.get("name")} has no label '
                                f'grafana_dashboard: "1" (the Grafana sidecar would not load it)')
            return
    problems.append(f"{path}: no configMapGenerator ships {dashboard_path}")


def main(argv):
    if len(argv) != 6:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    dashboard_path, kustomization_path, operations_path, source_root, out_path = argv[1:]
    problems = []
    try:
        with open(dashboard_path) as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as e:
        print(f"dashboard_check: {dashboard_path}: {e}", file=sys.stderr)
        return 1
    with open(operations_path) as f:
        operations = f.read()
    section = re.search(r"^## Metrics\n(.*?)(?=^## |\Z)", operations, re.S | re.M)
    listed = set(re.findall(r"`(leadflow_\w+)`", section.group(1))) if section else set()
    if not section:
        problems.append(f'{operations_path}: no "## Metrics" section')
    known_labels = TARGET_LABELS | code_labels(source_root)

    for key in ("uid", "title", "schemaVersion"):
        if not dashboard.get(key):
            problems.append(f"{dashboard_path}: no {key}")

    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list", [])}
    ds_var = variables.get("datasource") or {}
    if ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problems.append(f"{dashboard_path}: no template variable datasource of type datasource, "
                        f"query prometheus")
    for name in ("namespace", "service"):
        if name not in variables:
            problems.append(f"{dashboard_path}: no template variable {name}")
    values = dict(GRAFANA_VARIABLES)
    values.update({name: sample_value(v) for name, v in variables.items()
                   if v.get("type") != "datasource"})

    rules = []  # (record, expr with values, expr as written)

    def check_expr(where, record, expr, legend=""):
        unknown = set()
        promql = substitute(expr, values, unknown)
        for name in sorted(unknown):
            problems.append(f"{where}: uses ${name}, which is no template variable")
        metrics, labels = metrics_and_labels(promql)
        labels.update(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend or ""))
        for metric in sorted(metrics):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            if metric != "up" and base not in listed:
                problems.append(f'{where}: reads {metric}, which {operations_path} "## Metrics" '
                                f"does not list")
        for label in sorted(labels - known_labels):
            problems.append(f"{where}: label {label} is no target label and no label the code "
                            f"gives a metric")
        rules.append({"record": record, "expr": promql})

    for name, var in variables.items():
        if var.get("type") != "query":
            continue
        where = f"variable {name}"
        if datasource_uid(var.get("datasource")) not in DATASOURCE_UIDS:
            problems.append(f"{where}: data source is not ${{datasource}}")
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        m = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\s*\)\s*", query, re.S)
        if not m:
            problems.append(f"{where}: query {query!r} is not label_values(<selector>, <label>)")
            continue
        check_expr(where, f"dashboard:variable_{name}", m.group(1), "{{" + m.group(2) + "}}")

    ids = set()
    panels = list(dashboard.get("panels") or [])
    for p in list(panels):  # a collapsed row holds its panels
        panels.extend(p.get("panels") or [])
    for p in panels:
        pid = p.get("id")
        where = f'panel {pid} "{p.get("title", "")}"'
        if not isinstance(pid, int):
            problems.append(f"{where}: no integer id")
        elif pid in ids:
            problems.append(f"{where}: id {pid} used twice")
        ids.add(pid)
        if not str(p.get("title", "")).strip():
            problems.append(f"{where}: no title")
        pos = p.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in "hwxy") or pos["w"] < 1 or pos["h"] < 1 \
                or pos["x"] + pos["w"] > 24:
            problems.append(f"{where}: gridPos {pos} is not inside the 24 columns")
        if p.get("type") == "row":
            continue  # rows query nothing
        if datasource_uid(p.get("datasource")) not in DATASOURCE_UIDS:
            problems.append(f"{where}: data source {p.get('datasource')!r} is not ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = set()
        for t in targets:
            ref = t.get("refId")
            if not ref or ref in ref_ids:
                problems.append(f"{where}: target refId {ref!r} missing or used twice")
            ref_ids.add(ref)
            if datasource_uid(t.get("datasource")) not in DATASOURCE_UIDS:
                problems.append(f"{where} target {ref}: data source is not ${{datasource}}")
            if not str(t.get("expr", "")).strip():
                problems.append(f"{where} target {ref}: no expr")
                continue
            check_expr(f"{where} target {ref}", f"dashboard:panel_{pid}_{ref}", t["expr"],
                       t.get("legendFormat", ""))

    check_kustomization(kustomization_path, dashboard_path, problems)

    with open(out_path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False,
                       width=1000)
    for p in problems:
        print(f"dashboard_check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"dashboard_check: {len(ids)} panels, {len(rules)} queries: conventions hold; "
          f"queries written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
