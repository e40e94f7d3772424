"""Two voxd behind Debian's nginx (deploy/nginx/vox-grpc.conf on loopback): calls spread over
both, and draining one with SIGTERM in the middle of a voxbench run loses no admitted call while
the other takes the load.

"No admitted call is lost" means, precisely, with request ids (voxbench sends x-request-id
voxbench-N; voxd's access log and nginx's vox_grpc log both carry it):
  1. the drained voxd exits 0, and every call it admitted finished OK: its access log holds only
     OK calls and drain refusals (UNAVAILABLE "the server is shutting down; retry on another
     server"); nothing was cut at the grace deadline (CANCELLED) or failed;
  2. every call that failed at the client (nginx's log and voxbench agree on how many) was never
     admitted by any voxd: it is a drain refusal, or a call that reached the drained voxd in the
     instant its port closed, which gRPC itself ends with CANCELLED before voxd sees it (its
     request id is in no voxd's access log). Both are safe to send again;
  3. the run went on after the drain, and the other voxd served calls after the signal.
Taking the replica out of nginx first (mark it `down`, reload, then SIGTERM) loses nothing at all:
test_planned_drain_has_no_client_error.
"""
import json
import os
import subprocess
import tempfile
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

    def start_bench(self, total):
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        self.addCleanup(os.unlink, out)
        bench = subprocess.Popen(
            [deploylib.VOXBENCH, "--server", self.nginx.address, *TRANSLATE, "--total", str(total),
             "--concurrency", "8", "--format", "json", "--out", out, "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: bench.poll() is None and (bench.kill(), bench.wait()))
        # Mid-run: A has served some calls, and the run is far from its end.
        deploylib.wait_for(lambda: served_ok(self.a) >= 30 or bench.poll() is not None,
                           "voxd A serving calls through nginx")
        self.assertIsNone(bench.poll(), "voxbench ended before the drain")
        return bench, out

    def finish_bench(self, bench, out, total):
        _, err = bench.communicate(timeout=600)
        self.assertIn(bench.returncode, (0, 1), err)
        with open(out) as f:
            report = json.load(f)
        self.assertEqual(report["count"], total)
        return report

    def drain_a(self):
        b_at_signal = served_ok(self.b)
        self.a.terminate()
        self.assertEqual(self.a.wait(), 0, self.a.stderr()[-4000:])
        self.assertIn("voxd: SIGTERM received; draining", self.a.stderr())
        # 1. Everything A admitted finished OK; everything else it answered was a drain refusal.
        a_log = self.a.access_log()
        self.assertTrue(a_log)
        bad = [c for c in a_log if c[0] != "OK" and not (c[0] == "UNAVAILABLE" and c[1] == REFUSAL)]
        self.assertEqual(bad, [], "voxd A ended admitted calls badly")
        return b_at_signal, a_log

    def test_calls_spread_over_both_replicas(self):
        report, proc = deploylib.run_voxbench(self.nginx.address, *TRANSLATE, "--total", "60",
                                              "--concurrency", "4")
        self.assertEqual(deploylib.status_counts(report), {"OK": 60},
                         proc.stderr + self.nginx.error_log())
        a, b = served_ok(self.a), served_ok(self.b)
        self.assertEqual(a + b, 60)
        self.assertGreater(a, 0)
        self.assertGreater(b, 0)
        self.assertEqual({upstream for upstream, _, _ in self.nginx.calls()},
                         {self.a.address, self.b.address})

    def test_drain_one_replica_mid_run_loses_no_admitted_call(self):
        total = 1200
        bench, out = self.start_bench(total)
        b_at_signal, a_log = self.drain_a()
        report = self.finish_bench(bench, out, total)

        # 2. Every call that failed at the client was admitted by no voxd. The failed calls are
        # those nginx logged with a gRPC status other than 0, and those nginx never logged (the
        # client's stream ended before nginx had an upstream for it); every OK call is logged.
        codes = deploylib.status_counts(report)
        self.assertEqual(set(codes) - {"OK", "Unavailable", "Canceled"}, set(),
                         report["errorDistribution"])
        failed_at_client = total - codes.get("OK", 0)
        deploylib.wait_for(lambda: sum(1 for c in self.nginx.calls() if c[1] == "0")
                           >= codes.get("OK", 0), "every OK call in nginx's log")
        calls = self.nginx.calls()
        logged = {rid: (upstream, status) for upstream, status, rid in calls}
        failed = {rid: v for rid, v in logged.items() if v[1] != "0"}
        failed.update({f"voxbench-{i}": ("-", "-") for i in range(total)
                       if f"voxbench-{i}" not in logged})
        self.assertEqual(len(failed), failed_at_client,
                         f"{report['errorDistribution']} {failed}")
        admitted = {rid for status, _, rid in a_log + self.b.access_log() if status != "UNAVAILABLE"}
        refused = {rid for status, _, rid in a_log if status == "UNAVAILABLE"}
        for rid, (upstream, status) in failed.items():
            self.assertNotIn(rid, admitted, f"{rid} was admitted and failed ({status})")
            if status == "14":  # UNAVAILABLE from a voxd: A's drain refusal
                self.assertIn(rid, refused)
                self.assertEqual(upstream, self.a.address)

        # 3. The load moved: B served calls after the signal; every OK the client saw was
        # served by A or B.
        b_end = served_ok(self.b)
        self.assertGreater(b_end, b_at_signal)
        a_served = sum(1 for status, _, _ in a_log if status == "OK")
        self.assertEqual(a_served + b_end, codes.get("OK", 0))
        self.assertGreater(codes.get("OK", 0), a_served)
        self.assertIsNone(self.b.proc.poll())

    def test_planned_drain_has_no_client_error(self):
        total = 1200
        bench, out = self.start_bench(total)
        self.nginx.reload(backends_down=[self.a.address])
        b_at_signal, a_log = self.drain_a()
        report = self.finish_bench(bench, out, total)
        self.assertEqual(deploylib.status_counts(report), {"OK": total},
                         report["errorDistribution"])
        self.assertEqual([c for c in a_log if c[0] != "OK"], [])
        self.assertGreater(served_ok(self.b), b_at_signal)
        self.assertEqual(sum(1 for c in a_log if c[0] == "OK") + served_ok(self.b), total)


class RoundRobinTest(unittest.TestCase):
    """gRPC client-side round_robin over a list of addresses (voxbench --lb round_robin with an
    ipv4: target), no proxy in between."""

    def test_round_robin_reaches_every_address(self):
        a = deploylib.Voxd("rr-a")
        self.addCleanup(a.close)
        b = deploylib.Voxd("rr-b")
        self.addCleanup(b.close)
        target = f"ipv4:{a.address},{b.address}"
        # round_robin sends as soon as one address is READY, so the first calls may all go to
        # one voxd while the other connects: enough calls (about a second) that the rotation
        # shows once both are connected.
        report, proc = deploylib.run_voxbench(target, *TRANSLATE, "--total", "400",
                                              "--concurrency", "2", "--lb", "round_robin")
        self.assertEqual(deploylib.status_counts(report), {"OK": 400}, proc.stderr)
        self.assertGreater(served_ok(a), 0)
        self.assertGreater(served_ok(b), 0)
        self.assertEqual(served_ok(a) + served_ok(b), 400)

        # pick_first over the same list sends everything to one address: the flag matters.
        before = (served_ok(a), served_ok(b))
        report, proc = deploylib.run_voxbench(target, *TRANSLATE, "--total", "20",
                                              "--concurrency", "2", "--lb", "pick_first")
        self.assertEqual(deploylib.status_counts(report), {"OK": 20}, proc.stderr)
        deltas = sorted([served_ok(a) - before[0], served_ok(b) - before[1]])
        self.assertEqual(deltas, [0, 20])

if __name__ == "__main__":
    unittest.main()
