#!/usr/bin/python3
"""Example SynthesizeStream client for voxd (vox.v1.SpeechService): live text, such as a
language model's tokens, spoken sentence by sentence as it arrives.

Sends the config, then each piece of text as it comes (here: each word of the arguments, or each
line of stdin), and writes the one continuous Ogg Opus stream voxd returns to a file. voxd speaks
each sentence as soon as it is complete (its end punctuation followed by whitespace, so send the
spaces between words), and the rest when the input ends.

    vox_speak_stream.py --server 127.0.0.1:50051 --lang eng_Latn --out live.ogg \
        Hello there. How are you today?

The gRPC stubs are generated at build time (target vox_python_stubs, into
BUILD/clients/python/gen); pass that folder as --stubs or in $VOX_PY_STUBS. Needs Debian's
python3-grpcio and python3-protobuf.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vox_stubs  # noqa: E402


def load_stubs(stubs_dir):
    return vox_stubs.load_stubs(stubs_dir, "vox_speak_stream",
                                "speech_pb2", "speech_pb2_grpc", "common_pb2")


def speak_stream(server, language, voice, pieces, out, stubs=None, timeout=120.0,
                 security=None):
    """Streams `pieces` (an iterable of strings, sent as they are produced); returns
    (summary, audio bytes, seconds from the start to the first audio)."""
    pb, pb_grpc, common_pb2 = load_stubs(stubs)
    import grpc

    def requests():
        config = pb.SynthesizeRequest(
            language=language, voice=voice or "",
            audio=common_pb2.AudioConfig(encoding=common_pb2.AUDIO_ENCODING_OGG_OPUS))
        yield pb.SynthesizeStreamRequest(config=config)
        for piece in pieces:
            yield pb.SynthesizeStreamRequest(text=piece)

    audio, summary, first_audio = bytearray(), None, None
    start = time.monotonic()
    with vox_stubs.open_channel(server, security) as channel:
        stub = pb_grpc.SpeechServiceStub(channel)
        for msg in stub.SynthesizeStream(requests(), timeout=timeout):
            kind = msg.WhichOneof("payload")
            if kind == "audio":
                if first_audio is None and msg.audio.num_samples > 0:
                    first_audio = time.monotonic() - start
                audio += msg.audio.data
            elif kind == "summary":
                summary = msg.summary
    if out:
        with open(out, "wb") as f:
            f.write(bytes(audio))
    return summary, bytes(audio), first_audio


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default=os.environ.get("VOX_SERVER", "127.0.0.1:50051"))
    p.add_argument("--lang", required=True, help="NLLB code, e.g. eng_Latn")
    p.add_argument("--voice", default="")
    p.add_argument("--out", required=True, help="the audio, Ogg Opus")
    p.add_argument("--stubs", default=os.environ.get("VOX_PY_STUBS", ""))
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("words", nargs="*")
    vox_stubs.add_connection_args(p)
    args = p.parse_args()
    pieces = (w + " " for w in args.words) if args.words else iter(sys.stdin)
    import grpc
    try:
        summary, _, first_audio = speak_stream(args.server, args.lang, args.voice, pieces,
                                               args.out, args.stubs, args.timeout,
                                               vox_stubs.security_from_args(args))
    except grpc.RpcError as e:
        sys.exit("vox_speak_stream: %s: %s" % (e.code().name, e.details()))
    except (OSError, ValueError) as e:
        sys.exit("vox_speak_stream: %s" % e)
    print("wrote %s: %.2f s of audio, %d sentences, first audio after %.3f s" % (
        args.out, summary.audio_seconds, summary.utterances, first_audio or 0.0))


if __name__ == "__main__":
    main()
