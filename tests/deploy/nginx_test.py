"""Two voxd behind Debian's nginx (deploy/nginx/vox-grpc.conf on loopback): calls spread over
both, and draining one with SIGTERM in the middle of a voxbench run loses no admitted call while
the other takes the load.

"No admitted call is lost" means, precisely:
  1. the drained voxd exits 0 and its access log holds only OK calls and drain refusals
     (UNAVAILABLE "the server is shutting down; retry on another server"): every call it admitted
     finished OK, none was cut at the grace deadline (CANCELLED) or failed;
  2. every call voxbench saw fail (after its --retries 4 retries of UNAVAILABLE) ended with that
     drain refusal: a call no voxd admitted, which the client may send again. No other status
     (CANCELLED, INTERNAL, UNAVAILABLE from a broken connection, ...) is allowed;
  3. the run went on after the drain and the other voxd served calls after the signal.
"""
import os
import signal
import subprocess
import tempfile
import json
import unittest

import deploylib

REFUSAL = "the server is shutting down; retry on another server"
TRANSLATE = ["--call", "translate", "--from", "eng_Latn", "--to", "spa_Latn"]


def served_ok(voxd):
    return deploylib.sum_samples(voxd.scrape(), "vox_requests_total", method="Translate", code="OK")


class NginxTest(unittest.TestCase):
    def setUp(self):
        # A grace far longer than any call: the drain ends when the admitted calls are done.
        self.a = deploylib.Voxd("nginx-a", ["--shutdown-grace", "60"])
        self.addCleanup(self.a.close)
        self.b = deploylib.Voxd("nginx-b", ["--shutdown-grace", "60"])
        self.addCleanup(self.b.close)
        self.nginx = deploylib.Nginx([self.a.address, self.b.address])
        self.addCleanup(self.nginx.close)

    def test_calls_spread_over_both_replicas(self):
        report, proc = deploylib.run_voxbench(self.nginx.address, *TRANSLATE, "--total", "60",
                                              "--concurrency", "4")
        self.assertEqual(deploylib.status_counts(report), {"OK": 60},
                         proc.stderr + self.nginx.error_log())
        a, b = served_ok(self.a), served_ok(self.b)
        self.assertEqual(a + b, 60)
        self.assertGreater(a, 0)
        self.assertGreater(b, 0)

    def test_drain_one_replica_mid_run_loses_no_admitted_call(self):
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        self.addCleanup(os.unlink, out)
        total = 1200
        bench = subprocess.Popen(
            [deploylib.VOXBENCH, "--server", self.nginx.address, *TRANSLATE, "--total", str(total),
             "--concurrency", "8", "--retries", "4", "--format", "json", "--out", out,
             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: bench.poll() is None and (bench.kill(), bench.wait()))

        # Mid-run: A has served some calls, and the run is far from its end.
        deploylib.wait_for(lambda: served_ok(self.a) >= 30 or bench.poll() is not None,
                           "voxd A serving calls through nginx")
        self.assertIsNone(bench.poll(), "voxbench ended before the drain")
        b_at_signal = served_ok(self.b)
        self.a.terminate()
        self.assertEqual(self.a.wait(), 0, self.a.stderr()[-4000:])
        a_served = sum(1 for status, _ in self.a.access_log() if status == "OK")

        _, err = bench.communicate(timeout=600)
        self.assertIn(bench.returncode, (0, 1), err)
        with open(out) as f:
            report = json.load(f)

        # 1. Everything A admitted finished OK; everything else it answered was a drain refusal.
        a_log = self.a.access_log()
        self.assertTrue(a_log)
        bad = [(s, m) for s, m in a_log if s != "OK" and not (s == "UNAVAILABLE" and m == REFUSAL)]
        self.assertEqual(bad, [], "voxd A ended admitted calls badly")
        self.assertIn("voxd: SIGTERM received; draining", self.a.stderr())

        # 2. Every call the client saw fail was a clean refusal (never admitted anywhere).
        codes = deploylib.status_counts(report)
        self.assertEqual(report["count"], total)
        self.assertEqual(set(codes) - {"OK", "UNAVAILABLE"}, set(), report["errorDistribution"])
        for message, count in report["errorDistribution"].items():
            self.assertIn(REFUSAL, message, f"{count} calls failed otherwise than refused")
        refused_by_a = sum(1 for s, m in a_log if s == "UNAVAILABLE")
        self.assertLessEqual(codes.get("UNAVAILABLE", 0), refused_by_a)

        # 3. The load moved: B served calls after the signal, and every OK the client saw was
        # served by A or B.
        b_end = served_ok(self.b)
        self.assertGreater(b_end, b_at_signal)
        self.assertGreaterEqual(a_served + b_end, codes.get("OK", 0))
        self.assertGreater(codes.get("OK", 0), a_served)
        self.assertIsNone(self.b.proc.poll())


class RoundRobinTest(unittest.TestCase):
    """gRPC client-side round_robin over a list of addresses (voxbench --lb round_robin with an
    ipv4: target), no proxy in between."""

    def test_round_robin_reaches_every_address(self):
        a = deploylib.Voxd("rr-a")
        self.addCleanup(a.close)
        b = deploylib.Voxd("rr-b")
        self.addCleanup(b.close)
        target = f"ipv4:{a.address},{b.address}"
        report, proc = deploylib.run_voxbench(target, *TRANSLATE, "--total", "40",
                                              "--concurrency", "2", "--lb", "round_robin")
        self.assertEqual(deploylib.status_counts(report), {"OK": 40}, proc.stderr)
        self.assertGreater(served_ok(a), 0)
        self.assertGreater(served_ok(b), 0)
        self.assertEqual(served_ok(a) + served_ok(b), 40)

        # pick_first over the same list sends everything to one address: the flag matters.
        before = (served_ok(a), served_ok(b))
        report, proc = deploylib.run_voxbench(target, *TRANSLATE, "--total", "20",
                                              "--concurrency", "2", "--lb", "pick_first")
        self.assertEqual(deploylib.status_counts(report), {"OK": 20}, proc.stderr)
        deltas = sorted([served_ok(a) - before[0], served_ok(b) - before[1]])
        self.assertEqual(deltas, [0, 20])

if __name__ == "__main__":
    unittest.main()
