#!/usr/bin/python3
"""Example SpeechTranslate client for voxd (vox.v1.SpeechTranslationService).

Streams text segments to voxd and prints each translation and its timings as it arrives, while
writing the session's audio (one continuous Ogg Opus stream) to a file.

    vox_speech_translate.py --server 127.0.0.1:50051 --from eng_Latn --to spa_Latn \
        --out session.ogg "Hello there." "How are you?"

With no TEXT, every line of stdin is a segment. The gRPC stubs are generated at build time
(target vox_python_stubs, into BUILD/clients/python/gen); pass that folder as --stubs or in
$VOX_PY_STUBS. Needs Debian's python3-grpcio and python3-protobuf.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vox_stubs  # noqa: E402


def load_stubs(stubs_dir):
    return vox_stubs.load_stubs(stubs_dir, "vox_speech_translate",
                                "speech_translation_pb2", "speech_translation_pb2_grpc", "common_pb2")


def requests(pb, common_pb2, args, texts):
    """The config, then one segment per text, ids 0, 1, 2, ..."""
    config = pb.SpeechTranslateConfig(
        source_language=args.source, target_language=args.target, voice=args.voice or "",
        audio=common_pb2.AudioConfig(encoding=common_pb2.AUDIO_ENCODING_OGG_OPUS))
    yield pb.SpeechTranslateRequest(config=config)
    for i, text in enumerate(texts):
        yield pb.SpeechTranslateRequest(segment=pb.TextSegment(segment_id=i, text=text))


def run_session(server, source, target, voice, texts, out, stubs=None, timeout=120.0,
                printer=print, security=None):
    """Runs one session; returns (translations by segment id, timings by id, audio bytes)."""
    pb, pb_grpc, common_pb2 = load_stubs(stubs)
    import grpc
    args = argparse.Namespace(source=source, target=target, voice=voice)
    translations, timings, audio = {}, {}, bytearray()
    with vox_stubs.open_channel(server, security) as channel:
        stub = pb_grpc.SpeechTranslationServiceStub(channel)
        for msg in stub.SpeechTranslate(requests(pb, common_pb2, args, texts), timeout=timeout):
            kind = msg.WhichOneof("payload")
            if kind == "translation":
                translations[msg.translation.segment_id] = msg.translation.text
                printer("[%d] %s" % (msg.translation.segment_id, msg.translation.text))
            elif kind == "audio":
                audio += msg.audio.chunk.data
            elif kind == "segment_end":
                t = msg.segment_end.timings
                timings[msg.segment_end.segment_id] = t
                printer("[%d] queue %.3f s, translation %.3f s, first audio %.3f s, "
                        "synthesis %.3f s, audio %.2f s, total %.3f s" % (
                            msg.segment_end.segment_id, t.queue_seconds, t.translation_seconds,
                            t.time_to_first_audio_seconds, t.synthesis_seconds, t.audio_seconds,
                            t.total_seconds))
    if out:
        with open(out, "wb") as f:
            f.write(bytes(audio))
    return translations, timings, bytes(audio)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default=os.environ.get("VOX_SERVER", "127.0.0.1:50051"))
    p.add_argument("--from", dest="source", required=True, help="NLLB code, e.g. eng_Latn")
    p.add_argument("--to", dest="target", required=True, help="NLLB code, e.g. spa_Latn")
    p.add_argument("--voice", default="")
    p.add_argument("--out", required=True, help="the session's audio, Ogg Opus")
    p.add_argument("--stubs", default=os.environ.get("VOX_PY_STUBS", ""))
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("texts", nargs="*")
    vox_stubs.add_connection_args(p)
    args = p.parse_args()
    texts = args.texts or (line.rstrip("\n") for line in sys.stdin)
    import grpc
    try:
        run_session(args.server, args.source, args.target, args.voice, texts, args.out,
                    args.stubs, args.timeout, security=vox_stubs.security_from_args(args))
    except grpc.RpcError as e:
        sys.exit("vox_speech_translate: %s: %s" % (e.code().name, e.details()))
    except (OSError, ValueError) as e:
        sys.exit("vox_speech_translate: %s" % e)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
