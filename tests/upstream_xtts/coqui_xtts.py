"""Coqui's XTTS (coqui-tts in the reference environment), loaded the way its docs show:
`XttsConfig.load_json` + `Xtts.load_checkpoint(checkpoint_dir=...)` (strict), voices from
speakers_xtts.pth through its speaker manager.
"""
import torch
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts


def load(checkpoint_dir: str):
    """(Xtts in eval mode, its XttsConfig)."""
    config = XttsConfig()
    config.load_json(f"{checkpoint_dir}/config.json")
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=checkpoint_dir, eval=True)
    return model, config


def voice(model, name: str):
    """(gpt_cond_latent, speaker_embedding) of a built-in voice, as Xtts.synthesize unpacks them."""
    gpt_cond_latent, speaker_embedding = model.speaker_manager.speakers[name].values()
    return gpt_cond_latent, speaker_embedding


def greedy_inference(model, config, text: str, language: str, name: str):
    """Xtts.inference with greedy decoding and the checkpoint's repetition penalty; returns
    (codes as generated, stop code included when produced; waveform as float32 numpy)."""
    lat, emb = voice(model, name)
    return greedy_inference_with(model, config, text, language, lat, emb)


def greedy_inference_with(model, config, text: str, language: str, lat, emb):
    """greedy_inference with a voice given as (gpt_cond_latent, speaker_embedding)."""
    recorded = []
    generate = model.gpt.generate

    def recording(*args, **kwargs):
        codes = generate(*args, **kwargs)
        recorded.append(codes[0].tolist())
        return codes

    model.gpt.generate = recording
    try:
        with torch.no_grad():
            out = model.inference(text, language, lat, emb, do_sample=False,
                                  repetition_penalty=config.repetition_penalty)
    finally:
        del model.gpt.generate
    if len(recorded) != 1:
        raise AssertionError(f"expected one generate() call, saw {len(recorded)}")
    wav = out["wav"]
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    return recorded[0], wav.astype("float32").reshape(-1)
