"""Text datasets: the document dataset every source ends in (``base``), its token cache
(``cache``), the file reader the file sources share (``files``), one module per source
(``text_files``, ``text_folder``, ``hf_text``, ``synthetic``), tokenizers and sentence splitting."""
