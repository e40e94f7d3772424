#!/usr/bin/python3
"""Runs the example clients (vox_speech_translate.py, vox_speak_stream.py, vox_create_voice.py)
against a real voxd
serving the built-in engines (Apertium eng->spa, espeak-ng). Needs the voxd binary
($VOXD_BINARY) and the generated stubs ($VOX_PY_STUBS)."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vox_create_voice  # noqa: E402
import vox_speak_stream  # noqa: E402
import vox_speech_translate  # noqa: E402

VOXD = os.environ.get("VOXD_BINARY", "")
STUBS = os.environ.get("VOX_PY_STUBS", "")


def make_tmp(test_class, prefix):
    """A temporary directory for the tests of `test_class`, removed after them."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    test_class.addClassCleanup(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


def start_voxd(test_class, tmp, args):
    """Starts voxd on 127.0.0.1:0 with the built-in engines and `args` for the tests of
    `test_class`, stopped after them (stop_voxd); its stderr goes to tmp/voxd.stderr. Returns
    the address voxd says it listens on."""
    if not os.path.exists(VOXD):
        raise RuntimeError("VOXD_BINARY=%r does not exist (build voxd)" % VOXD)
    if not os.path.exists(os.path.join(STUBS, "vox", "v1", "speech_translation_pb2_grpc.py")):
        raise RuntimeError("no stubs in VOX_PY_STUBS=%r (build vox_python_stubs)" % STUBS)
    stderr = open(os.path.join(tmp, "voxd.stderr"), "w+")
    voxd = subprocess.Popen([VOXD, "--listen", "127.0.0.1:0", "--builtin", "auto", *args],
                            stdout=subprocess.PIPE, stderr=stderr, text=True)
    test_class.addClassCleanup(stop_voxd, voxd, stderr)
    line = voxd.stdout.readline()
    if "listening on" not in line:
        voxd.kill()
        voxd.wait()
        stderr.seek(0)
        raise RuntimeError("voxd did not start: %r; its stderr:\n%s" % (line, stderr.read()))
    return line.split()[-1]


def stop_voxd(voxd, stderr):
    """Stops a voxd from start_voxd: SIGTERM, then waits for it to exit (at most 30 s)."""
    try:
        voxd.terminate()
        voxd.wait(timeout=30)
    finally:
        voxd.stdout.close()
        stderr.close()


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tmp(cls, "vox-py-")
        cls.address = start_voxd(cls, cls.tmp, ["--access-log", "false",
                                                "--voices", os.path.join(cls.tmp, "voices")])

    def assertOneOggStream(self, audio, out):
        """`audio` is one Ogg Opus stream, written to `out` (checked by opusinfo if present)."""
        self.assertTrue(audio.startswith(b"OggS"))
        self.assertEqual(audio.count(b"OpusHead"), 1)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), audio)
        if shutil.which("opusinfo"):
            info = subprocess.run(["opusinfo", out], capture_output=True, text=True)
            self.assertEqual(info.returncode, 0, info.stdout + info.stderr)
            self.assertNotIn("WARNING", info.stdout + info.stderr)

    def test_session_translates_speaks_and_writes_one_ogg_stream(self):
        texts = ["Hello.", "The house is big.", "", "I like the red car."]
        out = os.path.join(self.tmp, "session.ogg")
        printed = []
        translations, timings, audio = vox_speech_translate.run_session(
            self.address, "eng_Latn", "spa_Latn", "", texts, out, STUBS, printer=printed.append)
        self.assertEqual(sorted(translations), [0, 1, 2, 3])
        self.assertEqual(sorted(timings), [0, 1, 2, 3])
        self.assertEqual(translations[2], "")
        self.assertEqual(timings[2].audio_seconds, 0)
        for i in (0, 1, 3):
            self.assertTrue(translations[i])
            self.assertNotEqual(translations[i], texts[i])
            self.assertGreater(timings[i].audio_seconds, 0.2)
            self.assertGreaterEqual(timings[i].total_seconds, timings[i].time_to_first_audio_seconds)
        self.assertIn("casa", translations[1].lower())
        # Printed in segment order: translation then timings for each.
        ids = [int(p[1:p.index("]")]) for p in printed]
        self.assertEqual(ids, [0, 0, 1, 1, 2, 2, 3, 3])
        self.assertOneOggStream(audio, out)

    def test_bad_config_is_invalid_argument(self):
        import grpc
        with self.assertRaises(grpc.RpcError) as ctx:
            vox_speech_translate.run_session(self.address, "eng_Latn", "xxx_Latn", "", ["hi"],
                                             None, STUBS, printer=lambda s: None)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("xxx_Latn", ctx.exception.details())

    def test_speak_stream_word_by_word_gives_one_ogg_stream(self):
        text = "Hello there. How are you today? I am fine"
        pieces = (w + " " for w in text.split(" "))
        out = os.path.join(self.tmp, "live.ogg")
        summary, audio, first_audio = vox_speak_stream.speak_stream(
            self.address, "eng_Latn", "", pieces, out, STUBS)
        self.assertEqual(summary.utterances, 3)  # two sentences, the rest at the end
        self.assertGreater(summary.audio_seconds, 1.0)
        self.assertIsNotNone(first_audio)
        self.assertOneOggStream(audio, out)

    def test_speak_stream_bad_language_is_invalid_argument(self):
        import grpc
        with self.assertRaises(grpc.RpcError) as ctx:
            vox_speak_stream.speak_stream(self.address, "xxx_Latn", "", ["hi "], None, STUBS)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_create_voice_with_espeak_is_unimplemented_and_get_finds_builtin_voices(self):
        import grpc
        import struct
        rate, n = 16000, 4 * 16000
        data = b"".join(struct.pack("<h", 4000 if (i // 40) % 2 else -4000) for i in range(n))
        wav = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
               struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" +
               struct.pack("<I", len(data)) + data)
        with self.assertRaises(grpc.RpcError) as ctx:
            vox_create_voice.create_voice(self.address, "Mine", [wav], stubs=STUBS)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("cannot clone voices", ctx.exception.details())
        with self.assertRaises(grpc.RpcError) as ctx:
            vox_create_voice.create_voice(self.address, "bad/name", [wav], stubs=STUBS)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        voice = vox_create_voice.get_voice(self.address, "espeak:es", STUBS)
        self.assertFalse(voice.created)
        self.assertIn("spa_Latn", voice.languages)
        with self.assertRaises(grpc.RpcError) as ctx:
            vox_create_voice.delete_voice(self.address, "Mine", STUBS)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)


class PythonClientTlsTest(unittest.TestCase):
    """The same client against a voxd that wants TLS and a bearer token (certificates made
    with openssl here)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = make_tmp(cls, "vox-py-tls-")

        def run(*args):
            subprocess.run(args, check=True, capture_output=True, cwd=cls.tmp)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=vox-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
        run("openssl", "req", *ec, "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")
        with open(os.path.join(cls.tmp, "server.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-days", "2", "-in", "server.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "server.ext", "-out", "server.pem")
        cls.ca = os.path.join(cls.tmp, "ca.pem")
        tokens = os.path.join(cls.tmp, "tokens.toml")
        with open(tokens, "w") as f:
            f.write('[[token]]\nname = "py"\nsha256 = "%s"\nservices = ["*"]\n'
                    % hashlib.sha256(b"py-secret").hexdigest())
        cls.address = start_voxd(cls, cls.tmp, ["--tls-cert", os.path.join(cls.tmp, "server.pem"),
                                                "--tls-key", os.path.join(cls.tmp, "server.key"),
                                                "--token-file", tokens])

    def test_speak_stream_with_tls_and_token(self):
        security = {"ca": self.ca, "token": "py-secret"}
        summary, audio, _ = vox_speak_stream.speak_stream(
            self.address, "eng_Latn", "", ["Hello there. "], None, STUBS, security=security)
        self.assertEqual(summary.utterances, 1)
        self.assertTrue(audio.startswith(b"OggS"))

    def test_wrong_or_missing_token_is_unauthenticated(self):
        import grpc
        for token in ("", "not-the-secret"):
            with self.assertRaises(grpc.RpcError) as ctx:
                vox_speak_stream.speak_stream(self.address, "eng_Latn", "", ["Hi. "], None, STUBS,
                                              security={"ca": self.ca, "token": token})
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_token_without_tls_is_refused_before_sending(self):
        with self.assertRaises(ValueError):
            vox_speak_stream.speak_stream(self.address, "eng_Latn", "", ["Hi. "], None, STUBS,
                                          security={"token": "py-secret"})


if __name__ == "__main__":
    unittest.main()
