"""Built-in sequence components shared by audio and text: context models, the CPC step critic, toy data."""
