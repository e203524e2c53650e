"""Registers the text components: sentence CPC (van den Oord et al. 2018, section 3.3).

``transformers``, ``tokenizers`` and ``datasets`` are imported only when a component
needs them, so listing plugins or checking a recipe stays fast.
"""

from __future__ import annotations

from cpcframe import hookimpl

from cpcframe_text import encoders, hf_encoder, probe, views
from cpcframe_text.data import hf_text, synthetic, text_files, text_folder


@hookimpl
def register_encoders(register):
    register("sentence_conv", encoders.build_sentence_conv, encoders.SentenceConvConfig)
    register("hf_sentence_encoder", hf_encoder.build_hf_sentence_encoder, hf_encoder.HFSentenceEncoderConfig)


@hookimpl
def register_view_samplers(register):
    register("sentence_windows", views.build_sentence_windows, views.SentenceWindowsConfig)


@hookimpl
def register_datasets(register):
    register("text_files", text_files.build_text_files, text_files.TextFilesConfig)
    register("text_folder", text_folder.build_text_folder, text_folder.TextFolderConfig)
    register("hf_text", hf_text.build_hf_text, hf_text.HFTextConfig)
    register("synthetic_text", synthetic.build_synthetic_text, synthetic.SyntheticTextConfig)


@hookimpl
def register_probes(register):
    register("sentence_classification", probe.build_sentence_classification,
             probe.SentenceClassificationConfig)
