"""deploy/k8s/: every manifest validates against the Kubernetes JSON schemas shipped by
kubernetes-validate (offline, strict: unknown fields are errors), and the manifests agree with
each other and with voxd: probes are gRPC on the gRPC port, the grace period covers preStop plus
voxd's drain, the HPA's metric is one the adapter rule makes from a metric voxd exports, the
Service is headless, the PodDisruptionBudget and the HPA select the Deployment."""
import glob
import os
import re
import subprocess
import tempfile
import tomllib
import unittest

import yaml

SOURCE = os.environ.get("VOX_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(SOURCE, "deploy", "k8s")
VALIDATOR = os.path.join(os.environ.get("VOX_DEPLOY_ENV", os.path.join(SOURCE, ".venv-deploy")),
                         "bin", "kubernetes-validate")
KUBERNETES_VERSION = "1.30"  # the oldest release these manifests support


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return yaml.safe_load(f)


def exported_metric_families():
    """Metric names voxd registers (server/metrics/metrics.cc)."""
    with open(os.path.join(SOURCE, "server", "metrics", "metrics.cc")) as f:
        return set(re.findall(r'\.Name\("([a-z_:]+)"\)', f.read()))


class KubernetesManifestsTest(unittest.TestCase):
    def test_schemas(self):
        files = sorted(glob.glob(os.path.join(K8S, "*.yaml")))
        self.assertGreaterEqual(len(files), 6)
        self.assertTrue(os.access(VALIDATOR, os.X_OK),
                        f"{VALIDATOR} missing: run scripts/install-deps")
        for version in (KUBERNETES_VERSION, "1.37"):
            r = subprocess.run([VALIDATOR, "--strict", "-k", version, *files],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout.count("passed"), len(files), r.stdout)

    def test_validator_rejects_a_wrong_manifest(self):
        # The check can fail: an unknown field and a wrong type are each caught.
        def typo(d):
            d["spec"]["replica"] = 2

        def wrong_type(d):
            d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpc"]["port"] = "x"

        for name, damage, expected in (("typo", typo, "'replica' was unexpected"),
                                       ("type", wrong_type, "is not of type 'integer'")):
            bad = load("deployment.yaml")
            damage(bad)
            with tempfile.NamedTemporaryFile("w", prefix=f"vox-bad-{name}-", suffix=".yaml",
                                             delete=False) as f:
                yaml.safe_dump(bad, f)
            path = f.name
            self.addCleanup(os.unlink, path)
            r = subprocess.run([VALIDATOR, "--strict", path], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn(expected, r.stdout + r.stderr)

    def test_manifests_agree(self):
        deployment = load("deployment.yaml")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        config = tomllib.loads(load("configmap.yaml")["data"]["voxd.toml"])
        self.assertEqual(int(config["server"]["listen"].rsplit(":", 1)[1]), ports["grpc"])
        self.assertEqual(int(config["metrics"]["listen"].rsplit(":", 1)[1]), ports["metrics"])
        self.assertEqual(config["models"]["dir"],
                         next(m["mountPath"] for m in container["volumeMounts"]
                              if m["name"] == "models"))
        self.assertTrue(all(m.get("readOnly") for m in container["volumeMounts"]
                            if m["name"] in ("models", "config")))

        # gRPC health probes on the gRPC port.
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(container[probe]["grpc"]["port"], ports["grpc"], probe)

        # preStop + drain fit in the grace period, with a margin.
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(command[0], "/bin/sleep")
        pre_stop = int(command[1])
        drain = config["server"]["shutdown_grace_seconds"]
        self.assertGreaterEqual(pod["terminationGracePeriodSeconds"], pre_stop + drain + 1)

        # Non-root, resources set.
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
        self.assertIn("memory", container["resources"]["requests"])
        self.assertIn("memory", container["resources"]["limits"])

        labels = deployment["spec"]["selector"]["matchLabels"]
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        self.assertEqual({k: template_labels.get(k) for k in labels}, labels)

        service = load("service.yaml")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        self.assertEqual(service["spec"]["selector"], labels)
        self.assertEqual(load("pdb.yaml")["spec"]["selector"]["matchLabels"], labels)

        hpa = load("hpa.yaml")
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], deployment["metadata"]["name"])
        hpa_metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
        adapter = yaml.safe_load(load("prometheus-adapter.yaml")["data"]["config.yaml"])
        rule = next(r for r in adapter["rules"] if r["name"]["as"] == hpa_metric)
        series = re.match(r"([a-z_:]+)", rule["seriesQuery"]).group(1)
        self.assertIn(series, exported_metric_families())


if __name__ == "__main__":
    unittest.main()
