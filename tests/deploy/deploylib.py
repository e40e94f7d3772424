"""Processes for the deployment tests: a real voxd on loopback (built-in engines, or the tiny
models), voxbench runs, Prometheus text parsing, free ports and temp dirs.

Every process started here is stopped by the owner's close() (tests use addCleanup), also when
an assertion failed. Nothing here sleeps to assert: waits poll a condition with a bound that only
turns a hang into a failure.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

BINARY_DIR = os.environ.get("VOX_BINARY_DIR", "build")
SOURCE_DIR = os.environ.get("VOX_SOURCE_DIR", ".")
VOXD = os.path.join(BINARY_DIR, "server", "voxd")
VOXBENCH = os.path.join(BINARY_DIR, "bench", "voxbench")
START_TIMEOUT_S = 180  # a bound for a hang, not a speed check


def free_port():
    """A TCP port free on 127.0.0.1 now (for programs that cannot report the one they bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what, timeout_s=START_TIMEOUT_S, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


class Voxd:
    """One voxd on 127.0.0.1:0 with its metrics on 127.0.0.1:0. Built-in engines (Apertium
    eng<->spa, espeak-ng) from an empty models directory unless `models_dir` is given."""

    def __init__(self, name, extra_args=(), models_dir=None):
        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix=f"vox-{name}-")
        models = models_dir or os.path.join(self._tmp.name, "models")
        os.makedirs(models, exist_ok=True)
        argv = [VOXD, "--models", models, "--listen", "127.0.0.1:0",
                "--metrics-listen", "127.0.0.1:0", "--threads", "1", *extra_args]
        self._stderr_lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        line = self._read_stdout_line()
        prefix = "voxd listening on "
        if not line.startswith(prefix):
            self.close()
            raise AssertionError(f"{name}: voxd did not start: stdout {line!r}\n{self.stderr()}")
        self.address = line[len(prefix):].strip()
        self.port = int(self.address.rsplit(":", 1)[1])
        m = wait_for(lambda: re.search(r"metrics at http://[^:]+:(\d+)/metrics", self.stderr()),
                     f"{name}'s metrics line")
        self.metrics_port = int(m.group(1))
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def _read_stdout_line(self):
        result = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(START_TIMEOUT_S)
        return result[0] if result else ""

    def _read_stderr(self):
        for line in self.proc.stderr:
            with self._lock:
                self._stderr_lines.append(line)

    def stderr(self):
        with self._lock:
            return "".join(self._stderr_lines)

    def access_log(self):
        """(status, message, request id) of every vox.v1 call in the access log so far."""
        out = []
        for line in self.stderr().splitlines():
            m = re.match(r'voxd: rpc=(\S+) status=(\S+) .*?request_id=(\S+)(?: message="(.*)")?$',
                         line)
            if m and m.group(1).startswith("/vox.v1."):
                out.append((m.group(2), m.group(4) or "", m.group(3)))
        return out

    def scrape(self):
        return scrape(self.metrics_url)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout_s=START_TIMEOUT_S):
        rc = self.proc.wait(timeout_s)
        self._reader.join(5)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._tmp.cleanup()


def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def parse_samples(text):
    """{(name, frozenset(labels.items())): value} of a Prometheus text scrape."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples


def sum_samples(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in parse_samples(text).items() if n == name and want <= ls)


def exported_names(text):
    """Every sample name a scrape can hold: declared families (# TYPE), with _bucket/_sum/_count
    for histograms, and every sample line's name."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def run_voxbench(server, *args, timeout_s=600):
    """Runs voxbench with a JSON report; returns (report dict, completed process)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        proc = subprocess.run([VOXBENCH, "--server", server, "--format", "json", "--out", out,
                               *args], capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode not in (0, 1):
            raise AssertionError(f"voxbench exit {proc.returncode}: {proc.stderr}")
        with open(out) as f:
            return json.load(f), proc
    finally:
        os.unlink(out)


def status_counts(report):
    """{code name: count} from a voxbench (ghz) JSON report."""
    return dict(report.get("statusCodeDistribution") or {})


NGINX_CONF = os.path.join(SOURCE_DIR, "deploy", "nginx", "vox-grpc.conf")


class Nginx:
    """Debian's nginx in the foreground with a temp prefix, serving deploy/nginx/vox-grpc.conf
    with its replica addresses replaced by `backends` and its listen address by a free port."""

    def __init__(self, backends):
        self.tmp = tempfile.TemporaryDirectory(prefix="vox-nginx-")
        prefix = self.tmp.name
        os.chmod(prefix, 0o755)  # workers run as another user when the master is root
        with open(NGINX_CONF) as f:
            conf = f.read()
        replicas = re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", conf, re.M)
        if len(replicas) < 2:
            raise AssertionError(f"{NGINX_CONF}: fewer than two replicas in the upstream")
        conf = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n", "", conf, flags=re.M)
        servers = "".join(f"    server {b} {replicas[0]};\n" for b in backends)
        conf = conf.replace("upstream voxd {\n", "upstream voxd {\n" + servers, 1)
        template = conf
        prefix_conf = os.path.join(prefix, "vox-grpc.conf")
        self.conf_path = os.path.join(prefix, "nginx.conf")
        self.access_log_path = os.path.join(prefix, "vox-grpc.access.log")
        # The free port may be taken by another process before nginx binds it: try another.
        for attempt in range(3):
            self.port = free_port()
            conf, n = re.subn(r"listen 127\.0\.0\.1:\d+ http2;",
                              f"listen 127.0.0.1:{self.port} http2;", template)
            if n != 1:
                raise AssertionError(f"{NGINX_CONF}: no 'listen 127.0.0.1:PORT http2;' line")
            conf, n = re.subn(r"access_log \S+ vox_grpc;",
                              f"access_log {self.access_log_path} vox_grpc;", conf)
            if n != 1:
                raise AssertionError(f"{NGINX_CONF}: no 'access_log PATH vox_grpc;' line")
            with open(prefix_conf, "w") as f:
                f.write(conf)
            temps = "".join(f"    {kind}_temp_path {prefix}/{kind};\n"
                            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            main = (f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
                    f"error_log {prefix}/error.log info;\n"
                    + ("user root;\n" if os.geteuid() == 0 else "")
                    + "events { worker_connections 4096; }\n"
                    f"http {{\n    access_log {prefix}/access.log;\n{temps}"
                    f"    include {prefix_conf};\n}}\n")
            with open(self.conf_path, "w") as f:
                f.write(main)
            check = subprocess.run(["nginx", "-t", "-p", prefix, "-c", self.conf_path, "-e",
                                    os.path.join(prefix, "error.log")],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise AssertionError(f"nginx -t failed:\n{check.stderr}\n{conf}")
            self.proc = subprocess.Popen(["nginx", "-p", prefix, "-c", self.conf_path, "-e",
                                          os.path.join(prefix, "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.address = f"127.0.0.1:{self.port}"
            try:
                wait_for(self._listening, "nginx listening")
                return
            except AssertionError:
                if "Address already in use" not in self.error_log() or attempt == 2:
                    raise

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited {self.proc.returncode}:\n{self.error_log()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return True
        except OSError:
            return False

    def calls(self):
        """(upstream, grpc_status, request_id) of every call in the vox_grpc access log so far
        (nginx logs a call just after answering it). When nginx tried several replicas, the
        last one (the one that answered) and its status."""
        def last(field):
            return re.split(r", | : ", field)[-1]

        out = []
        with open(self.access_log_path) as f:
            for line in f:
                m = re.search(r'upstream="([^"]*)" grpc_status="([^"]*)" '
                              r'grpc_trailer_status="([^"]*)" request_id="([^"]*)"', line)
                if not m:
                    raise AssertionError(f"unexpected nginx log line: {line}")
                header, trailer = last(m.group(2)), last(m.group(3))
                status = header if header != "-" else trailer
                out.append((last(m.group(1)), status, m.group(4)))
        return out

    def reload(self, backends_down):
        """Marks `backends_down` as `down` in the upstream and reloads nginx (new workers; the
        old ones finish their calls), as an operator takes a replica out before stopping it."""
        conf_path = os.path.join(self.tmp.name, "vox-grpc.conf")
        with open(conf_path) as f:
            conf = f.read()
        for b in backends_down:
            conf, n = re.subn(rf"(server {re.escape(b)}) [^;]*;", r"\1 down;", conf)
            if n != 1:
                raise AssertionError(f"{b} not in the upstream")
        with open(conf_path, "w") as f:
            f.write(conf)
        subprocess.run(["nginx", "-p", self.tmp.name, "-c", self.conf_path, "-e",
                        os.path.join(self.tmp.name, "error.log"), "-s", "reload"], check=True,
                       capture_output=True)
        # The reload is done when the old worker has exited (it first finishes its calls and
        # sends its HTTP/2 clients GOAWAY, so they reconnect to the new worker).
        wait_for(lambda: re.search(r"worker process \d+ exited with code 0",
                                   self.error_log(tail=0)), "nginx's old worker exited")

    def error_log(self, tail=6000):
        try:
            with open(os.path.join(self.tmp.name, "error.log")) as f:
                return f.read()[-tail:] if tail else f.read()
        except OSError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful stop of master and worker
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()
