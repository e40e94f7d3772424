"""A real Prometheus (Debian's package) scrapes a real voxd on loopback with
deploy/prometheus/vox-rules.yml loaded, voxbench sends Translate calls, and Prometheus's HTTP API
answers a histogram_quantile query over vox_request_duration_seconds (and the recording rule of
the same quantile). Everything runs in temp dirs on free ports; both processes are stopped at the
end, also on failure."""
import json
import math
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse
import urllib.request

import yaml

import deploylib

RULES = os.path.join(deploylib.SOURCE_DIR, "deploy", "prometheus", "vox-rules.yml")
QUERY = ('histogram_quantile(0.5, sum by (le) (rate('
         'vox_request_duration_seconds_bucket{job="voxd", method="Translate", code="OK"}[1m])))')


class Prometheus:
    def __init__(self, targets):
        self.tmp = tempfile.TemporaryDirectory(prefix="vox-prometheus-")
        shutil.copy(RULES, os.path.join(self.tmp.name, "vox-rules.yml"))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["vox-rules.yml"],
            "scrape_configs": [{"job_name": "voxd", "static_configs": [{"targets": targets}]}],
        }
        # The recording group evaluates every 30 s in production; 1 s here.
        rules = yaml.safe_load(open(RULES))
        for group in rules["groups"]:
            group["interval"] = "1s"
        with open(os.path.join(self.tmp.name, "vox-rules.yml"), "w") as f:
            yaml.safe_dump(rules, f)
        config_path = os.path.join(self.tmp.name, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        self.log = open(os.path.join(self.tmp.name, "prometheus.log"), "w+")
        # The free port may be taken by another process before Prometheus binds it: try another.
        for attempt in range(3):
            self.port = deploylib.free_port()
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={config_path}",
                 f"--storage.tsdb.path={os.path.join(self.tmp.name, 'data')}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=self.log, stderr=subprocess.STDOUT)
            self.url = f"http://127.0.0.1:{self.port}"
            try:
                deploylib.wait_for(self._ready, "Prometheus ready")
                return
            except AssertionError:
                if "address already in use" not in self.output() or attempt == 2:
                    raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.output()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def query(self, expr):
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
        if body["status"] != "success":
            raise AssertionError(f"query {expr!r}: {body}")
        return body["data"]["result"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()


def finite_values(result):
    return [float(r["value"][1]) for r in result if math.isfinite(float(r["value"][1]))]


class PrometheusScrapeTest(unittest.TestCase):
    def test_histogram_quantile_over_a_real_scrape(self):
        voxd = deploylib.Voxd("prometheus")
        self.addCleanup(voxd.close)
        prom = Prometheus([f"127.0.0.1:{voxd.metrics_port}"])
        self.addCleanup(prom.close)

        deploylib.wait_for(lambda: prom.query('up{job="voxd"} == 1'), "voxd scraped and up")
        # Scraped before any call: the rate() below needs a sample without these calls.
        deploylib.wait_for(lambda: prom.query("vox_model_info"), "vox_model_info scraped")
        # Two runs with a scrape between them: the histogram's series appear with the first
        # calls, so rate() needs a later scrape that saw them grow.
        slowest_s = 0
        for calls, served in ((20, 20), (200, 220)):
            report, proc = deploylib.run_voxbench(voxd.address, "--call", "translate", "--total",
                                                  str(calls), "--concurrency", "4", "--from",
                                                  "eng_Latn", "--to", "spa_Latn")
            self.assertEqual(deploylib.status_counts(report), {"OK": calls}, proc.stderr)
            slowest_s = max(slowest_s, report["slowest"] / 1e9)
            self.assertEqual(deploylib.sum_samples(voxd.scrape(), "vox_requests_total",
                                                   method="Translate", code="OK"), served)
            # Prometheus has the calls once a scrape after them landed.
            deploylib.wait_for(
                lambda: prom.query(f'sum(vox_requests_total{{method="Translate", code="OK"}}) == {served}'),
                f"{served} calls in Prometheus", timeout_s=120)
        result = deploylib.wait_for(lambda: finite_values(prom.query(QUERY)),
                                    "a finite histogram_quantile", timeout_s=120)
        p50 = result[0]
        # The server-side median lies inside the histogram's range and under the slowest call
        # the client saw, rounded up to the bucket that holds it.
        self.assertGreater(p50, 0)
        buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10, 30]
        bound = next(b for b in buckets if b >= slowest_s)
        self.assertLessEqual(p50, bound)

        # The recording rule of the same family answers too (the rules file loaded and evaluated).
        recorded = deploylib.wait_for(
            lambda: finite_values(prom.query(
                'vox:request_duration_seconds:p50_rate5m{job="voxd", method="Translate"}')),
            "the recording rule's value", timeout_s=120)
        self.assertGreater(recorded[0], 0)
        rules = json.load(urllib.request.urlopen(prom.url + "/api/v1/rules", timeout=30))
        alerts = [r for g in rules["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
        self.assertTrue(alerts)
        self.assertEqual([r["name"] for g in rules["data"]["groups"] for r in g["rules"]
                          if r["health"] == "err"], [], rules)
        self.assertEqual(voxd.proc.poll(), None, voxd.stderr())


if __name__ == "__main__":
    unittest.main()
