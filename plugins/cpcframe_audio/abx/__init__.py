"""ABX phone discriminability (``cpcframe abx``, probe ``abx``): item files, frame checks, backends, the probe.

* :mod:`~cpcframe_audio.abx.items`: ZeroSpeech ``.item`` files, and making them from CPC phone labels;
* :mod:`~cpcframe_audio.abx.frames`: which frames an item covers; the frame-step checks;
* :mod:`~cpcframe_audio.abx.utterances`: the audio to encode (the run's corpus or a folder);
* :mod:`~cpcframe_audio.abx.backends`: the ABX implementations (``zerospeech-libriabx2``, ``fastabx``);
* :mod:`~cpcframe_audio.abx.probe`: the ``abx`` probe, registered by the audio plugin.
"""
