#!/usr/bin/python3
"""Example VoiceService client for voxd (vox.v1.VoiceService): create a voice from reference
audio, get it, and delete it.

CreateVoice is client streaming: the config first, then each reference clip (a WAV file, an Ogg
Opus file, or raw 16-bit PCM with --rate) in chunks, 3 to 30 seconds of audio in all. The
created voice is then spoken by name like a built-in one (SynthesizeRequest.voice).

    vox_create_voice.py --server 127.0.0.1:50051 create --name Maria --lang spa_Latn a.wav b.ogg
    vox_create_voice.py get Maria
    vox_create_voice.py delete Maria

The gRPC stubs are generated at build time (target vox_python_stubs, into
BUILD/clients/python/gen); pass that folder as --stubs or in $VOX_PY_STUBS. Needs Debian's
python3-grpcio and python3-protobuf.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vox_stubs  # noqa: E402

CHUNK = 64 * 1024
FORMATS = {"detect": "REFERENCE_AUDIO_FORMAT_UNSPECIFIED", "wav": "REFERENCE_AUDIO_FORMAT_WAV",
           "ogg": "REFERENCE_AUDIO_FORMAT_OGG_OPUS", "raw": "REFERENCE_AUDIO_FORMAT_RAW_PCM16"}


def load_stubs(stubs_dir):
    return vox_stubs.load_stubs(stubs_dir, "vox_create_voice", "voice_pb2", "voice_pb2_grpc")


def create_voice(server, name, clips, languages=(), fmt="detect", rate=0, model="", stubs=None,
                 timeout=120.0, security=None):
    """Creates voice `name` from `clips` (a list of bytes, one per recording); returns the
    vox.v1.Voice voxd stored. Raises grpc.RpcError with voxd's status on refusal."""
    pb, pb_grpc = load_stubs(stubs)

    def requests():
        config = pb.CreateVoiceConfig(name=name, languages=list(languages),
                                      format=getattr(pb, FORMATS[fmt]), sample_rate_hz=rate,
                                      model=model)
        yield pb.CreateVoiceRequest(config=config)
        for index, clip in enumerate(clips):
            for at in range(0, len(clip), CHUNK):
                yield pb.CreateVoiceRequest(
                    audio=pb.ReferenceAudioChunk(clip=index, data=clip[at:at + CHUNK]))

    with vox_stubs.open_channel(server, security) as channel:
        return pb_grpc.VoiceServiceStub(channel).CreateVoice(requests(), timeout=timeout)


def get_voice(server, name, stubs=None, timeout=30.0, security=None):
    pb, pb_grpc = load_stubs(stubs)
    with vox_stubs.open_channel(server, security) as channel:
        return pb_grpc.VoiceServiceStub(channel).GetVoice(pb.GetVoiceRequest(name=name),
                                                          timeout=timeout)


def delete_voice(server, name, stubs=None, timeout=30.0, security=None):
    pb, pb_grpc = load_stubs(stubs)
    with vox_stubs.open_channel(server, security) as channel:
        pb_grpc.VoiceServiceStub(channel).DeleteVoice(pb.DeleteVoiceRequest(name=name),
                                                      timeout=timeout)


def describe(voice):
    text = "%s: languages %s, model %s" % (voice.name, ",".join(voice.languages), voice.model)
    if voice.created:
        text += ", created %s from %.1f s of audio" % (
            voice.create_time.ToDatetime().isoformat() + "Z", voice.reference_audio_seconds)
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default=os.environ.get("VOX_SERVER", "127.0.0.1:50051"))
    p.add_argument("--stubs", default=os.environ.get("VOX_PY_STUBS", ""))
    p.add_argument("--timeout", type=float, default=120.0)
    vox_stubs.add_connection_args(p)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="create a voice from reference audio files")
    c.add_argument("--name", required=True)
    c.add_argument("--lang", action="append", default=[], help="NLLB code (repeatable)")
    c.add_argument("--format", choices=sorted(FORMATS), default="detect")
    c.add_argument("--rate", type=int, default=0, help="sample rate of raw PCM16")
    c.add_argument("--model", default="")
    c.add_argument("files", nargs="+")
    for command in ("get", "delete"):
        sub.add_parser(command).add_argument("name")
    args = p.parse_args()
    import grpc
    security = vox_stubs.security_from_args(args)
    try:
        if args.command == "create":
            clips = []
            for path in args.files:
                with open(path, "rb") as f:
                    clips.append(f.read())
            print(describe(create_voice(args.server, args.name, clips, args.lang, args.format,
                                        args.rate, args.model, args.stubs, args.timeout,
                                        security)))
        elif args.command == "get":
            print(describe(get_voice(args.server, args.name, args.stubs, args.timeout, security)))
        else:
            delete_voice(args.server, args.name, args.stubs, args.timeout, security)
            print("deleted %s" % args.name)
    except grpc.RpcError as e:
        sys.exit("vox_create_voice: %s: %s" % (e.code().name, e.details()))
    except (OSError, ValueError) as e:
        sys.exit("vox_create_voice: %s" % e)


if __name__ == "__main__":
    main()
