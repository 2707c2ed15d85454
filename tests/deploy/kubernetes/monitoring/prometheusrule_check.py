#!/usr/bin/env python3
"""Checks leadflow's PrometheusRule against its conventions and writes its rules for promtool.

usage: prometheusrule_check.py PROMETHEUSRULE_YAML TEST_YAML OPERATIONS_MD OUT_RULES_YAML

Writes the manifest's .spec (a Prometheus rule file: `groups:`) to OUT_RULES_YAML, then checks:
  - every alert has a severity label (critical or warning) and summary, description and
    runbook_url annotations; runbook_url is docs/OPERATIONS.md#<alert name in lower case>, and
    OPERATIONS.md's "## Alerts" section has exactly one such anchor per alert, and no other;
  - every leadflow_* metric a rule reads is listed in OPERATIONS.md (its "Metrics" tables are
    the list of what the services export);
  - TEST_YAML has, for every alert, an evaluation where it fires and one where it does not.
Prints every problem found and exits 1 if there is any.
"""

import re
import sys

import yaml

SEVERITIES = {"critical", "warning"}
ANNOTATIONS = ("summary", "description", "runbook_url")


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    manifest_path, test_path, operations_path, out_path = argv[1:]
    with open(manifest_path) as f:
        manifest = yaml.safe_load(f)
    with open(test_path) as f:
        tests = yaml.safe_load(f)
    with open(operations_path) as f:
        operations = f.read()

    problems = []
    if manifest.get("apiVersion") != "monitoring.coreos.com/v1" or manifest.get("kind") != "PrometheusRule":
        problems.append(f"{manifest_path}: not a monitoring.coreos.com/v1 PrometheusRule")
    spec = manifest.get("spec") or {}
    with open(out_path, "w") as f:
        yaml.safe_dump(spec, f, sort_keys=False)

    rules = [r for g in spec.get("groups", []) for r in g.get("rules", [])]
    alerts = [r for r in rules if "alert" in r]
    if not alerts:
        problems.append(f"{manifest_path}: no alerting rules")

    # The "## Alerts" section of OPERATIONS.md: up to the next level-2 heading.
    section = re.search(r"^## Alerts\n(.*?)(?=^## |\Z)", operations, re.S | re.M)
    doc_anchors = re.findall(r'<a id="([^"]+)"></a>', section.group(1)) if section else []
    if not section:
        problems.append(f'{operations_path}: no "## Alerts" section')

    names = set()
    for a in alerts:
        name = a["alert"]
        if name in names:
            problems.append(f"{name}: defined twice")
        names.add(name)
        severity = (a.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{name}: severity {severity!r}, want one of {sorted(SEVERITIES)}")
        annotations = a.get("annotations") or {}
        for key in ANNOTATIONS:
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key} annotation")
        anchor = name.lower()
        if annotations.get("runbook_url") != f"docs/OPERATIONS.md#{anchor}":
            problems.append(f"{name}: runbook_url {annotations.get('runbook_url')!r}, "
                            f"want docs/OPERATIONS.md#{anchor}")
        if doc_anchors.count(anchor) != 1:
            problems.append(f'{name}: {operations_path} "## Alerts" has {doc_anchors.count(anchor)} '
                            f'<a id="{anchor}"></a>, want 1')
    for anchor in sorted(set(doc_anchors) - {n.lower() for n in names}):
        problems.append(f'{operations_path}: "## Alerts" documents {anchor}, which is no alert')

    # Metric names: strip the histogram series suffixes; recording rules' names have colons.
    for r in rules:
        for metric in sorted(set(re.findall(r"\bleadflow_[a-z0-9_]+", r["expr"]))):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            if f"`{base}`" not in operations:
                problems.append(f"{r.get('alert') or r.get('record')}: reads {metric}, "
                                f"which {operations_path} does not list")

    firing, quiet = set(), set()
    for t in tests.get("tests", []):
        for case in t.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    for name in sorted(names):
        if name not in firing:
            problems.append(f"{name}: {test_path} has no case where it fires")
        if name not in quiet:
            problems.append(f"{name}: {test_path} has no case where it stays quiet")
    for name in sorted((firing | quiet) - names):
        problems.append(f"{test_path}: tests {name}, which is no alert")

    for p in problems:
        print(f"prometheusrule_check: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"prometheusrule_check: {len(alerts)} alerts, {len(rules) - len(alerts)} recording "
          f"rules: conventions hold; rules written to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
