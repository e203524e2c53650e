"""cpcframe text plugin: sentence-level CPC (van den Oord et al. 2018, section 3.3).

Components: datasets ``text_files``, ``text_folder``, ``hf_text``, ``synthetic_text``;
view sampler ``sentence_windows``; encoders ``sentence_conv`` and ``hf_sentence_encoder``;
probe ``sentence_classification``. The context model (``gru``) and critic
(``cpc_steps``, ``steps = 3``) come from the sequence plugin.
"""
