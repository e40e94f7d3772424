"""Every alert in deploy/prometheus/vox-rules.yml has a promtool case where it fires and one
where it stays quiet (vox-rules.test.yml); promtool itself checks neither."""
import os
import unittest

import yaml

SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(SOURCE, "deploy", "prometheus", "vox-rules.yml")
TESTS = os.path.join(SOURCE, "deploy", "prometheus", "vox-rules.test.yml")


def alert_names(rules_doc):
    return {r["alert"] for g in rules_doc["groups"] for r in g["rules"] if "alert" in r}


def cases(tests_doc):
    firing, quiet = set(), set()
    for test in tests_doc["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    return firing, quiet


class RulesCoverageTest(unittest.TestCase):
    def test_every_alert_fires_and_stays_quiet_in_some_case(self):
        with open(RULES) as f:
            alerts = alert_names(yaml.safe_load(f))
        with open(TESTS) as f:
            firing, quiet = cases(yaml.safe_load(f))
        self.assertGreater(len(alerts), 5)
        self.assertEqual(sorted(alerts - firing), [], "alerts without a firing case")
        self.assertEqual(sorted(alerts - quiet), [], "alerts without a quiet case")
        self.assertEqual(sorted((firing | quiet) - alerts), [], "cases naming no alert")

    def test_every_alert_has_severity_and_summary(self):
        with open(RULES) as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    self.assertIn(rule["labels"].get("severity"), {"critical", "warning", "info"},
                                  rule["alert"])
                    self.assertTrue(rule["annotations"].get("summary"), rule["alert"])


if __name__ == "__main__":
    unittest.main()
