"""Registers the audio components: CPC on raw waveforms (van den Oord et al. 2018, section 3.1).

Only light modules are imported here (the registry imports this file on every CLI call);
torchaudio and datasets are imported inside the functions that need them.
"""

from __future__ import annotations

from cpcframe import hookimpl

from cpcframe_audio import encoders, probe, views
from cpcframe_audio.abx import probe as abx_probe
from cpcframe_audio.data import hf_audio, librispeech, synthetic


@hookimpl
def register_encoders(register):
    register("cpc_audio", encoders.build_cpc_audio_encoder, encoders.AudioEncoderConfig)


@hookimpl
def register_view_samplers(register):
    register("audio_windows", views.build_audio_windows, views.AudioWindowsConfig)


@hookimpl
def register_datasets(register):
    register("librispeech", librispeech.build_librispeech, librispeech.LibriSpeechConfig)
    register("hf_audio", hf_audio.build_hf_audio, hf_audio.HFAudioConfig)
    register("synthetic_speech", synthetic.build_synthetic_speech, synthetic.SyntheticSpeechConfig)


@hookimpl
def register_probes(register):
    register("speech", probe.build_speech_probe, probe.SpeechProbeConfig)
    register("abx", abx_probe.build_abx_probe, abx_probe.AbxConfig)
