"""deploy/Containerfile's runtime stage: every shared library that `ldd` resolves for the built
voxd and its SentencePiece shim (loaded with dlopen, so ldd of voxd does not show it) belongs to a
Debian package that the stage installs, or that one of those packages depends on (the dependency
closure, read from this machine's dpkg database). No image is built here: buildah and podman
need a debian:12 base image from a registry, which this machine cannot reach
(docs/operations.md, "Container image"). Also: the image runs as a non-root user, copies both
files it needs, and declares the models volume."""
import os
import re
import subprocess
import unittest

import deploylib

CONTAINERFILE = os.path.join(deploylib.SOURCE_DIR, "deploy", "Containerfile")
SHIM = os.path.join(deploylib.BINARY_DIR, "engines", "text", "libvox_spm_shim.so")
# Programs the built-in engines run (not libraries): their packages must be installed too.
ENGINE_PACKAGES = {"apertium", "apertium-eng-spa"}


def stages(text):
    """{stage name: its instructions as logical lines} (continuations joined)."""
    text = re.sub(r"\\\n", " ", text)
    out, name = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            name = m.group(1) or f"stage{len(out)}"
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def installed_by(lines):
    packages = set()
    for line in lines:
        for cmd in re.findall(r"apt-get install ([^&;]*)", line):
            packages.update(w for w in cmd.split() if not w.startswith("-"))
    return packages


def ldd_libraries(binary):
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
    libs = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (\S+) \(", line)
        if m:
            libs.append(m.group(2))
        elif "not found" in line:
            raise AssertionError(f"{binary}: {line.strip()}")
    return libs


def owning_packages(paths):
    """{path: the package that ships it}, for every path (tried as given, resolved, and with /usr
    merged) in one dpkg-query call."""
    candidates = {}
    for path in paths:
        forms = {path, os.path.realpath(path)}
        for p in list(forms):
            forms.add(p[len("/usr"):] if p.startswith("/usr/lib/") else "/usr" + p)
        candidates[path] = forms
    everything = sorted(set().union(*candidates.values())) if candidates else []
    r = subprocess.run(["dpkg-query", "-S", *everything], capture_output=True, text=True)
    shipped = {}
    for line in r.stdout.splitlines():
        pkgs, _, file = line.partition(": ")
        shipped[file.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    owners = {}
    for path, forms in candidates.items():
        found = [shipped[f] for f in forms if f in shipped]
        if not found:
            raise AssertionError(f"no Debian package ships {path}")
        owners[path] = found[0]
    return owners


def dependency_closure(packages):
    """`packages` and everything they depend on (Depends, Pre-Depends; the first alternative
    that is installed or provided), from this machine's dpkg database (one query)."""
    r = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\n"],
                       capture_output=True, text=True, check=True)
    depends, provider = {}, {}
    for line in r.stdout.splitlines():
        name, deps, provides = (line.split("\t") + ["", ""])[:3]
        depends[name] = deps
        provider.setdefault(name, name)
        for v in provides.split(","):
            if v.strip():
                provider.setdefault(v.strip().split(" ")[0], name)
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        if p not in depends:
            raise AssertionError(f"{p} is not installed here (scripts/install-deps installs "
                                 "what voxd links)")
        seen.add(p)
        for clause in depends[p].split(","):
            for alt in clause.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name in provider:
                    todo.append(provider[name])
                    break
    return seen


class ContainerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(CONTAINERFILE) as f:
            cls.stages = stages(f.read())
        cls.runtime = cls.stages["runtime"]
        cls.packages = installed_by(cls.runtime)

    def test_runtime_packages_provide_every_library(self):
        self.assertTrue(self.packages)
        closure = dependency_closure(self.packages)
        missing = {}
        copied = " ".join(l for l in self.runtime if l.startswith("COPY"))
        binary_dir = os.path.realpath(deploylib.BINARY_DIR) + os.sep
        for binary in (deploylib.VOXD, SHIM):
            system = []
            for lib in ldd_libraries(binary):
                if os.path.realpath(lib).startswith(binary_dir):
                    # vox's own library: the image must copy it from the build stage.
                    self.assertIn(os.path.basename(lib), copied, f"{binary} loads {lib}")
                else:
                    system.append(lib)
            self.assertGreater(len(system), 3, binary)
            for lib, pkg in owning_packages(system).items():
                if pkg not in closure:
                    missing.setdefault(pkg, []).append(f"{os.path.basename(binary)}: {lib}")
        self.assertEqual(missing, {}, "libraries from packages the runtime stage lacks")
        self.assertEqual(ENGINE_PACKAGES - self.packages, set())

    def test_the_check_can_fail(self):
        # Without LibTorch's package the closure misses libtorch's libraries.
        closure = dependency_closure(self.packages - {"libtorch1.13"})
        binary_dir = os.path.realpath(deploylib.BINARY_DIR) + os.sep
        owners = set(owning_packages([lib for lib in ldd_libraries(deploylib.VOXD)
                                      if not os.path.realpath(lib).startswith(binary_dir)]).values())
        self.assertTrue(owners - closure)

    def test_image_shape(self):
        text = "\n".join(self.runtime)
        self.assertRegex(text, r"USER\s+(?!0\b|root\b)\S+")
        self.assertIn("/build/server/voxd", text)
        self.assertIn("libvox_spm_shim.so", text)
        self.assertRegex(text, r'VOLUME\s+\["/models"\]')
        self.assertEqual(list(self.stages)[-1], "runtime")


if __name__ == "__main__":
    unittest.main()
