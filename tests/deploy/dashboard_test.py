"""deploy/grafana/vox-dashboard.json: every PromQL expression (panels and template variables)
parses (promtool check rules) and names only metrics a real voxd exports, checked against the
scrape of a voxd on loopback serving the tiny NLLB and XTTS models (made by the build) after
Translate, Synthesize and SpeechTranslate calls. A metric family appears in the scrape once it has
a series, so the calls exercise every panel's metric."""
import json
import os
import re
import subprocess
import tempfile
import unittest

import yaml

import deploylib

DASHBOARD = os.path.join(deploylib.SOURCE_DIR, "deploy", "grafana", "vox-dashboard.json")

# PromQL words that are not metric names: operators, modifiers, functions are followed by "(".
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "le"}


def dashboard_exprs(dashboard):
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", q)
            exprs.append(m.group(1) if m else q)
    return exprs


def as_promql(expr):
    """Grafana's variables replaced by values Prometheus accepts."""
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
            .replace("$job", ".*").replace("$instance", ".*"))


def metric_names(expr):
    """The metric names an expression selects (a small PromQL tokenizer: strings, label matchers,
    ranges and grouping clauses removed; identifiers not called as functions)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        word = m.group(0)
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue
        if re.match(r"\d", e[m.start() - 1:m.start()] or " "):
            continue  # the "e" of 1e3
        names.add(word)
    return names


class MetricNamesTest(unittest.TestCase):
    """The tokenizer itself: what it must find and must not."""

    def test_names(self):
        self.assertEqual(
            metric_names('histogram_quantile(0.99, sum by (le, method) (rate(x_bucket{a="b{c}"}[5m])))'
                         ' / on (job) group_left (name) y and z offset 5m'),
            {"x_bucket", "y", "z"})


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dashboard = json.load(f)
        cls.exprs = dashboard_exprs(cls.dashboard)

    def test_expressions_parse(self):
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:expr{i}", "expr": as_promql(e)} for i, e in enumerate(self.exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(rules, f)
        self.addCleanup(os.unlink, f.name)
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_metric_is_in_a_real_scrape(self):
        models = os.path.join(os.environ.get("VOX_TINY_DIR", os.path.join(deploylib.BINARY_DIR,
                                                                           "tiny")), "models")
        self.assertTrue(os.path.isdir(os.path.join(models, "nllb-tiny")),
                        f"{models}: no tiny models (build the tiny_models target)")
        voxd = deploylib.Voxd("dashboard", models_dir=models)
        self.addCleanup(voxd.close)
        for call in (["--call", "translate", "--from", "eng_Latn", "--to", "spa_Latn"],
                     ["--call", "synthesize", "--from", "eng_Latn", "--text", "Hello there."],
                     ["--call", "speech-translate", "--from", "eng_Latn", "--to", "spa_Latn",
                      "--text", "Hello.", "--text", "Good morning."]):
            report, proc = deploylib.run_voxbench(voxd.address, *call, "--total", "4",
                                                  "--concurrency", "2")
            self.assertEqual(deploylib.status_counts(report), {"OK": 4}, proc.stderr)
        exported = deploylib.exported_names(voxd.scrape())
        used = set()
        for expr in self.exprs:
            names = metric_names(expr)
            self.assertTrue(names, f"no metric found in {expr!r}")
            missing = names - exported
            self.assertEqual(missing, set(), f"{expr!r} names metrics voxd does not export")
            used |= names
        # The dashboard covers the four golden signals' metrics at least.
        for name in ("vox_requests_total", "vox_request_duration_seconds_bucket",
                     "vox_queue_depth", "vox_queue_wait_seconds_bucket", "vox_rejections_total"):
            self.assertIn(name, used)
        # And the check can fail: a name voxd does not export is caught.
        self.assertNotIn("vox_no_such_metric_total", exported)


if __name__ == "__main__":
    unittest.main()
